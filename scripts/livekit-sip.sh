#!/usr/bin/env bash
# LiveKit SIP (the SIP <-> room bridge) on 127.0.0.1, attached to a running real livekit-server.
#
#   scripts/livekit-sip.sh install   apt-install the cgo deps, build livekit-sip (pinned) into .cache/livekit/
#   scripts/livekit-sip.sh start     generate the config, start livekit-sip on loopback, wait until it listens
#   scripts/livekit-sip.sh stop      stop it (process group), remove the env file
#   scripts/livekit-sip.sh status    print the env file if livekit-sip runs (exit 1 if not)
#   scripts/livekit-sip.sh path      print the binary path (exit 1 if not built)
#
# `start` needs the livekit-server it attaches to: LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET and
# LIVEKIT_SIP_REDIS_ADDR in the environment, or else they are read from scripts/livekit-real.sh's env
# file ($LIVEKIT_REAL_DIR/livekit.env, default .cache/livekit/run/livekit.env).
#
# Environment (all optional):
#   LIVEKIT_SIP_DIR          run directory (config, log, env file); default .cache/livekit/sip-run
#   LIVEKIT_SIP_PORT         SIP port (UDP and TCP, 127.0.0.1); default: a free port
#   LIVEKIT_SIP_RTP_PORTS    RTP port range "start-end" (127.0.0.1); default: 10 free consecutive ports
#   LIVEKIT_SIP_LOG_LEVEL    debug|info|warn (default debug: the call flow is in the log)
#   LIVEKIT_SIP_WATCH_PID    if set, a watchdog stops livekit-sip once that process is gone
#   LIVEKIT_SIP_START_TIMEOUT seconds to wait for the SIP port (default 30)
#   LIVEKIT_SIP_CACHE        folder of the binary (default $LIVEKIT_REAL_CACHE, else .cache/livekit)
set -euo pipefail

SIP_VERSION="v1.11.0"
SIP_MODULE="github.com/livekit/sip/cmd/livekit-sip"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$REPO/scripts/$(basename "${BASH_SOURCE[0]}")"
CACHE="${LIVEKIT_SIP_CACHE:-${LIVEKIT_REAL_CACHE:-$REPO/.cache/livekit}}"
BIN="$CACHE/livekit-sip"
VERSION_FILE="$CACHE/livekit-sip.version"
RUN_DIR="${LIVEKIT_SIP_DIR:-$CACHE/sip-run}"
ENV_FILE="$RUN_DIR/livekit-sip.env"
APT_DEPS=(libopus-dev libopusfile-dev libsoxr-dev pkg-config)

log() { printf 'livekit-sip: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

source "$REPO/scripts/lib/processes.sh"

installed() { [[ -x "$BIN" && -f "$VERSION_FILE" && "$(cat "$VERSION_FILE")" == "$SIP_VERSION" ]]; }

apt_deps() {
    local missing=() p
    for p in "${APT_DEPS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    [[ $(id -u) -eq 0 ]] || die "missing ${missing[*]}; installing them needs root (apt-get install -y ${missing[*]})"
    log "installing ${missing[*]} (Debian packages, for cgo: opus, soxr)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

cmd_install() {
    if installed; then
        log "livekit-sip $SIP_VERSION already built: $BIN"
        return 0
    fi
    command -v go >/dev/null || die "go is not installed (needed once to build livekit-sip $SIP_VERSION)"
    apt_deps
    mkdir -p "$CACHE"
    local gobin out rc=0
    gobin="$(mktemp -d "$CACHE/gobin-sip.XXXXXX")"
    out="$gobin/build.log"
    log "building livekit-sip $SIP_VERSION (go install, cgo)"
    local t0=$SECONDS
    # Only the Go module proxy is used (GOPROXY as configured).
    CGO_ENABLED=1 GOBIN="$gobin" nice -n 10 go install "$SIP_MODULE@$SIP_VERSION" >"$out" 2>&1 || rc=$?
    if [[ $rc -ne 0 ]]; then
        cat "$out" >&2
        rm -rf "$gobin"
        # Measured here (2026-11): the module proxy answers 403 "This module version is not available"
        # for github.com/livekit/sip (and its dependencies github.com/livekit/media-sdk,
        # github.com/livekit/server-sdk-go/v2), so the build cannot be done on this machine.
        die "go install $SIP_MODULE@$SIP_VERSION failed ($rc) after $((SECONDS - t0)) s"
    fi
    mv -f "$gobin/livekit-sip" "$BIN"
    rm -rf "$gobin"
    echo "$SIP_VERSION" >"$VERSION_FILE"
    log "built $BIN ($SIP_VERSION) in $((SECONDS - t0)) s"
}

# --- ports ------------------------------------------------------------------------------------------
free_sip_port() { # a port free for both UDP and TCP (livekit-sip listens on both)
    local port i
    for ((i = 0; i < 200; i++)); do
        port=$((20000 + RANDOM % 12000))
        port_busy udp "$port" || port_busy tcp "$port" || { echo "$port"; return 0; }
    done
    die "no free SIP port found"
}
free_udp_range() { # count -> "start-end" of free UDP ports
    local n=$1 start p i ok
    for ((i = 0; i < 200; i++)); do
        start=$((33000 + RANDOM % 20000))
        ok=1
        for ((p = start; p < start + n; p++)); do port_busy udp "$p" && { ok=0; break; }; done
        [[ $ok -eq 1 ]] && { echo "$start-$((start + n - 1))"; return 0; }
    done
    die "no free UDP range of $n ports found"
}

# --- processes --------------------------------------------------------------------------------------
cmd_stop() {
    if [[ ! -f $ENV_FILE ]]; then
        log "not running (no $ENV_FILE)"
        return 0
    fi
    local watchdog pid
    watchdog="$(env_get "$ENV_FILE" LIVEKIT_SIP_WATCHDOG_PID)"
    pid="$(env_get "$ENV_FILE" LIVEKIT_SIP_PID)"
    [[ -n $watchdog ]] && stop_process "$watchdog" "livekit-sip-watchdog" "watchdog" group
    [[ -n $pid ]] && stop_process "$pid" "$BIN" "livekit-sip" group
    rm -f "$ENV_FILE"
}

cmd_start() {
    installed || die "livekit-sip $SIP_VERSION not built: run scripts/livekit-sip.sh install"
    mkdir -p "$RUN_DIR"
    if [[ -f $ENV_FILE ]]; then
        alive "$(env_get "$ENV_FILE" LIVEKIT_SIP_PID)" "$BIN" && die "already running (see $ENV_FILE); run stop first"
        cmd_stop
    fi

    local real_env="${LIVEKIT_REAL_DIR:-$CACHE/run}/livekit.env"
    local url="${LIVEKIT_URL:-$(env_get "$real_env" LIVEKIT_URL)}"
    local key="${LIVEKIT_API_KEY:-$(env_get "$real_env" LIVEKIT_API_KEY)}"
    local secret="${LIVEKIT_API_SECRET:-$(env_get "$real_env" LIVEKIT_API_SECRET)}"
    local redis="${LIVEKIT_SIP_REDIS_ADDR:-$(env_get "$real_env" LIVEKIT_REAL_REDIS_ADDR)}"
    [[ -n $url && -n $key && -n $secret ]] || die "no livekit-server: set LIVEKIT_URL/LIVEKIT_API_KEY/LIVEKIT_API_SECRET or start scripts/livekit-real.sh"
    [[ -n $redis ]] || die "livekit-sip needs the livekit-server's Redis: set LIVEKIT_SIP_REDIS_ADDR"
    local ws_url="${url/#http:/ws:}"
    ws_url="${ws_url/#https:/wss:}"

    local sip_port="${LIVEKIT_SIP_PORT:-$(free_sip_port)}"
    local rtp="${LIVEKIT_SIP_RTP_PORTS:-$(free_udp_range 10)}"
    local cfg="$RUN_DIR/livekit-sip.yaml" sip_log="$RUN_DIR/livekit-sip.log"
    {
        echo "# generated by scripts/livekit-sip.sh — loopback only"
        echo "api_key: $key"
        echo "api_secret: $secret"
        echo "ws_url: $ws_url"
        echo "redis:"
        echo "  address: $redis"
        echo "sip_port: $sip_port"           # announced (Contact/Via) ...
        echo "sip_port_listen: $sip_port"    # ... and bound, UDP + TCP
        echo "listen_ip: 127.0.0.1"          # SIP and RTP sockets bind here, not 0.0.0.0
        echo "rtp_port: $rtp"
        echo "use_external_ip: false"        # no STUN lookup
        echo "nat_1_to_1_ip: 127.0.0.1"      # the address put in Contact and the SDP answer
        echo "media_nat_1_to_1_ip: 127.0.0.1"
        echo "sip_hostname: 127.0.0.1"
        echo "health_port: 0"                # its HTTP servers would bind all interfaces: keep them off
        echo "prometheus_port: 0"
        echo "pprof_port: 0"
        echo "media_timeout_initial: 10s"
        echo "media_timeout: 10s"
        echo "logging:"
        echo "  level: ${LIVEKIT_SIP_LOG_LEVEL:-debug}"
        echo "  json: false"
    } >"$cfg"
    chmod 600 "$cfg"

    local t0
    t0=$(date +%s.%N)
    setsid "$BIN" --config "$cfg" >"$sip_log" 2>&1 </dev/null &
    local pid=$!
    {
        echo "LIVEKIT_SIP_ADDR=127.0.0.1:$sip_port"
        echo "LIVEKIT_SIP_PORT=$sip_port"
        echo "LIVEKIT_SIP_RTP_PORTS=$rtp"
        echo "LIVEKIT_SIP_PID=$pid"
        echo "LIVEKIT_SIP_CONFIG=$cfg"
        echo "LIVEKIT_SIP_LOG=$sip_log"
        echo "LIVEKIT_SIP_VERSION=$SIP_VERSION"
    } >"$ENV_FILE"
    chmod 600 "$ENV_FILE"

    local timeout="${LIVEKIT_SIP_START_TIMEOUT:-30}" start=$SECONDS ready=0
    while ((SECONDS - start < timeout)); do
        alive "$pid" "$BIN" || break
        if port_busy udp "$sip_port"; then ready=1; break; fi
        sleep 0.1
    done
    if [[ $ready -ne 1 ]]; then
        tail -n 40 "$sip_log" >&2 || true
        cmd_stop
        die "livekit-sip did not listen on 127.0.0.1:$sip_port/udp within ${timeout}s (log: $sip_log)"
    fi
    local ready_s
    ready_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    echo "LIVEKIT_SIP_STARTUP_SECONDS=$ready_s" >>"$ENV_FILE"

    if [[ -n ${LIVEKIT_SIP_WATCH_PID:-} ]]; then
        setsid bash -c 'exec -a livekit-sip-watchdog bash -c "$0"' \
            "while kill -0 $LIVEKIT_SIP_WATCH_PID 2>/dev/null; do sleep 1; done; LIVEKIT_SIP_DIR='$RUN_DIR' LIVEKIT_SIP_CACHE='$CACHE' LIVEKIT_SIP_WATCHDOG_EXITING=1 '$SELF' stop" \
            >"$RUN_DIR/watchdog.log" 2>&1 </dev/null &
        echo "LIVEKIT_SIP_WATCHDOG_PID=$!" >>"$ENV_FILE"
    fi
    log "livekit-sip $SIP_VERSION listening on 127.0.0.1:$sip_port (rtp $rtp) in ${ready_s}s; env: $ENV_FILE"
    cat "$ENV_FILE"
}

cmd_status() {
    if [[ -f $ENV_FILE ]] && alive "$(env_get "$ENV_FILE" LIVEKIT_SIP_PID)" "$BIN"; then
        cat "$ENV_FILE"
    else
        log "not running"
        return 1
    fi
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop)
    if [[ ${LIVEKIT_SIP_WATCHDOG_EXITING:-0} == 1 ]]; then
        sed -i '/^LIVEKIT_SIP_WATCHDOG_PID=/d' "$ENV_FILE" 2>/dev/null || true
    fi
    cmd_stop
    ;;
status) cmd_status ;;
path) installed && echo "$BIN" || { log "not built: run scripts/livekit-sip.sh install"; exit 1; } ;;
*)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
