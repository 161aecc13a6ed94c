"""Extra patterns, key names and an allow-list from a YAML or JSON rules file."""

from __future__ import annotations

import json
import logging
import types

import pytest

from otel_obs import _diag
from otel_obs.redact import Redactor, RulesFileError, load_rules

YAML_RULES = """
patterns:
  - category: employee_id
    regex: 'EMP-\\d{6}'
sensitive_keys: [x-internal-signature]
allow:
  - 'noreply@example\\.com'
"""


def _settings(path):
    return types.SimpleNamespace(redact=True, redact_rules_file=str(path))


def test_yaml_rules_add_patterns_keys_and_allow_list(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(YAML_RULES)
    redactor = Redactor.from_settings(_settings(path))

    assert redactor.redact_text("badge EMP-123456 from a@b.example and noreply@example.com") == (
        "badge [REDACTED:employee_id] from [REDACTED:email] and noreply@example.com"
    )
    assert redactor.redact_attributes({"X-Internal-Signature": "abc"}) == {
        "X-Internal-Signature": "[REDACTED:secret]"
    }


def test_json_rules_file(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"patterns": [{"category": "ticket", "regex": "TCK-[0-9]+"}]}))

    assert (
        Redactor.from_settings(_settings(path)).redact_text("see TCK-42") == "see [REDACTED:ticket]"
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("patterns: [{category: Bad Name, regex: x}]", "category"),
        ("patterns: [{category: ok, regex: '('}]", "invalid regex"),
        ("colours: [red]", "unknown section"),
        ("- just a list", "expected a mapping"),
    ],
)
def test_invalid_rules_are_named(tmp_path, content, problem):
    path = tmp_path / "rules.yaml"
    path.write_text(content)

    with pytest.raises(RulesFileError, match=problem):
        load_rules(str(path))


def test_bad_rules_file_keeps_builtin_masking_on(tmp_path, caplog):
    _diag.reset_for_tests()
    path = tmp_path / "rules.yaml"
    path.write_text("patterns: [{category: ok, regex: '('}]")

    with caplog.at_level(logging.WARNING, logger="otel_obs"):
        redactor = Redactor.from_settings(_settings(path))

    assert redactor.enabled
    assert redactor.redact_text("mail a@b.example") == "mail [REDACTED:email]"
    assert "masking rules file not used" in caplog.text


def test_missing_rules_file_is_reported(tmp_path):
    with pytest.raises(RulesFileError, match="cannot be read"):
        load_rules(str(tmp_path / "absent.yaml"))


def test_settings_from_the_environment_switch_masking_and_name_the_rules_file(tmp_path):
    from otel_obs.config import load_settings

    path = tmp_path / "rules.yaml"
    path.write_text(YAML_RULES)
    off, _ = load_settings({}, {"OTEL_OBS_REDACT": "false"})
    on, _ = load_settings({}, {"OTEL_OBS_REDACT_RULES_FILE": str(path)})

    assert Redactor.from_settings(off).enabled is False
    assert Redactor.from_settings(on).redact_text("badge EMP-123456") == "badge [REDACTED:employee_id]"
