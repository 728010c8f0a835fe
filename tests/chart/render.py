"""Render and validate the Helm chart with the tools dev/helm-tools.sh fetched into .cache/.

Used by the tests under tests/chart/ and by `make chart`:

    python -m tests.chart.render --out .cache/chart            # every profile, one YAML file each
    python -m tests.chart.render --golden                      # rewrite tests/chart/golden/*.yaml
    python -m tests.chart.render --kustomize k8s/base          # the kustomize base for teams without Helm
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = [
    "CHART",
    "GOLDEN",
    "PROFILES",
    "RELEASE",
    "NAMESPACE",
    "Tools",
    "find_tools",
    "helm_template",
    "kubeconform",
    "load_objects",
]

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "osmose"
GOLDEN = Path(__file__).resolve().parent / "golden"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
BIN = REPO / ".cache" / "bin"
SCHEMAS = REPO / ".cache" / "k8s-schemas"
#: the Kubernetes version rendered objects are checked against (the README's floor)
KUBERNETES_VERSION = "1.30.0"
RELEASE = "osmose"
NAMESPACE = "osmose"
#: profile name -> values files, in order (the chart's values.yaml always comes first)
PROFILES: dict[str, tuple[Path, ...]] = {
    "minimal": (FIXTURES / "minimal.yaml",),
    "dev-cpu": (CHART / "values-dev-cpu.yaml",),
    "production": (CHART / "values-production.yaml",),
    "burst-spot": (CHART / "values-burst-spot.yaml",),
}


@dataclass(frozen=True)
class Tools:
    helm: Path
    kubeconform: Path
    schemas: Path


def find_tools() -> Tools | None:
    """The fetched tools, or None when `make chart-tools` has not run."""
    tools = Tools(helm=BIN / "helm", kubeconform=BIN / "kubeconform", schemas=SCHEMAS)
    present = (tools.helm.is_file() and tools.kubeconform.is_file()
               and (tools.schemas / "crds").is_dir() and (tools.schemas / "kubernetes").is_dir())
    return tools if present else None


def helm_template(tools: Tools, values: tuple[Path, ...] = (), *, sets: dict[str, str] | None = None,
                  namespace: str = NAMESPACE, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart; the hooks (topics Job, test pod) included."""
    command = [str(tools.helm), "template", RELEASE, str(CHART), "--namespace", namespace,
               "--kube-version", KUBERNETES_VERSION]
    for path in values:
        command += ["--values", str(path)]
    for key, value in (sets or {}).items():
        command += ["--set", f"{key}={value}"]
    return subprocess.run(command, capture_output=True, text=True, check=check)


def helm_lint(tools: Tools, values: tuple[Path, ...]) -> subprocess.CompletedProcess[str]:
    command = [str(tools.helm), "lint", "--strict", str(CHART), "--kube-version", KUBERNETES_VERSION]
    for path in values:
        command += ["--values", str(path)]
    return subprocess.run(command, capture_output=True, text=True)


def kubeconform(tools: Tools, manifests: str) -> subprocess.CompletedProcess[str]:
    """kubeconform -strict against Kubernetes' schemas and the KEDA/KServe/Prometheus Operator CRDs."""
    k8s = f"{tools.schemas}/kubernetes/{{{{ .NormalizedKubernetesVersion }}}}-standalone{{{{ .StrictSuffix }}}}/" \
          "{{ .ResourceKind }}{{ .KindSuffix }}.json"
    crds = f"{tools.schemas}/crds/{{{{ .Group }}}}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json"
    command = [str(tools.kubeconform), "-strict", "-summary", "-output", "text",
               "-kubernetes-version", KUBERNETES_VERSION, "-schema-location", k8s, "-schema-location", crds, "-"]
    return subprocess.run(command, input=manifests, capture_output=True, text=True)


def load_objects(manifests: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(manifests) if doc]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write <profile>.yaml for every profile here")
    parser.add_argument("--golden", action="store_true", help="rewrite the golden manifests")
    parser.add_argument("--kustomize", type=Path, help="write the kustomize base (production profile) here")
    args = parser.parse_args(argv)
    tools = find_tools()
    if tools is None:
        print("render: Helm/kubeconform missing; run `make chart-tools`", file=sys.stderr)
        return 1
    for profile, values in PROFILES.items():
        manifests = helm_template(tools, values).stdout
        targets = ([args.out / f"{profile}.yaml"] if args.out else []) + (
            [GOLDEN / f"{profile}.yaml"] if args.golden else [])
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(manifests)
            print(f"render: wrote {target}")
    if args.kustomize:
        from tests.chart.kustomize import write_base

        write_base(tools, args.kustomize)
    return 0


if __name__ == "__main__":
    sys.exit(main())
