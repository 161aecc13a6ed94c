"""Each masking category: what is masked whole, what is left alone, and the marker."""

from __future__ import annotations

import re
import types

import pytest

from otel_obs.redact import Redactor, is_sensitive_key, marker


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


MASKED = [
    # (category, text, the exact value that must go)
    ("email", "user signed up: Fatima.LINDQVIST@example.com", "Fatima.LINDQVIST@example.com"),
    ("email", "GET /u?email=dana%40example.co.uk&x=1", "dana%40example.co.uk"),
    ("phone", "sms sent to +1 415 555 2186 for 2fa", "+1 415 555 2186"),
    ("phone", "sms sent to +14155552186", "+14155552186"),
    ("phone", "callback (415) 555-2186 today", "(415) 555-2186"),
    ("phone", "callback 415-555-2186 today", "415-555-2186"),
    ("phone", "ring 020 7946 0958 now", "020 7946 0958"),
    ("phone", "ring 06 12 34 56 78 now", "06 12 34 56 78"),
    ("card", "card 4111 1111 1111 1111 declined", "4111 1111 1111 1111"),
    ("card", "card 4111-1111-1111-1111 declined", "4111-1111-1111-1111"),
    ("card", "card 4111111111111111 declined", "4111111111111111"),
    ("card", "amex 3782 822463 10005 declined", "3782 822463 10005"),
    ("card", "amex 3782-822463-10005 declined", "3782-822463-10005"),
    ("iban", "payout to GB82WEST12345698765432 scheduled", "GB82WEST12345698765432"),
    ("iban", "payout to DE89 3704 0044 0532 0130 00 EUR", "DE89 3704 0044 0532 0130 00"),
    ("ssn", "tax form ssn 078-05-1120 uploaded", "078-05-1120"),
    ("ssn", "ssn=078051120 matched", "078051120"),
    (
        "jwt",
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl ok",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    ),
    ("credential", "Authorization: Bearer abcdEFGH12345678", "abcdEFGH12345678"),
    ("credential", "authorization: basic ZmFrZTpmYWtl", "ZmFrZTpmYWtl"),
    (
        "api_key",
        "key sk-proj-AbC123dEf456GhI789jKl012MnO345pQr678 used",
        "sk-proj-AbC123dEf456GhI789jKl012MnO345pQr678",
    ),
    ("api_key", "key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
    (
        "api_key",
        "key ghp_abcdefghijklmnopqrstuvwxyz0123456789 used",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    ),
    (
        "api_key",
        "key xoxb-123456789012-123456789012-abcdefABCDEF used",
        "xoxb-123456789012-123456789012-abcdefABCDEF",
    ),
    ("api_key", "key sk_live_4eC39HqLyjWDarjtT1zdp7dc used", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("api_key", "key rk_live_4eC39HqLyjWDarjtT1zdp7dc used", "rk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("password", "login user=ivo password=hunter2hunter2", "hunter2hunter2"),
    ("password", '{"username": "hana", "password": "Q%I%SA#pQyOM"}', "Q%I%SA#pQyOM"),
    ("password", "postgresql://app:s3cr3t&x@db.internal:5432/ads", "s3cr3t&x"),
    ("password", "password=39iG&C5O91V5Ogn6", "39iG&C5O91V5Ogn6"),
    ("secret", "GET /r?campaign=77&api_key=jsUNPjc01T5GOBUSZ&page=2", "jsUNPjc01T5GOBUSZ"),
    ("secret", "client_secret=abc123xyz grant_type=client_credentials", "abc123xyz"),
    ("secret", "Cookie: session=fake-session-123; theme=dark", "session=fake-session-123"),
]


@pytest.mark.parametrize(("category", "text", "value"), MASKED)
def test_value_is_replaced_by_its_category_marker(redactor, category, text, value):
    masked = redactor.redact_text(text)

    assert masked == text.replace(value, marker(category))


CLEAN = [
    "campaign 07fa22f7-0ab7-4221-aa31-f5a25c57532b created in 231 ms",
    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7",
    "2026-12-04T10:15:32.123Z worker-3 heartbeat ok",
    "order #884213 total 1249.99 USD",
    "deployed version 2.14.3 build 9f1c2e7.1",
    "client 10.0.3.17:52344 connected",
    "ts=1733312132123 lag_ms=12 ns=1733312132123456789",
    "invoice paid on 04.12.2026 10:15",
    "loaded /srv/app/releases/20261204101532/settings.yaml",
    "model gpt-4o used 1532 input tokens and 211 output tokens",
    "pip install sk-learn then task-proj-12",
    "use basic authentication with bearer tokens",
    "ssh deploy@web01 uptime",
    "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 verified",
    "invalid ssn 666-12-3456 and 000-12-3456 rejected",
    "card 4111 1111 1111 1112 fails Luhn",
]


@pytest.mark.parametrize("text", CLEAN)
def test_clean_text_comes_back_unchanged(redactor, text):
    assert redactor.redact_text(text) == text


def test_user_at_host_without_a_dot_is_not_an_email(redactor):
    # Documented rule: an address needs a dot in its domain; shell prompts stay.
    assert redactor.redact_text("deploy@web01:~$ make") == "deploy@web01:~$ make"
    assert redactor.redact_text("ops@mail.example") == marker("email")


def test_marker_never_contains_any_part_of_what_it_hides(redactor):
    secret = "sk-proj-AbC123dEf456GhI789jKl012MnO345pQr678"

    masked = redactor.redact_text(f"key={secret}")

    assert re.fullmatch(r"key=\[REDACTED:[a-z_]+\]", masked)


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("password", True),
        ("PASSWD", True),
        ("pwd", True),
        ("db_password", True),
        ("secret", True),
        ("client_secret", True),
        ("token", True),
        ("access_token", True),
        ("accessToken", True),
        ("Authorization", True),
        ("http.request.header.authorization", True),
        ("cookie", True),
        ("Set-Cookie", True),
        ("api_key", True),
        ("apikey", True),
        ("api-key", True),
        ("X-Api-Key", True),
        ("private_key", True),
        ("session", True),
        ("session_id", True),
        ("gen_ai.usage.input_tokens", False),
        ("max_tokens", False),
        ("token_count", False),
        ("request_id", False),
        ("author", False),
        ("message.key", False),
        ("http.route", False),
    ],
)
def test_sensitive_key_names(key, sensitive):
    assert is_sensitive_key(key) is sensitive


def test_attributes_under_sensitive_keys_are_masked_whole(redactor):
    masked = redactor.redact_attributes(
        {
            "http.request.header.authorization": ("Bearer abc.def.ghi",),
            "Cookie": "session=fake-session-123",
            "db.password": "plain words",
            "pin.secret": 1234,
            "has_password": True,
            "gen_ai.usage.input_tokens": 42,
            "user.contact": ["a.b@example.com", "nothing here"],
            "note": "call +44 20 7946 0958",
        }
    )

    assert masked == {
        "http.request.header.authorization": ("Bearer [REDACTED:credential]",),
        "Cookie": "[REDACTED:secret]",
        "db.password": "[REDACTED:password]",
        "pin.secret": "[REDACTED:secret]",
        "has_password": True,
        "gen_ai.usage.input_tokens": 42,
        "user.contact": ["[REDACTED:email]", "nothing here"],
        "note": "call [REDACTED:phone]",
    }


def test_redact_value_nested_mapping_is_key_aware(redactor):
    masked = redactor.redact_value("body", {"user": {"password": "x1", "email": "a@b.example"}})

    assert masked == {"user": {"password": "[REDACTED:password]", "email": "[REDACTED:email]"}}


def test_disabled_redactor_changes_nothing():
    settings = types.SimpleNamespace(redact=False, redact_rules_file=None)
    redactor = Redactor.from_settings(settings)
    text = "password=hunter22 a@b.example"

    assert redactor.enabled is False
    assert redactor.redact_text(text) == text
    assert redactor.redact_attributes({"password": "x"}) == {"password": "x"}


def test_from_settings_defaults_to_enabled_builtin_rules():
    redactor = Redactor.from_settings(types.SimpleNamespace(redact=True, redact_rules_file=None))

    assert redactor.enabled is True
    assert redactor.redact_text("mail a@b.example") == "mail [REDACTED:email]"


PROVIDER_KEYS = [
    "sk-AbC123dEf456GhI789jKl012MnO345pQr678sTu901vWx2",
    "sk-proj-AbC123dEf456GhI789jKl012MnO345pQr678",
    "sk-svcacct-AbC123dEf456GhI789jKl012MnO345pQr678",
    "sk-ant-api03-abcDEF0123456789abcDEF0123456789-xyz",
    "AIzaSyA1234567890abcdefghijklmnopqrstu",
    "AKIAIOSFODNN7EXAMPLE",
    "ASIAIOSFODNN7EXAMPLE",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "gho_abcdefghijklmnopqrstuvwxyz0123456789",
    "ghs_abcdefghijklmnopqrstuvwxyz0123456789",
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGH",
    "xoxb-123456789012-123456789012-abcdefABCDEF",
    "xoxp-123456789012-123456789012-abcdefABCDEF",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
    "rk_live_4eC39HqLyjWDarjtT1zdp7dc",
]


@pytest.mark.parametrize("key", PROVIDER_KEYS)
@pytest.mark.parametrize("template", ["{}", "using {} now", "({})"])
def test_provider_key_masked_whole_bare_and_in_text(redactor, key, template):
    assert redactor.redact_text(template.format(key)) == template.format(marker("api_key"))


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("call 212.555.1234 now", "call [REDACTED:phone] now"),
        ("call 06.12.34.56.78 now", "call [REDACTED:phone] now"),
        ("call +44.20.7946.0958 now", "call [REDACTED:phone] now"),
        ("iban NL91 ABNA 0417 1643 00 ok", "iban [REDACTED:iban] ok"),
        (
            "from 10.0.46.142:43910 and 192.168.100.200",
            "from 10.0.46.142:43910 and 192.168.100.200",
        ),
    ],
)
def test_dotted_layouts_and_addresses(redactor, text, masked):
    # The cheap pre-check that skips most lines must let every masked layout through.
    assert redactor.redact_text(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("mysql --password Xy7!pq -h db", "mysql --password [REDACTED:password] -h db"),
        (
            "deploy --api-key abc123XYZ --region eu",
            "deploy --api-key [REDACTED:secret] --region eu",
        ),
        ("my password is Summer2024! ok", "my password is [REDACTED:password] ok"),
        (
            "GET /a.mp4?X-Amz-Signature=0bpp123&X-Amz-Expires=300",
            "GET /a.mp4?X-Amz-Signature=[REDACTED:secret]&X-Amz-Expires=300",
        ),
        (
            "GET /share?sv=1&sig=ZmBBkTY%2Fx&se=2026",
            "GET /share?sv=1&sig=[REDACTED:secret]&se=2026",
        ),
        (
            "post to https://hooks.slack.com/services/T0AB/B0CD/xyzXYZ123",
            "post to https://hooks.slack.com/services/[REDACTED:secret]",
        ),
        (
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY----- [REDACTED:secret] -----END PRIVATE KEY-----",
        ),
        ("key pk_live_4eC39HqLyjWDarjtT1zdp7dc", "key [REDACTED:api_key]"),
        ("callback to phone 4155552186 now", "callback to phone [REDACTED:phone] now"),
        ('{"mobile": "07700 900123"}', '{"mobile": "[REDACTED:phone]"}'),
        ("W-9 on file with 078 05 1120", "W-9 on file with [REDACTED:ssn]"),
        ('{"ssn": "078 05 1120"}', '{"ssn": "[REDACTED:ssn]"}'),
    ],
)
def test_secrets_in_other_shapes(redactor, text, masked):
    assert redactor.redact_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "login failed: the password is incorrect",
        "password reset requested for account 884213",
        "docker login --password-stdin registry.example.com",
        "telemetry batch of 512 spans sent in 12 ms",
        "cell 12 of 400 recalculated",
        "webhook signature verified",
        "a bare id 5374749896 without a phone label stays",
    ],
)
def test_prose_near_sensitive_words_is_left_alone(redactor, text):
    assert redactor.redact_text(text) == text
