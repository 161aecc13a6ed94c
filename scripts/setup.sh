#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh Debian machine, and does nothing
# that is already done: system packages, the virtualenv, and the otelcol-obs build.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
APT_PACKAGES=(prometheus prometheus-alertmanager redis-server wrk)

install_system_packages() {
    local missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0

    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The packages start their services on install; our stack runs its own copies on other ports.
    for svc in prometheus prometheus-alertmanager prometheus-node-exporter redis-server; do
        $sudo systemctl disable --now "$svc" >/dev/null 2>&1 || $sudo service "$svc" stop >/dev/null 2>&1 || true
    done
}

install_python_env() {
    local stamp="$VENV/.otel-obs-installed"
    if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
        return 0
    fi
    echo "setup: creating $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -e ".[dev]"
    touch "$stamp"
}

build_collector() {
    [ -x collector/build.sh ] || return 0
    collector/build.sh
}

install_system_packages
install_python_env
build_collector
echo "setup: ready"
