#!/usr/bin/env bash
# Local model servers for development: an OpenAI-compatible chat server (vLLM-like; serves the LLM
# and the vision LLM) and a TEI-compatible embeddings server, both from loadtests/fakeservers.
#   dev/backends.sh up       start both on fixed ports, wait until /health answers, print the settings
#   dev/backends.sh down     stop them (SIGTERM, then wait)
#   dev/backends.sh status
# Settings: BACKENDS_LLM_PORT (default 8000), BACKENDS_TEI_PORT (8080), BACKENDS_HOST (127.0.0.1),
# BACKENDS_CHAT_ARGS / BACKENDS_TEI_ARGS (extra flags, e.g. "--slots 4 --fault 500:rate=0.1"),
# OSMOSE_CACHE (default ./.cache). Logs and pidfiles live in $OSMOSE_CACHE/backends.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=dev/lib.sh
. "$ROOT/dev/lib.sh"
CACHE="${OSMOSE_CACHE:-$ROOT/.cache}"
RUN="$CACHE/backends"
HOST="${BACKENDS_HOST:-127.0.0.1}"
LLM_PORT="${BACKENDS_LLM_PORT:-8000}"
TEI_PORT="${BACKENDS_TEI_PORT:-8080}"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY="$(command -v python3)"

die() { echo "backends: $*" >&2; exit 1; }

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

healthy() { "$PY" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" "$1" 2>/dev/null; }

start() {  # name port args...
  local name=$1 port=$2; shift 2
  if running "$name"; then echo "backends: $name already running (pid $(cat "$RUN/$name.pid"))"; return; fi
  healthy "http://$HOST:$port/health" && die "something already answers on http://$HOST:$port (stop it or set BACKENDS_*_PORT)"
  cd "$ROOT"
  nohup "$PY" -m loadtests.fakeservers "$name" --host "$HOST" --port "$port" "$@" >"$RUN/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
  for _ in $(seq 1 100); do
    if healthy "http://$HOST:$port/health"; then return; fi
    running "$name" || { tail -20 "$RUN/$name.log" >&2; die "$name exited during start-up (port $port busy?)"; }
    sleep 0.1
  done
  die "$name did not answer on http://$HOST:$port/health within 10 s (log: $RUN/$name.log)"
}

stop() { stop_pidfile "backends: $1" "$RUN/$1.pid" 5; }  # name

up() {
  mkdir -p "$RUN"
  # shellcheck disable=SC2086  # extra flags are word-split on purpose
  start chat "$LLM_PORT" ${BACKENDS_CHAT_ARGS:-}
  # shellcheck disable=SC2086
  start tei "$TEI_PORT" ${BACKENDS_TEI_ARGS:-}
  cat <<EOF
backends: chat (LLM + vision, OpenAI-compatible) on http://$HOST:$LLM_PORT/v1, TEI on http://$HOST:$TEI_PORT
          metrics: http://$HOST:$LLM_PORT/metrics, http://$HOST:$TEI_PORT/metrics; logs in $RUN
          faults:  $PY -m loadtests.fakeservers faults http://$HOST:$LLM_PORT 429:count=5:retry_after=2
Use them with:
  export OSMOSE_LLM_URL=http://$HOST:$LLM_PORT/v1 OSMOSE_VISION_URL=http://$HOST:$LLM_PORT/v1 OSMOSE_TEI_URL=http://$HOST:$TEI_PORT
EOF
}

status() {
  for name in chat tei; do
    if running "$name"; then echo "backends: $name running (pid $(cat "$RUN/$name.pid"))"; else echo "backends: $name not running"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) stop chat; stop tei ;;
  status) status ;;
  *) die "usage: dev/backends.sh up|down|status" ;;
esac
