#!/usr/bin/env bash
# Builds otelcol-obs from builder-config.yaml with the official Collector builder, from Go
# modules, and caches the binary by the manifest's hash outside the repository:
#
#   ${OTEL_OBS_CACHE_DIR:-$HOME/.cache/otel-obs}/otelcol-obs-<hash>/otelcol-obs
#
# A cached binary is reused, so CI and `otel-obs stack up` pay for the build once per
# manifest. The script prints the binary's path on stdout (progress goes to stderr) and
# points ${CACHE_DIR}/otelcol-obs at it, which `otel_obs.stack.collector_binary()` resolves.
#
# Environment: OTEL_OBS_CACHE_DIR (cache root), OTEL_OBS_FORCE_BUILD=1 (rebuild even if cached).
set -euo pipefail

BUILDER_VERSION="v0.161.0"
HERE="$(cd "$(dirname "$0")" && pwd)"
MANIFEST="$HERE/builder-config.yaml"
CACHE_DIR="${OTEL_OBS_CACHE_DIR:-$HOME/.cache/otel-obs}"

log() { echo "build.sh: $*" >&2; }

require_go() {
    if ! command -v go >/dev/null 2>&1; then
        log "Go is not installed; otelcol-obs is built from Go modules (Go 1.24 or newer)"
        exit 1
    fi
}

manifest_hash() {
    # The builder's version and Go's version change the binary too, so they are hashed with it.
    { cat "$MANIFEST"; echo "$BUILDER_VERSION"; go env GOVERSION GOOS GOARCH; } \
        | sha256sum | cut -c1-16
}

builder_binary() {
    local gobin
    gobin="$(go env GOPATH)/bin"
    if [ -x "$gobin/builder" ] && "$gobin/builder" version 2>&1 | grep -q "$BUILDER_VERSION"; then
        echo "$gobin/builder"
        return
    fi
    log "installing the Collector builder $BUILDER_VERSION"
    GOFLAGS=-mod=mod go install "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION" >&2
    echo "$gobin/builder"
}

build() {
    local target_dir="$1" work
    work="$(mktemp -d "${CACHE_DIR}/build.XXXXXX")"

    # The manifest's output_path is relative to the repo; the build happens in the cache.
    sed "s#^\(  output_path:\).*#\1 $work/src#" "$MANIFEST" > "$work/manifest.yaml"
    local builder started
    builder="$(builder_binary)"
    started=$(date +%s)
    log "building otelcol-obs (a few minutes on two cores)"
    GOFLAGS=-mod=mod "$builder" --config "$work/manifest.yaml" --ldflags "-s -w" >&2
    mkdir -p "$target_dir"
    mv "$work/src/otelcol-obs" "$target_dir/otelcol-obs.tmp"
    mv "$target_dir/otelcol-obs.tmp" "$target_dir/otelcol-obs"
    rm -rf "$work"
    log "built in $(( $(date +%s) - started ))s"
}

main() {
    require_go
    mkdir -p "$CACHE_DIR"
    local target_dir
    target_dir="$CACHE_DIR/otelcol-obs-$(manifest_hash)"

    if [ "${OTEL_OBS_FORCE_BUILD:-0}" = "1" ] || [ ! -x "$target_dir/otelcol-obs" ]; then
        build "$target_dir"
    else
        log "cached: $target_dir/otelcol-obs"
    fi
    ln -sfn "$target_dir/otelcol-obs" "$CACHE_DIR/otelcol-obs"
    echo "$target_dir/otelcol-obs"
}

main "$@"
