"""Coverage of the alerting rules by the promtool tests: which alerts have a firing case, a
non-firing case and (SLO alerts) a low-volume case. `python -m tests.prometheus.coverage` prints
the table; tests/unit/telemetry/test_rules.py fails when an alert lacks a case.

An alert is one (alertname, severity, sloth_id/tier) rule of helm/osmose/files/prometheus/. A
case is *firing* when an alert_rule_test expects it, *non-firing* when a test evaluates its
alertname and expects nothing of it, *low-volume* when a non-firing case is named "low-volume".
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

__all__ = ["RULES", "TEST_FILES", "coverage", "main"]

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "helm" / "osmose" / "files" / "prometheus"
TEST_FILES = sorted((ROOT / "tests" / "prometheus").glob("*.test.yaml")) + sorted(
    (ROOT / "tests" / "prometheus" / "generated").glob("*.test.yaml"))
_KEYS = ("severity", "sloth_id", "tier")


def _key(alertname: str, labels: dict[str, str]) -> tuple[str, ...]:
    return (alertname, *(labels.get(k, "") for k in _KEYS))


def alerts() -> dict[tuple[str, ...], bool]:
    """Every alert rule -> whether it is an SLO alert (needs a low-volume case)."""
    found = {}
    for path in sorted(RULES.glob("*.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found[_key(rule["alert"], rule.get("labels", {}))] = "sloth_id" in rule.get("labels", {})
    return found


def coverage() -> dict[tuple[str, ...], set[str]]:
    """Every alert -> the kinds of case that cover it (firing, non-firing, low-volume)."""
    known = alerts()
    covered: dict[tuple[str, ...], set[str]] = {key: set() for key in known}
    for path in TEST_FILES:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for check in test.get("alert_rule_test", []):
                name = check["alertname"]
                expected = {_key(name, a["exp_labels"]) for a in check.get("exp_alerts") or []}
                for key in expected:
                    covered.setdefault(key, set()).add("firing")
                # quiet for every alert of that name the test's input is about and that it does not expect
                series = " ".join(s["series"] for s in test["input_series"])
                for key in known:
                    if key[0] != name or key in expected:
                        continue
                    sloth_id, tier = key[2], key[3]
                    about = (not sloth_id or _about(series, sloth_id)) and (not tier or f'tier="{tier}"' in series
                                                                            or sloth_id)
                    if about:
                        covered[key].add("low-volume" if test["name"].endswith("low-volume") else "non-firing")
    return covered


def _about(series: str, sloth_id: str) -> bool:
    """Whether a test's input series are those of SLO `sloth_id` (its tier and tenant class)."""
    parts = sloth_id.removeprefix("osmose-").split("-")
    if parts[0] == "freshness":
        return f'tier="{parts[1]}",tenant_class="{parts[2]}"' in series
    if parts[0] == "completeness":
        return f'tenant_class="{parts[1]}"' in series
    return "IngestionService" in series


def missing() -> list[str]:
    problems = []
    needs = alerts()
    for key, kinds in coverage().items():
        wanted = {"firing", "non-firing"} | ({"low-volume"} if needs.get(key) else set())
        if wanted - kinds:
            problems.append(f"{'/'.join(k for k in key if k)}: no {', '.join(sorted(wanted - kinds))} case")
    return problems


def main() -> int:
    table = coverage()
    needs = alerts()
    for key in sorted(table):
        print(f"{'/'.join(k for k in key if k):<70} {', '.join(sorted(table[key])) or '-'}")
    complete = sum(1 for key in table if {"firing", "non-firing"} | ({"low-volume"} if needs.get(key) else set())
                   <= table[key])
    print(f"{complete}/{len(table)} alerts with every case they need")
    return 0 if complete == len(table) else 1


if __name__ == "__main__":
    sys.exit(main())
