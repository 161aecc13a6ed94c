"""A forked child must not write to the HTTP connections it inherited from its parent."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

CHILDREN = 3

# Parent and children all export metrics on a short interval; before the fix, a child reused
# the parent's keep-alive connection and the two requests interleaved on the wire.
SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import otel_obs
    from opentelemetry import metrics

    otel_obs.configure()
    counter = metrics.get_meter("fork-test").create_counter("fork.test.ticks")
    counter.add(1)
    time.sleep(0.4)  # at least one export, so the parent holds an open connection
    children = []
    for _ in range(int(sys.argv[1])):
        pid = os.fork()
        if pid == 0:
            for _ in range(10):
                counter.add(1)
                time.sleep(0.05)
            otel_obs.shutdown()
            os._exit(0)
        children.append(pid)
    for _ in range(10):
        counter.add(1)
        time.sleep(0.05)
    for pid in children:
        os.waitpid(pid, 0)
    otel_obs.shutdown()
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_children_export_on_connections_of_their_own(otlp_receiver, tmp_path):
    import subprocess

    script = tmp_path / "forking.py"
    script.write_text(SCRIPT)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
        "OTEL_SERVICE_NAME": "forking",
        "OTEL_METRIC_EXPORT_INTERVAL": "100",
        "OTEL_OBS_SYSTEM_METRICS": "false",
        "OTEL_OBS_LOG_STDOUT": "false",
    }
    done = subprocess.run(
        [sys.executable, str(script), str(CHILDREN)],
        env=env, timeout=60, capture_output=True, text=True, check=False,
    )

    assert done.returncode == 0, done.stderr
    assert otlp_receiver.rejected == 0
    instances = {p.resource["service.instance.id"] for p in otlp_receiver.points("fork.test.ticks")}
    assert len(instances) == CHILDREN + 1
    assert "Failed to export" not in done.stderr
