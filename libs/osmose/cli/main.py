"""`osmose`: ingest decks and PDFs into a knowledge graph + vector index, search them.

Everything runs in this process on the embedded default (local graph store,
local Qdrant, local embedding model): no servers, no GPU, offline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import click

from osmose import __version__
from osmose.config import Settings
from osmose.errors import ConfigurationError, OsmoseError
from osmose.pipeline import TIER_NAMES, tier_from_name

__all__ = ["main"]

SUPPORTED_SUFFIXES = {".pptx", ".pptm", ".ppsx", ".ppt", ".pdf"}
_TIERS = list(TIER_NAMES.values())


def _settings(data_dir: Path | None, tenant: str | None = None) -> Settings:
    try:
        return Settings.from_env().with_overrides(data_dir=data_dir, tenant=tenant)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc


def _setup_logging(settings: Settings, verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else getattr(
        logging, settings.log_level, logging.WARNING)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Dependencies are chatty about damaged files; their messages become warnings in our reports.
    for noisy in ("pptx", "yake", "httpx", "qdrant_client"):
        logging.getLogger(noisy).setLevel(max(level, logging.ERROR))


def _expand(paths: tuple[Path, ...]) -> list[Path]:
    """Files as given; directories searched recursively for supported documents."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES))
        else:
            files.append(path)
    return files


def _run(coro):  # noqa: ANN001, ANN202
    try:
        return asyncio.run(coro)
    except OsmoseError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="osmose")
def cli() -> None:
    """Turn PowerPoint decks and PDFs into a knowledge graph and a vector index.

    Runs on the embedded default: a local graph store and a local Qdrant index in
    the data directory (--data-dir, OSMOSE_DATA_DIR, default ./osmose-data) and the
    all-MiniLM-L6-v2 embedding model on the CPU. No servers, no GPU, offline.

    \b
    Examples:
      osmose ingest decks/ report.pdf
      osmose search "zero trust network access" -k 5
      osmose stats
    """


data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Where the graph, vector index and caches live. [env OSMOSE_DATA_DIR; default ./osmose-data]")
tenant_option = click.option(
    "--tenant", default=None, metavar="T",
    help="Tenant the documents belong to; data of one tenant is never visible to another. "
         "[env OSMOSE_TENANT; default 'default']")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--tier", type=click.Choice(_TIERS, case_sensitive=False), default=None,
              help="Force a tier: fast (embeddings only), standard (+ concepts), deep (+ relations). "
                   "Default: triage decides per document.")
@tenant_option
@data_dir_option
@json_option
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
def ingest(paths: tuple[Path, ...], tier: str | None, tenant: str | None, data_dir: Path | None,
           as_json: bool, verbose: int) -> None:
    """Ingest PPTX/PPT/PDF files (or folders of them) into the graph and the vector index.

    Each file is parsed, triaged, enriched and written idempotently: ingesting the
    same file again changes nothing and embeds nothing. A file that fails is
    reported with the reason and the others go on.

    With --json, prints exactly one JSON object per input file, one per line. Exit
    status: 0 when every file succeeded, 1 when any failed.
    """
    from osmose.cli.output import IngestProgress, print_report

    settings = _settings(data_dir, tenant)
    _setup_logging(settings, verbose)
    files = _expand(paths)
    if not files:
        raise click.UsageError("no PPTX/PPT/PDF files found in the given paths")

    async def go() -> int:
        from osmose.hosts.inprocess import InProcessPipeline

        failed = 0
        with IngestProgress(files, enabled=not as_json or sys.stderr.isatty()) as progress:
            async with InProcessPipeline(settings) as pipeline:
                async for report in pipeline.ingest(files, tenant=settings.tenant, tier=tier_from_name(tier),
                                                    progress=progress.update):
                    failed += report.status != "ok"
                    if as_json:
                        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
                    else:
                        progress.console.print(print_report(report))
        if not as_json:
            ok = len(files) - failed
            click.echo(f"{ok} of {len(files)} file(s) ingested into {settings.data_dir} "
                       f"(tenant {settings.tenant})" + (f"; {failed} failed" if failed else ""), err=True)
        return 1 if failed else 0

    sys.exit(_run(go()))


@cli.command()
@click.argument("query")
@tenant_option
@data_dir_option
@click.option("-k", "limit", type=click.IntRange(1, 100), default=5, show_default=True,
              help="How many results.")
@json_option
def search(query: str, tenant: str | None, data_dir: Path | None, limit: int, as_json: bool) -> None:
    """Hybrid search (meaning + exact words) over the ingested slides and pages.

    Prints the best chunks with their file, slide (page for PDFs, 1-based), score,
    text and the concepts found on that slide. With --json: a JSON array of
    {"doc_id", "file", "slide", "score", "text", "concepts"}.
    """
    from osmose.cli.output import print_hits

    settings = _settings(data_dir, tenant)
    _setup_logging(settings, 0)
    if not settings.data_dir.exists():
        raise click.ClickException(f"no data in {settings.data_dir}: ingest something first (osmose ingest FILE)")

    async def go() -> list:
        from osmose.hosts.inprocess import InProcessPipeline

        async with InProcessPipeline(settings) as pipeline:
            return await pipeline.search(query, tenant=settings.tenant, limit=limit)

    hits = _run(go())
    if as_json:
        click.echo(json.dumps([h.as_dict() for h in hits], ensure_ascii=False))
    else:
        print_hits(query, hits)


@cli.command()
@tenant_option
@data_dir_option
@json_option
def stats(tenant: str | None, data_dir: Path | None, as_json: bool) -> None:
    """Counts of documents, slides, segments, concepts, relations and chunks per tenant.

    Shows every tenant unless --tenant (or OSMOSE_TENANT) names one.
    """
    from osmose.cli.output import print_stats

    settings = _settings(data_dir)
    _setup_logging(settings, 0)
    only = tenant
    if not settings.data_dir.exists():
        raise click.ClickException(f"no data in {settings.data_dir}: ingest something first (osmose ingest FILE)")

    async def go() -> dict[str, dict[str, int]]:
        from osmose.hosts.inprocess import InProcessPipeline

        async with InProcessPipeline(settings) as pipeline:
            return await pipeline.stats(only)

    table = _run(go())
    if as_json:
        click.echo(json.dumps(table, ensure_ascii=False, sort_keys=True))
    else:
        print_stats(table, settings.data_dir)


def main() -> None:
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
