#!/usr/bin/env bash
# A single Neo4j Community 5.x server on 127.0.0.1 for development and tests.
#   dev/neo4j.sh up      fetch the jars (once, cached in .cache/neo4j), set the initial password, start, wait for Bolt
#   dev/neo4j.sh down    stop it cleanly (SIGTERM, then wait for a controlled shutdown)
#   dev/neo4j.sh status
#   dev/neo4j.sh reset   stop it and delete its data (e.g. to change the password)
# Settings: NEO4J_BOLT_PORT (default 7687), NEO4J_HTTP_PORT (unset = HTTP off; else the Browser/HTTP API on
# 127.0.0.1:port), OSMOSE_GRAPH_PASSWORD (default osmose-dev-password: development only, the chart never
# defaults a password), NEO4J_HEAP (1g), NEO4J_PAGECACHE (256m), OSMOSE_CACHE (default ./.cache).
# The user is `neo4j`. Data persists across restarts; tests isolate themselves by random tenant names.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=dev/lib.sh
. "$ROOT/dev/lib.sh"
CACHE="${OSMOSE_CACHE:-$ROOT/.cache}"
BASE="$CACHE/neo4j"
LIB="$BASE/lib"
HOME_DIR="$BASE/home"
CONF="$HOME_DIR/conf"
RUN="$HOME_DIR/run"
PIDFILE="$RUN/neo4j.pid"
PORT="${NEO4J_BOLT_PORT:-7687}"
HTTP_PORT="${NEO4J_HTTP_PORT:-}"
PASSWORD="${OSMOSE_GRAPH_PASSWORD:-osmose-dev-password}"
HEAP="${NEO4J_HEAP:-1g}"
PAGECACHE="${NEO4J_PAGECACHE:-256m}"
# What the `neo4j` launcher script would pass on Java 17 (direct buffers, native file access).
JVM_OPTS=(-Xms512m "-Xmx$HEAP" -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -Dlog4j2.disable.jmx=true
  --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED
  --enable-native-access=ALL-UNNAMED)

die() { echo "neo4j: $*" >&2; exit 1; }

fetch() {
  if [ -f "$LIB/.complete" ]; then return; fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Neo4j's jars from Maven Central"
  command -v java >/dev/null || die "Java 17+ is needed to run Neo4j 5"
  echo "neo4j: fetching jars from Maven Central into $LIB (once)"
  mkdir -p "$LIB"
  mvn -B -q -f "$ROOT/dev/neo4j/pom.xml" dependency:copy-dependencies -DoutputDirectory="$LIB" \
    >"$BASE/mvn.log" 2>&1 || { cat "$BASE/mvn.log" >&2; die "fetching Neo4j's jars with Maven failed"; }
  touch "$LIB/.complete"
}

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_config() {
  mkdir -p "$CONF" "$RUN"
  local http="server.http.enabled=false"
  if [ -n "$HTTP_PORT" ]; then http="server.http.enabled=true
server.http.listen_address=127.0.0.1:$HTTP_PORT"; fi
  cat > "$CONF/neo4j.conf" <<CONF
server.default_listen_address=127.0.0.1
server.bolt.enabled=true
server.bolt.listen_address=127.0.0.1:$PORT
server.bolt.advertised_address=127.0.0.1:$PORT
server.bolt.tls_level=DISABLED
$http
server.https.enabled=false
dbms.security.auth_enabled=true
server.memory.pagecache.size=$PAGECACHE
dbms.usage_report.enabled=false
db.tx_log.rotation.retention_policy=100M size
db.tx_log.preallocate=false
CONF
}

# The initial password takes effect only before the first start, so the password a data
# folder was initialised with is remembered (as a hash) and a different one is refused.
set_password() {
  local marker="$HOME_DIR/data/.password.sha256" wanted
  wanted=$(printf '%s' "$PASSWORD" | sha256sum | cut -d' ' -f1)
  if [ -f "$marker" ]; then
    [ "$(cat "$marker")" = "$wanted" ] && return
    die "the data in $HOME_DIR/data was initialised with another password than OSMOSE_GRAPH_PASSWORD; run \`dev/neo4j.sh reset\` to start afresh"
  fi
  NEO4J_HOME="$HOME_DIR" NEO4J_CONF="$CONF" java -Xmx256m -cp "$LIB/*" org.neo4j.server.startup.Neo4jAdminCommand \
    dbms set-initial-password "$PASSWORD" >"$RUN/admin.log" 2>&1 \
    || { cat "$RUN/admin.log" >&2; die "setting the initial password failed"; }
  mkdir -p "$HOME_DIR/data"
  echo "$wanted" > "$marker"
}

up() {
  if running; then echo "neo4j: already running (pid $(cat "$PIDFILE")), Bolt on 127.0.0.1:$PORT"; return; fi
  fetch
  write_config
  if port_open "$PORT"; then die "127.0.0.1:$PORT is already taken by another process (set NEO4J_BOLT_PORT)"; fi
  set_password
  # Readiness is read from neo4j.log ("Started."): start each run with a fresh one.
  if [ -f "$HOME_DIR/logs/neo4j.log" ]; then mv "$HOME_DIR/logs/neo4j.log" "$HOME_DIR/logs/neo4j.log.1"; fi
  NEO4J_HOME="$HOME_DIR" NEO4J_CONF="$CONF" nohup java "${JVM_OPTS[@]}" -cp "$LIB/*" org.neo4j.server.CommunityEntryPoint \
    --home-dir="$HOME_DIR" --config-dir="$CONF" >"$RUN/stdout.log" 2>&1 &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 240); do
    if port_open "$PORT" && grep -q "Started." "$HOME_DIR/logs/neo4j.log" 2>/dev/null; then
      echo "neo4j: ready, Bolt on 127.0.0.1:$PORT, user neo4j (pid $(cat "$PIDFILE"), logs in $HOME_DIR/logs)"
      return
    fi
    running || { tail -20 "$RUN/stdout.log" "$HOME_DIR/logs/neo4j.log" 2>/dev/null; rm -f "$PIDFILE"; die "server exited during start-up"; }
    sleep 0.5
  done
  tail -20 "$RUN/stdout.log" "$HOME_DIR/logs/neo4j.log" 2>/dev/null
  die "Bolt did not answer on 127.0.0.1:$PORT within 120 s (logs in $HOME_DIR/logs); \`dev/neo4j.sh down\` stops it"
}

down() { stop_pidfile neo4j "$PIDFILE" 60; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if running; then echo "neo4j: running (pid $(cat "$PIDFILE")), Bolt on 127.0.0.1:$PORT"; else echo "neo4j: not running"; exit 1; fi ;;
  reset) down; rm -rf "$HOME_DIR/data" "$HOME_DIR/logs"; echo "neo4j: data deleted" ;;
  *) echo "usage: $0 up|down|status|reset" >&2; exit 2 ;;
esac
