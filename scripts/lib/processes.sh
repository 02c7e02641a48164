# Processes, readiness and env files, for the server scripts (scripts/livekit-real.sh,
# scripts/livekit-sip.sh, scripts/temporal-cluster.sh). Source it after defining log() and die()
# (scripts/lib/server.sh does both).

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

env_set() { # file key value: replace (or append) key=value, keeping the file's mode
    [[ -f $1 ]] || return 0
    sed -i "/^$2=/d" "$1"
    echo "$2=$3" >>"$1"
}

wait_until() { # seconds pid exe-substring command...: poll the command until it succeeds;
    # fail as soon as the process is gone (no point waiting for a crashed server) or time is up.
    local timeout=$1 pid=$2 what=$3 t0=$SECONDS
    shift 3
    while ((SECONDS - t0 < timeout)); do
        alive "$pid" "$what" || return 1
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}

http_ok() { # url: answers 2xx (no proxy: the servers are on loopback)
    curl -fsS --max-time 1 --noproxy '*' "$1"
}

now() { date +%s.%N; }

seconds_since() { # timestamp from now() -> seconds elapsed, 2 decimals
    awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'
}

gen_token() { # length -> [A-Za-z0-9]{length}
    local s=""
    while ((${#s} < $1)); do s+="$(head -c 64 /dev/urandom | tr -dc 'A-Za-z0-9')"; done
    echo "${s:0:$1}"
}
