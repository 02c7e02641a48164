#!/bin/sh
# Create the Temporal namespace the service runs in, unless it exists (safe to run again).
# Used by docker-compose.yml (the temporal-namespace one-shot, on temporalio/admin-tools) and by
# scripts/temporal-cluster.sh start.
#
# Environment: TEMPORAL_ADDRESS (host:port) and TEMPORAL_NAMESPACE (default `default`), both read
# by the Temporal CLI itself; TEMPORAL_CLI (default temporal); NAMESPACE_RETENTION (default 72h).
set -eu

cli="${TEMPORAL_CLI:-temporal}"
namespace="${TEMPORAL_NAMESPACE:-default}"
if "$cli" operator namespace describe --namespace "$namespace" >/dev/null 2>&1; then
    echo "create-namespace: $namespace exists" >&2
    exit 0
fi
"$cli" operator namespace create --namespace "$namespace" --retention "${NAMESPACE_RETENTION:-72h}"
