# Shared by scripts/livekit-real.sh and scripts/livekit-sip.sh: ports, processes, env files.
# Source it after defining log().

port_busy() { # proto port
    local proto=$1 port=$2
    if command -v ss >/dev/null; then
        [[ -n "$(ss -Hln"${proto:0:1}" "sport = :$port" 2>/dev/null)" ]]
    else
        [[ $proto == udp ]] && return 1
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
    fi
}

alive() { # pid expected-exe-substring
    local pid=$1
    [[ -n $pid && -d /proc/$pid ]] || return 1
    [[ -z ${2:-} ]] && return 0
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

stop_process() { # pid exe-substring name [group]   (group: started with setsid, pid = pgid)
    local pid=$1 what=$2 name=$3 target=$1 i
    [[ ${4:-} == group ]] && target="-$pid"
    alive "$pid" "$what" || return 0
    kill -TERM -- "$target" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        alive "$pid" "$what" || { log "stopped $name (pid $pid)"; return 0; }
        sleep 0.1
    done
    log "$name (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
    kill -KILL -- "$target" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

env_get() { # file key
    [[ -f $1 ]] || return 0
    sed -n "s/^$2=//p" "$1" | tail -n1
}
