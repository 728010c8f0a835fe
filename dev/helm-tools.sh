#!/usr/bin/env bash
# Fetches the chart tooling into .cache/ (git-ignored) so `make test` checks the
# chart with real tools, offline after the first run:
#   .cache/bin/helm          Helm, built from the Go module proxy
#   .cache/bin/kubeconform   kubeconform, built from the Go module proxy
#   .cache/k8s-schemas/      JSON schemas: Kubernetes (kubernetes-validate wheel)
#                            + KEDA/KServe/Prometheus Operator CRDs (../shared/k8s-crds)
#                            + Strimzi's KafkaTopic CRD (dev/crds, vendored: Apache-2.0)
# Each step is skipped when its output is already there. The first Go builds take
# several minutes on a 2-core machine.
#
# Usage: dev/helm-tools.sh [all|helm|kubeconform|schemas]
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION="${HELM_VERSION:-v4.3.2}"
KUBECONFORM_VERSION="${KUBECONFORM_VERSION:-v0.7.0}"
# The Kubernetes minor whose schemas the rendered manifests are checked against;
# the README's install section names the same floor.
KUBERNETES_VERSION="${KUBERNETES_VERSION:-1.30}"
BIN="$PWD/.cache/bin"
SCHEMAS="$PWD/.cache/k8s-schemas"
CRDS="${OSMOSE_K8S_CRDS:-../shared/k8s-crds}"
PY="${PY:-.venv/bin/python}"

go_tool() {  # name module version
  local name="$1" module="$2" version="$3" stamp="$BIN/.$1-$3"
  if [[ -x "$BIN/$name" && -f "$stamp" ]]; then return 0; fi
  command -v go >/dev/null || { echo "helm-tools: go is not installed; cannot build $name" >&2; return 1; }
  mkdir -p "$BIN"
  echo "helm-tools: building $name $version from the Go module proxy (minutes on first run)"
  # -mod=mod: build from the module's own go.mod, whatever GOFLAGS the caller has.
  GOBIN="$BIN" GOFLAGS=-mod=mod CGO_ENABLED=0 go install "$module@$version"
  rm -f "$BIN/.$name-"*; touch "$stamp"
}

schemas() {
  local stamp="$SCHEMAS/.done-$KUBERNETES_VERSION"
  if [[ -f "$stamp" && "$stamp" -nt dev/crd-schemas.py && "$stamp" -nt dev/crds ]]; then return 0; fi
  "$PY" dev/crd-schemas.py --crds "$CRDS" --crds dev/crds --kubernetes "$KUBERNETES_VERSION" --out "$SCHEMAS"
  touch "$stamp"
}

case "${1:-all}" in
  helm) go_tool helm helm.sh/helm/v4/cmd/helm "$HELM_VERSION" ;;
  kubeconform) go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" ;;
  schemas) schemas ;;
  all)
    go_tool helm helm.sh/helm/v4/cmd/helm "$HELM_VERSION"
    go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
    schemas ;;
  *) echo "usage: $0 [all|helm|kubeconform|schemas]" >&2; exit 2 ;;
esac
