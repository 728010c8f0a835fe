"""The Prometheus rules generated from the SLO spec: current (regenerated with Sloth and diffed),
valid (`promtool check rules`), and tested (`promtool test rules`: every alert has a firing and a
non-firing case, every SLO alert a low-volume case; the coverage table is printed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from osmose.telemetry.slo import generate
from osmose.telemetry.slo.spec import load_spec
from tests.prometheus import coverage

needs_promtool = pytest.mark.skipif((shutil.which("promtool") is None) and not os.environ.get("CI"),
                                    reason="promtool (Debian package prometheus; make setup installs it) missing")


@pytest.mark.skipif((shutil.which("go") is None and not (generate.REPO / ".cache" / "bin" / "sloth").exists()) and not os.environ.get("CI"),
                    reason="Sloth is built from the Go module proxy: go is needed once")
def test_generated_rules_and_rule_tests_are_current() -> None:
    stale = [str(path.relative_to(generate.REPO)) for path, text in generate.expected_files().items()
             if not path.exists() or path.read_text() != text]
    assert not stale, f"stale: {stale}; run `make observability`"


def test_every_window_of_the_spec_is_a_window_of_an_alert() -> None:
    spec = load_spec()
    rules = "\n".join(p.read_text() for p in generate.OUT.glob("slo-*.yaml"))
    for tier, slo in spec.tiers.items():
        for window in slo.windows.all():
            assert f"ratio_rate{window}{{sloth_id=\"osmose-freshness-{tier}-" in rules, (tier, window)


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    files = sorted(str(p) for p in generate.OUT.glob("*.yaml"))
    result = subprocess.run(["promtool", "check", "rules", *files], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_rule_tests_pass_and_cover_every_alert(capsys: pytest.CaptureFixture[str]) -> None:
    for path in coverage.TEST_FILES:
        result = subprocess.run(["promtool", "test", "rules", path.name], cwd=path.parent, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert coverage.missing() == []
    with capsys.disabled():
        coverage.main()


def _heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub (and GitLab) give a document's headings: lower case, punctuation other
    than - and _ dropped, spaces as hyphens."""
    import re

    anchors = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", markdown, re.M):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return anchors


def test_every_alert_links_its_runbook_section_of_the_runbook_document() -> None:
    """Every alert rule carries a runbook_url "<document>#<anchor>" (the chart prefixes the
    deployment's base URL) whose anchor is a heading of that document in this repository."""
    spec = load_spec()
    document = generate.REPO / spec.runbook_document
    anchors = _heading_anchors(document.read_text())
    assert "runbook-osmoseconsumerstuck" in anchors     # the slug rule reads the headings as GitHub does
    alerts = [rule for path in sorted(generate.OUT.glob("*.yaml"))
              for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"] if "alert" in rule]
    assert {rule["alert"] for rule in alerts} == {key[0] for key in coverage.alerts()}
    for rule in alerts:
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path == spec.runbook_document, url
        assert anchor in anchors, f"{spec.runbook_document} has no section #{anchor} for {rule['alert']}"
    # the hand-written promtool tests expect the same links
    for path in coverage.TEST_FILES:
        for url in re.findall(r"runbook_url: (\S+)", path.read_text()):
            assert url.partition("#")[0] == spec.runbook_document and url.partition("#")[2] in anchors, (path, url)
