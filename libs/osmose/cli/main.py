"""`osmose`: ingest decks and PDFs into a knowledge graph + vector index, search them.

`ingest`, `search` and `stats` run everything in this process on the embedded
default (local graph store, local Qdrant, local embedding model): no servers, no
GPU, offline. The distributed mode's commands (`serve`, `submit`, `dlq`, `topics`)
live in :mod:`osmose.cli.distributed`; `search`/`stats` take `--server` to ask a
running persister instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from osmose import __version__
from osmose.cli.common import (
    TIERS,
    data_dir_option,
    expand_paths,
    graph_uri_option,
    json_option,
    requested_tenant,
    run_async,
    server_option,
    settings_from,
    setup_logging,
    tenant_option,
)
from osmose.pipeline import tier_from_name

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="osmose")
def cli() -> None:
    """Turn PowerPoint decks and PDFs into a knowledge graph and a vector index.

    Runs on the embedded default: a local graph store and a local Qdrant index in
    the data directory (--data-dir, OSMOSE_DATA_DIR, default ./osmose-data) and the
    all-MiniLM-L6-v2 embedding model on the CPU. No servers, no GPU, offline.

    Distributed mode: `osmose serve` runs the six stages as gRPC services passing
    work over Kafka, `osmose submit` sends documents to them.

    \b
    Examples:
      osmose ingest decks/ report.pdf
      osmose search "zero trust network access" -k 5
      osmose stats
      osmose serve all                      # needs Kafka: make kafka-up
      osmose submit deck.pptx --wait
    """


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--tier", type=click.Choice(TIERS, case_sensitive=False), default=None,
              help="Force a tier: fast (embeddings only), standard (+ concepts), deep (+ relations). "
                   "Default: triage decides per document.")
@click.option("--preview", is_flag=True, default=False,
              help="Searchable at FAST first, then enriched to the tier (standard/deep) in the background "
                   "of the same run; the report's seconds.searchable says when search found it.")
@tenant_option
@data_dir_option
@graph_uri_option
@json_option
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
def ingest(paths: tuple[Path, ...], tier: str | None, preview: bool, tenant: str | None, data_dir: Path | None,
           graph_uri: str | None, as_json: bool, verbose: int) -> None:
    """Ingest PPTX/PPT/PDF files (or folders of them) into the graph and the vector index.

    Each file is parsed, triaged, enriched and written idempotently: ingesting the
    same file again changes nothing and embeds nothing. A file that fails is
    reported with the reason and the others go on.

    With --json, prints exactly one JSON object per input file, one per line. Exit
    status: 0 when every file succeeded, 1 when any failed.
    """
    from osmose.cli.output import IngestProgress, print_report

    settings = settings_from(data_dir, tenant, graph_uri=graph_uri)
    setup_logging(settings, verbose)
    files = expand_paths(paths)
    if not files:
        raise click.UsageError("no PPTX/PPT/PDF files found in the given paths")

    async def go() -> int:
        from osmose.hosts.inprocess import InProcessPipeline

        failed = 0
        with IngestProgress(files, enabled=not as_json or sys.stderr.isatty()) as progress:
            async with InProcessPipeline(settings) as pipeline:
                async for report in pipeline.ingest(files, tenant=settings.tenant, tier=tier_from_name(tier),
                                                    progress=progress.update, preview=preview):
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

    sys.exit(run_async(go()))


@cli.command()
@click.argument("query")
@tenant_option
@data_dir_option
@graph_uri_option
@server_option
@click.option("-k", "limit", type=click.IntRange(1, 100), default=5, show_default=True,
              help="How many results.")
@json_option
def search(query: str, tenant: str | None, data_dir: Path | None, graph_uri: str | None, server: str | None,
           limit: int, as_json: bool) -> None:
    """Hybrid search (meaning + exact words) over the ingested slides and pages.

    Prints the best chunks with their file, slide (page for PDFs, 1-based), score,
    text and the concepts found on that slide. With --json: a JSON array of
    {"doc_id", "file", "slide", "score", "text", "concepts", "related"}
    (related: 1-hop graph neighbours of the hit's concepts, with the slides that
    mention them). With --server, the search runs in the persister service,
    with the same output.
    """
    from osmose.cli.output import print_hits

    settings = settings_from(data_dir, tenant, graph_uri=graph_uri)
    setup_logging(settings, 0)

    if server:
        async def go() -> list:
            from osmose.hosts.service_client import ServiceClient

            async with ServiceClient.from_settings(server, settings) as client:
                return await client.search(query, tenant=requested_tenant(settings, tenant), limit=limit)
    else:
        if not settings.data_dir.exists():
            raise click.ClickException(
                f"no data in {settings.data_dir}: ingest something first (osmose ingest FILE)")

        async def go() -> list:
            from osmose.hosts.inprocess import InProcessPipeline

            async with InProcessPipeline(settings) as pipeline:
                return await pipeline.search(query, tenant=settings.tenant, limit=limit)

    hits = run_async(go())
    if as_json:
        from osmose.query import hit_as_dict

        click.echo(json.dumps([hit_as_dict(h) for h in hits], ensure_ascii=False))
    else:
        print_hits(query, hits)


@cli.command()
@tenant_option
@data_dir_option
@graph_uri_option
@server_option
@json_option
def stats(tenant: str | None, data_dir: Path | None, graph_uri: str | None, server: str | None,
          as_json: bool) -> None:
    """Counts of documents, slides, segments, concepts, relations and chunks per tenant.

    Shows every tenant unless --tenant (or OSMOSE_TENANT) names one. With --server,
    the persister service counts.
    """
    from osmose.cli.output import print_stats

    settings = settings_from(data_dir, graph_uri=graph_uri)
    setup_logging(settings, 0)
    only = tenant

    if server:
        async def go() -> dict[str, dict[str, int]]:
            from osmose.hosts.service_client import ServiceClient

            async with ServiceClient.from_settings(server, settings) as client:
                return await client.stats(only)
    else:
        if not settings.data_dir.exists():
            raise click.ClickException(
                f"no data in {settings.data_dir}: ingest something first (osmose ingest FILE)")

        async def go() -> dict[str, dict[str, int]]:
            from osmose.hosts.inprocess import InProcessPipeline

            async with InProcessPipeline(settings) as pipeline:
                return await pipeline.stats(only)

    table = run_async(go())
    if as_json:
        click.echo(json.dumps(table, ensure_ascii=False, sort_keys=True))
    else:
        print_stats(table, server or settings.data_dir)


def _register_distributed_commands() -> None:
    from osmose.cli.distributed import blobs, describe, dlq, serve, submit, topics
    from osmose.cli.security import delete, keys

    for command in (serve, submit, dlq, blobs, topics, describe, keys, delete):
        cli.add_command(command)


_register_distributed_commands()


def main() -> None:
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
