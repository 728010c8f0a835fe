"""k8s/base is the chart rendered (never edited by hand), and it validates like the chart."""

from __future__ import annotations

import yaml

from tests.chart.kustomize import render_base
from tests.chart.render import REPO, Tools, kubeconform

BASE = REPO / "k8s" / "base"


def test_kustomize_base_is_the_chart_rendered(tools: Tools) -> None:
    for name, text in render_base(tools).items():
        assert (BASE / name).read_text() == text, f"k8s/base/{name} is stale: run `make chart`"


def test_kustomize_base_is_valid_and_has_no_helm_hooks(tools: Tools) -> None:
    text = (BASE / "osmose.yaml").read_text()
    assert "helm.sh/hook" not in text and "helm.sh/chart" not in text
    result = kubeconform(tools, text)
    assert result.returncode == 0, result.stdout


def test_example_overlay_builds_on_the_base() -> None:
    overlay = yaml.safe_load((REPO / "k8s" / "overlays" / "example" / "kustomization.yaml").read_text())
    assert overlay["resources"] == ["../../base"]
    names = {(o["kind"], o["metadata"]["name"]) for o in yaml.safe_load_all((BASE / "osmose.yaml").read_text()) if o}
    for patch in overlay["patches"]:
        target = patch["target"]
        if "name" in target:
            assert (target["kind"], target["name"]) in names
