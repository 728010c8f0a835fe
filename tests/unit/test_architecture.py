"""The layering rules of ARCHITECTURE.md, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

from osmose.pipeline import STAGES

REPO = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_every_declared_stage_has_a_package() -> None:
    for stage in STAGES:
        assert (REPO / "services" / stage.name / "__init__.py").exists(), stage.name


def test_a_stage_never_imports_another_stage() -> None:
    for stage_dir in sorted(p for p in (REPO / "services").iterdir() if p.is_dir() and not p.name.startswith("_")):
        for source in stage_dir.rglob("*.py"):
            for name in _imports(source):
                if name.startswith("osmose.services."):
                    assert name.split(".")[2] == stage_dir.name, f"{source} imports {name}"


def test_library_code_does_not_depend_on_stages_except_hosts() -> None:
    for source in (REPO / "libs" / "osmose").rglob("*.py"):
        if "hosts" in source.parts or source.parent.name == "v1":
            continue
        bad = {n for n in _imports(source) if n.startswith("osmose.services")}
        assert not bad, f"{source} imports {bad}"
