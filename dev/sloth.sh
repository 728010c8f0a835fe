#!/usr/bin/env bash
# Builds Sloth (SLO -> Prometheus rules generator) from the Go module proxy into
# .cache/bin/sloth, once; libs/osmose/telemetry/slo/generate.py runs it.
# Usage: dev/sloth.sh            (prints the binary's path)
set -euo pipefail
cd "$(dirname "$0")/.."
SLOTH_VERSION="${SLOTH_VERSION:-v0.16.0}"
BIN="$PWD/.cache/bin"
stamp="$BIN/.sloth-$SLOTH_VERSION"
if [[ ! -x "$BIN/sloth" || ! -f "$stamp" ]]; then
  command -v go >/dev/null || { echo "sloth.sh: go is not installed; cannot build sloth" >&2; exit 1; }
  mkdir -p "$BIN"
  echo "sloth.sh: building sloth $SLOTH_VERSION from the Go module proxy (minutes on first run)" >&2
  GOBIN="$BIN" GOFLAGS=-mod=mod CGO_ENABLED=0 go install "github.com/slok/sloth/cmd/sloth@$SLOTH_VERSION" >&2
  rm -f "$BIN/.sloth-"*; touch "$stamp"
fi
echo "$BIN/sloth"
