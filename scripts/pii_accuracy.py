"""Measure the masking engine on the labelled corpora and print the figures per category.

    python scripts/pii_accuracy.py [CORPUS.jsonl ...]

Without arguments it reads the field corpus (``tests/data/pii/field-corpus.jsonl``, a
verbatim copy of the labelled corpus of field cases) and the generated one (``tests/data/pii/corpus.jsonl``). Each line holds
``category``, ``text`` and ``secrets``. Three figures:

- secrets caught: keys, tokens, JWTs, passwords and other credentials;
- personal data caught: email, phone, card, IBAN, SSN;
- clean altered: lines without anything to mask that did not come back unchanged.

A labelled value is caught when no 8-character substring of it survives in the masked
text (for a value shorter than 8 characters: when the value itself does not survive). A
line counts as caught when every value it holds is caught.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The labelled corpus of masking cases from the field, kept byte for byte as it was given
# (a test compares it with the original where that is present), and our own larger one.
SHARED_CORPUS = ROOT / "tests" / "data" / "pii" / "field-corpus.jsonl"
OWN_CORPUS = ROOT / "tests" / "data" / "pii" / "corpus.jsonl"

PERSONAL = frozenset({"email", "phone", "card", "iban", "ssn"})
CLEAN = "clean"
WINDOW = 8


def kind_of(category: str) -> str:
    """``personal``, ``clean`` or ``secret`` for a corpus category."""
    if category == CLEAN:
        return "clean"
    return "personal" if category in PERSONAL else "secret"


def survives(secret: str, masked: str) -> bool:
    """Whether any part of ``secret`` long enough to matter is still in ``masked``."""
    if len(secret) < WINDOW:
        return secret in masked
    return any(secret[i : i + WINDOW] in masked for i in range(len(secret) - WINDOW + 1))


def load(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@dataclass
class Tally:
    good: int = 0
    total: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.good / self.total if self.total else 1.0


@dataclass
class Report:
    by_category: dict[str, Tally]
    by_kind: dict[str, Tally]

    def secrets_caught(self) -> float:
        return self.by_kind["secret"].rate

    def personal_caught(self) -> float:
        return self.by_kind["personal"].rate

    def clean_altered(self) -> float:
        clean = self.by_kind["clean"]
        return (clean.total - clean.good) / clean.total if clean.total else 0.0


def measure(redactor: Any, rows: Iterable[dict[str, Any]]) -> Report:
    """Mask every line; for clean lines "good" means unchanged, for others caught."""
    by_category: dict[str, Tally] = defaultdict(Tally)
    by_kind: dict[str, Tally] = defaultdict(Tally)
    for row in rows:
        text, category = row["text"], row["category"]
        masked = redactor.redact_text(text)
        if category == CLEAN:
            good = masked == text
        else:
            good = not any(survives(secret, masked) for secret in row["secrets"])
        for tally in (by_category[category], by_kind[kind_of(category)]):
            tally.total += 1
            tally.good += good
            if not good and len(tally.failures) < 20:
                tally.failures.append((text, masked))
    for kind in ("secret", "personal", "clean"):
        by_kind.setdefault(kind, Tally())
    return Report(dict(by_category), dict(by_kind))


def format_report(name: str, report: Report) -> str:
    lines = [f"{name}", f"  {'category':<22} {'figure':<22} {'value':>8}  {'lines':>6}"]
    for category in sorted(report.by_category, key=lambda c: (kind_of(c), c)):
        tally = report.by_category[category]
        kind = kind_of(category)
        if kind == "clean":
            label, value = "clean altered", 1 - tally.rate
        else:
            label = "personal data caught" if kind == "personal" else "secrets caught"
            value = tally.rate
        lines.append(f"  {category:<22} {label:<22} {value:>8.4f}  {tally.total:>6}")
    lines.append(
        f"  {'ALL':<22} secrets caught {report.secrets_caught():.4f} | "
        f"personal data caught {report.personal_caught():.4f} | "
        f"clean altered {report.clean_altered():.4f}"
    )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from otel_obs.redact import Redactor

    paths = [Path(arg) for arg in argv] or [p for p in (SHARED_CORPUS, OWN_CORPUS) if p.exists()]
    redactor = Redactor()
    for path in paths:
        report = measure(redactor, load(path))
        print(format_report(str(path), report))
        for kind, tally in sorted(report.by_kind.items()):
            for text, masked in tally.failures[:5]:
                print(f"  miss ({kind}): {text!r} -> {masked!r}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
