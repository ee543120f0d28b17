#!/usr/bin/env bash
# Run every check cargohold has: lint, types, example configs, and all test tiers.
#
#   scripts/test.sh [pytest arguments]
#
# It first runs scripts/setup.sh (idempotent: installs what is missing), then starts a
# throwaway PostgreSQL on loopback so the metadata contract suite runs on PostgreSQL as
# well as SQLite, and stops it again at the end. Extra arguments go to pytest, e.g.
# `scripts/test.sh tests/unit -q` or `scripts/test.sh -m "not interop"`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
log() { printf '[test] %s\n' "$*"; }

"$root/scripts/setup.sh"
venv="$root/.venv/bin"

log "ruff"
"$venv/ruff" check --quiet src tests bench
log "mypy (strict)"
"$venv/mypy" --no-error-summary src tests
log "example configurations"
"$venv/cargohold" config check examples/*.toml

pg_dir=""
cleanup() {
  if [ -n "$pg_dir" ]; then
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
}
trap cleanup EXIT

pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
if [ "$(id -u)" -eq 0 ] && [ -n "$pg_bin" ] && id postgres >/dev/null 2>&1; then
  pg_dir="$(mktemp -d /tmp/cargohold-pg.XXXXXX)"
  chown postgres "$pg_dir"
  pg_port="$("$venv/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  log "starting a throwaway PostgreSQL on 127.0.0.1:$pg_port"
  runuser -u postgres -- "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U postgres >/dev/null
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -w -l "$pg_dir/log" \
    -o "-k $pg_dir -p $pg_port -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  runuser -u postgres -- "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" cargohold_test
  export CARGOHOLD_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$pg_port/cargohold_test"
else
  log "PostgreSQL not started (needs root and the postgresql package): its contract tests skip"
fi

log "pytest $*"
"$venv/python" -m pytest "$@"
