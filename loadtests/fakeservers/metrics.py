"""Prometheus text exposition (what the servers print on /metrics) and a small parser for tests."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["Sample", "parse_metrics", "render_metrics"]

#: (name, kind, help, [(labels, value)])
Sample = tuple[str, str, str, Iterable[tuple[Mapping[str, str], float]]]

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                     for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def render_metrics(samples: Iterable[Sample]) -> str:
    lines = []
    for name, kind, help_text, values in samples:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in values:
            lines.append(f"{name}{_labels(labels)} {float(value):g}" if value != int(value)
                         else f"{name}{_labels(labels)} {int(value)}")
    return "\n".join(lines) + "\n"


def parse_metrics(text: str) -> dict[str, float]:
    """``{"name": value}`` summed over label sets, plus ``{"name{labels}": value}`` per label set."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line.strip())
        if not match:
            continue
        name, labels, raw = match.groups()
        value = float(raw)
        out[name] = out.get(name, 0.0) + value
        if labels:
            canonical = ",".join(f'{k}="{v}"' for k, v in sorted(_LABEL.findall(labels)))
            out[f"{name}{{{canonical}}}"] = value
    return out
