#!/usr/bin/env bash
# The local stack: Postgres, Redis, Kafka (KRaft) and every twofold service, in the
# background, with state in .twofold/ and downloads in .cache/. Idempotent: `up` twice
# changes nothing; services restart only when their code changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="$ROOT/.twofold"
CACHE="$ROOT/.cache"
LOGS="$STATE/logs"
RUN="$STATE/run"
ENV_FILE="$STATE/local.env"
SERVICES=(verifier lockout-detector session-broadcaster audit-sink api)
declare -A METRICS_PORT=([api]=9464 [verifier]=9465 [lockout-detector]=9466 [session-broadcaster]=9467 [audit-sink]=9468)

say() { printf '\033[1m[stack]\033[0m %s\n' "$*"; }
fail() { printf '\033[31m[stack] FAILED:\033[0m %s\n' "$*" >&2; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
wait_port() { # port seconds what logfile
  local i
  for ((i = 0; i < $2 * 4; i++)); do port_open "$1" && return 0; sleep 0.25; done
  fail "$3 did not open port $1 within $2 s; see ${4:-its log}"
}
apt_install() {
  command -v apt-get >/dev/null || fail "$1 is missing and apt-get is not available to install it"
  say "installing $* from Debian (apt-get)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >"$LOGS/apt.log" 2>&1 ||
    fail "apt-get install $* failed; see $LOGS/apt.log"
}

write_env() {
  [ -f "$ENV_FILE" ] && return 0
  local admin master
  admin="tfa_$(openssl rand -hex 24)"
  master="$(openssl rand -base64 32)"
  cat >"$ENV_FILE" <<ENV
# Written by deploy/local/stack.sh for the local stack. Not for production.
KAFKA_BROKERS=127.0.0.1:9092
DATABASE_URL=postgres://twofold:twofold@127.0.0.1:5432/twofold
REDIS_URL=redis://127.0.0.1:6379
TWOFOLD_ADMIN_KEY=$admin
TWOFOLD_MASTER_KEYS=local1:$master
TWOFOLD_ACTIVE_KEY_ID=local1
TWOFOLD_API_URL=http://127.0.0.1:8080
TWOFOLD_PUBLIC_URL=http://127.0.0.1:8080
LOG_LEVEL=info
ENV
  say "wrote $ENV_FILE (admin key, master key)"
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
up_postgres() {
  if port_open 5432; then
    say "postgres: using the server already on 5432"
  else
    [ -n "$(pg_bin)" ] || apt_install postgresql
    local bin; bin="$(pg_bin)"
    [ -x "$bin/pg_ctl" ] || fail "postgres binaries not found under /usr/lib/postgresql/*/bin"
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
    # Postgres refuses to run as root; its data must be reachable by the postgres user. A
    # checkout under a private home (/root) is not, so data goes to /var/lib/twofold then.
    local data="$STATE/pgdata" pglog="$LOGS/postgres.log"
    if ! runuser -u postgres -- test -x "$STATE"; then
      local alt; alt="/var/lib/twofold/$(printf '%s' "$ROOT" | sha1sum | cut -c1-12)"
      mkdir -p "$alt" && chown postgres "$alt"
      data="$alt/pgdata" pglog="$alt/postgres.log"
      ln -sf "$pglog" "$LOGS/postgres.log"
      echo "$data" >"$RUN/pgdata.path"
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
      mkdir -p "$data" && chown postgres "$data" && chmod 700 "$data"
      runuser -u postgres -- "$bin/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 >"$LOGS/postgres-init.log" 2>&1 || fail "initdb failed; see $LOGS/postgres-init.log"
    fi
    chown postgres "$LOGS"
    runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$pglog" -w -t 60 \
      -o "-p 5432 -c listen_addresses=127.0.0.1 -k /tmp -c max_connections=200 -c shared_buffers=512MB" start >/dev/null ||
      fail "postgres did not start; see $pglog"
    touch "$RUN/postgres.ours"
    say "postgres: started on 5432 (data in $data)"
  fi
  # Role and database for twofold, and the analysts' read-only role (created here so
  # migrations can grant to it); harmless when they exist.
  local psql=(psql -h /tmp -p 5432 -U postgres -v ON_ERROR_STOP=1 -qAt)
  if [ -f "$RUN/postgres.ours" ]; then
    "${psql[@]}" -d postgres >/dev/null <<'SQL' || fail "could not create the twofold role and database"
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'twofold') THEN CREATE ROLE twofold LOGIN PASSWORD 'twofold' CREATEDB; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'twofold_analyst') THEN CREATE ROLE twofold_analyst LOGIN PASSWORD 'analyst'; END IF;
END $$;
SELECT 'CREATE DATABASE twofold OWNER twofold' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'twofold')\gexec
SQL
  else
    check_reused_postgres "$(sed -n 's/^DATABASE_URL=//p' "$ENV_FILE")"
  fi
}

# A Postgres this script did not start gets no role or database from it (it has no superuser
# login there). When twofold cannot log in with DATABASE_URL, stop and print the SQL that
# creates them; when only the analysts' role is missing, print that and go on.
check_reused_postgres() { # database-url
  local out rc=0
  out="$(cd "$ROOT" && node --input-type=module - "$1" 2>&1 <<'JS'
  import pg from 'pg';
  const url = new URL(process.argv[2]);
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  const database = decodeURIComponent(url.pathname.slice(1)) || user;
  const ident = (s) => (/^[a-z_][a-z0-9_]*$/.test(s) ? s : `"${s.replaceAll('"', '""')}"`);
  const literal = (s) => `'${s.replaceAll("'", "''")}'`;
  const analyst = "CREATE ROLE twofold_analyst LOGIN PASSWORD 'analyst';";
  const client = new pg.Client({ connectionString: process.argv[2], connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (err) {
    console.log([
      `twofold cannot log in to the Postgres already on 5432 as ${user} (${err.message}).`,
      'This script did not start that server, so it created neither the role nor the database.',
      'As a superuser of that server (e.g. sudo -u postgres psql), run:',
      `    CREATE ROLE ${ident(user)} LOGIN PASSWORD ${literal(password)} CREATEDB;`,
      `    CREATE DATABASE ${ident(database)} OWNER ${ident(user)};`,
      `    ${analyst}`,
      `(if the role exists: ALTER ROLE ${ident(user)} LOGIN PASSWORD ${literal(password)};)`,
      'then npm run stack:up again. Or stop that server: the stack then starts its own.',
    ].join('\n'));
    process.exit(1);
  }
  const { rows } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', ['twofold_analyst']);
  await client.end();
  if (rows.length === 0) {
    console.log([
      "the Postgres on 5432 has no twofold_analyst role, the analysts' read-only login",
      '(docs/analysts.md). As a superuser of that server, before the first migration, run:',
      `    ${analyst}`,
    ].join('\n'));
    process.exit(3);
  }
JS
)" || rc=$?
  case "$rc" in
    0) ;;
    3) say "postgres: $out" ;;
    *) fail "$out" ;;
  esac
}

up_redis() {
  if port_open 6379; then say "redis: using the server already on 6379"; return; fi
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p "$STATE/redis"
  redis-server --port 6379 --bind 127.0.0.1 --daemonize yes --pidfile "$RUN/redis.pid" \
    --logfile "$LOGS/redis.log" --dir "$STATE/redis" --save "" --appendonly yes --appendfsync everysec \
    --maxmemory-policy noeviction >/dev/null || fail "redis-server did not start; see $LOGS/redis.log"
  wait_port 6379 20 redis "$LOGS/redis.log"
  say "redis: started on 6379"
}

up_kafka() {
  if port_open 9092; then say "kafka: using the broker already on 9092"; return; fi
  command -v java >/dev/null || fail "java is missing (Kafka needs Java 17+): apt-get install openjdk-17-jre-headless"
  local libs="$CACHE/kafka/libs"
  if ! ls "$libs"/kafka_2.13-*.jar >/dev/null 2>&1; then
    command -v mvn >/dev/null || fail "mvn is missing: it fetches the Kafka broker from Maven Central (apt-get install maven)"
    say "kafka: fetching the broker jars from Maven Central (once, into .cache/kafka)"
    mvn -q -B -f "$ROOT/deploy/local/kafka/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$libs" -DincludeScope=runtime >"$LOGS/kafka-fetch.log" 2>&1 ||
      fail "download of the Kafka broker from Maven Central was refused or failed; see $LOGS/kafka-fetch.log"
  fi
  local conf="$STATE/kafka/server.properties" data="$STATE/kafka/data"
  mkdir -p "$STATE/kafka"
  { cat "$ROOT/deploy/local/kafka/server.properties"; echo "log.dirs=$data"; } >"$conf"
  local java=(java -Xms256m -Xmx1g -XX:+UseG1GC -Dlog4j2.configurationFile="$ROOT/deploy/local/kafka/log4j2.yaml" -cp "$libs/*")
  if [ ! -f "$data/meta.properties" ]; then
    "${java[@]}" kafka.tools.StorageTool format -t "$(cat "$STATE/kafka/cluster-id" 2>/dev/null || "${java[@]}" kafka.tools.StorageTool random-uuid | tee "$STATE/kafka/cluster-id")" \
      -c "$conf" >"$LOGS/kafka-format.log" 2>&1 || fail "formatting KRaft storage failed; see $LOGS/kafka-format.log"
  fi
  setsid nohup "${java[@]}" kafka.Kafka "$conf" </dev/null >>"$LOGS/kafka.log" 2>&1 &
  echo $! >"$RUN/kafka.pid"
  disown
  wait_port 9092 90 kafka "$LOGS/kafka.log"
  say "kafka: started on 9092 (KRaft, one node)"
}

code_hash() {
  (cd "$ROOT" && find libs services -path '*/node_modules' -prune -o -path '*/dist' -prune -o \
    -type f \( -name '*.ts' -o -name '*.sql' -o -name 'package.json' \) -print | sort | xargs cat | sha1sum | cut -c1-12)
}

up_services() {
  local hash; hash="$(code_hash)"
  set -a; . "$ENV_FILE"; set +a
  local svc started=()
  for svc in "${SERVICES[@]}"; do
    if alive "$RUN/$svc.pid" && [ "$(cat "$RUN/$svc.hash" 2>/dev/null)" = "$hash" ]; then continue; fi
    stop_pid "$RUN/$svc.pid" "$svc"
    cd "$ROOT"
    METRICS_PORT="${METRICS_PORT[$svc]}" OTEL_SERVICE_NAME="twofold-$svc" setsid nohup node \
      --conditions=twofold-source --import tsx --import @twofold/telemetry/register \
      "services/$svc/src/main.ts" </dev/null >>"$LOGS/$svc.log" 2>&1 &
    echo $! >"$RUN/$svc.pid"
    disown
    echo "$hash" >"$RUN/$svc.hash"
    started+=("$svc")
  done
  [ ${#started[@]} -eq 0 ] && { say "services: all running, code unchanged"; return; }
  for svc in "${started[@]}"; do
    local port="${METRICS_PORT[$svc]}" i ok=
    [ "$svc" = api ] && port=8080
    for ((i = 0; i < 240; i++)); do
      if curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ok=1; break; fi
      alive "$RUN/$svc.pid" || break
      sleep 0.25
    done
    [ -n "$ok" ] || { tail -n 30 "$LOGS/$svc.log" >&2; fail "$svc did not become ready on :$port; see $LOGS/$svc.log"; }
  done
  say "services: started ${started[*]} (logs in $LOGS)"
}

stop_pid() { # pidfile name
  alive "$1" || { rm -f "$1"; return 0; }
  local pid i; pid="$(cat "$1")"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 120; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && { say "$2 did not stop in 30 s; killing"; kill -KILL "$pid" 2>/dev/null || true; }
  rm -f "$1"
}

cmd_up() {
  mkdir -p "$LOGS" "$RUN" "$CACHE"
  [ -d "$ROOT/node_modules" ] || (cd "$ROOT" && say "installing npm packages (npm ci)" && npm ci --no-audit --no-fund >"$LOGS/npm.log" 2>&1) ||
    fail "npm ci failed; see $LOGS/npm.log"
  write_env
  up_postgres
  up_redis
  up_kafka
  (cd "$ROOT" && set -a && . "$ENV_FILE" && set +a && node --conditions=twofold-source --import tsx deploy/local/bootstrap.ts) ||
    fail "bootstrap (topics, migrations) failed; see the message above"
  up_services
  say "ready: api on http://127.0.0.1:8080 (docs at /docs); settings in .twofold/local.env"
}

cmd_down() {
  local svc
  for svc in "${SERVICES[@]}"; do stop_pid "$RUN/$svc.pid" "$svc"; done
  stop_pid "$RUN/kafka.pid" kafka
  if alive "$RUN/redis.pid"; then stop_pid "$RUN/redis.pid" redis; fi
  if [ -f "$RUN/postgres.ours" ]; then
    runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$(cat "$RUN/pgdata.path" 2>/dev/null || echo "$STATE/pgdata")" -m fast stop >/dev/null 2>&1 || true
    rm -f "$RUN/postgres.ours"
  fi
  say "stopped (state kept in .twofold/; delete it for a clean slate)"
}

cmd_status() {
  local p
  for p in 5432:postgres 6379:redis 9092:kafka 8080:api; do
    port_open "${p%%:*}" && say "${p#*:}: up (:${p%%:*})" || say "${p#*:}: down"
  done
  local svc
  for svc in "${SERVICES[@]}"; do alive "$RUN/$svc.pid" && say "$svc: running (pid $(cat "$RUN/$svc.pid"))" || say "$svc: not running"; done
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  restart-service) mkdir -p "$LOGS" "$RUN"; stop_pid "$RUN/$2.pid" "$2"; up_services ;;
  # The tests' independent OTP implementation (oathtool, from Debian).
  test-clients) # oathtool: independent TOTP codes; openssl: the TLS broker's certificates (kafka-secure test)
    mkdir -p "$LOGS"
    command -v oathtool >/dev/null || apt_install oathtool
    command -v openssl >/dev/null || apt_install openssl ;;
  *) echo "usage: stack.sh up|down|status|restart-service <name>|test-clients" >&2; exit 2 ;;
esac
