"""Every profile lints, renders, validates against the Kubernetes and CRD schemas, and matches its golden file."""

from __future__ import annotations

import difflib

import pytest

from tests.chart.render import GOLDEN, PROFILES, Tools, helm_lint, kubeconform

UPDATE = "python -m tests.chart.render --golden"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_helm_lint_strict(tools: Tools, profile: str) -> None:
    result = helm_lint(tools, PROFILES[profile])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_object_is_valid_against_the_kubernetes_and_crd_schemas(tools: Tools, rendered: dict[str, str],
                                                                       profile: str) -> None:
    result = kubeconform(tools, rendered[profile])
    assert result.returncode == 0, result.stdout + result.stderr
    # -strict and nothing skipped: every kind had a schema (Kubernetes 1.30 or a KEDA/KServe/Prometheus CRD).
    assert "Skipped: 0" in result.stdout and "Errors: 0" in result.stdout, result.stdout


def test_kubeconform_rejects_an_unknown_field(tools: Tools, rendered: dict[str, str]) -> None:
    broken = rendered["minimal"].replace("enableServiceLinks: false", "enableServiceLinks: false\n      bogusField: 1", 1)
    result = kubeconform(tools, broken)
    assert result.returncode != 0 and "bogusField" in result.stdout


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_rendered_manifests_match_the_golden_file(rendered: dict[str, str], profile: str) -> None:
    golden = GOLDEN / f"{profile}.yaml"
    assert golden.exists(), f"no golden file {golden}; run `{UPDATE}`"
    expected = golden.read_text()
    if rendered[profile] != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), rendered[profile].splitlines(True),
                                            str(golden), "rendered", n=2))
        pytest.fail(f"{profile} renders differently from {golden.name}; if intended, run `{UPDATE}`\n{diff[:6000]}")
