#!/usr/bin/env bash
# The helm CLI (pinned), for rendering and linting deploy/helm/meet-telephony in tests and CI.
#
#   scripts/helm.sh install   build helm (pinned) into .cache/helm/ from the Go module proxy; a no-op once built
#   scripts/helm.sh path      print the binary path (exit 1 if not built)
#
# Nothing is downloaded at run time: `install` uses only the Go module proxy (go install).
#
# Environment (all optional):
#   HELM_BUILD_CACHE   cache folder (default .cache/helm)
set -euo pipefail

HELM_VERSION="v3.22.0"
HELM_MODULE="helm.sh/helm/v3/cmd/helm"
# The Kubernetes version helm assumes without a cluster (template, lint): its Makefile derives it from
# the client-go it builds with (v0.37 for helm v3.22.0 -> 1.37); a plain `go install` would leave 1.20.
K8S_MAJOR=1
K8S_MINOR=37
LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in pkg/chartutil pkg/lint/rules; do
    LDFLAGS+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=$K8S_MAJOR -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$K8S_MINOR"
done
# What the version file records: a change of flags rebuilds.
BUILD_ID="$HELM_VERSION k8s-$K8S_MAJOR.$K8S_MINOR"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${HELM_BUILD_CACHE:-$REPO/.cache/helm}"
BIN="$CACHE/helm"
VERSION_FILE="$CACHE/helm.version"

log() { printf 'helm: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The version file is written last, so a half-finished build never counts as installed.
installed() { [[ -x "$BIN" && -f "$VERSION_FILE" && "$(cat "$VERSION_FILE")" == "$BUILD_ID" ]]; }

cmd_install() {
    if installed; then
        log "helm $HELM_VERSION already built: $BIN"
        return 0
    fi
    command -v go >/dev/null || die "go is not installed (needed once to build helm $HELM_VERSION)"
    mkdir -p "$CACHE"
    rm -f "$VERSION_FILE"
    local gobin
    # GOBIN in a temp dir inside the cache: the final mv is then a rename on the same filesystem.
    gobin="$(mktemp -d "$CACHE/gobin.XXXXXX")"
    log "building helm $HELM_VERSION (go install; about 3 min on 2 cores with cold Go caches)"
    local t0=$SECONDS
    # Only the Go module proxy is used (GOPROXY as configured); nice: the CPU is shared with other builds.
    if ! GOBIN="$gobin" nice -n 10 go install -trimpath -ldflags "$LDFLAGS" "$HELM_MODULE@$HELM_VERSION"; then
        rm -rf "$gobin"
        die "go install $HELM_MODULE@$HELM_VERSION failed"
    fi
    mv -f "$gobin/helm" "$BIN"
    rm -rf "$gobin"
    echo "$BUILD_ID" >"$VERSION_FILE"
    log "built $BIN in $((SECONDS - t0)) s: $("$BIN" version --short 2>/dev/null || echo "$HELM_VERSION")"
}

case "${1:-}" in
install) cmd_install ;;
path) installed && echo "$BIN" || { log "not built: run scripts/helm.sh install"; exit 1; } ;;
*)
    sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
