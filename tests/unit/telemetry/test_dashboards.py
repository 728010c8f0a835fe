"""Dashboards as code: the committed JSON is what grafana-foundation-sdk builds from
osmose.telemetry.dashboards.panels, and every panel query is valid PromQL (promtool parses it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from osmose.telemetry.dashboards import generate
from osmose.telemetry.dashboards.panels import DASHBOARDS


def test_generated_dashboards_are_current() -> None:
    stale = [p.name for p, text in generate.expected_files().items() if not p.exists() or p.read_text() != text]
    assert not stale, f"stale: {stale}; run `make observability`"


def test_every_dashboard_has_its_panels_with_queries_and_a_datasource_variable() -> None:
    for spec in DASHBOARDS:
        board = json.loads((generate.OUT / f"{spec.uid}.json").read_text())
        assert board["uid"] == spec.uid and [p["title"] for p in board["panels"]] == [p.title for p in spec.panels]
        assert all(p["targets"] and p["datasource"]["uid"] == "${datasource}" for p in board["panels"])
        assert board["templating"]["list"][0]["name"] == "datasource"


@pytest.mark.skipif((shutil.which("promtool") is None) and not os.environ.get("CI"), reason="promtool missing (make setup installs prometheus)")
def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    rules = [{"record": f"osmose:panel_{n}", "expr": expr.replace("$__rate_interval", "5m").replace("$__range", "1h")}
             for n, (expr, _legend) in enumerate(q for d in DASHBOARDS for p in d.panels for q in p.queries)]
    path = tmp_path / "panels.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
