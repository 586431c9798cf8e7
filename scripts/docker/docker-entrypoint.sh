#!/usr/bin/env bash
# Entrypoint of the macrostrat-test/postgis images (scripts/build-test-images).
#
# Follows the conventions of the official postgres images so that testcontainers
# and user code work unchanged:
#   POSTGRES_USER (default postgres), POSTGRES_PASSWORD, POSTGRES_DB (default
#   $POSTGRES_USER), POSTGRES_HOST_AUTH_METHOD (default scram-sha-256 when a
#   password is set), POSTGRES_INITDB_ARGS, PGDATA (/var/lib/postgresql/data),
#   /docker-entrypoint-initdb.d/*.sql, *.sql.gz and *.sh run once on a new cluster,
#   `docker run IMAGE -c key=value` or `docker run IMAGE postgres -c key=value`.
# Runs as root only to create and chown $PGDATA (so tmpfs and fresh volumes
# work), then re-executes itself as the postgres user (uid 999); the server is
# exec'd, so it gets SIGTERM/SIGINT directly and shuts down cleanly.
set -Eeuo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [ "${1:0:1}" = '-' ]; then
  set -- postgres "$@"
fi

if [ "$1" != 'postgres' ]; then
  exec "$@"
fi

PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGDATA

if [ "$(id -u)" = '0' ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  chmod 2775 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
fi

POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  auth="${POSTGRES_HOST_AUTH_METHOD:-}"
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != 'trust' ]; then
    die "the database is uninitialized and POSTGRES_PASSWORD is not set; set it" \
      "(or POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a password)"
  fi
  auth="${auth:-scram-sha-256}"
  log "initializing a PostgreSQL $PG_MAJOR cluster in $PGDATA (user $POSTGRES_USER, host auth $auth)"
  pwfile=""
  if [ -n "${POSTGRES_PASSWORD:-}" ]; then
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  fi
  # shellcheck disable=SC2086
  initdb --username="$POSTGRES_USER" ${pwfile:+--pwfile="$pwfile"} \
    --auth-local=trust --auth-host="$auth" ${POSTGRES_INITDB_ARGS:-} >/dev/null
  [ -z "$pwfile" ] || rm -f "$pwfile"
  printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
  printf 'host all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"

  # A temporary server on the Unix socket only, for POSTGRES_DB and init scripts.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w -s start
  export PGUSER="$POSTGRES_USER" PGHOST=/var/run/postgresql PGPORT=5432
  if [ "$POSTGRES_DB" != 'postgres' ]; then
    psql -v ON_ERROR_STOP=1 -q --dbname postgres \
      --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case "$f" in
      *.sh) log "running $f"; . "$f" ;;
      *.sql) log "running $f"; psql -v ON_ERROR_STOP=1 -q --dbname "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) log "running $f"; gunzip -c "$f" | psql -v ON_ERROR_STOP=1 -q --dbname "$POSTGRES_DB" ;;
      *) log "ignoring $f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w -s stop
  unset PGUSER PGHOST PGPORT
  log "initialization complete; starting the server"
fi

exec "$@"
