"""Accuracy floors on the shared labelled corpus and on the generated one."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from otel_obs.redact import Redactor

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("pii_accuracy", ROOT / "scripts" / "pii_accuracy.py")
pii_accuracy = importlib.util.module_from_spec(_spec)
sys.modules["pii_accuracy"] = pii_accuracy  # dataclasses look their module up there
_spec.loader.exec_module(pii_accuracy)

CORPORA = {
    "shared": pii_accuracy.SHARED_CORPUS,
    "generated": pii_accuracy.OWN_CORPUS,
}


@pytest.fixture(scope="module", params=sorted(CORPORA))
def report(request):
    path = CORPORA[request.param]
    if not path.exists():
        pytest.skip(f"{path} is not present in this checkout")
    return pii_accuracy.measure(Redactor(), pii_accuracy.load(path))


def test_secrets_caught_at_least_99_percent(report):
    assert report.secrets_caught() >= 0.99, report.by_kind["secret"].failures


def test_personal_data_caught_at_least_97_percent(report):
    assert report.personal_caught() >= 0.97, report.by_kind["personal"].failures


def test_clean_lines_altered_at_most_1_percent(report):
    assert report.clean_altered() <= 0.01, report.by_kind["clean"].failures


def test_every_kind_is_present(report):
    assert all(report.by_kind[kind].total >= 200 for kind in ("secret", "personal", "clean"))


def test_caught_means_no_8_character_piece_survives():
    secret = "abcdefghij"

    assert pii_accuracy.survives(secret, "xx cdefghij yy")
    assert not pii_accuracy.survives(secret, "xx abcdefg hij yy")
    assert pii_accuracy.survives("short", "a short b")


def test_generated_corpus_is_current():
    generator = ROOT / "tests" / "data" / "pii" / "generate.py"

    result = subprocess.run(
        [sys.executable, str(generator), "--check"], capture_output=True, check=False
    )

    assert result.returncode == 0, "run tests/data/pii/generate.py to rewrite corpus.jsonl"


def test_the_field_corpus_is_kept_as_it_was_given():
    original = ROOT.parent / "shared" / "cases" / "pii" / "corpus.jsonl"
    if not original.exists():
        pytest.skip(f"the original corpus {original} is not beside this checkout")

    assert pii_accuracy.SHARED_CORPUS.read_bytes() == original.read_bytes()
