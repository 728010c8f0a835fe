"""Coverage-guided fuzzing with atheris (libFuzzer), for `make fuzz`.

    python tests/fuzz/run_atheris.py TARGET [libFuzzer options]      one target (pptx, pdf, envelope)
    python tests/fuzz/run_atheris.py --all SECONDS                   every target, SECONDS shared

Each target instruments Osmose's parsing code and python-pptx, starts from the committed seeds
(tests/fuzz/corpus/<kind>) plus the shared corpus's small files, keeps the inputs that reach new
code in .cache/fuzz-corpus/<target>/, and mutates with the structure-aware mutators of
tests/fuzz/targets.py (zip members, XML, PDF tokens) as well as libFuzzer's own byte mutations.
A property failure, a hang past -timeout or memory past -rss_limit_mb (the parse worker's
ceiling) stops the run and writes the input to .cache/fuzz-findings/<target>-crash-*: add it to
tests/fuzz/findings/ with its expected outcome (tests/fuzz/regressions/test_findings.py).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGETS = ("pptx", "pdf", "envelope")
RSS_LIMIT_MB = 4096  # osmose.documents.parsing.worker.WORKER_MEMORY_LIMIT_BYTES
PER_INPUT_TIMEOUT_S = 60  # below the parse deadline (limits.parse_timeout_s, 120 s)


def _run_one(target: str, args: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["osmose", "pptx"]):
        import osmose.bus.envelope  # noqa: F401
        import osmose.documents.parsing.document_parser  # noqa: F401
        import osmose.documents.parsing.pdf_parser  # noqa: F401
    from tests.fuzz.targets import check_envelope, check_parse, fuzz_settings, mutate

    settings = fuzz_settings()

    def test_one(data: bytes) -> None:
        if target == "envelope":
            check_envelope(data)
        else:
            check_parse(data, file_name=f"fuzzed.{target}", settings=settings)

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < 0.25:
            return atheris.Mutate(data, max_size)
        return mutate(data, rng)[:max_size]

    atheris.Setup([sys.argv[0], *args], test_one, custom_mutator=custom_mutator)
    atheris.Fuzz()


def _seed_dirs(target: str) -> list[Path]:
    """The working corpus (written by libFuzzer), then read-only seed folders."""
    from tests.fuzz.targets import seeds
    from tests.support import CORPUS

    work = REPO / ".cache" / "fuzz-corpus" / target
    work.mkdir(parents=True, exist_ok=True)
    for name, data in seeds(target, shared=CORPUS):  # copied once: libFuzzer reads folders
        path = work / ("seed-" + name.replace("/", "-"))
        if not path.exists():
            path.write_bytes(data)
    return [work]


def _run_all(seconds: int) -> int:
    findings = REPO / ".cache" / "fuzz-findings"
    findings.mkdir(parents=True, exist_ok=True)
    share = max(10, seconds // len(TARGETS))
    failed = []
    for target in TARGETS:
        corpus = [str(p) for p in _seed_dirs(target)]
        cmd = [sys.executable, __file__, target, f"-max_total_time={share}", f"-rss_limit_mb={RSS_LIMIT_MB}",
               f"-timeout={PER_INPUT_TIMEOUT_S}", "-max_len=1000000", "-print_final_stats=1",
               f"-artifact_prefix={findings}/{target}-", *corpus]
        print(f"== fuzzing {target} for {share} s: {' '.join(cmd[2:])}", flush=True)
        code = subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}).returncode
        if code != 0:
            failed.append(target)
    if failed:
        print(f"FINDINGS in {', '.join(failed)}: see {findings}", flush=True)
        return 1
    print(f"no finding in {seconds} s ({', '.join(TARGETS)})", flush=True)
    return 0


def main() -> int:
    sys.path.insert(0, str(REPO))
    if len(sys.argv) >= 2 and sys.argv[1] == "--all":
        return _run_all(int(sys.argv[2]) if len(sys.argv) > 2 else 600)
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        print(__doc__, file=sys.stderr)
        return 2
    _run_one(sys.argv[1], sys.argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
