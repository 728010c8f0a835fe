#!/usr/bin/env bash
# Run a command with the project's real servers up: a Kafka broker and a Neo4j
# server (both from Maven Central jars, see dev/kafka.sh and dev/neo4j.sh), and
# SeaweedFS serving S3 (built from the Go module proxy, see dev/seaweedfs.sh).
#   dev/with-services.sh pytest -q
# Servers that were already running are left running; the ones this script
# started are stopped when the command ends, whatever its outcome.
# OSMOSE_SERVICES="kafka neo4j seaweedfs" (default) chooses which ones.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SERVICES="${OSMOSE_SERVICES:-kafka neo4j seaweedfs}"
started=()

cleanup() {
  for svc in "${started[@]}"; do "$ROOT/dev/$svc.sh" down || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for svc in $SERVICES; do
  if "$ROOT/dev/$svc.sh" status >/dev/null 2>&1; then
    echo "$svc: already running, left as is"
    continue
  fi
  if "$ROOT/dev/$svc.sh" up; then
    started+=("$svc")
  elif [ -n "${CI:-}" ]; then
    echo "could not start $svc (see above); CI needs it" >&2; exit 2
  else
    echo "NOTE: could not start $svc (see above); the tests that need it will skip and say so" >&2
  fi
done

"$@"
