# The frame every server script shares (scripts/livekit-real.sh, scripts/livekit-sip.sh,
# scripts/temporal-cluster.sh): logging, the watchdog, status/path/stop dispatch.
#
# Set before sourcing:
#   NAME      log prefix and watchdog name ("livekit-real")
#   PREFIX    prefix of the script's variables ("LIVEKIT_REAL"): ${PREFIX}_DIR (run dir),
#             ${PREFIX}_CACHE, ${PREFIX}_WATCH_PID, and in the env file ${PREFIX}_PID (the main
#             server) and ${PREFIX}_WATCHDOG_PID
#   SELF, BIN, CACHE, RUN_DIR, ENV_FILE
# Define installed(), cmd_install, cmd_start, cmd_stop; any cmd_<name> becomes a command
# (`restart-server` runs cmd_restart_server).

log() { printf '%s: %s\n' "$NAME" "$*" >&2; }
die() { log "error: $*"; exit 1; }

LIB="$(dirname "${BASH_SOURCE[0]}")"
source "$LIB/processes.sh"
source "$LIB/ports.sh"
source "$LIB/install.sh"

start_watchdog() { # once ${PREFIX}_WATCH_PID (e.g. pytest) is gone, even SIGKILLed, run `$SELF stop`
    local watch_var="${PREFIX}_WATCH_PID"
    local watch="${!watch_var:-}"
    [[ -n $watch ]] || return 0
    [[ $watch =~ ^[0-9]+$ ]] || die "$watch_var must be a pid"
    local stop_cmd
    printf -v stop_cmd '%s_DIR=%q %s_CACHE=%q %s_WATCHDOG_EXITING=1 %q stop' \
        "$PREFIX" "$RUN_DIR" "$PREFIX" "$CACHE" "$PREFIX" "$SELF"
    # exec -a names the loop, so that stop can tell it from an unrelated process with its pid.
    setsid bash -c 'exec -a "$0" bash -c "$1"' "$NAME-watchdog" \
        "while kill -0 $watch 2>/dev/null; do sleep 1; done; $stop_cmd" \
        >"$RUN_DIR/watchdog.log" 2>&1 </dev/null &
    echo "${PREFIX}_WATCHDOG_PID=$!" >>"$ENV_FILE"
}

stop_watchdog() { # before the servers, so that it does not race us (it would call stop too)
    local pid
    pid="$(env_get "$ENV_FILE" "${PREFIX}_WATCHDOG_PID")"
    [[ -n $pid ]] && stop_process "$pid" "$NAME-watchdog" "watchdog" group
    return 0
}

server_status() { # the env file, if the main server runs (exit 1 if not)
    if [[ -f $ENV_FILE ]] && alive "$(env_get "$ENV_FILE" "${PREFIX}_PID")" "$BIN"; then
        cat "$ENV_FILE"
    else
        log "not running"
        return 1
    fi
}

usage() { # the script's header comment: title and command list (up to the second "#" line)
    awk 'NR > 1 { if ($0 == "#" && ++n == 2) exit; sub(/^# ?/, ""); print }' "$SELF" >&2
    exit 2
}

server_main() {
    local cmd="${1:-}"
    case "$cmd" in
    stop)
        # The watchdog calls stop itself: it must not try to kill itself.
        local exiting="${PREFIX}_WATCHDOG_EXITING"
        if [[ ${!exiting:-0} == 1 ]]; then
            sed -i "/^${PREFIX}_WATCHDOG_PID=/d" "$ENV_FILE" 2>/dev/null || true
        fi
        cmd_stop
        ;;
    status)
        if declare -F cmd_status >/dev/null; then cmd_status; else server_status; fi
        ;;
    path) installed && echo "$BIN" || { log "not built: run scripts/$(basename "$SELF") install"; exit 1; } ;;
    "" | -* | *[!a-z-]*) usage ;;
    *)
        declare -F "cmd_${cmd//-/_}" >/dev/null || usage
        "cmd_${cmd//-/_}"
        ;;
    esac
}
