"""Builds the dashboards of :mod:`.panels` with grafana-foundation-sdk into
``helm/osmose/files/dashboards/<uid>.json`` (the chart ships them as ConfigMaps for the
Grafana sidecar). ``python -m osmose.telemetry.dashboards.generate [--check]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos

from osmose.generated import sync_generated
from osmose.telemetry.dashboards.panels import DASHBOARDS, Dashboard

__all__ = ["OUT", "build", "expected_files", "main"]

REPO = Path(__file__).resolve().parents[4]
OUT = REPO / "helm" / "osmose" / "files" / "dashboards"
_DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
_WIDTH, _HEIGHT = 12, 8


def build(spec: Dashboard) -> dict[str, object]:
    board = (dashboard.Dashboard(spec.title).uid(spec.uid).description(spec.description)
             .tags(["osmose", "generated"]).refresh("30s").time("now-6h", "now").timezone("browser")
             .with_variable(dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus")))
    for index, panel in enumerate(spec.panels):
        builder = stat.Panel() if panel.kind == "stat" else timeseries.Panel()
        builder = (builder.title(panel.title).unit(panel.unit).datasource(_DATASOURCE)
                   .grid_pos(GridPos(h=_HEIGHT, w=_WIDTH, x=(index % 2) * _WIDTH, y=(index // 2) * _HEIGHT)))
        if panel.description:
            builder = builder.description(panel.description)
        for ref, (expr, legend) in enumerate(panel.queries):
            query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + ref))
            if panel.kind == "timeseries" and "osmose_document_e2e_seconds" in expr:
                query = query.exemplar(True)   # the SLI's exemplars link to each document's trace
            builder = builder.with_target(query)
        board = board.with_panel(builder)
    return json.loads(JSONEncoder(sort_keys=True, indent=2).encode(board.build()))


def expected_files() -> dict[Path, str]:
    return {OUT / f"{spec.uid}.json": json.dumps(build(spec), indent=2, sort_keys=True) + "\n"
            for spec in DASHBOARDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is stale")
    args = parser.parse_args(argv)
    return sync_generated(expected_files(), check=args.check, label="dashboards", root=REPO)


if __name__ == "__main__":
    sys.exit(main())
