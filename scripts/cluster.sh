#!/usr/bin/env bash
# A cargohold cluster on one machine, for trying and testing scale-out:
# Debian's PostgreSQL, a blob store shared by both replicas, two `cargohold serve`
# replicas and Debian's nginx in front (round robin), all on free loopback ports.
#
#   scripts/cluster.sh up      start it; prints URL=, ADMIN_USER=, ADMIN_PASSWORD= ...
#   scripts/cluster.sh down    stop everything and remove the state directory
#   scripts/cluster.sh env     print the variables of the running cluster again
#   scripts/cluster.sh restart N   stop replica N (1 or 2) if it runs, start it again
#   scripts/cluster.sh stop N      stop replica N (nginx sends everything to the other)
#
# Environment:
#   CLUSTER_DIR       state directory (default /tmp/cargohold-cluster)
#   CLUSTER_STORAGE   "s3" (default: a moto S3 server, bucket "cargohold") or "filesystem"
#                     (one storage root both replicas share, as over NFS)
#   CLUSTER_PYTHON    the Python that has cargohold installed (default .venv/bin/python,
#                     else python3); PYTHONPATH is passed through
#   CLUSTER_WORKERS   server workers per replica (default 1)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${CLUSTER_DIR:-/tmp/cargohold-cluster}"
storage_kind="${CLUSTER_STORAGE:-s3}"
workers="${CLUSTER_WORKERS:-1}"
if [ -n "${CLUSTER_PYTHON:-}" ]; then
  python="$CLUSTER_PYTHON"
elif [ -x "$root/.venv/bin/python" ]; then
  python="$root/.venv/bin/python"
else
  python="$(command -v python3)"
fi
log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

free_port() {
  "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Run a PostgreSQL binary as the postgres user when we are root (initdb refuses root).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Wait (bounded) until a URL answers 200.
wait_ready() {
  local url="$1" what="$2" pidfile="$3"
  for _ in $(seq 1 150); do
    if "$python" - "$url" <<'EOF' 2>/dev/null; then return 0; fi
import sys, urllib.request
sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
EOF
    if [ -n "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      die "$what exited; see $state/logs"
    fi
    sleep 0.2
  done
  die "$what did not become ready in 30 s; see $state/logs"
}

# Stop a process group started with setsid: TERM, a bounded wait, then KILL.
stop_group() {
  local pidfile="$1" pid
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  [ -n "$dir" ] || die "Debian's PostgreSQL is not installed (apt-get install postgresql)"
  printf '%s' "$dir"
}

down() {
  [ -d "$state" ] || { log "no cluster at $state"; return 0; }
  if [ -f "$state/nginx/nginx.pid" ]; then
    nginx -p "$state/nginx" -c "$state/nginx/nginx.conf" -s stop 2>/dev/null || true
    for _ in $(seq 1 25); do [ -f "$state/nginx/nginx.pid" ] || break; sleep 0.2; done
  fi
  stop_group "$state/replica-1.pid"
  stop_group "$state/replica-2.pid"
  stop_group "$state/s3.pid"
  local side=""
  [ -f "$state/side-dir" ] && side="$(cat "$state/side-dir")"
  if [ -n "$side" ] && [ -d "$side/pg/data" ]; then
    as_pg "$(pg_bin)/pg_ctl" -D "$side/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  case "$side" in /tmp/cargohold-cluster-side.*) rm -rf "$side" ;; esac
  rm -rf "$state"
  log "stopped; removed $state"
}

print_env() {
  [ -f "$state/cluster.env" ] || die "no cluster at $state"
  cat "$state/cluster.env"
}

start_replica() {
  local n="$1" port="$2"
  (
    export CARGOHOLD_DATA_DIR="$state/replica-$n"
    export CARGOHOLD_SERVER_PORT="$port"
    export CARGOHOLD_SERVER_REPLICA_ID="replica-$n"
    cd "$state/replica-$n"
    exec setsid "$python" -m cargohold serve >"$state/logs/replica-$n.log" 2>&1
  ) &
  echo $! >"$state/replica-$n.pid"
}

up() {
  if [ -f "$state/cluster.env" ]; then
    die "a cluster is already up at $state (scripts/cluster.sh down first)"
  fi
  command -v nginx >/dev/null || die "Debian's nginx is not installed (apt-get install nginx-light)"
  local bin
  bin="$(pg_bin)"
  mkdir -p "$state/logs" "$state/replica-1" "$state/replica-2" "$state/shared"
  started=""
  trap 'if [ -z "$started" ]; then log "start failed; stopping what started"; down; fi' EXIT

  local pg_port s3_port r1 r2 lb
  pg_port="$(free_port)"; r1="$(free_port)"; r2="$(free_port)"; lb="$(free_port)"

  # PostgreSQL (as user postgres when we are root) and nginx's workers (as nobody)
  # need directories they can reach, wherever the state directory is.
  local side
  side="$(mktemp -d /tmp/cargohold-cluster-side.XXXXXX)"
  chmod 711 "$side"
  echo "$side" >"$state/side-dir"
  mkdir -p "$side/pg" "$side/nginx-tmp"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$side/pg"
    chown nobody "$side/nginx-tmp"
  fi

  log "PostgreSQL on 127.0.0.1:$pg_port"
  as_pg "$bin/initdb" -D "$side/pg/data" -A trust -U postgres >/dev/null
  as_pg "$bin/pg_ctl" -D "$side/pg/data" -w -l "$side/pg/log" \
    -o "-k $side/pg -p $pg_port -c listen_addresses=127.0.0.1 -c max_connections=200" \
    start >/dev/null
  as_pg "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres cargohold
  export CARGOHOLD_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$pg_port/cargohold"

  case "$storage_kind" in
    s3)
      s3_port="$(free_port)"
      log "S3 (moto) on 127.0.0.1:$s3_port"
      (exec setsid "$python" -m moto.server -H 127.0.0.1 -p "$s3_port" \
        >"$state/logs/s3.log" 2>&1) &
      echo $! >"$state/s3.pid"
      wait_ready "http://127.0.0.1:$s3_port/" "the S3 server" "$state/s3.pid"
      "$python" - "http://127.0.0.1:$s3_port" <<'EOF'
import sys, urllib.request
request = urllib.request.Request(f"{sys.argv[1]}/cargohold", method="PUT")
urllib.request.urlopen(request, timeout=10)
EOF
      export CARGOHOLD_STORAGE_BACKEND=s3
      export CARGOHOLD_STORAGE_BUCKET=cargohold
      export CARGOHOLD_STORAGE_ENDPOINT_URL="http://127.0.0.1:$s3_port"
      export CARGOHOLD_STORAGE_ACCESS_KEY_ID=cluster
      export CARGOHOLD_STORAGE_SECRET_ACCESS_KEY=cluster-secret
      ;;
    filesystem)
      export CARGOHOLD_STORAGE_BACKEND=filesystem
      export CARGOHOLD_STORAGE_ROOT="$state/shared/storage"
      ;;
    *) die "CLUSTER_STORAGE must be s3 or filesystem, not $storage_kind" ;;
  esac

  local url="http://127.0.0.1:$lb" password admin
  # The administrator: CARGOHOLD_ADMIN_USER/PASSWORD when given, else admin and a new
  # random password.
  admin="${CARGOHOLD_ADMIN_USER:-admin}"
  password="${CARGOHOLD_ADMIN_PASSWORD:-$("$python" -c 'import secrets; print(secrets.token_urlsafe(18))')}"
  export CARGOHOLD_ADMIN_USER="$admin" CARGOHOLD_ADMIN_PASSWORD="$password"
  # Both replicas sign (when signing is on) with the same keys, and name the cluster's
  # address in emails and /network; nginx on loopback is the only trusted proxy.
  export CARGOHOLD_SIGNING_KEY_DIR="$state/shared/signing"
  export CARGOHOLD_SERVER_PUBLIC_URL="$url"
  export CARGOHOLD_SERVER_TRUSTED_PROXIES="127.0.0.1/32"
  export CARGOHOLD_SERVER_WORKERS="$workers"
  export CARGOHOLD_METRICS_ALLOW="127.0.0.0/8"

  # What a replica needs to start again (`restart N`), readable only by us.
  (umask 077; export -p | grep -E ' (CARGOHOLD_[A-Z_]+|PYTHONPATH)=' >"$state/replicas.env")
  printf '%s\n' "$python" >"$state/python"
  printf '%s\n%s\n' "$r1" "$r2" >"$state/replica-ports"

  log "replicas on 127.0.0.1:$r1 and 127.0.0.1:$r2"
  start_replica 1 "$r1"
  start_replica 2 "$r2"
  wait_ready "http://127.0.0.1:$r1/readyz" "replica 1" "$state/replica-1.pid"
  wait_ready "http://127.0.0.1:$r2/readyz" "replica 2" "$state/replica-2.pid"

  log "nginx on $url"
  local ngx="$state/nginx" user_line=""
  mkdir -p "$ngx"
  [ "$(id -u)" -ne 0 ] || user_line="user nobody nogroup;"
  sed -e "s|@PREFIX@|$ngx|g" -e "s|@TMP@|$side/nginx-tmp|g" -e "s|@USER@|$user_line|" -e "s|@LISTEN@|127.0.0.1:$lb|" \
    -e "s|@R1@|127.0.0.1:$r1|" -e "s|@R2@|127.0.0.1:$r2|" \
    "$root/scripts/cluster-nginx.conf" >"$ngx/nginx.conf"
  nginx -p "$ngx" -c "$ngx/nginx.conf" -e "$ngx/error.log"
  wait_ready "$url/readyz" "nginx" ""

  started=1
  cat >"$state/cluster.env" <<EOF
URL=$url
ADMIN_USER=$admin
ADMIN_PASSWORD=$password
REPLICA_1=http://127.0.0.1:$r1
REPLICA_2=http://127.0.0.1:$r2
DATABASE_URL=$CARGOHOLD_DATABASE_URL
STORAGE=$storage_kind
STATE=$state
EOF
  cat "$state/cluster.env"
}

restart() {
  local n="${1:-}" port
  case "$n" in 1|2) ;; *) die "usage: $0 restart 1|2" ;; esac
  [ -f "$state/replicas.env" ] || die "no cluster at $state"
  port="$(sed -n "${n}p" "$state/replica-ports")"
  stop_group "$state/replica-$n.pid"
  # shellcheck disable=SC1091
  . "$state/replicas.env"
  python="$(cat "$state/python")"
  start_replica "$n" "$port"
  wait_ready "http://127.0.0.1:$port/readyz" "replica $n" "$state/replica-$n.pid"
  log "replica $n is up again on 127.0.0.1:$port"
}

stop_replica() {
  case "${1:-}" in 1|2) ;; *) die "usage: $0 stop 1|2" ;; esac
  stop_group "$state/replica-$1.pid"
  log "replica $1 stopped"
}

case "${1:-}" in
  up) up ;;
  stop) stop_replica "${2:-}" ;;
  down) down ;;
  env) print_env ;;
  restart) restart "${2:-}" ;;
  *) echo "usage: $0 up|down|env|restart N|stop N" >&2; exit 2 ;;
esac
