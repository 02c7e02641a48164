# Install steps of the server scripts: Go builds from the module proxy, Debian packages.
# Source after defining log() and die(). Nothing here runs at test time, only at `install`.

go_install_pinned() { # version dest-dir package=binary...: `go install` every package at version,
    # GOBIN in a temp dir under dest-dir, then move each built binary to dest-dir/binary.
    # Sets BUILD_SECONDS. Only the Go module proxy is used (GOPROXY as configured).
    local version=$1 dest=$2 spec gobin rc=0 t0=$SECONDS
    shift 2
    command -v go >/dev/null || die "go is not installed (needed once to build ${*%%=*} $version)"
    local packages=()
    for spec in "$@"; do packages+=("${spec%%=*}@$version"); done
    mkdir -p "$dest"
    gobin="$(mktemp -d "$dest/gobin.XXXXXX")"
    GOBIN="$gobin" nice -n 10 go install "${packages[@]}" || rc=$?
    if ((rc == 0)); then
        for spec in "$@"; do mv -f "$gobin/$(basename "${spec%%=*}")" "$dest/${spec#*=}"; done
    fi
    rm -rf "$gobin"
    BUILD_SECONDS=$((SECONDS - t0))
    return $rc
}

deb_installed() { # package: installed (dpkg's view)
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

apt_install() { # package...: Debian packages, quietly, as root
    [[ $(id -u) -eq 0 ]] || die "missing $*; installing needs root (apt-get install -y $*)"
    # Keep the packages' init scripts from starting system-wide services (a redis on :6379, a
    # postgres on :5432: stray processes nobody stops).
    local policy=/usr/sbin/policy-rc.d own_policy=0 rc=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
    fi
    # Wait for the dpkg lock rather than fail: two scripts may install side by side (CI runs
    # temporal-cluster.sh install in the background).
    local apt=(apt-get -o DPkg::Lock::Timeout=300)
    { DEBIAN_FRONTEND=noninteractive "${apt[@]}" update -qq &&
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends "$@" >/dev/null; } || rc=$?
    if ((own_policy)); then rm -f "$policy"; fi
    return $rc
}
