"""Fixtures of the chart checks: the fetched tools and each profile rendered once per session.

The tools come from `make chart-tools` (dev/helm-tools.sh; `make test` runs it first). Outside CI a
missing tool skips these tests with the command to run; in CI (CI=true) it fails them.
"""

from __future__ import annotations

import os

import pytest

from tests.chart.render import PROFILES, Tools, find_tools, helm_template, load_objects


@pytest.fixture(scope="session")
def tools() -> Tools:
    found = find_tools()
    if found is None:
        message = "Helm/kubeconform/schemas missing in .cache/: run `make chart-tools`"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def rendered(tools: Tools) -> dict[str, str]:
    """Profile name -> `helm template` output."""
    return {name: helm_template(tools, values).stdout for name, values in PROFILES.items()}


@pytest.fixture(scope="session")
def objects(rendered: dict[str, str]) -> dict[str, list[dict]]:
    return {name: load_objects(text) for name, text in rendered.items()}
