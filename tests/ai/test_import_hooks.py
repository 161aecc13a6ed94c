"""instrument() patches a client when the application imports it, and imports none itself."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from types import SimpleNamespace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    import otel_obs.ai as ai

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = SimpleNamespace(
        ai_instrumentation=True, prices_file=None, capture_message_content=False
    )
    ai.instrument(settings, provider, None)
    loaded = sorted(m for m in ("openai", "anthropic", "google.genai") if m in sys.modules)

    import openai  # imported after instrument(), as an application would

    client = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="k", max_retries=0)
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    spans = [s.name for s in exporter.get_finished_spans()]
    print(json.dumps({"loaded_by_instrument": loaded, "spans": spans}))
    """
)


def test_client_imported_after_instrument_is_patched_and_nothing_is_imported_early(
    llm_server,
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, llm_server.url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"loaded_by_instrument": [], "spans": ["chat gpt-4o"]}
