"""`otel-obs stack up|down|status` and the Stack API, with the real binaries."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import urllib.request

import pytest

from otel_obs.stack import COLLECTOR_DIR, Ports, Stack, StackError, collector_binary

pytestmark = pytest.mark.real


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "otel_obs.cli", "stack", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _running(pid: int) -> bool:
    """Whether ``pid`` runs; an exited process whose parent is gone may linger as a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _port_options(ports: Ports) -> list[str]:
    options = []
    for name, value in vars(ports).items():
        options += ["--" + name.replace("_", "-") + "-port", str(value)]
    return options


def test_up_status_down_from_the_command_line(otelcol, tmp_path):
    directory = str(tmp_path / "stack")
    ports = Ports.free()

    up = _cli("up", "--dir", directory, *_port_options(ports))
    try:
        status = _cli("status", "--dir", directory, "--json")
        components = {c["name"]: c for c in json.loads(status.stdout)["components"]}
        # Only loopback addresses are used.
        with urllib.request.urlopen(
            f"http://127.0.0.1:{ports.prometheus}/-/ready", timeout=5
        ) as ready:
            assert ready.status == 200
    finally:
        down = _cli("down", "--dir", directory)
    after = {
        c["name"]: c
        for c in json.loads(_cli("status", "--dir", directory, "--json").stdout)["components"]
    }

    assert up.returncode == 0, up.stderr
    assert {name: c["state"] for name, c in components.items()} == {
        "collector": "running",
        "prometheus": "running",
        "alertmanager": "running",
        "tempo": "unavailable",
        "loki": "unavailable",
    }
    assert components["collector"]["url"] == f"http://127.0.0.1:{ports.otlp_http}"
    assert components["prometheus"]["url"] == f"http://127.0.0.1:{ports.prometheus}"
    assert components["alertmanager"]["url"] == f"http://127.0.0.1:{ports.alertmanager}"
    assert "not built here" in components["tempo"]["reason"]
    assert down.returncode == 0
    assert {after[name]["state"] for name in ("collector", "prometheus", "alertmanager")} == {
        "stopped"
    }
    for name in ("collector", "prometheus", "alertmanager"):
        assert (tmp_path / "stack" / "logs" / f"{name}.log").stat().st_size > 0


def test_up_refuses_a_port_in_use_and_leaves_nothing_running(otelcol, tmp_path):
    ports = Ports.free()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports.prometheus))
        taken.listen(1)
        stack = Stack(tmp_path, ports, collector=otelcol)

        with pytest.raises(StackError) as raised:
            stack.up()

    message = str(raised.value)
    assert f"port {ports.prometheus}" in message and "--prometheus-port" in message
    assert {s.name: s.state for s in stack.status()}["collector"] == "stopped"
    assert {s.name: s.state for s in stack.status()}["alertmanager"] == "stopped"


def test_up_is_idempotent_and_down_stops_what_another_process_started(otelcol, tmp_path):
    ports = Ports.free()
    first = _cli("up", "--dir", str(tmp_path), *_port_options(ports))
    assert first.returncode == 0, first.stderr
    pids = {s.name: s.pid for s in Stack(tmp_path).status() if s.pid}

    try:
        again = Stack(tmp_path).up()  # ports come from the stack directory
    finally:
        Stack(tmp_path).down()

    assert {s.name: s.pid for s in again if s.pid} == pids
    assert [pid for pid in pids.values() if _running(pid)] == []


def test_a_minimal_alertmanager_config_is_written_when_none_is_shipped(otelcol, tmp_path):
    config_dir = tmp_path / "collector"
    shutil.copytree(COLLECTOR_DIR, config_dir, ignore=shutil.ignore_patterns("alertmanager"))
    stack = Stack(tmp_path / "stack", Ports.free(), collector=otelcol, config_dir=config_dir)

    with stack:
        states = {s.name: s.state for s in stack.status()}
    written = tmp_path / "stack" / "alertmanager" / "alertmanager.yml"
    check = subprocess.run(
        ["amtool", "check-config", str(written)], check=False, capture_output=True, text=True
    )

    assert states["alertmanager"] == "running"
    assert check.returncode == 0, check.stdout + check.stderr


def test_collector_binary_follows_the_pointer_build_sh_installs(tmp_path):
    target = tmp_path / "otelcol-obs-0123456789abcdef" / "otelcol-obs"
    target.parent.mkdir()
    target.write_text("#!/bin/sh\n")
    target.chmod(0o755)
    (tmp_path / "otelcol-obs").symlink_to(target)

    assert collector_binary(tmp_path) == target
    assert collector_binary(tmp_path / "empty") in (None, collector_binary())
