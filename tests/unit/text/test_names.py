"""Concept-name keys: the stages of a canonical key, plural folding, the surface key."""

from __future__ import annotations

import pytest

from osmose.text.names import canonical_key, key_stages, normalise, surface_key
from osmose.text.plurals import fold_plurals, singular


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Developers", "developer"),
        ("developer", "developer"),
        ("  SQL   Server ", "sql server"),
        ("ＳＱＬ Server", "sql server"),  # full-width letters (NFKC)
        ("PCI-DSS", "pci dss"),
        ("cross\u2011site scripting", "cross site scripting"),
        ("“Zero Trust”", "zero trust"),
        ("user's guide", "user guide"),
        ("Key Performance Indicators", "key performance indicator"),
        ("KPIs", "kpi"),
        ("AWS", "aws"),
        ("HTTPS", "https"),
        ("analysis", "analysis"),
        ("business process", "business process"),
        ("classes", "class"),
        ("policies", "policy"),
        ("Kubernetes", "kubernetes"),
        (".NET", ".net"),
        ("C++", "c++"),
        ("Node.js", "node.js"),
        ("ISO/IEC 27001", "iso/iec 27001"),
        ("Straße", "strasse"),
    ],
)
def test_canonical_key(name: str, key: str) -> None:
    assert canonical_key(name) == key


def test_normalise_does_not_fold_plurals() -> None:
    assert normalise("Developers") == "developers"


def test_plurals_are_conservative_outside_english() -> None:
    assert fold_plurals(["développeurs", "web"], "fr") == ["développeur", "web"]
    assert fold_plurals(["processus"], "fr") == ["processus"]
    assert fold_plurals(["accès"], "fr") == ["accès"]
    assert fold_plurals(["desarrolladores"], "es") == ["desarrollador"]
    assert fold_plurals(["análisis"], "es") == ["análisis"]
    assert fold_plurals(["aplicaciones"], "es") == ["aplicaciones"]
    assert fold_plurals(["Entwickler"], "de") == ["Entwickler"]
    assert fold_plurals(["разработчики"], "ru") == ["разработчики"]
    assert singular("DNS") == "DNS" and singular("APIs") == "API"


def test_key_stages_and_surface_key() -> None:
    assert key_stages("ＳＱＬ  Servers'") == ("SQL Servers'", "sql servers'", "sql servers", "sql server")
    assert surface_key("  ＳＱＬ \u00a0Server ") == "sql server"
    assert surface_key("Straße") == "strasse"
