#!/usr/bin/env bash
# The local stack without Docker: provision, start and stop PostgreSQL/PostGIS, Redis,
# the REST API, the ETL service and a Dramatiq worker. Called by the Makefile.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LOCAL="$ROOT/.local"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
PGDATA="$LOCAL/pg"
LOGS="$LOCAL/log"
RUN="$LOCAL/run"

# Settings: the environment wins, then .env from an earlier run, then defaults.
if [[ -f "$ROOT/.env" ]]; then
  while IFS='=' read -r key value; do
    [[ -z "$key" || "$key" == \#* ]] && continue
    [[ -z "${!key:-}" ]] && export "$key=$value"
  done < "$ROOT/.env"
fi
PG_PORT="${PG_PORT:-55432}"
REDIS_PORT="${REDIS_PORT:-56379}"
API_PORT="${API_PORT:-8000}"
ETL_PORT="${ETL_PORT:-8001}"
DB_NAME="${DB_NAME:-maps}"
DB_USER="maps"
DB_PASSWORD="${DB_PASSWORD:-maps}"
SECRET_KEY="${SECRET_KEY:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
STAGING_DIR="${STAGING_DIR:-$ROOT/data/staging}"
UPLOAD_DIR="${UPLOAD_DIR:-$ROOT/data/uploads}"
MARTIN_PORT="${MARTIN_PORT:-3000}"
# Martin, built once per version with only the features we use, outside the work tree so
# that a fresh checkout (and every worktree) of the same machine reuses it.
MARTIN_VERSION=1.14.0
MARTIN_ROOT="${MARTIN_ROOT:-$HOME/.cache/maps-platform/martin-$MARTIN_VERSION}"
MARTIN_BIN="$MARTIN_ROOT/bin/martin"
TITILER_PORT="${TITILER_PORT:-9000}"
RASTER_DIR="${RASTER_DIR:-$ROOT/data/rasters}"

APT_PACKAGES=(postgresql-15 postgresql-15-postgis-3 redis-server libproj-dev pkg-config clang gdal-bin python3-venv chromium)

say() { printf '\033[1m==>\033[0m %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_pg() {
  # PostgreSQL refuses to run as root: run its programs as the postgres system user.
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_system() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    [[ $EUID -eq 0 ]] || die "missing Debian packages: ${missing[*]} (run as root, or install them)"
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if ! command -v cargo >/dev/null; then
    [[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  command -v cargo >/dev/null || die "cargo (Rust >= 1.80) is needed to build geo_engine: install rustup's toolchain"
}

install_python() {
  if [[ ! -x "$PY" ]]; then
    say "creating .venv"
    python3 -m venv "$VENV"
  fi
  local stamp="$VENV/.lock-installed"
  if [[ ! -f "$stamp" || requirements.lock -nt "$stamp" || pyproject.toml -nt "$stamp" ]]; then
    say "installing Python dependencies (requirements.lock)"
    "$VENV/bin/pip" install -q --disable-pip-version-check "uv==0.13.8"
    "$VENV/bin/uv" pip sync -q --python "$PY" requirements.lock
    "$VENV/bin/uv" pip install -q --python "$PY" --no-deps -e .
    # The sync removes what the lock does not name, geo_engine among them: build it again.
    rm -f "$VENV/.geo_engine-built"
    touch "$stamp"
  fi
}

build_engine() {
  local stamp="$VENV/.geo_engine-built"
  local newest
  newest=$(find geo_engine/src geo_engine/python geo_engine/Cargo.toml geo_engine/Cargo.lock geo_engine/pyproject.toml \
    -newer "$stamp" -print -quit 2>/dev/null || echo rebuild)
  if [[ ! -f "$stamp" || -n "$newest" ]] || ! "$PY" -c "import geo_engine._geo_engine" 2>/dev/null; then
    say "building geo_engine (release)"
    VIRTUAL_ENV="$VENV" "$VENV/bin/maturin" develop --release -q -m geo_engine/Cargo.toml >"$LOCAL/geo_engine-build.log" 2>&1 \
      || { tail -30 "$LOCAL/geo_engine-build.log"; die "geo_engine build failed (log: .local/geo_engine-build.log)"; }
    touch "$stamp"
  fi
}

# ---- Martin (vector tiles): built from crates.io, run over the project's database

build_martin() {
  if [[ -x "$MARTIN_BIN" ]] && "$MARTIN_BIN" --version 2>/dev/null | grep -q "$MARTIN_VERSION"; then
    return
  fi
  say "building Martin $MARTIN_VERSION into $MARTIN_ROOT (once; about 10 minutes on 2 cores)"
  nice cargo install --locked --quiet --version "$MARTIN_VERSION" --no-default-features \
    --features postgres --root "$MARTIN_ROOT" martin >"$LOGS/martin-build.log" 2>&1 \
    || { tail -30 "$LOGS/martin-build.log"; die "Martin build failed (log: .local/log/martin-build.log)"; }
}

martin_config() {
  # docker/martin.yaml, listening on loopback at MARTIN_PORT; DATABASE_URL comes from
  # Martin's environment, as in docker compose.
  sed "s|^listen_addresses:.*|listen_addresses: \"127.0.0.1:$MARTIN_PORT\"|" docker/martin.yaml \
    >"$LOCAL/martin.yaml"
}

start_martin() {
  martin_config
  DATABASE_URL="postgresql://$DB_USER:$DB_PASSWORD@127.0.0.1:$PG_PORT/$DB_NAME" \
    start_proc martin "$MARTIN_BIN" --config "$LOCAL/martin.yaml"
  for _ in $(seq 120); do
    curl -fsS "http://127.0.0.1:$MARTIN_PORT/health" >/dev/null 2>&1 && return 0
    proc_running martin || break
    sleep 0.5
  done
  tail -20 "$LOGS/martin.log"
  die "Martin did not start (log: .local/log/martin.log)"
}

# ---- the map page's vendor files: MapLibre GL JS from npm (web/package-lock.json)

install_web() {
  command -v npm >/dev/null || die "npm (Node.js) is needed for the map page: apt-get install npm"
  local vendor="$ROOT/api/static/map/vendor"
  local stamp="$ROOT/web/node_modules/.installed"
  if [[ ! -f "$stamp" || web/package-lock.json -nt "$stamp" ]]; then
    say "installing the map page's npm packages (web/package-lock.json)"
    (cd web && npm ci --silent --no-audit --no-fund) >"$LOGS/npm.log" 2>&1 \
      || { tail -20 "$LOGS/npm.log"; die "npm ci failed (log: .local/log/npm.log)"; }
    touch "$stamp"
  fi
  mkdir -p "$vendor"
  cp web/node_modules/maplibre-gl/dist/maplibre-gl.js web/node_modules/maplibre-gl/dist/maplibre-gl.css "$vendor/"
}

provision() {
  mkdir -p "$LOCAL" "$LOGS" "$RUN"
  install_system
  install_python
  build_engine
  build_martin
  install_web
}

pg_running() { as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }

start_postgres() {
  if [[ ! -f "$PGDATA/PG_VERSION" ]]; then
    say "initialising a private PostgreSQL cluster in .local/pg"
    mkdir -p "$PGDATA"
    [[ $EUID -eq 0 ]] && chown postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    local pwfile
    pwfile=$(mktemp)
    printf '%s\n' "$DB_PASSWORD" >"$pwfile"
    chmod 644 "$pwfile"
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U "$DB_USER" --pwfile="$pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$LOGS/initdb.log"
    rm -f "$pwfile"
    cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGDATA'
shared_buffers = 512MB
maintenance_work_mem = 512MB
max_wal_size = 4GB
synchronous_commit = off
# A single-node cluster without replicas or WAL archiving: a table created and loaded
# in one transaction (every import's partition) and its indexes skip the WAL.
wal_level = minimal
max_wal_senders = 0
CONF
  fi
  if pg_running; then
    say "PostgreSQL already running on port $PG_PORT"
  else
    say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -o "-p $PG_PORT" -l "$PGDATA/server.log" -w -t 60 start >/dev/null \
      || { tail -20 "$PGDATA/server.log"; die "PostgreSQL did not start (log: .local/pg/server.log)"; }
  fi
  psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1 \
    || psql_admin -qc "CREATE DATABASE \"$DB_NAME\" OWNER $DB_USER"
}

psql_admin() { as_pg psql -h "$PGDATA" -p "$PG_PORT" -U "$DB_USER" -d postgres -v ON_ERROR_STOP=1 "$@"; }

redis_running() { [[ -f "$RUN/redis.pid" ]] && kill -0 "$(cat "$RUN/redis.pid")" 2>/dev/null; }

start_redis() {
  if redis_running; then
    say "Redis already running on port $REDIS_PORT"
    return
  fi
  say "starting Redis on 127.0.0.1:$REDIS_PORT"
  mkdir -p "$LOCAL/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --dir "$LOCAL/redis" \
    --pidfile "$RUN/redis.pid" --logfile "$LOGS/redis.log" --save "" --appendonly no >/dev/null
  for _ in $(seq 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return
    sleep 0.1
  done
  die "Redis did not start (log: .local/log/redis.log)"
}

write_env() {
  cat >"$ROOT/.env" <<ENV
# Written by \`make up\` / \`make test\`: the settings of the local stack.
ENVIRONMENT=development
DATABASE_URL=postgresql://$DB_USER:$DB_PASSWORD@127.0.0.1:$PG_PORT/$DB_NAME
REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
ETL_SERVICE_URL=http://127.0.0.1:$ETL_PORT
API_URL=http://127.0.0.1:$API_PORT
API_PORT=$API_PORT
ETL_PORT=$ETL_PORT
MARTIN_PORT=$MARTIN_PORT
MARTIN_URL=http://127.0.0.1:$MARTIN_PORT
PG_PORT=$PG_PORT
REDIS_PORT=$REDIS_PORT
STAGING_DIR=$STAGING_DIR
UPLOAD_DIR=$UPLOAD_DIR
SECRET_KEY=$SECRET_KEY
TITILER_PORT=$TITILER_PORT
TITILER_URL=http://127.0.0.1:$TITILER_PORT
RASTER_DIR=$RASTER_DIR
ENV
}

migrate() {
  say "applying migrations"
  "$VENV/bin/alembic" -c alembic.ini upgrade head >"$LOGS/migrate.log" 2>&1 \
    || { cat "$LOGS/migrate.log"; die "migrations failed"; }
}

proc_running() { [[ -f "$RUN/$1.pid" ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start_proc() {
  local name=$1
  shift
  if proc_running "$name"; then
    say "$name already running (pid $(cat "$RUN/$name.pid"))"
    return
  fi
  say "starting $name (log: .local/log/$name.log)"
  setsid nohup "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

wait_healthy() {
  local url=$1
  for _ in $(seq 120); do
    if curl -fsS "$url" 2>/dev/null | grep -q '"healthy"'; then return 0; fi
    sleep 0.5
  done
  die "$url is not healthy (see .local/log/)"
}

up() {
  provision
  start_postgres
  start_redis
  write_env
  migrate
  mkdir -p "$STAGING_DIR" "$UPLOAD_DIR"
  start_martin
  start_proc api "$VENV/bin/uvicorn" --factory api.main:create_app --host 127.0.0.1 --port "$API_PORT"
  start_proc etl "$VENV/bin/uvicorn" --factory pipeline.app:create_app --host 127.0.0.1 --port "$ETL_PORT"
  # Supervised: started again (with backoff) whenever it exits, as systemd would.
  start_proc worker "$PY" -m pipeline.supervisor --name worker --run-dir "$RUN" -- \
    "$VENV/bin/dramatiq" pipeline.worker --processes 1 --threads 2
  start_titiler
  wait_healthy "http://127.0.0.1:$API_PORT/health"
  wait_healthy "http://127.0.0.1:$ETL_PORT/health"
  wait_healthy "http://127.0.0.1:$TITILER_PORT/health"
  cat <<MSG

The stack is up:
  REST API       http://127.0.0.1:$API_PORT/api/v1/   (docs: http://127.0.0.1:$API_PORT/docs)
  ETL service    http://127.0.0.1:$ETL_PORT/          (docs: http://127.0.0.1:$ETL_PORT/docs)
  the map        http://127.0.0.1:$API_PORT/map/
  Martin         http://127.0.0.1:$MARTIN_PORT/        (tiles for the API; clients use /api/v1/tiles/)
  TiTiler        http://127.0.0.1:$TITILER_PORT/cog/   (raster store: $RASTER_DIR; tiles via the API)
  PostgreSQL     postgresql://$DB_USER:***@127.0.0.1:$PG_PORT/$DB_NAME
  Redis          redis://127.0.0.1:$REDIS_PORT/0
  logs           .local/log/    settings  .env
Next: .venv/bin/maps users create --email you@example.org --password '...' --superuser
      .venv/bin/maps login --email you@example.org
      .venv/bin/maps import data/samples/cities.zip --name demo --wait
MSG
}

# TiTiler, restricted to the raster store (pipeline/titiler_app.py), for the API's raster tiles.
start_titiler() {
  mkdir -p "$RASTER_DIR"
  start_proc titiler env RASTER_DIR="$RASTER_DIR" GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR GDAL_PAM_ENABLED=NO GDAL_CACHEMAX=200 \
    "$VENV/bin/uvicorn" --factory pipeline.titiler_app:create_app --host 127.0.0.1 --port "$TITILER_PORT"
}

stop_titiler() { stop_proc titiler; }

status_titiler() {
  if proc_running titiler; then echo "titiler: running on $TITILER_PORT (pid $(cat "$RUN/titiler.pid"))"; else echo "titiler: stopped"; fi
}

stop_proc() {
  local name=$1
  if proc_running "$name"; then
    local pid
    pid=$(cat "$RUN/$name.pid")
    say "stopping $name (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$name.pid"
}

down() {
  stop_titiler
  stop_proc worker
  stop_proc etl
  stop_proc api
  stop_proc martin
  if redis_running; then
    say "stopping Redis"
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || kill "$(cat "$RUN/redis.pid")" 2>/dev/null || true
  fi
  rm -f "$RUN/redis.pid"
  if [[ -f "$PGDATA/PG_VERSION" ]] && pg_running; then
    say "stopping PostgreSQL"
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
  fi
}

# The supervised worker's own state: its pid, restarts, last exit (pipeline/supervisor.py).
supervisor_status() {
  local file="$RUN/$1.supervisor.json"
  proc_running "$1" && [[ -f "$file" ]] || return 0
  "$PY" -c 'import json, sys; print("{name} (supervised): {state}, pid {child_pid}, restarts {restarts}, last exit {last_exit} at {last_exit_at}".format(**json.load(open(sys.argv[1]))))' "$file"
}

status() {
  for name in api etl worker martin; do
    if proc_running "$name"; then echo "$name: running (pid $(cat "$RUN/$name.pid"))"; else echo "$name: stopped"; fi
  done
  status_titiler
  supervisor_status worker
  if redis_running; then echo "redis: running on $REDIS_PORT"; else echo "redis: stopped"; fi
  if [[ -f "$PGDATA/PG_VERSION" ]] && pg_running; then echo "postgres: running on $PG_PORT"; else echo "postgres: stopped"; fi
}

# `make test`: the same provisioning and servers; tests start their own API, ETL and worker.
test_env() {
  provision
  start_postgres
  start_redis
  write_env
}

case "${1:-}" in
  db) mkdir -p "$LOCAL" "$LOGS" "$RUN"; start_postgres; start_redis; write_env ;;
  provision) provision ;;
  up) up ;;
  down) down ;;
  status) status ;;
  test-env) test_env ;;
  migrate) migrate ;;
  *) die "usage: scripts/stack.sh provision|up|down|status|test-env|migrate" ;;
esac
