#!/usr/bin/env bash
# Dedicated PostgreSQL cluster "saldo" (Debian's postgresql packages) for local
# tests and CI. Must run as root (apt-get, and pg_* tools switch to `postgres`).
#   postgres.sh start|stop|status|env
# stdout carries only the SALDO_DATABASE_URL=... line; progress goes to stderr.
set -euo pipefail

PORT=${SALDO_PG_PORT:-55432}
CLUSTER=saldo
URL=postgresql://saldo:saldo@127.0.0.1:$PORT/postgres

log() { echo "[postgres] $*" >&2; }
env_line() { echo "SALDO_DATABASE_URL=$URL"; }

pg_version() {  # newest installed server major version, empty if none
  local bin
  for bin in /usr/lib/postgresql/*/bin/postgres; do
    [[ -x $bin ]] && basename "$(dirname "$(dirname "$bin")")"
  done | sort -n | tail -n 1
}

ensure_installed() {
  [[ -n $(pg_version) ]] && return
  log "installing postgresql from apt (first run only)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
}

ensure_cluster() {
  local ver=$1 conf=/etc/postgresql/$1/$CLUSTER
  if ! exists "$ver"; then
    log "creating cluster $ver/$CLUSTER on port $PORT"
    rm -rf "$conf"  # leftovers of a dropped cluster would make pg_createcluster fail
    # Explicit UTF-8: on a bare CI box the locale is often POSIX, which would
    # silently give SQL_ASCII databases.
    pg_createcluster "$ver" "$CLUSTER" --port "$PORT" --locale C.UTF-8 \
      --encoding UTF8 --start-conf manual >&2
  fi
  # Rewritten on every start so the settings (and a changed SALDO_PG_PORT)
  # always apply, also to a cluster made by an older version of this script.
  # Durability is traded for speed: this data is throw-away test data.
  pg_conftool -s "$ver" "$CLUSTER" set port "$PORT"
  cat >"$conf/conf.d/saldo.conf" <<CONF
listen_addresses = '127.0.0.1'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  chown postgres:postgres "$conf/conf.d/saldo.conf"
}

# postgresql.conf, not the directory: a dropped cluster can leave conf.d behind.
exists() { [[ -f /etc/postgresql/$1/$CLUSTER/postgresql.conf ]]; }
is_running() { pg_ctlcluster "$1" "$CLUSTER" status >/dev/null 2>&1; }

start() {
  ensure_installed
  local ver
  ver=$(pg_version)
  if exists "$ver" && is_running "$ver"; then
    log "already running"
  else
    ensure_cluster "$ver"
    log "starting cluster $ver/$CLUSTER"
    # 9>&- : the postmaster must not inherit (and so hold forever) the flock.
    pg_ctlcluster "$ver" "$CLUSTER" start >&2 9>&-
  fi
  local deadline=$((SECONDS + 60))
  until pg_isready -q -h 127.0.0.1 -p "$PORT"; do
    ((SECONDS < deadline)) || { log "not ready on port $PORT after 60 s (already running on another port? stop it first)"; exit 1; }
    sleep 0.2
  done
  # Idempotent; runs over the local socket with peer auth as `postgres`.
  # Tests log in over TCP with this password (scram-sha-256 per Debian's
  # default pg_hba.conf for 127.0.0.1) and create their own databases.
  runuser -u postgres -- psql -q -X -v ON_ERROR_STOP=1 -p "$PORT" -d postgres >&2 <<'SQL'
SELECT 'CREATE ROLE saldo' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'saldo')\gexec
ALTER ROLE saldo WITH SUPERUSER LOGIN PASSWORD 'saldo';
SQL
  env_line
}

stop() {
  local ver
  ver=$(pg_version)
  if [[ -n $ver ]] && exists "$ver" && is_running "$ver"; then
    log "stopping cluster $ver/$CLUSTER"
    pg_ctlcluster "$ver" "$CLUSTER" stop --mode fast >&2
  else
    log "not running"
  fi
}

status() {
  local ver
  ver=$(pg_version)
  if [[ -n $ver ]] && exists "$ver" && is_running "$ver"; then
    echo "postgres: running ($ver/$CLUSTER) on 127.0.0.1:$PORT"
  else
    echo "postgres: stopped"; return 3
  fi
}

# Serialise concurrent start/stop calls (e.g. parallel CI steps).
exec 9>/run/lock/saldo-postgres.lock
flock 9

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) env_line ;;
  *) echo "usage: $0 {start|stop|status|env}" >&2; exit 2 ;;
esac
