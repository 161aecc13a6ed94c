"""The public surface of ``otel_obs``: exactly these names, each importable."""

from __future__ import annotations

import importlib
import subprocess
import sys

import otel_obs

PUBLIC = {
    "__version__",
    "ai",
    "business",
    "configure",
    "instrument_celery",
    "instrument_fastapi",
    "shutdown",
}


def test_all_is_exactly_the_public_surface() -> None:
    assert set(otel_obs.__all__) == PUBLIC
    assert len(otel_obs.__all__) == len(PUBLIC)


def test_each_public_name_resolves() -> None:
    for name in otel_obs.__all__:
        assert getattr(otel_obs, name) is not None, name
    assert otel_obs.ai is importlib.import_module("otel_obs.ai")
    assert otel_obs.business is importlib.import_module("otel_obs.business")
    assert callable(otel_obs.configure) and callable(otel_obs.shutdown)


def test_star_import_gives_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from otel_obs import *", namespace)

    assert PUBLIC - {"__version__"} <= set(namespace)


def test_importing_otel_obs_stays_cheap() -> None:
    code = (
        "import sys, otel_obs\n"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'otel_obs.'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=30, check=True)

    assert result.stdout.strip() == "[]"
