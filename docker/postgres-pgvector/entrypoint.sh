#!/bin/sh
# Small POSIX-sh take on the official postgres image's docker-entrypoint.sh.
# Only sh builtins + PostgreSQL binaries are available (the image is FROM scratch).
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_PASSWORD:=}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
: "${POSTGRES_INITDB_ARGS:=}"
export PGDATA
SOCK=/var/run/postgresql

# `docker run IMAGE -c foo=bar` -> postgres -c foo=bar; any other command runs as is.
if [ "${1#-}" != "${1:-}" ]; then set -- postgres "$@"; fi
if [ "${1:-}" != postgres ]; then exec "$@"; fi
shift

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
        echo "error: POSTGRES_PASSWORD is not set (or set POSTGRES_HOST_AUTH_METHOD=trust)" >&2
        exit 1
    fi
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is meant to be split
    printf '%s\n' "$POSTGRES_PASSWORD" | initdb --username="$POSTGRES_USER" \
        ${POSTGRES_PASSWORD:+--pwfile=/dev/stdin} --encoding=UTF8 --locale=C \
        --auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" $POSTGRES_INITDB_ARGS
    printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >> "$PGDATA/pg_hba.conf"

    # Temporary server on the unix socket only, so clients can't connect mid-setup.
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=$SOCK" start
    psql -v ON_ERROR_STOP=1 -X -q -h "$SOCK" -U "$POSTGRES_USER" -d postgres \
        -v db="$POSTGRES_DB" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 -X -h "$SOCK" \
                       -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f "$f" ;;
            *.sh) echo "sourcing $f"; . "$f" ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop
    echo "PostgreSQL init process complete; ready for start up."
else
    echo "PostgreSQL database directory appears to contain a database; skipping initialization"
fi

exec postgres -c listen_addresses='*' -c unix_socket_directories="$SOCK" -p 5432 "$@"
