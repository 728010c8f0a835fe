"""The bounded fuzzing core of `make test`: mutated decks and PDFs, parsed in-process and through
the pipeline's bounded worker pool; every outcome must be a document within its bounds or an
Osmose DocumentError with a reason (see tests/fuzz/targets.py for the properties).

The mutations are seeded, so a run is reproducible; FUZZ_CORE_SECONDS sets the time budget of
each loop (default 15 s). Longer, coverage-guided runs: `make fuzz` (tests/fuzz/run_atheris.py).
A failing input is written to .cache/fuzz-findings/ and named in the failure.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from osmose.config import Limits, Settings
from osmose.documents.parsing.worker import ParserPool
from osmose.errors import DocumentError
from tests.fuzz.targets import Finding, check_document, check_parse, mutate, seeds
from tests.support import CORPUS, REPO

BUDGET_S = float(os.environ.get("FUZZ_CORE_SECONDS", "15"))
FINDINGS = REPO / ".cache" / "fuzz-findings"
# The worker loop: a lower ceiling and deadline than production, so a runaway input shows quickly.
WORKER_MEMORY = 1536 * 1024**2
WORKER_DEADLINE_S = 20.0


def _keep(data: bytes, kind: str) -> Path:
    FINDINGS.mkdir(parents=True, exist_ok=True)
    path = FINDINGS / f"{kind}-{hashlib.sha256(data).hexdigest()[:16]}.{kind}"
    path.write_bytes(data)
    return path


def _fuzz_in_process(kind: str, seed: int) -> Counter[str]:
    pool = seeds(kind, shared=CORPUS)
    assert pool, f"no {kind} seeds (tests/fuzz/corpus/{kind} is committed)"
    rng = random.Random(seed)
    outcomes: Counter[str] = Counter()
    for name, data in pool:  # the seeds themselves first
        outcomes[check_parse(data, file_name=f"{Path(name).stem}.{kind}")] += 1
    end = time.monotonic() + BUDGET_S
    while time.monotonic() < end:
        name, data = rng.choice(pool)
        case = mutate(data, rng, other=rng.choice(pool)[1])
        try:
            outcomes[check_parse(case, file_name=f"fuzzed.{kind}")] += 1
        except Finding as exc:
            raise AssertionError(f"{exc} (mutated from {name}; input kept in {_keep(case, kind)})") from exc
    return outcomes


@pytest.mark.parametrize("kind", ["pptx", "pdf"])
def test_mutated_files_parse_or_are_rejected_with_a_reason(kind: str) -> None:
    outcomes = _fuzz_in_process(kind, seed=20261203)
    # The loop ran (at least the seeds and some mutations) and reached both outcomes.
    assert sum(outcomes.values()) > len(seeds(kind, shared=CORPUS))
    assert outcomes["ok"] > 0 and sum(n for reason, n in outcomes.items() if reason != "ok") > 0, outcomes


def test_mutated_files_through_the_bounded_worker_pool() -> None:
    """The path the triage stage uses: a worker process with a deadline and a memory ceiling.
    Every answer comes within the deadline (plus process start) and is a document or a DocumentError."""
    settings = Settings(limits=Limits(parse_timeout_s=WORKER_DEADLINE_S))
    pool_seeds = seeds("pptx", shared=CORPUS) + seeds("pdf", shared=CORPUS)
    rng = random.Random(7)
    parser = ParserPool(size=1, memory_limit_bytes=WORKER_MEMORY)
    outcomes: Counter[str] = Counter()
    try:
        end = time.monotonic() + BUDGET_S / 2
        while time.monotonic() < end:
            name, data = rng.choice(pool_seeds)
            case = mutate(data, rng, other=rng.choice(pool_seeds)[1])
            started = time.monotonic()
            try:
                doc = parser.parse(case, settings=settings, file_name="fuzzed" + Path(name).suffix)
            except DocumentError as exc:
                if exc.reason in ("unreadable", "parser-crashed"):
                    raise AssertionError(f"{exc} (mutated from {name}; input kept in {_keep(case, 'bin')})") from exc
                outcomes[exc.reason] += 1
            else:
                check_document(doc, settings)
                outcomes["ok"] += 1
            # A deadline, not a speed claim: the worker is killed at WORKER_DEADLINE_S.
            assert time.monotonic() - started < WORKER_DEADLINE_S + 30, name
    finally:
        parser.close()
    assert sum(outcomes.values()) > 0 and outcomes["ok"] > 0, outcomes
