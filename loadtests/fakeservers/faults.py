"""Fault injection: what a server does wrong, for which requests, how often.

A :class:`Fault` applies to requests of its `route` (``chat``, ``embed``, or ``""``
for every model route); with `count` it hits the next `count` matching
requests and is then spent, otherwise a `rate` share of them (seeded, so a run
is reproducible). Kinds:

* ``429`` — Too Many Requests with ``Retry-After: <retry_after>``
* ``500`` / ``503`` — server error (503 carries Retry-After when `retry_after` is set)
* ``hang`` — no answer for `seconds` (then a 504), holding the connection
* ``malformed`` — a 200 whose JSON answer is cut in half (chat) or whose body is not JSON (embed)
* ``slow`` — output tokens take `factor` times longer
* ``drop`` — the connection is closed without a response

Faults are set at start (``--fault 429:count=3:retry_after=1``) and at runtime
(``POST /admin/faults`` with ``{"faults": [{"kind": "500", "count": 2}], "mode": "replace"|"append"}``,
``DELETE /admin/faults``, ``GET /admin/faults``).
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["KINDS", "Fault", "FaultPlan", "parse_fault"]

KINDS = frozenset({"429", "500", "503", "hang", "malformed", "slow", "drop"})


@dataclass
class Fault:
    kind: str
    count: int | None = None
    rate: float = 1.0
    retry_after: float | None = None
    seconds: float = 30.0
    factor: float = 10.0
    route: str = ""
    model: str = ""

    def __post_init__(self) -> None:
        self.kind = str(self.kind)
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; kinds are {sorted(KINDS)}")
        if not 0 <= self.rate <= 1:
            raise ValueError("rate must be within [0, 1]")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault field(s) {sorted(unknown)}")
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_fault(spec: str) -> Fault:
    """``kind[:key=value...]``, e.g. ``429:count=3:retry_after=1`` or ``500:rate=0.2:route=chat``."""
    kind, *options = spec.split(":")
    values: dict[str, Any] = {"kind": kind}
    for option in options:
        key, _, raw = option.partition("=")
        if key in ("count",):
            values[key] = int(raw)
        elif key in ("rate", "retry_after", "seconds", "factor"):
            values[key] = float(raw)
        else:
            values[key] = raw
    return Fault.from_dict(values)


class FaultPlan:
    """The active faults; thread-safe (tests change them from another thread)."""

    def __init__(self, faults: list[Fault] | None = None, *, seed: int = 0) -> None:
        self._faults = list(faults or [])
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.injected: dict[str, int] = {}

    def set(self, faults: list[Fault], *, append: bool = False) -> None:
        with self._lock:
            self._faults = [*self._faults, *faults] if append else list(faults)

    def clear(self) -> None:
        self.set([])

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.as_dict() for f in self._faults]

    def pick(self, route: str, model: str = "") -> Fault | None:
        """The fault for this request, if any (spending one of its `count`)."""
        with self._lock:
            for fault in self._faults:
                if fault.route and fault.route != route:
                    continue
                if fault.model and fault.model != model:
                    continue
                if fault.count is not None:
                    if fault.count <= 0:
                        continue
                    fault.count -= 1
                elif fault.rate < 1 and self._random.random() >= fault.rate:
                    continue
                self.injected[fault.kind] = self.injected.get(fault.kind, 0) + 1
                return Fault(**fault.as_dict())
            return None
