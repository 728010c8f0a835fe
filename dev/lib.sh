# Shared by the dev/*.sh scripts (sourced, not run).

# stop_pidfile NAME PIDFILE SECONDS: SIGTERM the process in PIDFILE, wait up to SECONDS for a
# clean exit, then SIGKILL; the pidfile is removed either way.
stop_pidfile() {
  local name=$1 pidfile=$2 seconds=$3 pid
  if [ ! -f "$pidfile" ] || ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "$name: not running"; rm -f "$pidfile"; return 0
  fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid"
  for _ in $(seq 1 $((seconds * 2))); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; echo "$name: stopped"; return 0; }
    sleep 0.5
  done
  echo "$name: no clean shutdown within $seconds s, killing" >&2
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}
