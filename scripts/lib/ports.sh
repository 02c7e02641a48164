# Free loopback ports for the server scripts. Source after scripts/lib/processes.sh (port_busy).
#
# The chosen port is stored in a variable, not printed: a port picked in a $(...) subshell could not
# be remembered, and two picks of one start could then hand out the same port.

TAKEN=" "

use_port() { # var port-or-empty proto...: the given port (remembered as taken), or a free one
    if [[ -n $2 ]]; then
        TAKEN+="$2 "
        printf -v "$1" '%s' "$2"
    else
        pick_port "$1" "${@:3}"
    fi
}

# The locals are _-prefixed: printf -v would set a local of the same name as the caller's variable.
pick_port() { # var proto...: a port in 20000-31999 free for every proto (tcp, udp), not handed out yet
    local _var=$1 _port _i _proto _busy
    shift
    for ((_i = 0; _i < 200; _i++)); do
        _port=$((20000 + RANDOM % 12000))
        [[ $TAKEN == *" $_port "* ]] && continue
        _busy=0
        for _proto in "$@"; do port_busy "$_proto" "$_port" && { _busy=1; break; }; done
        ((_busy)) && continue
        TAKEN+="$_port "
        printf -v "$_var" '%s' "$_port"
        return 0
    done
    die "no free $* port found"
}

pick_udp_range() { # var count: "start-end" of free consecutive UDP ports in 33000-53099
    local _var=$1 _n=$2 _start _p _i _ok
    for ((_i = 0; _i < 200; _i++)); do
        _start=$((33000 + RANDOM % 20000))
        _ok=1
        for ((_p = _start; _p < _start + _n; _p++)); do port_busy udp "$_p" && { _ok=0; break; }; done
        if ((_ok)); then
            printf -v "$_var" '%s' "$_start-$((_start + _n - 1))"
            return 0
        fi
    done
    die "no free UDP range of $_n ports found"
}
