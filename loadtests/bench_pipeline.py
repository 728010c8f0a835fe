"""`make bench`: where the time goes, per stage, on this machine.

1. A generated 250-slide deck in the FAST tier, cold (empty embedding cache) and
   warm (re-ingest: everything cached), against the 20-second target.
2. The whole shared corpus with triage choosing tiers, per stage and per file.

Runs the in-process host directly (no subprocess) so per-stage seconds come
from the same timers the CLI reports. Prints tables; writes bench-results/*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from osmose.config import Settings
from osmose.hosts.inprocess import InProcessPipeline
from osmose.hosts.report import IngestReport
from osmose.pipeline import PIPELINE, tier_from_name
from osmose.samples import build_large_deck

TARGET_S = 20.0


async def _ingest(files: list[Path], data_dir: Path, tier: str | None) -> tuple[list[IngestReport], float, float]:
    settings = Settings.from_env().with_overrides(data_dir=data_dir)
    async with InProcessPipeline(settings) as pipeline:
        t0 = time.perf_counter()
        pipeline.stages  # noqa: B018 - load model and open stores, timed separately
        startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        reports = [r async for r in pipeline.ingest(files, tenant="bench", tier=tier_from_name(tier))]
        return reports, startup, time.perf_counter() - t1


def _stage_table(title: str, reports: list[IngestReport], wall: float) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for r in reports:
        for stage, seconds in r.seconds.items():
            totals[stage] += seconds
    slides = sum(r.slides for r in reports)
    busy = sum(v for k, v in totals.items() if k != "total") or 1.0
    print(f"\n{title}")
    print(f"  {'stage':<11}{'seconds':>9}{'share':>8}{'slides/s':>10}")
    for stage in PIPELINE.names():
        if stage in totals:
            sec = totals[stage]
            print(f"  {stage:<11}{sec:>9.2f}{sec / busy:>8.0%}{slides / sec if sec else float('inf'):>10.1f}")
    print(f"  {'wall':<11}{wall:>9.2f}{'':>8}{slides / wall if wall else 0:>10.1f}   ({slides} slides/pages, "
          f"{sum(r.chunks for r in reports)} chunks, {sum(r.embedded for r in reports)} embedded)")
    return dict(totals)


def bench_large_deck(slides: int, out: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        deck = build_large_deck(Path(tmp) / f"deck-{slides}.pptx", slides)
        data = Path(tmp) / "data"
        cold, startup, cold_wall = asyncio.run(_ingest([deck], data, "fast"))
        warm, _, warm_wall = asyncio.run(_ingest([deck], data, "fast"))
        deep, _, deep_wall = asyncio.run(_ingest([deck], Path(tmp) / "deep-data", "deep"))
    for r in (*cold, *warm, *deep):
        if r.status != "ok":
            sys.exit(f"benchmark deck failed: {r.error}")
    print(f"\n== {slides}-slide deck (generated), model load + store open: {startup:.2f} s")
    out["deck_fast_cold"] = _stage_table(f"FAST, cold cache: {cold_wall:.2f} s", cold, cold_wall)
    out["deck_fast_warm"] = _stage_table(f"FAST, warm cache (re-ingest): {warm_wall:.2f} s", warm, warm_wall)
    out["deck_deep"] = _stage_table(f"DEEP, cold cache: "
                                                    f"{deep_wall:.2f} s", deep, deep_wall)
    end_to_end = cold_wall + startup
    print(f"\n  FAST end to end (incl. model load): {end_to_end:.2f} s vs target {TARGET_S:.0f} s "
          f"-> {end_to_end / TARGET_S:.2f} of budget; warm/cold ratio {warm_wall / cold_wall:.2f}; "
          f"DEEP/FAST ratio {deep_wall / cold_wall:.2f}")
    out["deck_summary"] = {"slides": slides, "startup_s": startup, "fast_cold_s": cold_wall,
                           "fast_warm_s": warm_wall, "deep_s": deep_wall, "target_s": TARGET_S}


def bench_corpus(corpus: Path, out: dict) -> None:
    files = sorted([*corpus.glob("pptx/*"), *corpus.glob("pdf/*")])
    if not files:
        print(f"\n== corpus: none at {corpus}, skipped")
        return
    with tempfile.TemporaryDirectory() as tmp:
        reports, startup, wall = asyncio.run(_ingest(files, Path(tmp) / "data", None))
    failed = [r for r in reports if r.status != "ok"]
    print(f"\n== corpus: {len(files)} files from {corpus} (tiers chosen by triage), {len(failed)} failed")
    out["corpus"] = _stage_table(f"all files, cold cache: {wall:.2f} s", reports, wall)
    print("\n  slowest files:")
    for r in sorted(reports, key=lambda r: -r.seconds.get("total", 0))[:8]:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in r.seconds.items() if k != "total")
        print(f"    {Path(r.file).name:<42}{r.tier or '-':>9}{r.slides:>5} p {r.seconds['total']:>7.2f} s  ({stages})")
    out["corpus_files"] = [r.as_dict() for r in reports]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    parser.add_argument("--slides", type=int, default=250)
    parser.add_argument("--skip-corpus", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args()
    results: dict = {}
    bench_large_deck(args.slides, results)
    if not args.skip_corpus:
        bench_corpus(args.corpus, results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pipeline.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"\nresults written to {args.out / 'pipeline.json'}")


if __name__ == "__main__":
    main()
