#!/bin/sh
# Create Temporal's two PostgreSQL databases and bring both schemas to the version temporal-sql-tool
# ships. Safe to run again: an existing database is kept, applied schema versions are skipped.
# Used by docker-compose.yml (the temporal-schema one-shot, on temporalio/admin-tools) and by
# scripts/temporal-cluster.sh start (with the schema files copied at install).
#
# Environment: SQL_HOST, SQL_PORT, SQL_USER, SQL_PASSWORD (temporal-sql-tool reads them itself: no
# secret on a command line); SCHEMA_DIR (default /etc/temporal/schema, admin-tools' copy);
# TEMPORAL_SQL_TOOL (default temporal-sql-tool); DBNAME (temporal); VISIBILITY_DBNAME
# (temporal_visibility).
set -eu

export SQL_PLUGIN=postgres12
tool="${TEMPORAL_SQL_TOOL:-temporal-sql-tool}"
schema="${SCHEMA_DIR:-/etc/temporal/schema}/postgresql/v12"

setup() { # database schema-name
    # A failure here is most often "already exists"; a real one (auth, network) fails the next step.
    "$tool" --db "$1" create-database || echo "setup-schema: create-database $1 failed; going on (exists?)" >&2
    "$tool" --db "$1" setup-schema -v 0.0
    "$tool" --db "$1" update-schema -d "$schema/$2/versioned"
}

setup "${DBNAME:-temporal}" temporal
setup "${VISIBILITY_DBNAME:-temporal_visibility}" visibility
echo "setup-schema: ${DBNAME:-temporal} and ${VISIBILITY_DBNAME:-temporal_visibility} up to date" >&2
