"""Write the labelled masking corpus ``corpus.jsonl`` next to this file, deterministically.

    python tests/data/pii/generate.py            # rewrite corpus.jsonl
    python tests/data/pii/generate.py --check    # exit 1 if corpus.jsonl is not current

One JSON object per line: ``category``, ``text`` and ``secrets`` (the exact substrings
that must not survive masking; empty for ``clean`` lines, which must come back unchanged).
Every value is generated: card numbers pass Luhn, IBANs pass mod-97, keys have the shape
of the real ones and nothing here is a real credential or a real person.
"""

from __future__ import annotations

import base64
import json
import random
import string
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

SEED = 20261204
PER_TEMPLATE = 12
HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "corpus.jsonl"

ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
UPPER_DIGITS = string.ascii_uppercase + string.digits
FIRST = [
    "dana",
    "li",
    "fatima",
    "ivo",
    "hana",
    "omar",
    "sofia",
    "kwame",
    "mei",
    "lars",
    "ana",
    "raj",
]
LAST = ["whitfield", "wei", "haddad", "silva", "novak", "okafor", "lindqvist", "tanaka", "moreau"]
DOMAINS = [
    "example.com",
    "example.co.uk",
    "mail.example.org",
    "sub.example.com.au",
    "corp.example.net",
    "fixture-corp.example",
    "example.de",
    "example.fr",
    "eu.example.io",
    "example.com.br",
]


def rand(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


# --- values -----------------------------------------------------------------------------


def email(rng: random.Random) -> str:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = rng.choice(
        [
            f"{first}.{last}",
            f"{first}_{last}{rng.randint(1, 99)}",
            f"{first}+{rng.choice(['billing', 'ads', 'x'])}",
            f"{first}.{last}+{rng.randint(2020, 2026)}",
            f"{first[0]}_{last[:1]}'{last}",
            f"{first.upper()}.{last}",
            f"{first}-{last}",
            f"{first}{rng.randint(1, 9999)}",
        ]
    )
    return f"{local}@{rng.choice(DOMAINS)}"


def phone(rng: random.Random) -> str:
    d = lambda n: rand(rng, string.digits, n)
    return rng.choice(
        [
            f"+1 415 555 {d(4)}",
            f"+1-212-555-{d(4)}",
            f"+1 (646) 555-{d(4)}",
            f"+1415555{d(4)}",
            f"+44 20 7946 {d(4)}",
            f"+44 7700 900{d(3)}",
            f"+447700900{d(3)}",
            f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}",
            f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}",
            f"+49 30 {d(8)}",
            f"+49 151 {d(8)}",
            f"+81 3-{d(4)}-{d(4)}",
            f"+61 2 {d(4)} {d(4)}",
            f"(415) 555-{d(4)}",
            f"415-555-{d(4)}",
            f"212.555.{d(4)}",
            f"020 7946 {d(4)}",
            f"07700 900{d(3)}",
            f"06 {d(2)} {d(2)} {d(2)} {d(2)}",
            f"030 {d(8)}",
        ]
    )


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + rand(rng, string.digits, length - len(prefix) - 1)
    total = 0
    for position, char in enumerate(reversed(body)):
        value = int(char)
        if position % 2 == 0:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return body + str((10 - total % 10) % 10)


def card(rng: random.Random) -> str:
    kind = rng.choice(["visa", "mc", "mc2", "amex", "discover", "diners", "visa19"])
    if kind == "amex":
        number = luhn_complete(rng.choice(["34", "37"]), 15, rng)
        sep = rng.choice([" ", "-", ""])
        return sep.join([number[:4], number[4:10], number[10:]])
    if kind == "diners":
        number = luhn_complete("36", 14, rng)
        sep = rng.choice([" ", "-", ""])
        return sep.join([number[:4], number[4:10], number[10:]])
    prefix = {
        "visa": "4",
        "mc": "5" + str(rng.randint(1, 5)),
        "mc2": "2221",
        "discover": "6011",
        "visa19": "4",
    }[kind]
    number = luhn_complete(prefix, 19 if kind == "visa19" else 16, rng)
    sep = rng.choice([" ", "-", ""])
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4))


IBAN_LAYOUT = {
    "GB": ("NWBK", 14),
    "DE": ("", 18),
    "FR": ("", 23),
    "NL": ("ABNA", 10),
    "ES": ("", 20),
    "IT": ("X", 22),
}


def iban(rng: random.Random) -> str:
    country = rng.choice(sorted(IBAN_LAYOUT))
    bank, digits = IBAN_LAYOUT[country]
    bban = bank + rand(rng, string.digits, digits)
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(numeric) % 97
    compact = f"{country}{check:02d}{bban}"
    if rng.random() < 0.4:
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    return compact


def ssn(rng: random.Random) -> str:
    area = rng.choice([n for n in range(1, 900) if n != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(rng: random.Random) -> str:
    header = b64url(json.dumps({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"}).encode())
    claims = {"sub": f"user-{rng.randint(1, 99999)}", "iat": 1733300000 + rng.randint(0, 99999)}
    return f"{header}.{b64url(json.dumps(claims).encode())}.{rand(rng, URLSAFE, 43)}"


API_KEYS: dict[str, Callable[[random.Random], str]] = {
    "openai": lambda r: "sk-proj-" + rand(r, URLSAFE, 64),
    "openai_svcacct": lambda r: "sk-svcacct-" + rand(r, URLSAFE, 56),
    "openai_legacy": lambda r: "sk-" + rand(r, ALNUM, 48),
    "anthropic": lambda r: "sk-ant-api03-" + rand(r, URLSAFE, 93) + "AA",
    "google": lambda r: "AIza" + rand(r, URLSAFE, 35),
    "aws": lambda r: (
        r.choice(["AKIA", "ASIA"]) + rand(r, string.ascii_uppercase + string.digits, 16)
    ),
    "github": lambda r: r.choice(["ghp_", "gho_", "ghs_"]) + rand(r, ALNUM, 36),
    "github_pat": lambda r: "github_pat_" + rand(r, ALNUM, 22) + "_" + rand(r, ALNUM, 59),
    "slack": lambda r: "-".join(
        [
            f"xox{r.choice('bpa')}",
            rand(r, string.digits, 12),
            rand(r, string.digits, 12),
            rand(r, ALNUM, 24),
        ]
    ),
    "stripe": lambda r: (
        r.choice(["sk_live_", "sk_test_", "rk_live_", "pk_live_"]) + rand(r, ALNUM, 24)
    ),
}


def password(rng: random.Random) -> str:
    return rand(rng, ALNUM + "!#%*&$@^", rng.randint(8, 20))


def opaque(rng: random.Random) -> str:
    return rand(rng, URLSAFE, rng.randint(16, 40))


# --- templates: (category, template, value factory) -------------------------------------
# "{v}" is where the labelled value goes; the value is the secret.

PII = [
    ("email", "user signed up: {v}", email),
    ("email", '{{"contact": "{v}", "plan": "pro"}}', email),
    ("email", "Reply-To: <{v}>", email),
    ("email", "invite sent to {v}, expires in 7 days", email),
    ("email", "'{v}' unsubscribed from campaign 4411", email),
    ("email", "mailto:{v}?subject=Invoice", email),
    ("email", "GET /api/users?email={v}&page=1", lambda r: email(r).replace("@", "%40")),
    ("email", "bounce from {v}: mailbox full", lambda r: email(r).upper()),
    ("phone", "tel:{v} dialled", lambda r: "+1415555" + rand(r, string.digits, 4)),
    ("phone", "contact number: {v} ext 12", lambda r: "415.555." + rand(r, string.digits, 4)),
    ("ssn", "ssn={v} matched", lambda r: ssn(r).replace("-", "")),
    ("ssn", "Social Security Number: {v}", lambda r: ssn(r).replace("-", " ")),
    ("ssn", "W-9 on file with {v}", lambda r: ssn(r).replace("-", " ")),
    (
        "phone",
        "callback to phone {v} scheduled",
        lambda r: str(r.randint(2, 9)) + rand(r, string.digits, 9),
    ),
    (
        "phone",
        '{{"mobile": "{v}", "opt_in": true}}',
        lambda r: str(r.randint(2, 9)) + rand(r, string.digits, 9),
    ),
    ("phone", "sms sent to {v} for 2fa", phone),
    ("phone", "callback requested phone={v}", phone),
    ("phone", '{{"phone": "{v}", "country": "GB"}}', phone),
    ("phone", "customer called from {v} about order 77812", phone),
    ("card", "payment failed for card {v} amount=49.00 EUR", card),
    ("card", '{{"card_number": "{v}", "exp": "09/29"}}', card),
    ("card", "charge declined: pan={v} reason=insufficient_funds", card),
    ("card", "saved card {v} for customer 88213", card),
    ("iban", "payout to {v} scheduled", iban),
    ("iban", "refund iban={v}", iban),
    ("iban", '{{"iban": "{v}", "amount": 120.5}}', iban),
    ("ssn", "tax form uploaded ssn {v}", ssn),
    ("ssn", '{{"ssn": "{v}", "state": "CA"}}', ssn),
    ("ssn", "identity check for {v} passed", ssn),
]

SECRETS = [
    ("jwt", "Authorization: Bearer {v}", jwt),
    ("jwt", "session token {v} expired", jwt),
    ("jwt", '{{"id_token": "{v}"}}', jwt),
    ("jwt", "decoded {v} for user", jwt),
    ("bearer", "upstream returned 401 for header Authorization: Bearer {v}", opaque),
    ("bearer", "curl -H 'Authorization: Bearer {v}' https://api.example.com/v1", opaque),
    ("bearer", "proxy sent authorization=Bearer {v}", opaque),
    (
        "basic",
        "Authorization: Basic {v}",
        lambda r: base64.b64encode(f"{r.choice(FIRST)}:{password(r)}".encode()).decode(),
    ),
    ("password", "login attempt user=ivo password={v}", password),
    ("password", '{{"username": "hana", "password": "{v}"}}', password),
    (
        "password",
        "connecting to postgresql://app:{v}@db.internal:5432/ads",
        lambda r: rand(r, ALNUM + "!%*&", 14),
    ),
    ("password", "redis://default:{v}@cache.internal:6379/0", lambda r: rand(r, ALNUM, 20)),
    ("password", "db_password: {v}", password),
    ("password", "settings loaded {{'user': 'svc', 'passwd': '{v}'}}", password),
    ("password", "PGPASSWORD={v} psql -h db", password),
    (
        "password",
        'password="{v}" accepted',
        lambda r: " ".join(rand(r, string.ascii_lowercase, 6) for _ in range(4)),
    ),
    ("password", "export MYSQL_ROOT_PASSWORD='{v}'", password),
    ("secret", "AWS_SECRET_ACCESS_KEY={v}", lambda r: rand(r, ALNUM + "/+", 40)),
    ("secret", "Authorization: token {v}", opaque),
    ("secret", "private_key: {v}", lambda r: rand(r, ALNUM + "/+", 64)),
    (
        "secret",
        "-----BEGIN RSA PRIVATE KEY-----\n{v}\n-----END RSA PRIVATE KEY-----",
        lambda r: rand(r, ALNUM + "/+", 64),
    ),
    (
        "secret",
        "posting to https://hooks.slack.com/services/{v}",
        lambda r: "/".join(
            ["T" + rand(r, UPPER_DIGITS, 10), "B" + rand(r, UPPER_DIGITS, 10), rand(r, ALNUM, 24)]
        ),
    ),
    ("secret", "deploy --token {v} --region eu-west-1", opaque),
    ("password", "ran mysql --password {v} -h db.internal", password),
    ("password", "support chat: my password is {v} please reset", lambda r: password(r) + "7"),
    (
        "query",
        "GET /clip.mp4?X-Amz-Expires=300&X-Amz-Signature={v}",
        lambda r: rand(r, "0123456789abcdef", 64),
    ),
    ("query", "GET /share?sv=2024-01-01&sig={v}&se=2026-12-05", lambda r: rand(r, ALNUM + "%", 44)),
    ("query", "GET /v1/report?campaign=77&api_key={v}&page=2", opaque),
    ("query", "GET /oauth/callback?code=ok&access_token={v}", opaque),
    ("query", "redirect to https://app.example.com/reset?token={v}", opaque),
    ("secret", "Cookie: session={v}; theme=dark", opaque),
    ("secret", "X-Api-Key: {v}", opaque),
    ("secret", "client_secret={v} grant_type=client_credentials", opaque),
    ("secret", '{{"webhook_secret": "{v}", "retries": 3}}', opaque),
    ("secret", "set-cookie: sid=ok; refresh_token={v}; HttpOnly", opaque),
]

# Field case B19: each key (a) bare, (b) in a sentence, (c) as an env assignment,
# (d) in JSON, (e) in an exception message.
KEY_CONTEXTS = [
    "{v}",
    "the key {v} was rotated yesterday",
    "OPENAI_API_KEY={v}",
    '{{"api_key":"{v}"}}',
    "AuthenticationError: Incorrect API key provided: {v}. You can find your key online.",
    'config loaded: {{"provider_key": "{v}", "timeout": 30}}',
]


def clean_lines(rng: random.Random) -> Iterator[str]:
    """Lines a service logs that hold nothing to mask, many of them full of digits."""
    n = rng.randint

    def h(count: int) -> str:
        return rand(rng, "0123456789abcdef", count)

    def d(count: int) -> str:
        return rand(rng, string.digits, count)

    def day() -> str:
        return f"2026-{n(1, 12):02d}-{n(1, 28):02d}"

    def clock() -> str:
        return f"{n(0, 23):02d}:{n(0, 59):02d}:{n(0, 59):02d}"

    def uid() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    makers: list[Callable[[], str]] = [
        lambda: f"campaign {uid()} created in {n(5, 900)} ms",
        lambda: f"trace_id={h(32)} span_id={h(16)}",
        lambda: f"traceparent 00-{h(32)}-{h(16)}-01",
        lambda: f"sha256 {h(64)} verified",
        lambda: f"commit {h(40)} deployed",
        lambda: f'etag W/"{h(32)}" matched',
        lambda: f"{day()}T{clock()}.{d(3)}Z worker-{n(1, 9)} heartbeat ok",
        lambda: f"ts={1733000000000 + n(0, 10**9)} lag_ms={n(0, 5000)}",
        lambda: f"event at {1733000000 + n(0, 10**7)}, ns={1733000000000000000 + n(0, 10**15)}",
        lambda: f"order #{d(6)} total {n(1, 9999)}.{d(2)} USD",
        lambda: f"order ORD-2026-{d(6)} shipped, {n(1, 9)} items",
        lambda: (
            f"invoice INV-{d(8)} paid on {n(1, 28):02d}.{n(1, 12):02d}.2026 {n(0, 23):02d}:{d(2)}"
        ),
        lambda: f"deployed version {n(0, 9)}.{n(0, 30)}.{n(0, 99)} build {h(7)}.{n(1, 9)}",
        lambda: f"client 10.{n(0, 255)}.{n(0, 255)}.{n(1, 254)}:{n(1024, 65535)} connected",
        lambda: f"listening on [2001:db8::{h(4)}]:8080",
        lambda: (
            f'127.0.0.1:{n(30000, 60000)} - "GET /api/v1/campaigns/{n(1, 99999)}?page={n(1, 9)}'
            f' HTTP/1.1" {rng.choice([200, 201, 404, 500])}'
        ),
        lambda: f"request_id={h(32)} status=200 path=/api/v1/ads/{n(1, 9999)}",
        lambda: f"model gpt-4o used {n(1, 9999)} input tokens and {n(1, 999)} output tokens",
        lambda: f"gen_ai.usage.input_tokens={n(1, 99999)} max_tokens={n(256, 8192)}",
        lambda: f"retrying in {n(1, 9)}.{n(0, 9)}s (attempt {n(1, 4)} of 5)",
        lambda: f"queue video-render depth={n(0, 999)} oldest={n(0, 99)}.{n(0, 9)}s",
        lambda: f"ROAS {n(0, 9)}.{d(2)} for campaign {d(4)} on platform meta",
        lambda: f"ad set 2023-{d(4)} paused by rule low_ctr",
        lambda: f"loaded /srv/app/releases/{day().replace('-', '')}{d(6)}/settings.yaml",
        lambda: f"backup db-{1733000000000 + n(0, 10**9)}.tar.gz uploaded ({d(10)} bytes)",
        lambda: f"tracking number 1Z{rand(rng, string.ascii_uppercase + string.digits, 16)}",
        lambda: f"pod api-{h(10)}-{rand(rng, string.ascii_lowercase + string.digits, 5)} ready",
        lambda: f"SELECT * FROM orders WHERE id = {d(7)} AND created_at > '{day()}'",
        lambda: f"cpu {n(0, 100)}% mem {n(100, 4096)}MiB rss={d(9)} bytes",
        lambda: f"pip install scikit-learn sk-learn-compat task-proj-{n(1, 99)} completed",
        lambda: f"ssh deploy@web{n(1, 99):02d} uptime",
        lambda: f"token bucket refilled: {n(1, 999)} tokens available",
        lambda: f"user {n(100000, 999999)} scored {n(0, 100)} on quiz {n(1, 50)}",
        lambda: f"price changed from {n(1, 999)}.{d(2)} to {n(1, 999)}.{d(2)} EUR (+{n(1, 30)}%)",
        lambda: f"batch {n(1, 999)}/{n(1000, 9999)} done, {n(0, 10**6)} rows, {n(0, 9)}.{d(3)} s",
        lambda: f"GTIN {luhn_complete('0', 14, rng)} ean lookup ok",
        lambda: f"Content-Length: {n(1, 10**7)}",
        lambda: f"slept {n(1, 999)} ms; next run at {day()} {clock()}+00:00",
        lambda: f"basic plan selected; bearer tokens refreshed every {n(1, 60)} minutes",
        lambda: f"session started for tenant t-{n(1, 999)}",
        lambda: f"login failed for user {n(1, 9999)}: the password is incorrect",
        lambda: f"password reset requested for account {n(10**5, 10**6)}",
        lambda: f"docker login --password-stdin registry.example.com ({n(1, 9)} tries)",
        lambda: f"telemetry batch of {n(1, 999)} spans sent in {n(1, 99)} ms",
        lambda: f"cell {n(1, 99)} of {n(100, 999)} recalculated",
        lambda: f"sms queue depth={n(0, 9999)} workers={n(1, 16)}",
        lambda: f"webhook signature verified for delivery {uid()}",
        lambda: f"coordinates {rng.uniform(-90, 90):.6f},{rng.uniform(-180, 180):.6f}",
    ]
    for maker in makers:
        for _ in range(PER_TEMPLATE * 2):
            yield maker()


def build() -> list[dict[str, object]]:
    rng = random.Random(SEED)
    rows: list[dict[str, object]] = []
    for category, template, factory in PII + SECRETS:
        for _ in range(PER_TEMPLATE * 2):
            value = factory(rng)
            rows.append(
                {"category": category, "text": template.format(v=value), "secrets": [value]}
            )
    for provider, factory in API_KEYS.items():
        for context in KEY_CONTEXTS:
            for _ in range(PER_TEMPLATE):
                value = factory(rng)
                rows.append(
                    {
                        "category": f"key:{provider}",
                        "text": context.format(v=value),
                        "secrets": [value],
                    }
                )
    for text in clean_lines(rng):
        rows.append({"category": "clean", "text": text, "secrets": []})
    return rows


def render(rows: list[dict[str, object]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main(argv: list[str]) -> int:
    text = render(build())
    if "--check" in argv:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        return 0 if current == text else 1
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {text.count(chr(10))} lines to {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
