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
# The config is docker-compose's, deploy/livekit.yaml, with loopback ports, the local Redis, the webhook
# URLs and the test room timeouts laid over it (scripts/lib/yaml_overlay.py; needs the venv's PyYAML).
# The key pair goes in LIVEKIT_KEYS, as in docker-compose.yml: no secret in the rendered file.
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
#   LIVEKIT_REAL_PYTHON         Python with PyYAML that renders the config (default .venv/bin/python, else python3)
set -euo pipefail

LIVEKIT_VERSION="v1.13.5"
LIVEKIT_MODULE="github.com/livekit/livekit-server/cmd/server"

NAME="livekit-real"
PREFIX="LIVEKIT_REAL"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$REPO/scripts/$(basename "${BASH_SOURCE[0]}")"
CACHE="${LIVEKIT_REAL_CACHE:-$REPO/.cache/livekit}"
BIN="$CACHE/livekit-server"
VERSION_FILE="$CACHE/livekit-server.version"
RUN_DIR="${LIVEKIT_REAL_DIR:-$CACHE/run}"
ENV_FILE="$RUN_DIR/livekit.env"
BASE_CONFIG="$REPO/deploy/livekit.yaml"

source "$REPO/scripts/lib/server.sh"

installed() { [[ -x "$BIN" && -f "$VERSION_FILE" && "$(cat "$VERSION_FILE")" == "$LIVEKIT_VERSION" ]]; }

cmd_install() {
    if installed; then
        log "livekit-server $LIVEKIT_VERSION already built: $BIN"
    else
        log "building livekit-server $LIVEKIT_VERSION (go install; ~2 min on 2 cores with a cold Go cache)"
        go_install_pinned "$LIVEKIT_VERSION" "$CACHE" "$LIVEKIT_MODULE=livekit-server" ||
            die "go install $LIVEKIT_MODULE@$LIVEKIT_VERSION failed"
        echo "$LIVEKIT_VERSION" >"$VERSION_FILE"
        log "built $BIN in $BUILD_SECONDS s: $("$BIN" --version)"
    fi

    if command -v redis-server >/dev/null; then
        log "redis-server present: $(command -v redis-server)"
    else
        log "installing redis-server (Debian package)"
        apt_install redis-server || die "apt-get install redis-server failed"
        log "installed $(redis-server --version)"
    fi
}

cmd_stop() {
    if [[ ! -f $ENV_FILE ]]; then
        log "not running (no $ENV_FILE)"
        return 0
    fi
    local lk redis
    lk="$(env_get "$ENV_FILE" LIVEKIT_REAL_PID)"
    redis="$(env_get "$ENV_FILE" LIVEKIT_REAL_REDIS_PID)"
    stop_watchdog
    [[ -n $lk ]] && stop_process "$lk" "$BIN" "livekit-server"
    [[ -n $redis ]] && stop_process "$redis" "redis-server" "redis-server"
    rm -f "$ENV_FILE"
}

redis_pong() { # port
    [[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == PONG ]]
}

python_with_yaml() {
    local py
    for py in "${LIVEKIT_REAL_PYTHON:-}" "$REPO/.venv/bin/python" python3; do
        [[ -n $py ]] && command -v "$py" >/dev/null && "$py" -c 'import yaml' 2>/dev/null && { echo "$py"; return 0; }
    done
    die "rendering $BASE_CONFIG needs Python with PyYAML: run make install (or set LIVEKIT_REAL_PYTHON)"
}

render_config() { # key port udp redis-port -> deploy/livekit.yaml with the loopback/test values over it
    local key=$1 port=$2 udp=$3 redis_port=$4 py
    py="$(python_with_yaml)"
    {
        echo "port: $port"
        echo "bind_addresses: [127.0.0.1]"
        echo "prometheus_port: null"    # removed: its listener would bind all interfaces
        echo "turn: {enabled: false}"
        if [[ -n $redis_port ]]; then
            echo "redis: {address: \"127.0.0.1:$redis_port\"}"
        else
            echo "redis: null"
        fi
        echo "rtc:"
        echo "  use_external_ip: false"     # no STUN lookups
        echo "  node_ip: 127.0.0.1"         # set => no STUN servers handed out either
        echo "  udp_port: $udp"             # one ICE UDP mux port instead of the compose port range ...
        echo "  port_range_start: null"
        echo "  port_range_end: null"
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
        else
            echo "  urls: null"
        fi
        echo "logging:"
        echo "  level: ${LIVEKIT_REAL_LOG_LEVEL:-info}"
        echo "  json: false"
    } | "$py" "$REPO/scripts/lib/yaml_overlay.py" "$BASE_CONFIG"
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
    local port udp redis_port="" redis_pid=""
    use_port port "${LIVEKIT_REAL_PORT:-}" tcp
    use_port udp "${LIVEKIT_REAL_RTC_UDP_PORT:-}" udp
    local cfg="$RUN_DIR/livekit.yaml" lk_log="$RUN_DIR/livekit.log" redis_log="$RUN_DIR/redis.log"
    local t0
    t0=$(now)

    if [[ $no_redis != 1 ]]; then
        use_port redis_port "${LIVEKIT_REAL_REDIS_PORT:-}" tcp
        setsid redis-server --bind 127.0.0.1 --port "$redis_port" --protected-mode yes \
            --save '' --appendonly no --dir "$RUN_DIR" --daemonize no --loglevel notice \
            >"$redis_log" 2>&1 </dev/null &
        redis_pid=$!
        if ! wait_until 10 "$redis_pid" "" redis_pong "$redis_port"; then
            tail -n 20 "$redis_log" >&2 || true
            stop_process "$redis_pid" redis-server redis-server
            die "redis-server did not start on 127.0.0.1:$redis_port"
        fi
    fi

    if ! render_config "$key" "$port" "$udp" "$redis_port" >"$cfg"; then
        [[ -n $redis_pid ]] && stop_process "$redis_pid" redis-server redis-server
        die "could not render $cfg from $BASE_CONFIG"
    fi
    chmod 600 "$cfg"

    # The key pair through the environment, as docker-compose.yml does (not on a command line).
    LIVEKIT_KEYS="$key: $secret" setsid "$BIN" --config "$cfg" >"$lk_log" 2>&1 </dev/null &
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

    if ! wait_until "${LIVEKIT_REAL_START_TIMEOUT:-60}" "$lk_pid" "" http_ok "http://127.0.0.1:$port/"; then
        tail -n 30 "$lk_log" >&2 || true
        cmd_stop
        die "livekit-server did not become ready on 127.0.0.1:$port (log: $lk_log)"
    fi
    local ready_s
    ready_s=$(seconds_since "$t0")
    echo "LIVEKIT_REAL_STARTUP_SECONDS=$ready_s" >>"$ENV_FILE"
    start_watchdog

    log "livekit-server $LIVEKIT_VERSION ready on http://127.0.0.1:$port in ${ready_s}s${redis_port:+ (redis 127.0.0.1:$redis_port)}; env: $ENV_FILE"
    cat "$ENV_FILE"
}

server_main "$@"
