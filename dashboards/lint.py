"""Checks of the PromQL in dashboards and rules that a typo or a bad habit would break.

- ``quantile_problems``: every ``histogram_quantile(q, X)`` has X = ``sum by (le, ...)``
  over ``rate`` or ``increase`` of a ``_bucket`` series, with no max/min/avg across buckets
  (anything else gives one series per instance, or nonsense interpolations).
- ``metric_names``: the metric names an expression reads, to check that none is a
  histogram's base name without ``_bucket``, ``_sum`` or ``_count``, and that each exists.

A few regular expressions rather than a PromQL parser: enough for the shapes written here,
and the real-data test runs every query against Prometheus anyway.
"""

from __future__ import annotations

import re

_QUANTILE = re.compile(r"\bhistogram_quantile\s*\(")
_SUMMED_BY_LE = re.compile(r"^sum\s+by\s*\(([^)]*)\)\s*\((.*)\)$", re.DOTALL)
_RATED_BUCKETS = re.compile(r"\b(?:rate|increase)\s*\(\s*[A-Za-z_:][\w:]*_bucket\b")
_ACROSS_BUCKETS = re.compile(r"\b(?:max|min|avg)\b\s*(?:by|without)?\s*\(")

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGES = re.compile(r"\[[^\]]*\]")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "by",
    "without",
    "on",
    "ignoring",
}
_SELECTOR = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)?(?![\w:])\s*(\{[^{}]*\})?")
_NAME_REGEX = re.compile(r'__name__\s*=~?\s*"([^"]*)"')


def quantile_problems(expr: str) -> list[str]:
    """What is wrong with each ``histogram_quantile`` call of ``expr`` (empty when nothing)."""
    problems = []
    for match in _QUANTILE.finditer(expr):
        arguments = _split_arguments(expr, match.end())
        if len(arguments) != 2:
            problems.append(f"histogram_quantile needs 2 arguments: {expr[match.start() :][:80]}")
            continue
        problems += _check_quantile_input(arguments[1].strip())
    return problems


def metric_names(expr: str) -> set[str]:
    """Metric names that ``expr`` selects, including regexes on ``__name__`` as written."""
    names = set(_NAME_REGEX.findall(expr))
    stripped = _STRING.sub('""', expr)
    while True:
        reduced = _BRACES.sub(" ", stripped)
        if reduced == stripped:
            break
        stripped = reduced
    stripped = _RANGES.sub(" ", _LABEL_LISTS.sub(" ", stripped))
    stripped = re.sub(r"\$\w+", " ", stripped)
    for name in _IDENTIFIER.findall(stripped):
        if name.lower() not in _KEYWORDS and not re.fullmatch(r"\d.*", name):
            names.add(name)
    return names


def selectors(expr: str) -> set[str]:
    """Each vector selector of ``expr`` as written: ``name{...}``, ``name`` or ``{__name__...}``."""
    names = metric_names(expr)
    found = set()
    for match in _SELECTOR.finditer(expr):
        name, matchers = match.group(1) or "", match.group(2) or ""
        if name in names or (not name and "__name__" in matchers):
            found.add(name + matchers)
    return found


def bare_histogram_names(expr: str, histograms: set[str]) -> set[str]:
    """Base names of ``histograms`` that ``expr`` reads without a suffix."""
    return metric_names(expr) & histograms


def histogram_bases(names: set[str]) -> set[str]:
    """Histogram base names, from any ``_bucket`` name among ``names``."""
    return {name[: -len("_bucket")] for name in names if name.endswith("_bucket")}


def _check_quantile_input(argument: str) -> list[str]:
    summed = _SUMMED_BY_LE.match(argument)
    if summed is None:
        return [
            f"histogram_quantile over something other than sum by (le, ...) (...): {argument[:100]}"
        ]
    labels = [label.strip() for label in summed.group(1).split(",")]
    body = summed.group(2)
    problems = []
    if "le" not in labels:
        problems.append(f"buckets summed without le: sum by ({summed.group(1)})")
    if not _RATED_BUCKETS.search(body):
        problems.append(f"not a rate/increase of a _bucket series: {body[:100]}")
    if _ACROSS_BUCKETS.search(body):
        problems.append(f"max/min/avg across buckets: {body[:100]}")
    return problems


def _split_arguments(text: str, start: int) -> list[str]:
    """The comma-separated arguments of the call whose '(' ends just before ``start``."""
    depth, current, arguments = 0, [], []
    for char in text[start:]:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                arguments.append("".join(current))
                return arguments
            depth -= 1
        elif char == "," and depth == 0:
            arguments.append("".join(current))
            current = []
            continue
        current.append(char)
    return arguments
