"""values.schema.json accepts the valid fixtures and refuses each invalid one with its reason.

Each file under fixtures/invalid/ starts with `# error: <text>`, a fragment of the message Helm
must print; all fixtures are layered over fixtures/minimal.yaml.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.render import FIXTURES, PROFILES, Tools, helm_template, kubeconform

VALID = sorted((FIXTURES / "valid").glob("*.yaml"))
INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))


@pytest.mark.parametrize("fixture", VALID, ids=lambda p: p.stem)
def test_valid_values_render_valid_objects(tools: Tools, fixture: Path) -> None:
    result = helm_template(tools, (*PROFILES["minimal"], fixture), check=False)
    assert result.returncode == 0, result.stderr
    checked = kubeconform(tools, result.stdout)
    assert checked.returncode == 0, checked.stdout


@pytest.mark.parametrize("fixture", INVALID, ids=lambda p: p.stem)
def test_invalid_values_are_refused_with_the_reason(tools: Tools, fixture: Path) -> None:
    expected = fixture.read_text().splitlines()[0].removeprefix("# error:").strip()
    result = helm_template(tools, (*PROFILES["minimal"], fixture), check=False)
    assert result.returncode != 0, f"{fixture.name} rendered"
    assert "schema" in result.stderr and expected in result.stderr, result.stderr


def test_every_value_has_a_comment() -> None:
    """Every key of values.yaml has a `#` comment right above it or above one of its parents below
    the top level (Bitnami/qdrant-helm practice: `helm show values` documents itself)."""
    lines = (FIXTURES.parents[2] / "helm" / "osmose" / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, bool]] = []   # (indent, commented) of the open parents
    missing = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        # A commented top-level section does not document its keys; a commented key below it
        # documents its own small sub-map (resources: {requests, limits}).
        commented = lines[index - 1].strip().startswith("#") or any(c for i, c in stack if i > 0)
        if stripped.endswith(":"):   # a section header: its keys carry the comments
            stack.append((indent, lines[index - 1].strip().startswith("#")))
            continue
        if not commented:
            missing.append(f"{index + 1}: {stripped}")
        stack.append((indent, commented))
    assert not missing, "values without a comment:\n" + "\n".join(missing)
