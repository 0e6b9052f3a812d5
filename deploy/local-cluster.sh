#!/usr/bin/env bash
# Try the regional, multi-node mode on one machine: a private PostgreSQL and two renkei nodes on loopback.
#
#   deploy/local-cluster.sh [DIR]
#
# Prints the PostgreSQL URL and both nodes' URLs, then `ready`, and runs until Ctrl-C or SIGTERM, which
# stops the nodes and PostgreSQL and removes DIR (a temporary directory by default). Uses the system's
# PostgreSQL server binaries (as the postgres user when run as root) and target/release/renkei-server
# (built if missing; RENKEI_SERVER_BIN overrides it — RENKEI_SERVER is the CLI's server URL). Create the
# first administrator with (every node and command shares one audit key file, DIR/audit.key, and the nodes
# one Web Push key, DIR/vapid.key):
#   RENKEI_DATABASE_URL=<printed url> RENKEI_AUDIT_KEY_FILE=<DIR>/audit.key \
#     renkei-server create-admin --login admin --display-name 管理者
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-$(mktemp -d /tmp/renkei-cluster-XXXXXX)}
BIN=${RENKEI_SERVER_BIN:-$ROOT/target/release/renkei-server}
if [ ! -x "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --bin renkei-server)
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$PGBIN" ]; then
  echo "local-cluster: no PostgreSQL server binaries (install postgresql)" >&2
  exit 1
fi

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

mkdir -p "$DIR"
if [ "$(id -u)" = 0 ]; then chown postgres "$DIR"; fi
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

as_pg "$PGBIN/initdb" -D "$DIR/pg" -U renkei --auth=trust -E UTF8 --locale=C --no-sync >/dev/null
PGPORT=$(free_port)
as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -o "-p $PGPORT -k $DIR -c listen_addresses=127.0.0.1" -l "$DIR/pg.log" -w start >/dev/null
URL="postgres://renkei@127.0.0.1:$PGPORT/postgres"
echo "postgres $URL"
echo "audit key $DIR/audit.key"

for node in 1 2; do
  port=$(free_port)
  RENKEI_DATABASE_URL=$URL RENKEI_LISTEN=127.0.0.1:$port RENKEI_DATA_DIR=$DIR/node$node \
    RENKEI_AUDIT_KEY_FILE=$DIR/audit.key RENKEI_VAPID_KEY_FILE=$DIR/vapid.key "$BIN" serve >"$DIR/node$node.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 200); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { echo "node$node did not start" >&2; cat "$DIR/node$node.log" >&2; exit 1; }
  echo "node$node http://127.0.0.1:$port"
done
echo ready
wait
