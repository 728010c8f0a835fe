#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft mode) on 127.0.0.1 for development and tests.
#   dev/kafka.sh up      fetch the jars (once, cached in .cache/kafka), format storage, start, wait until it accepts connections
#   dev/kafka.sh down    stop it cleanly (SIGTERM, then wait for a controlled shutdown)
#   dev/kafka.sh status
# Settings: KAFKA_PORT (default 9092), KAFKA_CONTROLLER_PORT (9093), OSMOSE_CACHE (default ./.cache).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=dev/lib.sh
. "$ROOT/dev/lib.sh"
CACHE="${OSMOSE_CACHE:-$ROOT/.cache}"
HOME_DIR="$CACHE/kafka"
LIB="$HOME_DIR/lib"
RUN="$HOME_DIR/run"
PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
PIDFILE="$RUN/kafka.pid"

die() { echo "kafka: $*" >&2; exit 1; }

fetch() {
  if [ -f "$LIB/.complete" ]; then return; fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka's jars from Maven Central"
  command -v java >/dev/null || die "Java 17+ is needed to run the broker"
  echo "kafka: fetching jars from Maven Central into $LIB"
  mkdir -p "$LIB"
  mvn -B -q -f "$ROOT/dev/kafka/pom.xml" dependency:copy-dependencies -DoutputDirectory="$LIB" \
    >"$HOME_DIR/mvn.log" 2>&1 || { cat "$HOME_DIR/mvn.log" >&2; die "fetching Kafka's jars with Maven failed"; }
  touch "$LIB/.complete"
}

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

up() {
  if running; then echo "kafka: already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"; return; fi
  fetch
  mkdir -p "$RUN"
  cat > "$RUN/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$RUN/data
num.partitions=6
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
  cat > "$RUN/log4j.properties" <<'PROPS'
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=${kafka.logs.dir}/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
PROPS
  local jvm=(-Xms256m -Xmx512m -Dkafka.logs.dir="$RUN" -Dlog4j.configuration="file:$RUN/log4j.properties")
  if [ ! -f "$RUN/data/meta.properties" ]; then
    local cluster_id
    cluster_id=$(java "${jvm[@]}" -cp "$LIB/*" kafka.tools.StorageTool random-uuid)
    java "${jvm[@]}" -cp "$LIB/*" kafka.tools.StorageTool format -t "$cluster_id" -c "$RUN/server.properties" >/dev/null
  fi
  nohup java "${jvm[@]}" -cp "$LIB/*" kafka.Kafka "$RUN/server.properties" >"$RUN/stdout.log" 2>&1 &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 120); do
    if port_open; then echo "kafka: ready on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"), logs in $RUN)"; return; fi
    running || { tail -20 "$RUN/stdout.log" "$RUN/server.log" 2>/dev/null; die "broker exited during start-up"; }
    sleep 0.5
  done
  die "broker did not accept connections on 127.0.0.1:$PORT within 60 s (logs in $RUN)"
}

down() { stop_pidfile kafka "$PIDFILE" 30; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if running; then echo "kafka: running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"; else echo "kafka: not running"; exit 1; fi ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
