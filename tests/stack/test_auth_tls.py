"""overlays/auth-tls.yaml: the receivers want TLS and the bearer token, and nothing else."""

from __future__ import annotations

import ssl
import subprocess
import urllib.error
import urllib.request

import pytest

from otel_obs.stack import COLLECTOR_DIR, Ports, Stack

from . import otlp

pytestmark = pytest.mark.real

TOKEN = "a-long-random-ingest-token-for-tests"


@pytest.fixture
def certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _post(url: str, context: ssl.SSLContext | None, token: str | None) -> int:
    headers = {"Content-Type": "application/x-protobuf"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"{url}/v1/logs",
        data=otlp.logs_request([{"body": "hello"}]),
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return 0


def test_receivers_require_tls_and_the_bearer_token(otelcol, tmp_path, certificate):
    cert, key = certificate
    stack = Stack(
        tmp_path / "stack",
        Ports.free(),
        collector=otelcol,
        collector_configs=[COLLECTOR_DIR / "overlays" / "auth-tls.yaml"],
        env={
            "OTEL_OBS_COLLECTOR_INGEST_TOKEN": TOKEN,
            "OTEL_OBS_COLLECTOR_TLS_CERT_FILE": str(cert),
            "OTEL_OBS_COLLECTOR_TLS_KEY_FILE": str(key),
        },
    )
    trusted = ssl.create_default_context(cafile=str(cert))
    port = stack.ports.otlp_http

    stack.start("collector")
    try:
        with_token = _post(f"https://127.0.0.1:{port}", trusted, TOKEN)
        wrong_token = _post(f"https://127.0.0.1:{port}", trusted, "not-the-token")
        no_token = _post(f"https://127.0.0.1:{port}", trusted, None)
        plain_http = _post(f"http://127.0.0.1:{port}", None, TOKEN)
    finally:
        stack.down()

    assert (with_token, wrong_token, no_token) == (200, 401, 401)
    assert plain_http != 200
