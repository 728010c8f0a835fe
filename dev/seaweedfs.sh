#!/usr/bin/env bash
# A single-node SeaweedFS (Apache-2.0) serving S3 on 127.0.0.1, for the S3 blob store's tests and for
# trying the distributed mode with a bucket instead of a shared folder.
#   dev/seaweedfs.sh up      build `weed` from the Go module proxy (once, cached in .cache/seaweedfs/bin;
#                            several minutes on 2 cores), start it, wait until S3 answers, print the settings
#   dev/seaweedfs.sh down    stop it cleanly
#   dev/seaweedfs.sh status
# Settings: SEAWEEDFS_S3_PORT (default 8333), SEAWEEDFS_MASTER_PORT (9333), SEAWEEDFS_VOLUME_PORT (9340),
# SEAWEEDFS_FILER_PORT (8888); each also listens on its port + 10000 for gRPC. OSMOSE_CACHE (./.cache).
# The S3 identity is osmose-dev / osmose-dev-secret (SEAWEEDFS_ACCESS_KEY, SEAWEEDFS_SECRET_KEY), with
# the buckets `osmose` and `osmose-test` created.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=dev/lib.sh
. "$ROOT/dev/lib.sh"
# tags of SeaweedFS are not semver, so the module proxy serves pseudo-versions only; this one is
# the release of 2026-11-09.
VERSION="v0.0.0-20261109003541-7506e5f91cd6"
MODULE="github.com/seaweedfs/seaweedfs"
CACHE="${OSMOSE_CACHE:-$ROOT/.cache}"
HOME_DIR="$CACHE/seaweedfs"
BIN="$HOME_DIR/bin/weed"
RUN="$HOME_DIR/run"
DATA="$HOME_DIR/data"
PIDFILE="$RUN/weed.pid"
S3_PORT="${SEAWEEDFS_S3_PORT:-8333}"
MASTER_PORT="${SEAWEEDFS_MASTER_PORT:-9333}"
VOLUME_PORT="${SEAWEEDFS_VOLUME_PORT:-9340}"
FILER_PORT="${SEAWEEDFS_FILER_PORT:-8888}"
ACCESS_KEY="${SEAWEEDFS_ACCESS_KEY:-osmose-dev}"
SECRET_KEY="${SEAWEEDFS_SECRET_KEY:-osmose-dev-secret}"
BUCKETS="osmose osmose-test"

die() { echo "seaweedfs: $*" >&2; exit 1; }

# `go install weed@VERSION` refuses the module (its go.mod has a replace directive), so the module is
# downloaded and built in place, with its own go.mod and go.sum: the same dependency versions upstream
# builds with. The binary records VERSION next to it; another VERSION rebuilds.
build() {
  if [ -x "$BIN" ] && [ "$(cat "$BIN.version" 2>/dev/null)" = "$VERSION" ]; then return; fi
  command -v go >/dev/null || die "Go 1.26+ is needed to build SeaweedFS from the Go module proxy"
  mkdir -p "$(dirname "$BIN")"
  local log="$HOME_DIR/build.log" src started
  started=$(date +%s)
  echo "seaweedfs: building weed $VERSION from the Go module proxy (a few minutes, once; log in $log)"
  src=$(GOFLAGS=-mod=mod go mod download -json "$MODULE@$VERSION" 2>"$log" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p') \
    || { cat "$log" >&2; die "downloading $MODULE@$VERSION failed"; }
  [ -n "$src" ] || { cat "$log" >&2; die "downloading $MODULE@$VERSION gave no source folder"; }
  (cd "$src" && GOFLAGS=-mod=readonly go build -buildvcs=false -trimpath -ldflags "-s -w" -o "$BIN.part" ./weed) \
    >>"$log" 2>&1 || { tail -30 "$log" >&2; die "building weed failed"; }
  mv "$BIN.part" "$BIN"
  echo "$VERSION" > "$BIN.version"
  echo "seaweedfs: built in $(( $(date +%s) - started )) s"
}

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

# The S3 gateway listens once it is up; the buckets need the filer too, so creating them (which
# retries until the filer answers) is part of waiting.
s3_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null; }

create_buckets() {
  local bucket out
  for bucket in $BUCKETS; do
    for _ in $(seq 1 60); do
      out=$(echo "s3.bucket.create -name $bucket" | "$BIN" -logtostderr=false shell -master="127.0.0.1:$MASTER_PORT" \
        -filer="127.0.0.1:$FILER_PORT" 2>&1) || true
      if [[ "$out" != *rror* ]] || [[ "$out" == *"already exist"* ]]; then continue 2; fi
      sleep 0.5
    done
    echo "$out" >&2; die "could not create bucket $bucket"
  done
}

up() {
  if running; then echo "seaweedfs: already running (pid $(cat "$PIDFILE")) with S3 on 127.0.0.1:$S3_PORT"; return; fi
  build
  mkdir -p "$RUN" "$DATA"
  cat > "$RUN/s3.json" <<JSON
{"identities": [{"name": "osmose-dev",
                 "credentials": [{"accessKey": "$ACCESS_KEY", "secretKey": "$SECRET_KEY"}],
                 "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
  # Loopback only; telemetry off (it would call a public address); no Iceberg/Lance catalogue ports.
  nohup "$BIN" -logdir="$RUN" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$DATA" \
    -master.port="$MASTER_PORT" -master.telemetry=false -master.volumeSizeLimitMB=64 \
    -volume.port="$VOLUME_PORT" -volume.max=0 \
    -filer -filer.port="$FILER_PORT" \
    -s3 -s3.port="$S3_PORT" -s3.config="$RUN/s3.json" -s3.port.iceberg=0 -s3.port.lance=0 \
    >"$RUN/stdout.log" 2>&1 &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 120); do
    if s3_answers; then
      create_buckets
      echo "seaweedfs: ready, S3 on http://127.0.0.1:$S3_PORT (pid $(cat "$PIDFILE"), logs in $RUN)"
      echo "  blob store: url s3://osmose, endpoint http://127.0.0.1:$S3_PORT, access key $ACCESS_KEY, secret $SECRET_KEY"
      return
    fi
    running || { tail -30 "$RUN/stdout.log" >&2; die "weed exited during start-up"; }
    sleep 0.5
  done
  die "S3 did not answer on 127.0.0.1:$S3_PORT within 60 s (logs in $RUN)"
}

down() { stop_pidfile seaweedfs "$PIDFILE" 45; }  # weed drains its volume server: ~25 s

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if running; then echo "seaweedfs: running (pid $(cat "$PIDFILE")), S3 on 127.0.0.1:$S3_PORT"; else echo "seaweedfs: not running"; exit 1; fi ;;
  build) build ;;
  *) echo "usage: $0 up|down|status|build" >&2; exit 2 ;;
esac
