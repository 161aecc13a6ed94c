"""One masking engine for log records, span attributes and events, and GenAI content.

Whatever it finds is replaced by ``[REDACTED:<category>]``; the marker names the category
and holds nothing of what it hides. Categories:

``password``    URL userinfo (``scheme://user:[REDACTED:password]@host``) and values under
                password-like keys (``password``, ``passwd``, ``pwd``, ``passphrase``),
                also after ``--password`` and in "password is X" when X looks like one
``credential``  what follows ``Bearer`` or ``Basic``; the scheme word stays
``jwt``         three base64url parts, the first starting ``eyJ``
``api_key``     OpenAI (``sk-``, ``sk-proj-``, ``sk-svcacct-``), Anthropic (``sk-ant-``),
                Google (``AIza``), AWS access key ids (``AKIA``/``ASIA``), GitHub (``ghp_``,
                ``gho_``, ``ghs_``, ``ghu_``, ``ghr_``, ``github_pat_``), Slack (``xox?-``),
                Stripe (``sk_``, ``rk_``, ``pk_`` + ``live_``/``test_``), always whole
``secret``      values under other sensitive keys (``secret``, ``token``, ``authorization``,
                ``cookie``, ``api_key``, ``x-api-key``, ``private_key``, ``session``,
                ``signature``, ``sig`` ...), in ``key=value`` and ``key: value`` text, JSON,
                URL query strings, command-line flags and attributes; PEM private key
                blocks; the credential part of Slack and Discord webhook URLs
``email``       addresses whose domain has a dot (``deploy@web01``, a shell prompt or an SSH
                target, is left alone); plus-tags, subdomains, country-code domains, quotes,
                ``%40`` for ``@`` in URLs
``iban``        mod-97 checked
``card``        Luhn checked, 13 to 19 digits with an issuer prefix, bare or grouped
                4-4-4-4(-3) or 4-6-5 / 4-6-4 with spaces or dashes
``ssn``         US social security numbers, ``ddd-dd-dddd`` or ``ddd dd dddd`` with the
                invalid ranges left out,
                and nine digits (bare or spaced) right after ``ssn`` or "social security"
``phone``       ``+`` and a country code (E.164, any grouping), US ``(415) 555-2186`` and
                ``415-555-2186``, national numbers with a trunk ``0`` and separators, and
                any number right after a phone label (``phone``, ``mobile``, ``tel`` ...);
                a bare ten-digit number with no label is left alone (ids and epoch
                seconds look the same)

A key is sensitive when its name, in any case, ends with one of the sensitive words, so
``http.request.header.authorization``, ``X-Api-Key`` and ``client_secret`` are, and
``gen_ai.usage.input_tokens`` is not. Booleans under such keys are kept.

``OTEL_OBS_REDACT=false`` turns masking off. ``OTEL_OBS_REDACT_RULES_FILE`` names a YAML or
JSON file with extra rules::

    patterns:                      # more categories: what the regex matches is masked
      - category: employee_id      # marker [REDACTED:employee_id]; lower-case, digits, _
        regex: 'EMP-\\d{6}'
    sensitive_keys:                # more key names (suffixes, any case) masked whole
      - x-internal-signature
    allow:                         # regexes; a finding that matches one in full stays
      - 'noreply@example\\.com'

A file that cannot be read or has a bad rule is reported once and the built-in rules
apply alone: a broken rules file never turns masking off.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status

from otel_obs._diag import warn_once, warn_rate_limited
from otel_obs._guard import _raise_internal_errors

__all__ = [
    "CATEGORIES",
    "ERROR_MARKER",
    "RedactingLogExporter",
    "RedactingSpanExporter",
    "Redactor",
    "Rules",
    "RulesFileError",
    "is_sensitive_key",
    "load_rules",
    "marker",
]

CATEGORIES = (
    "password",
    "credential",
    "jwt",
    "api_key",
    "secret",
    "email",
    "iban",
    "card",
    "ssn",
    "phone",
)

# What an exporter puts in place of a value it could not mask: nothing unmasked leaves.
ERROR_MARKER = "[REDACTED:error]"

_MARKER_PREFIX = "[REDACTED:"
_MARKERS = {category: f"[REDACTED:{category}]" for category in CATEGORIES}


def marker(category: str) -> str:
    return _MARKERS.get(category) or f"[REDACTED:{category}]"


# --- sensitive key names ----------------------------------------------------------------

_PASSWORD_WORDS = r"pass(?:word|wd|phrase)|pwd"
_SECRET_WORDS = (
    r"secret|token|authori[sz]ation|auth|cookie|credentials?|session(?:[-_.]?id)?|signature|sig"
    r"|(?:api|access|secret|private|signing|encryption|master)[-_.]?key|cvv|cvc"
)
_PASSWORD_KEY = re.compile(rf"(?:{_PASSWORD_WORDS})$", re.IGNORECASE)
_SENSITIVE_KEY = re.compile(rf"(?:{_PASSWORD_WORDS}|{_SECRET_WORDS})$", re.IGNORECASE)

# Schemes kept in front of a masked Authorization value: they say what kind of
# credential it was and nothing about the credential itself.
_SCHEME = re.compile(r"(?i)(bearer|basic|digest|token|negotiate|apikey)([ \t]+)(?=\S)")


def is_sensitive_key(key: str) -> bool:
    """Whether values under ``key`` are masked whole (built-in key names only)."""
    return _SENSITIVE_KEY.search(key) is not None


# --- text rules -------------------------------------------------------------------------

_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s:/@]{1,128}:)([^\s/@]{1,256})@")

_CREDENTIAL = re.compile(r"\b((?i:bearer|basic)[ \t]+)([A-Za-z0-9._~+/-]{8,}=*)(?![\w~+/=-])")

_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")

_API_KEY = re.compile(
    r"""(?<![A-Za-z0-9_-])(?:
        (?P<sk>sk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9][A-Za-z0-9_-]{19,})
      | AIza[A-Za-z0-9_-]{30,}
      | (?:AKIA|ASIA)[A-Z0-9]{16}
      | gh[pousr]_[A-Za-z0-9]{30,}
      | github_pat_[A-Za-z0-9_]{30,}
      | xox[abprse]-[A-Za-z0-9-]{10,}
      | [srp]k_(?:live|test)_[A-Za-z0-9]{10,}
    )(?![A-Za-z0-9_-])""",
    re.VERBOSE,
)

# Cheap scans that decide whether the full rules run: the regex engine finds a literal
# far faster than it can try the full rules at every position.
_KEY_HINT = re.compile(r"pass|pwd|secret|token|auth|cookie|credential|session|key|sig|cv[vc]")


def _looks_secret(value: str) -> bool:
    return any(c.isdigit() or not c.isalnum() for c in value) or not value[1:].islower()


def _may_name_a_phone(lowered: str) -> bool:
    return (
        "phone" in lowered
        or "tel" in lowered
        or "mobile" in lowered
        or "cell" in lowered
        or "fax" in lowered
        or "whatsapp" in lowered
        or "sms" in lowered
    )


def _may_hold_api_key(text: str) -> bool:
    # A substring test per provider prefix costs less than one regex scan of the text.
    return (
        "k-" in text  # sk-, sk-proj-, sk-ant-
        or "k_" in text  # sk_live_, rk_test_
        or "AIza" in text
        or "AKIA" in text
        or "ASIA" in text
        or "xox" in text
        or ("_" in text and ("gh" in text or "github_pat" in text))
    )


# Digits become "0", the separators of grouped numbers vanish and "." stays, so that
# "+1 (415) 555-2186" reads "x000000000000" and "10.0.46.142:443" reads "00.0.00.000x000".
_DIGIT_SHAPES = str.maketrans(
    {
        **{chr(code): "x" for code in range(128)},
        **dict.fromkeys("0123456789", "0"),
        **dict.fromkeys(" ()-"),
        ".": ".",
    }
)


def _may_hold_number(text: str) -> bool:
    """Whether a card, IBAN, SSN or phone number can be in ``text`` (eight digits in a row
    once the separators are gone, dotted phone layouts, or a ``+``); IP addresses,
    versions, decimals and hex ids are not."""
    shape = text.translate(_DIGIT_SHAPES)
    return (
        "00000000" in shape
        or "+" in text
        or ("." in shape and ("000.000.0000" in shape or "00.00.00.00" in shape))
    )


# A value under a sensitive key in text: quoted (JSON, Python reprs, YAML) or bare. A bare
# value ends at white space, a quote or punctuation that closes a structure, or at an
# ``&`` that starts the next query parameter (an ``&`` inside a password stays in it).
_KEY_VALUE = re.compile(
    rf"""(?P<key>{_PASSWORD_WORDS}|{_SECRET_WORDS})
        (?P<sep>["']?[ \t]*[:=][ \t]*)
        (?:
            (?P<quote>["'])(?P<quoted>(?:\\.|(?!(?P=quote))[^\\\n])*)(?P=quote)
          | (?P<scheme>(?:bearer|basic|digest|token|negotiate|apikey)[ \t]+)?
            (?P<bare>\[REDACTED:[a-z0-9_]+\]|(?:[^\s"'&,;<>)\]}}]|&(?![A-Za-z_][\w.\[\]-]*=))+)
        )""",
    re.IGNORECASE | re.VERBOSE,
)

_EMAIL = re.compile(
    r"""(?:"[^"\s@]{1,64}"|(?<![\w.%+-])[\w%+-][\w.%+'-]{0,63})
        (?:@|%40)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}
        (?![\w-]|\.[A-Za-z0-9])""",
    re.VERBOSE,
)

# Nine digits are a social security number only where the text says so.
_LABELLED_SSN = re.compile(
    r"(?i)\b((?:ssn|social[ _-]security(?:[ _-](?:number|no))?)\W{0,4})"
    r"(\d{3}([ -]?)\d{2}\3\d{4})(?!\d)"
)

# A number right after a phone label, in any layout, bare ten digits included.
_LABELLED_PHONE = re.compile(
    r"(?i)\b((?:phone|tel|mobile|cell|fax|whatsapp|sms)(?:[ _-]?(?:number|no))?\W{0,4})"
    r"(\+?\(?\d[\d .()-]{5,18}\d)(?![\w.-]?\d)"
)

# Values that follow a key with white space only: command-line flags (``--password x``)
# and "password is x" in prose, where the value must look like a secret (a digit, an
# upper-case letter after the first character, or a symbol), so "password is incorrect"
# stays as it is.
_SPACED_SECRET = re.compile(
    rf"""(?:
        (?P<flag>(?<![\w-])--?(?:{_PASSWORD_WORDS}|{_SECRET_WORDS})[ \t]+)
      | (?P<prose>\b(?:{_PASSWORD_WORDS})[ \t]+(?:is|was)[ \t]+)
    )(?P<value>[^\s"'<>-][^\s"'<>]*)""",
    re.IGNORECASE | re.VERBOSE,
)

_PRIVATE_KEY_BLOCK = re.compile(
    r"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)(.*?)(-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
# Incoming-webhook URLs carry their credential in the path.
_WEBHOOK = re.compile(
    r"((?:hooks\.slack\.com/(?:services|workflows)|discord(?:app)?\.com/api/webhooks)/)"
    r"([A-Za-z0-9_/-]{8,})"
)

_IBAN = re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?(?![\w])")

# Card numbers, social security numbers and phone numbers in one pass over the text; the
# match is checked (Luhn, SSN ranges, digit counts) before anything is masked.
_NUMBERS = re.compile(
    r"""(?<![\w.+-])(?:
        (?P<ssn>\d{3}(?P<v>[- ])\d{2}(?P=v)\d{4})
      | (?P<card>\d{4}(?P<s>[ -]?)\d{4}(?P=s)\d{4}(?P=s)\d{4}(?:(?P=s)\d{3})?
                |\d{4}(?P<t>[ -]?)\d{6}(?P=t)\d{4,5}
                |\d{13,19})
      | (?P<intl>\+\d{1,3}(?:[ .-]?\(\d{1,4}\)|[ .-]?\d{1,5}){2,6})
      | (?P<us>\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\d{3}(?P<d>[.-])\d{3}(?P=d)\d{4}|\d{3}\ \d{3}\ \d{4})
      | (?P<trunk>0\d{1,4}(?P<u>[ .-])\d{2,8}(?:(?P=u)\d{2,8}){0,3})
    )(?![\w]|[.-]\d)""",
    re.VERBOSE,
)
_NOT_DIGIT = re.compile(r"\D")
# Issuer prefixes (Visa, Mastercard old and new ranges, Amex, Diners, JCB, Discover,
# UnionPay): Luhn alone passes one random number in ten, and dates such as 20261204...
# or epoch milliseconds 17...  would be taken for cards.
_CARD_PREFIX = re.compile(
    r"4|5[1-5]|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)|3[04-9]|6(?:011|4[4-9]|5|2)"
)


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _iban_valid(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _ssn_valid(text: str) -> bool:
    area, group, serial = text[:3], text[4:6], text[7:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


# --- rules from a file ------------------------------------------------------------------

_CATEGORY_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


class RulesFileError(ValueError):
    """The masking rules file cannot be read or holds an invalid rule."""


@dataclasses.dataclass(frozen=True)
class Rules:
    """Extra masking rules: (category, regex) patterns, key names, an allow-list."""

    patterns: tuple[tuple[str, re.Pattern[str]], ...] = ()
    sensitive_keys: tuple[str, ...] = ()
    allow: tuple[re.Pattern[str], ...] = ()


def load_rules(path: str) -> Rules:
    """Read a YAML or JSON rules file; raise ``RulesFileError`` naming what is wrong."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise RulesFileError(f"{path}: cannot be read ({error.strerror})") from None
    data = _parse_rules_text(path, text)
    if data is None:
        return Rules()
    if not isinstance(data, Mapping):
        raise RulesFileError(f"{path}: expected a mapping with patterns, sensitive_keys, allow")
    unknown = set(data) - {"patterns", "sensitive_keys", "allow"}
    if unknown:
        raise RulesFileError(f"{path}: unknown section(s) {', '.join(sorted(map(str, unknown)))}")
    return Rules(
        patterns=tuple(_parse_pattern(path, item) for item in _list(path, data, "patterns")),
        sensitive_keys=tuple(str(key) for key in _list(path, data, "sensitive_keys")),
        allow=tuple(_compile(path, "allow", str(item)) for item in _list(path, data, "allow")),
    )


def _parse_rules_text(path: str, text: str) -> Any:
    if path.endswith(".json"):
        try:
            return json.loads(text)
        except ValueError as error:
            raise RulesFileError(f"{path}: invalid JSON ({error})") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RulesFileError(f"{path}: invalid YAML ({error})") from None


def _list(path: str, data: Mapping[str, Any], section: str) -> list[Any]:
    items = data.get(section) or []
    if not isinstance(items, list):
        raise RulesFileError(f"{path}: {section} must be a list")
    return items


def _parse_pattern(path: str, item: Any) -> tuple[str, re.Pattern[str]]:
    if not isinstance(item, Mapping) or "category" not in item or "regex" not in item:
        raise RulesFileError(f"{path}: each pattern needs a category and a regex")
    category = str(item["category"])
    if not _CATEGORY_NAME.fullmatch(category):
        raise RulesFileError(f"{path}: category {category!r} must be lower-case letters, digits, _")
    return category, _compile(path, f"pattern {category}", str(item["regex"]))


def _compile(path: str, what: str, regex: str) -> re.Pattern[str]:
    try:
        return re.compile(regex)
    except re.error as error:
        raise RulesFileError(f"{path}: {what}: invalid regex ({error})") from None


# --- the engine -------------------------------------------------------------------------

_Rule = Callable[[str], str]


class Redactor:
    """Masks secrets and personal data in text, attribute mappings and log bodies."""

    def __init__(self, enabled: bool = True, rules: Rules | None = None):
        self.enabled = enabled
        self._extra = rules or Rules()
        self._allow = self._extra.allow
        self._extra_key = (
            re.compile(
                "(?:" + "|".join(map(re.escape, self._extra.sensitive_keys)) + ")$", re.IGNORECASE
            )
            if self._extra.sensitive_keys
            else None
        )
        self._key_cache: dict[str, str | None] = {}

    @classmethod
    def from_settings(cls, settings: Any) -> Redactor:
        """A redactor for ``settings.redact`` and ``settings.redact_rules_file``."""
        enabled = bool(getattr(settings, "redact", True))
        path = getattr(settings, "redact_rules_file", None)
        rules = None
        if enabled and path:
            try:
                rules = load_rules(path)
            except RulesFileError as error:
                warn_once(
                    f"redact-rules:{path}",
                    "otel-obs: masking rules file not used, built-in rules apply: %s",
                    error,
                )
        return cls(enabled=enabled, rules=rules)

    # text

    def redact_text(self, text: str) -> str:
        """``text`` with every finding replaced by its category's marker."""
        if not self.enabled or not isinstance(text, str) or len(text) < 6:
            return text
        # Each rule runs only when a substring it needs is present: most log lines hold
        # none of them, and a substring test is far cheaper than a regex scan.
        lowered = text.lower()
        if "@" in text and "://" in text:
            text = _USERINFO.sub(self._userinfo, text)
        if "bearer" in lowered or "basic" in lowered:
            text = _CREDENTIAL.sub(self._credential, text)
        if "eyJ" in text:
            text = _JWT.sub(self._jwt, text)
        if _may_hold_api_key(text):
            text = _API_KEY.sub(self._api_key, text)
        if ("=" in text or ":" in text) and _KEY_HINT.search(lowered):
            text = _KEY_VALUE.sub(self._key_value, text)
        if ("--" in text or " is " in lowered or " was " in lowered) and _KEY_HINT.search(lowered):
            text = _SPACED_SECRET.sub(self._spaced_secret, text)
        if "PRIVATE KEY" in text:
            text = _PRIVATE_KEY_BLOCK.sub(self._private_key, text)
        if "hooks.slack.com" in text or "/webhooks/" in text:
            text = _WEBHOOK.sub(self._webhook, text)
        if "@" in text or "%40" in text:
            text = _EMAIL.sub(self._email, text)
        if "ssn" in lowered or "social" in lowered:
            text = _LABELLED_SSN.sub(self._labelled_ssn, text)
        if _may_name_a_phone(lowered):
            text = _LABELLED_PHONE.sub(self._labelled_phone, text)
        if _may_hold_number(text):
            text = _IBAN.sub(self._iban, text)
            text = _NUMBERS.sub(self._number, text)
        for category, pattern in self._extra.patterns:
            text = pattern.sub(lambda match, c=category: self._mask(match.group(0), c), text)
        return text

    def _allowed(self, found: str) -> bool:
        return any(pattern.fullmatch(found) for pattern in self._allow)

    def _mask(self, found: str, category: str) -> str:
        if self._allow and self._allowed(found):
            return found
        return marker(category)

    def _userinfo(self, match: re.Match[str]) -> str:
        return match.group(1) + self._mask(match.group(2), "password") + "@"

    def _credential(self, match: re.Match[str]) -> str:
        credential = match.group(2)
        if credential.isalpha() and credential.islower():
            return match.group(0)  # prose: "basic authentication", "bearer tokens"
        return match.group(1) + self._mask(credential, "credential")

    def _jwt(self, match: re.Match[str]) -> str:
        return self._mask(match.group(0), "jwt")

    def _api_key(self, match: re.Match[str]) -> str:
        found = match.group(0)
        random_part = match.group("sk")
        if random_part is not None and not any(c.isdigit() or c.isupper() for c in random_part):
            return found  # "sk-learn-style-names" are words, not keys
        return self._mask(found, "api_key")

    def _key_value(self, match: re.Match[str]) -> str:
        category = "password" if _PASSWORD_KEY.match(match.group("key")) else "secret"
        head = match.group("key") + match.group("sep")
        quote = match.group("quote")
        if quote is not None:
            value = match.group("quoted")
            scheme_match = _SCHEME.match(value)
            scheme = scheme_match.group(0) if scheme_match else ""
            return head + quote + scheme + self._mask_value(value[len(scheme) :], category) + quote
        scheme = match.group("scheme") or ""
        return head + scheme + self._mask_value(match.group("bare"), category)

    def _mask_value(self, value: str, category: str) -> str:
        if not value or value.startswith(_MARKER_PREFIX):
            return value
        return self._mask(value, category)

    def _spaced_secret(self, match: re.Match[str]) -> str:
        value = match.group("value")
        if value.startswith(_MARKER_PREFIX):
            return match.group(0)
        head = match.group("flag") or match.group("prose")
        if match.group("prose") is not None and not _looks_secret(value):
            return match.group(0)
        category = "password" if _PASSWORD_KEY.search(head.strip().split()[0]) else "secret"
        return head + self._mask(value, category)

    def _private_key(self, match: re.Match[str]) -> str:
        end = match.group(3)
        return f"{match.group(1)} {self._mask(match.group(2).strip(), 'secret')} {end}".rstrip()

    def _webhook(self, match: re.Match[str]) -> str:
        return match.group(1) + self._mask(match.group(2), "secret")

    def _labelled_phone(self, match: re.Match[str]) -> str:
        digits = _NOT_DIGIT.sub("", match.group(2))
        if not 7 <= len(digits) <= 15:
            return match.group(0)
        return match.group(1) + self._mask(match.group(2), "phone")

    def _email(self, match: re.Match[str]) -> str:
        return self._mask(match.group(0), "email")

    def _labelled_ssn(self, match: re.Match[str]) -> str:
        digits = _NOT_DIGIT.sub("", match.group(2))
        if not _ssn_valid(f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"):
            return match.group(0)
        return match.group(1) + self._mask(match.group(2), "ssn")

    def _iban(self, match: re.Match[str]) -> str:
        found = match.group(0)
        candidate = found
        while not _iban_valid(candidate):
            # A word after a grouped IBAN ("... 3000 EUR") can join the match: drop it.
            if " " not in candidate:
                return found
            candidate = candidate.rsplit(" ", 1)[0]
        return self._mask(candidate, "iban") + found[len(candidate) :]

    def _number(self, match: re.Match[str]) -> str:
        found = match.group(0)
        if match.group("ssn") is not None:
            return self._mask(found, "ssn") if _ssn_valid(found) else found
        if match.group("card") is not None:
            digits = _NOT_DIGIT.sub("", found)
            if 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and _luhn(digits):
                return self._mask(found, "card")
            return found
        digits = _NOT_DIGIT.sub("", found)
        if match.group("intl") is not None:
            return self._mask(found, "phone") if 8 <= len(digits) <= 15 else found
        if match.group("us") is not None:
            return self._mask(found, "phone")
        return self._mask(found, "phone") if 9 <= len(digits) <= 12 else found

    # values and mappings

    def key_category(self, key: str) -> str | None:
        """The category a value under ``key`` is masked as whole, or None."""
        cached = self._key_cache.get(key, "")
        if cached != "":
            return cached
        category: str | None = None
        if _PASSWORD_KEY.search(key):
            category = "password"
        elif _SENSITIVE_KEY.search(key) or (self._extra_key and self._extra_key.search(key)):
            category = "secret"
        if len(self._key_cache) < 4096:
            self._key_cache[key] = category
        return category

    def redact_value(self, key: str, value: Any) -> Any:
        """``value`` as it may leave the process when it sits under ``key``."""
        if not self.enabled or value is None:
            return value
        category = self.key_category(key) if isinstance(key, str) else None
        if category is not None:
            return self._mask_whole(value, category)
        return self._redact_content(value)

    def redact_attributes(self, attributes: Mapping[str, Any] | None) -> dict[str, Any]:
        """A new dict: sensitive keys masked whole, strings masked by content."""
        if not attributes:
            return {}
        if not self.enabled:
            return dict(attributes)
        return {key: self.redact_value(key, value) for key, value in attributes.items()}

    def redact_body(self, body: Any) -> Any:
        """A log record body: text by content, maps key-aware, lists item by item."""
        return self._redact_content(body) if self.enabled else body

    def _redact_content(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, Mapping):
            return self.redact_attributes(value)
        if isinstance(value, (list, tuple)):
            masked = [self._redact_content(item) for item in value]
            return tuple(masked) if isinstance(value, tuple) else masked
        return value

    def _mask_whole(self, value: Any, category: str) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return self._mask_secret_string(value, category)
        if isinstance(value, (list, tuple)):
            masked = [self._mask_whole(item, category) for item in value]
            return tuple(masked) if isinstance(value, tuple) else masked
        if isinstance(value, Mapping):
            return {key: self._mask_whole(item, category) for key, item in value.items()}
        return marker(category)

    def _mask_secret_string(self, value: str, category: str) -> str:
        if not value:
            return value
        if self._allow and self._allowed(value):
            return value
        scheme = _SCHEME.match(value)
        if scheme is not None:
            return scheme.group(1) + " " + marker("credential")
        return marker(category)


# --- exporters --------------------------------------------------------------------------


def _scrub(value: Any) -> Any:
    """Replace every string in ``value`` by the error marker; cannot fail on OTel values."""
    if isinstance(value, str):
        return ERROR_MARKER
    if isinstance(value, (list, tuple)):
        return tuple(_scrub(item) for item in value)
    if isinstance(value, Mapping):
        return {key: _scrub(item) for key, item in value.items()}
    return value


def _with_dropped(original: Any, masked: dict[str, Any]) -> Any:
    if isinstance(original, BoundedAttributes) and original.dropped:
        bounded = BoundedAttributes(attributes=masked, immutable=False, extended_attributes=True)
        bounded.dropped = original.dropped
        return bounded
    return masked


def _copy_span(
    span: ReadableSpan, mask_text: Callable[[str], str], mask_map: Callable[..., Any]
) -> ReadableSpan:
    status = span.status
    if status is not None and status.description:
        status = Status(status.status_code, mask_text(status.description))
    return ReadableSpan(
        name=mask_text(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_with_dropped(span.attributes, mask_map(span.attributes)),
        events=tuple(
            Event(event.name, mask_map(event.attributes), event.timestamp) for event in span.events
        ),
        links=tuple(Link(link.context, mask_map(link.attributes)) for link in span.links),
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingSpanExporter(SpanExporter):
    """Exports masked copies of spans: name, attributes, events, links, status description.

    A span that cannot be masked goes out with every string value replaced by
    ``[REDACTED:error]``: the batch is never lost and nothing unmasked leaves.
    """

    def __init__(self, inner: SpanExporter, redactor: Redactor):
        self._inner = inner
        self._redactor = redactor

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not self._redactor.enabled:
            return self._inner.export(spans)
        return self._inner.export([self._masked(span) for span in spans])

    def _masked(self, span: ReadableSpan) -> ReadableSpan:
        try:
            return _copy_span(span, self._redactor.redact_text, self._redactor.redact_attributes)
        except Exception as error:  # noqa: BLE001 (a span must still go out, masked)
            _report_failure("span", error)
            return _copy_span(span, lambda text: text, lambda mapping: _scrub(dict(mapping or {})))

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class RedactingLogExporter(LogRecordExporter):
    """Exports masked copies of log records: string and map bodies, attributes.

    A record that cannot be masked goes out with its strings replaced by
    ``[REDACTED:error]``.
    """

    def __init__(self, inner: LogRecordExporter, redactor: Redactor):
        self._inner = inner
        self._redactor = redactor

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        if not self._redactor.enabled:
            return self._inner.export(batch)
        return self._inner.export([self._masked(record) for record in batch])

    def _masked(self, record: Any) -> Any:
        try:
            return _copy_record(
                record, self._redactor.redact_body, self._redactor.redact_attributes
            )
        except Exception as error:  # noqa: BLE001 (a record must still go out, masked)
            _report_failure("log record", error)
            return _copy_record(record, _scrub, lambda mapping: _scrub(dict(mapping or {})))

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def _copy_record(record: Any, mask_body: Callable[[Any], Any], mask_map: Callable[..., Any]) -> Any:
    original = record.log_record
    log_record = copy.copy(original)
    log_record.body = mask_body(original.body)
    log_record.attributes = _with_dropped(original.attributes, mask_map(original.attributes))
    return dataclasses.replace(record, log_record=log_record)


def _report_failure(what: str, error: Exception) -> None:
    if _raise_internal_errors():
        raise error
    warn_rate_limited(
        f"redact-export:{what}",
        "otel-obs: masking a %s failed (%s); its string values were replaced by %s",
        what,
        type(error).__name__,
        ERROR_MARKER,
    )
