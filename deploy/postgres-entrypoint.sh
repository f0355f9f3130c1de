#!/bin/sh
# The cronfleet/postgres image's entrypoint: on an empty data folder, make
# the cluster (POSTGRES_USER, default cronfleet, with POSTGRES_PASSWORD;
# scram-sha-256 over the network, trust over the container's own socket)
# and the database POSTGRES_DB (default cronfleet); then run the server,
# listening on every address, as PID 1 (SIGTERM: a smart shutdown).
set -eu
: "${POSTGRES_USER:=cronfleet}" "${POSTGRES_DB:=cronfleet}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -n "${POSTGRES_PASSWORD:-}" ] || { echo "postgres: POSTGRES_PASSWORD is required" >&2; exit 1; }
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  createdb -U "$POSTGRES_USER" "$POSTGRES_DB"
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "postgres: made the cluster and database $POSTGRES_DB"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
