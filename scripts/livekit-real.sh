#!/usr/bin/env bash
# A real LiveKit server (plus the Redis it needs for SIP dispatch rules and trunks) on 127.0.0.1, for tests.
#
#   scripts/livekit-real.sh install   build livekit-server (pinned) into .cache/livekit/, apt-install redis-server if missing
#   scripts/livekit-real.sh start     start redis-server + livekit-server on loopback, wait until ready, write the env file
#   scripts/livekit-real.sh stop      stop both (and the watchdog), remove the env file
#   scripts/livekit-real.sh status    print the env file if the servers are running (exit 1 if not)
#   scripts/livekit-real.sh path      print the binary path (exit 1 if not installed)
#
# Nothing is downloaded at run time: `install` uses only the Go module proxy (go install) and Debian packages.
#
# Environment (all optional):
#   LIVEKIT_REAL_DIR            run directory (config, logs, env file); default .cache/livekit/run
#   LIVEKIT_REAL_PORT           HTTP/WebSocket port of livekit-server; default: a free port
#   LIVEKIT_REAL_RTC_UDP_PORT   the single UDP (ICE mux) port; default: a free port
#   LIVEKIT_REAL_REDIS_PORT     redis port; default: a free port
#   LIVEKIT_REAL_NO_REDIS=1     start livekit-server without Redis (SIP API then answers an error)
#   LIVEKIT_REAL_API_KEY / LIVEKIT_REAL_API_SECRET   default: generated ([A-Za-z0-9] only)
#   LIVEKIT_REAL_WEBHOOK_URLS   comma-separated webhook URLs; default none
#   LIVEKIT_REAL_EMPTY_TIMEOUT  room.empty_timeout seconds (default 5)
#   LIVEKIT_REAL_DEPARTURE_TIMEOUT room.departure_timeout seconds (default 2)
#   LIVEKIT_REAL_LOG_LEVEL      debug|info|warn (default info)
#   LIVEKIT_REAL_WATCH_PID      if set, a watchdog stops both servers once that process is gone
#   LIVEKIT_REAL_START_TIMEOUT  seconds to wait for readiness (default 60)
#   LIVEKIT_REAL_CACHE          cache folder (default .cache/livekit)
set -euo pipefail

LIVEKIT_VERSION="v1.13.5"
LIVEKIT_MODULE="github.com/livekit/livekit-server/cmd/server"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$REPO/scripts/$(basename "${BASH_SOURCE[0]}")"
CACHE="${LIVEKIT_REAL_CACHE:-$REPO/.cache/livekit}"
BIN="$CACHE/livekit-server"
VERSION_FILE="$CACHE/livekit-server.version"
RUN_DIR="${LIVEKIT_REAL_DIR:-$CACHE/run}"
ENV_FILE="$RUN_DIR/livekit.env"

log() { printf 'livekit-real: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

source "$REPO/scripts/lib/processes.sh"

installed() { [[ -x "$BIN" && -f "$VERSION_FILE" && "$(cat "$VERSION_FILE")" == "$LIVEKIT_VERSION" ]]; }

cmd_install() {
    if installed; then
        log "livekit-server $LIVEKIT_VERSION already built: $BIN"
    else
        command -v go >/dev/null || die "go is not installed (needed once to build livekit-server $LIVEKIT_VERSION)"
        mkdir -p "$CACHE"
        local gobin
        gobin="$(mktemp -d "$CACHE/gobin.XXXXXX")"
        log "building livekit-server $LIVEKIT_VERSION (go install; ~2 min on 2 cores with a cold Go cache)"
        local t0=$SECONDS
        # Only the Go module proxy is used (GOPROXY as configured).
        if ! GOBIN="$gobin" nice -n 10 go install "$LIVEKIT_MODULE@$LIVEKIT_VERSION"; then
            rm -rf "$gobin"
            die "go install $LIVEKIT_MODULE@$LIVEKIT_VERSION failed"
        fi
        mv -f "$gobin/server" "$BIN"
        rm -rf "$gobin"
        echo "$LIVEKIT_VERSION" >"$VERSION_FILE"
        log "built $BIN in $((SECONDS - t0)) s: $("$BIN" --version)"
    fi

    if command -v redis-server >/dev/null; then
        log "redis-server present: $(command -v redis-server)"
    else
        [[ $(id -u) -eq 0 ]] || die "redis-server is missing and installing it needs root (apt-get install -y redis-server)"
        log "installing redis-server (Debian package)"
        # Keep the package's init script from starting a system-wide redis on :6379 (a stray process).
        local policy=/usr/sbin/policy-rc.d own_policy=0
        if [[ ! -e $policy ]]; then
            printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
        fi
        local rc=0
        { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null; } || rc=$?
        [[ $own_policy -eq 1 ]] && rm -f "$policy"
        [[ $rc -eq 0 ]] || die "apt-get install redis-server failed ($rc)"
        log "installed $(redis-server --version)"
    fi
}

# --- ports ------------------------------------------------------------------------------------------
TAKEN=" "
free_port() { # proto -> a port in 20000-32000 that nothing listens on (and that we did not hand out already)
    local proto=$1 port i
    for ((i = 0; i < 200; i++)); do
        port=$((20000 + RANDOM % 12000))
        [[ $TAKEN == *" $port "* ]] && continue
        port_busy "$proto" "$port" && continue
        TAKEN+="$port "
        echo "$port"
        return 0
    done
    die "no free $proto port found"
}

# --- processes --------------------------------------------------------------------------------------
cmd_stop() {
    if [[ ! -f $ENV_FILE ]]; then
        log "not running (no $ENV_FILE)"
        return 0
    fi
    local watchdog lk redis
    watchdog="$(env_get "$ENV_FILE" LIVEKIT_REAL_WATCHDOG_PID)"
    lk="$(env_get "$ENV_FILE" LIVEKIT_REAL_PID)"
    redis="$(env_get "$ENV_FILE" LIVEKIT_REAL_REDIS_PID)"
    # The watchdog first, so it does not race us (it would call stop too).
    [[ -n $watchdog ]] && stop_process "$watchdog" "livekit-real-watchdog" "watchdog"
    [[ -n $lk ]] && stop_process "$lk" "$BIN" "livekit-server"
    [[ -n $redis ]] && stop_process "$redis" "redis-server" "redis-server"
    rm -f "$ENV_FILE"
}

wait_http() { # url pid seconds
    local url=$1 pid=$2 timeout=$3 t0=$SECONDS
    while ((SECONDS - t0 < timeout)); do
        alive "$pid" || return 1
        if curl -fsS --max-time 1 --noproxy '*' "$url" >/dev/null 2>&1; then return 0; fi
        sleep 0.05
    done
    return 1
}

wait_redis() { # port pid
    local port=$1 pid=$2 i reply
    for ((i = 0; i < 200; i++)); do
        alive "$pid" || return 1
        if reply="$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" && [[ $reply == PONG ]]; then return 0; fi
        sleep 0.05
    done
    return 1
}

gen_token() { # length -> [A-Za-z0-9]{length}
    local s=""
    while ((${#s} < $1)); do s+="$(head -c 64 /dev/urandom | tr -dc 'A-Za-z0-9')"; done
    echo "${s:0:$1}"
}

cmd_start() {
    installed || die "livekit-server $LIVEKIT_VERSION not built: run scripts/livekit-real.sh install"
    local no_redis="${LIVEKIT_REAL_NO_REDIS:-0}"
    if [[ $no_redis != 1 ]]; then
        command -v redis-server >/dev/null || die "redis-server not installed: run scripts/livekit-real.sh install"
    fi
    mkdir -p "$RUN_DIR"
    if [[ -f $ENV_FILE ]]; then
        if alive "$(env_get "$ENV_FILE" LIVEKIT_REAL_PID)" "$BIN"; then
            die "already running (see $ENV_FILE); run stop first"
        fi
        cmd_stop # leftovers of a crashed run
    fi

    local key="${LIVEKIT_REAL_API_KEY:-API$(gen_token 12)}"
    local secret="${LIVEKIT_REAL_API_SECRET:-$(gen_token 48)}"
    [[ $key =~ ^[A-Za-z0-9_-]+$ && $secret =~ ^[A-Za-z0-9_-]+$ ]] || die "API key/secret must match [A-Za-z0-9_-]+"
    local port="${LIVEKIT_REAL_PORT:-$(free_port tcp)}"
    local udp="${LIVEKIT_REAL_RTC_UDP_PORT:-$(free_port udp)}"
    local redis_port="" redis_pid=""
    local cfg="$RUN_DIR/livekit.yaml" lk_log="$RUN_DIR/livekit.log" redis_log="$RUN_DIR/redis.log"
    local t0
    t0=$(date +%s.%N)

    if [[ $no_redis != 1 ]]; then
        redis_port="${LIVEKIT_REAL_REDIS_PORT:-$(free_port tcp)}"
        setsid redis-server --bind 127.0.0.1 --port "$redis_port" --protected-mode yes \
            --save '' --appendonly no --dir "$RUN_DIR" --daemonize no --loglevel notice \
            >"$redis_log" 2>&1 </dev/null &
        redis_pid=$!
        if ! wait_redis "$redis_port" "$redis_pid"; then
            tail -n 20 "$redis_log" >&2 || true
            stop_process "$redis_pid" redis-server redis-server
            die "redis-server did not start on 127.0.0.1:$redis_port"
        fi
    fi

    {
        echo "# generated by scripts/livekit-real.sh — loopback only"
        echo "port: $port"
        echo "bind_addresses: [127.0.0.1]"
        echo "keys:"
        echo "  $key: $secret"
        if [[ -n $redis_port ]]; then
            echo "redis:"
            echo "  address: 127.0.0.1:$redis_port"
        fi
        echo "rtc:"
        echo "  use_external_ip: false"     # no STUN lookups
        echo "  node_ip: 127.0.0.1"         # set => no STUN servers handed out either
        echo "  udp_port: $udp"             # one ICE UDP mux port ...
        echo "  tcp_port: 0"                # ... and no ICE/TCP (its listener would bind 0.0.0.0)
        echo "  enable_loopback_candidate: true"
        echo "  interfaces: {includes: [lo]}"
        echo "  ips: {includes: [127.0.0.1/32]}"
        echo "room:"
        echo "  auto_create: true"
        echo "  empty_timeout: ${LIVEKIT_REAL_EMPTY_TIMEOUT:-5}"
        echo "  departure_timeout: ${LIVEKIT_REAL_DEPARTURE_TIMEOUT:-2}"
        echo "webhook:"
        echo "  api_key: $key"
        local urls="${LIVEKIT_REAL_WEBHOOK_URLS:-}" u
        if [[ -n $urls ]]; then
            echo "  urls:"
            IFS=',' read -ra list <<<"$urls"
            for u in "${list[@]}"; do [[ -n $u ]] && echo "    - \"$u\""; done
        fi
        echo "logging:"
        echo "  level: ${LIVEKIT_REAL_LOG_LEVEL:-info}"
        echo "  json: false"
    } >"$cfg"
    chmod 600 "$cfg"

    setsid "$BIN" --config "$cfg" >"$lk_log" 2>&1 </dev/null &
    local lk_pid=$!

    # Write the env file before waiting, so that `stop` cleans up even if readiness fails.
    {
        echo "LIVEKIT_URL=http://127.0.0.1:$port"
        echo "LIVEKIT_API_KEY=$key"
        echo "LIVEKIT_API_SECRET=$secret"
        echo "LIVEKIT_REAL_PORT=$port"
        echo "LIVEKIT_REAL_RTC_UDP_PORT=$udp"
        echo "LIVEKIT_REAL_REDIS_ADDR=${redis_port:+127.0.0.1:$redis_port}"
        echo "LIVEKIT_REAL_REDIS_PORT=$redis_port"
        echo "LIVEKIT_REAL_PID=$lk_pid"
        echo "LIVEKIT_REAL_REDIS_PID=$redis_pid"
        echo "LIVEKIT_REAL_CONFIG=$cfg"
        echo "LIVEKIT_REAL_LOG=$lk_log"
        echo "LIVEKIT_REAL_WEBHOOK_URLS=${LIVEKIT_REAL_WEBHOOK_URLS:-}"
        echo "LIVEKIT_REAL_VERSION=$LIVEKIT_VERSION"
    } >"$ENV_FILE"
    chmod 600 "$ENV_FILE"

    if ! wait_http "http://127.0.0.1:$port/" "$lk_pid" "${LIVEKIT_REAL_START_TIMEOUT:-60}"; then
        tail -n 30 "$lk_log" >&2 || true
        cmd_stop
        die "livekit-server did not become ready on 127.0.0.1:$port (log: $lk_log)"
    fi
    local ready_s
    ready_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    echo "LIVEKIT_REAL_STARTUP_SECONDS=$ready_s" >>"$ENV_FILE"

    if [[ -n ${LIVEKIT_REAL_WATCH_PID:-} ]]; then
        # Stops everything once the watched process (e.g. pytest) is gone, even if it was SIGKILLed.
        setsid bash -c 'exec -a livekit-real-watchdog bash -c "$0" ' \
            "while kill -0 $LIVEKIT_REAL_WATCH_PID 2>/dev/null; do sleep 1; done; LIVEKIT_REAL_DIR='$RUN_DIR' LIVEKIT_REAL_CACHE='$CACHE' LIVEKIT_REAL_WATCHDOG_EXITING=1 '$SELF' stop" \
            >"$RUN_DIR/watchdog.log" 2>&1 </dev/null &
        echo "LIVEKIT_REAL_WATCHDOG_PID=$!" >>"$ENV_FILE"
    fi

    log "livekit-server $LIVEKIT_VERSION ready on http://127.0.0.1:$port in ${ready_s}s${redis_port:+ (redis 127.0.0.1:$redis_port)}; env: $ENV_FILE"
    cat "$ENV_FILE"
}

cmd_status() {
    if [[ -f $ENV_FILE ]] && alive "$(env_get "$ENV_FILE" LIVEKIT_REAL_PID)" "$BIN"; then
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
    # The watchdog calls stop itself: it must not try to kill itself.
    if [[ ${LIVEKIT_REAL_WATCHDOG_EXITING:-0} == 1 ]]; then
        sed -i '/^LIVEKIT_REAL_WATCHDOG_PID=/d' "$ENV_FILE" 2>/dev/null || true
    fi
    cmd_stop
    ;;
status) cmd_status ;;
path) installed && echo "$BIN" || { log "not built: run scripts/livekit-real.sh install"; exit 1; } ;;
*)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
