"""Commands of the distributed mode: `serve`, `submit`, `dlq`, `topics`, `describe`.

The stages run as gRPC services passing work over Kafka (`osmose serve`); clients
submit documents to the front door (`osmose submit`) and get exactly the report
`osmose ingest` prints. See docs/distributed-mode.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from osmose.bus.topics import PRIORITIES
from osmose.cli.common import (
    TIERS,
    data_dir_option,
    expand_paths,
    graph_uri_option,
    json_option,
    kafka_options,
    requested_tenant,
    run_async,
    settings_from,
    setup_logging,
    tenant_option,
)
from osmose.config import DEFAULT_SERVER, Settings
from osmose.pipeline import PIPELINE
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb

if TYPE_CHECKING:
    from osmose.bus.kafka_client import BusConfig
    from osmose.v1 import services_pb2 as spb

__all__ = ["blobs", "describe", "dlq", "serve", "submit", "topics"]

logger = logging.getLogger("osmose.cli.submit")

_STAGES = list(PIPELINE.names())


def _bus_config(settings: Settings, client_id: str) -> BusConfig:
    from osmose.bus.kafka_client import BusConfig
    from osmose.bus.topics import job_topic

    try:
        job_topic(settings.topic_prefix)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    return BusConfig.from_settings(settings, client_id=client_id)


# -- serve -----------------------------------------------------------------------------------------

@click.command()
@click.argument("stage", type=click.Choice([*_STAGES, "all"]), metavar="STAGE|all")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="gRPC port. Default: the stage's declared port ("
                   + ", ".join(f"{s.name} {s.port}" for s in PIPELINE)
                   + f"); `all` {PIPELINE.front_door.port}. `osmose describe` lists them.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface, as in a container).")
@click.option("--insecure", is_flag=True,
              help="Plaintext gRPC on a loopback address, no TLS (a laptop, tests). Without it the public "
                   "listener needs OSMOSE_TLS_CERT/OSMOSE_TLS_KEY and credentials to check (OSMOSE_API_KEYS_FILE "
                   "and/or OSMOSE_JWT_ISSUER), the stages' Process RPCs move to an mTLS listener on port+100 "
                   "(OSMOSE_TLS_CA signs the client certificates) and health probes get a plaintext port+200.")
@click.option("--internal-port", type=click.IntRange(0, 65535), default=None,
              help="Port of the mTLS listener for the stages' Process RPCs (default: port + 100; 0: any free one).")
@click.option("--health-port", type=click.IntRange(0, 65535), default=None,
              help="Port of the plaintext health listener for probes (default: port + 200; 0: any free one).")
@click.option("--reflection/--no-reflection", default=None,
              help="gRPC server reflection on the public listener. Default: on with --insecure, else off.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="Port of the Prometheus /metrics endpoint (0: none). Default: the stage's declared metrics "
                   "port (" + ", ".join(f"{s.name} {s.metrics_port}" for s in PIPELINE) + ").")
@data_dir_option
@graph_uri_option
@kafka_options
@click.option("--blob-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Claim-check blob store, a folder every service process shares. "
                   "[env OSMOSE_BLOB_DIR; default DATA_DIR/blobs]")
@click.option("--max-in-flight", type=click.IntRange(1, 64), default=None,
              help="Documents one stage works on at once, per priority class. [env OSMOSE_MAX_IN_FLIGHT; default: "
                   "the router's chat slots x documents_per_slot for the stages that call the models, 2 for the "
                   "others]")
@click.option("--retries", type=click.IntRange(1, 50), default=5, show_default=True,
              help="Attempts on a retryable error before the message goes to the dead-letter topic.")
@click.option("--drain-timeout", type=click.FloatRange(0, 3600), default=30.0, show_default=True,
              help="Seconds in-flight documents get to finish on SIGTERM before being handed back.")
@click.option("--session-timeout", type=click.FloatRange(6, 300), default=10.0, show_default=True,
              help="Seconds after which Kafka gives a dead process's partitions to another replica.")
@click.option("--claim-check-bytes", type=click.IntRange(1024, 900 * 1024), default=None,
              help="Work items above this size travel through the blob store, not inside the Kafka message. "
                   "[env OSMOSE_CLAIM_CHECK_BYTES; default 262144]")
@click.option("--log-format", type=click.Choice(["auto", "json", "text"]), default="auto", show_default=True,
              help="Log lines on stderr: json (one object per line, with job/tenant/trace ids), text; "
                   "auto = text on a terminal, json otherwise.")
@click.option("-v", "--verbose", count=True, help="Debug logging with -vv (the default level is info).")
def serve(stage: str, port: int | None, host: str, insecure: bool, internal_port: int | None,
          health_port: int | None, reflection: bool | None, metrics_port: int | None,
          data_dir: Path | None, graph_uri: str | None,
          kafka_bootstrap: str | None, topic_prefix: str | None, blob_dir: Path | None, max_in_flight: int | None,
          retries: int, drain_timeout: float, session_timeout: float, claim_check_bytes: int | None, log_format: str,
          verbose: int) -> None:
    """Run one pipeline stage (or all six: `all`) as a gRPC service fed by Kafka.

    The process serves gRPC health checking and the stage's RPCs (triage also hosts the
    front door: Submit, GetJob, WatchJob, Cancel; the persister, the only process that
    opens the stores, serves the query API: Search, Stats, DeleteDocument, DeleteTenant),
    over TLS with every call authenticated, or in plaintext on loopback with --insecure; it consumes
    the stage's input topics in the consumer group PREFIX.STAGE. Topics are created
    if missing. SIGTERM or Ctrl-C: finish the documents in flight, commit, leave the
    group, exit 0.

    All processes of a deployment share the Kafka cluster, the topic prefix and the
    blob folder; the persister also owns the data directory. Needs a broker:
    `make kafka-up` starts one on 127.0.0.1:9092.

    \b
    Examples:
      osmose serve all --insecure --data-dir /tmp/osmose
      OSMOSE_TLS_CERT=server.pem OSMOSE_TLS_KEY=server-key.pem OSMOSE_TLS_CA=ca.pem \\
        OSMOSE_API_KEYS_FILE=keys.yaml osmose serve all --host 0.0.0.0
      osmose serve embedder --host 0.0.0.0 --kafka kafka:9092 --blob-dir /shared/blobs
    """
    from osmose.hosts.service import ServiceHost, ServiceOptions
    from osmose.hosts.service_worker import RetryPolicy

    settings = settings_from(data_dir, graph_uri=graph_uri, kafka_bootstrap=kafka_bootstrap,
                             topic_prefix=topic_prefix, blob_dir=blob_dir, max_in_flight=max_in_flight,
                             claim_check_bytes=claim_check_bytes)
    as_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    setup_logging(settings, max(verbose, 1) if verbose else 0, default=logging.INFO, as_json=as_json)
    _bus_config(settings, "osmose")
    stages = _STAGES if stage == "all" else [stage]
    options = ServiceOptions(
        host=host, port=port or PIPELINE[stages[0]].port, insecure=insecure, reflection=reflection,
        internal_port=internal_port, health_port=health_port,
        max_in_flight=settings.max_in_flight,
        retry=RetryPolicy(max_attempts=retries), drain_timeout_s=drain_timeout, session_timeout_s=session_timeout,
        claim_check_bytes=settings.claim_check_bytes, metrics_port=metrics_port)
    sys.exit(run_async(ServiceHost(settings, stages, options).run()))


# -- submit ----------------------------------------------------------------------------------------

@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--server", default=None, metavar="HOST:PORT",
              help="The front door: `osmose serve triage` or `osmose serve all`. "
                   f"[env OSMOSE_SERVER; default {DEFAULT_SERVER}]")
@tenant_option
@click.option("--tier", type=click.Choice(TIERS, case_sensitive=False), default=None,
              help="Force a tier: fast, standard or deep. Default: triage decides per document.")
@click.option("--priority", type=click.Choice(list(PRIORITIES), case_sensitive=False), default="bulk",
              show_default=True, help="high: premium work, never queued behind a bulk backlog.")
@click.option("--preview", is_flag=True, default=False,
              help="Searchable at FAST first, then enriched to its tier in the background of the same job "
                   "(the job shows searchable_at_ms, then enriched_at_ms).")
@click.option("--wait", is_flag=True, help="Follow every job to its end and report like `osmose ingest`.")
@json_option
@click.option("--timeout", type=click.FloatRange(1), default=None, metavar="SECONDS",
              help="With --wait: give up waiting after this long (the jobs go on).")
@click.option("--retry-for", type=click.FloatRange(0), default=120.0, show_default=True, metavar="SECONDS",
              help="While the server does not answer, retry each file with backoff for this long (the "
                   "budget restarts with every file accepted); 0: no retries.")
def submit(paths: tuple[Path, ...], server: str | None, tenant: str | None, tier: str | None, priority: str,
           preview: bool, wait: bool, as_json: bool, timeout: float | None, retry_for: float) -> None:
    """Submit PPTX/PPT/PDF files (or folders of them) to a running `osmose serve`.

    Each file is streamed to the front door, which queues a job and answers at once.
    Without --wait, prints each file's job id (with --json: {"file", "status",
    "job_id", "doc_id", "error"} per line). With --wait, follows the jobs (progress on
    a terminal) and prints each file's report; with --wait --json, exactly the line
    `osmose ingest --json` prints for that file.

    A file the server does not answer for (down, restarting, full) is retried with
    exponential backoff for --retry-for seconds, with the same idempotency key, so a
    retry never makes a second job. Every file gets a line, whatever happened: once the
    server has not answered for --retry-for seconds, the files left are reported as
    "unavailable" without being sent.

    Exit status: 0 when every file was accepted (and, with --wait, succeeded), 1 when
    any was refused or failed, 2 for usage errors or when the server could not be reached
    for some file.
    """
    from osmose.pipeline import tier_from_name

    settings = settings_from(tenant=tenant, server=server)
    setup_logging(settings, 0)
    files = expand_paths(paths)
    if not files:
        raise click.UsageError("no PPTX/PPT/PDF files found in the given paths")
    from osmose.bus.topics import priority_from_name

    code = run_async(_submit(files, settings=settings, tenant=requested_tenant(settings, tenant),
                             tier=tier_from_name(tier), priority=priority_from_name(priority), wait=wait,
                             as_json=as_json, timeout=timeout, retry_for=retry_for, preview=preview))
    sys.exit(code)


async def _submit(files: list[Path], *, settings: Settings, tenant: str, tier: pb.Tier, priority: epb.Priority,
                  wait: bool, as_json: bool, timeout: float | None, retry_for: float = 120.0,
                  preview: bool = False) -> int:
    from osmose.cli.output import IngestProgress, print_report
    from osmose.errors import DocumentError
    from osmose.hosts.job_ledger import report_from_job
    from osmose.hosts.report import IngestReport
    from osmose.hosts.service_client import Backoff, RequestRejected, ServiceClient, ServiceUnreachable

    def refused(path: Path, error: str) -> IngestReport:
        report = IngestReport(file=str(path), status="error", error=error)
        report.seconds["total"] = 0.0
        return report

    run = uuid.uuid4().hex   # one idempotency key per file of this invocation: retries name the same job
    backoff = Backoff(budget_s=retry_for)
    unreachable = False
    async with ServiceClient.from_settings(settings.server, settings, wait_ready=False) as client:
        accepted: dict[int, str] = {}
        early: dict[int, IngestReport] = {}
        for index, path in enumerate(files):
            if not path.is_file():
                early[index] = refused(path, str(DocumentError(f"no such file: {path}", reason="not-found")))
            elif unreachable:
                early[index] = refused(path, f"unavailable: not sent, {settings.server} did not answer "
                                             f"for {retry_for:g} s")
            else:
                def on_retry(attempt: int, why: str, path: Path = path) -> None:
                    logger.warning("%s: %s; retry %d", path, why, attempt)

                try:
                    response = await client.submit_retrying(
                        path, idempotency_key=f"{run}-{index}", backoff=backoff, tenant=tenant, tier=tier,
                        priority=priority, on_retry=on_retry, preview=preview)
                except ServiceUnreachable as exc:
                    unreachable = True
                    early[index] = refused(path, str(exc))
                except RequestRejected as exc:
                    early[index] = refused(path, str(exc))
                else:
                    accepted[index] = response.job_id
            if wait:
                continue
            if as_json:   # one line per file, in input order, as each is queued or refused
                queued = index in accepted
                click.echo(json.dumps({"file": str(path), "status": "queued" if queued else "error",
                                       "job_id": accepted.get(index), "doc_id": response.doc_id if queued else None,
                                       "error": None if queued else early[index].error}, ensure_ascii=False))
            elif index in accepted:
                click.echo(f"{path}: job {accepted[index]}")
            else:
                click.echo(f"{path}: refused: {early[index].error}", err=True)
        if not wait:
            return 2 if unreachable else 1 if early else 0

        failed = 0
        with IngestProgress(files, enabled=not as_json or sys.stderr.isatty()) as progress:
            def on_event(index: int) -> Callable[[spb.JobEvent], None]:
                def update(event: spb.JobEvent) -> None:
                    if event.event == epb.JOB_EVENT_ENTERED:
                        progress.update(index, event.stage)
                    elif event.event == epb.JOB_EVENT_SEARCHABLE:
                        progress.update(index, "searchable")
                return update

            watchers = {index: asyncio.create_task(client.watch(job_id, on_event=on_event(index), timeout_s=timeout))
                        for index, job_id in accepted.items()}
            try:
                for index in range(len(files)):
                    if index in early:
                        report = early[index]
                    else:
                        try:
                            report = report_from_job(await watchers[index])
                        except RequestRejected as exc:   # e.g. --timeout: this file has no result yet
                            report = refused(files[index], str(exc))
                    progress.update(index, "done")
                    failed += report.status != "ok"
                    if as_json:
                        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
                    else:
                        progress.console.print(print_report(report))
            finally:
                for task in watchers.values():
                    task.cancel()
        if not as_json:
            ok = len(files) - failed
            whose = tenant or "of the credential"
            click.echo(f"{ok} of {len(files)} file(s) ingested through {settings.server} (tenant {whose})"
                       + (f"; {failed} failed" if failed else ""), err=True)
        return 2 if unreachable else 1 if failed else 0


# -- dlq -------------------------------------------------------------------------------------------

@click.group()
def dlq() -> None:
    """Dead letters: documents a stage gave up on (permanent error, or retries exhausted).

    \b
    Examples:
      osmose dlq list triage
      osmose dlq replay embedder              # every job still failed there
      osmose dlq replay embedder --job JOB_ID
    """


@dlq.command("list")
@click.argument("stage", type=click.Choice(_STAGES))
@kafka_options
@json_option
def dlq_list(stage: str, kafka_bootstrap: str | None, topic_prefix: str | None, as_json: bool) -> None:
    """List the dead letters of STAGE, oldest first: job, tenant, file, error class, reason, attempts.

    With --json, one object per line: {"job_id", "tenant", "file", "doc_id", "stage",
    "error_class", "reason", "message", "attempts", "retryable", "failed_at", "replay",
    "host", "trace_id", "partition", "offset"}.
    """
    from osmose.hosts.dead_letters import list_dead_letters

    settings = settings_from(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    setup_logging(settings, 0)
    config = _bus_config(settings, "osmose-dlq")
    entries = run_async(asyncio.to_thread(list_dead_letters, config, stage))
    for entry in entries:
        data = entry.as_dict()
        if as_json:
            click.echo(json.dumps(data, ensure_ascii=False))
        else:
            click.echo(f"{data['failed_at']}  {data['job_id']}  {data['tenant']}  {data['file']}\n"
                       f"    {data['error_class']} [{data['reason']}] after {data['attempts']} attempt(s): "
                       f"{data['message']}")
    if not as_json:
        click.echo(f"{len(entries)} dead letter(s) in {config.prefix}.{stage}.dlq", err=True)


@dlq.command("replay")
@click.argument("stage", type=click.Choice(_STAGES))
@click.option("--job", "job_ids", multiple=True, metavar="ID",
              help="Replay only this job (repeatable). Default: every job whose latest state is still the "
                   "failure that dead-lettered it.")
@kafka_options
@data_dir_option
@click.option("--blob-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The claim-check folder, to check the letters' blobs. [env OSMOSE_BLOB_DIR or OSMOSE_BLOB_URL]")
def dlq_replay(stage: str, job_ids: tuple[str, ...], kafka_bootstrap: str | None, topic_prefix: str | None,
               data_dir: Path | None, blob_dir: Path | None) -> None:
    """Re-drive dead letters of STAGE: each job goes back to STAGE's input, attempts reset.

    Replay after fixing the cause (a backend that was down, a missing tool). The job
    is queued again under the same id; `osmose submit`'s watchers and GetJob see it
    run again. A letter whose blobs (work item, submitted file) are no longer in the blob
    store is not replayed and is reported as expired: submit its file again.
    Exit status 1 when any letter had expired.
    """
    from osmose.hosts.dead_letters import replay_dead_letters
    from osmose.hosts.wiring import Resources

    settings = settings_from(data_dir, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, blob_dir=blob_dir)
    setup_logging(settings, 0)
    config = _bus_config(settings, "osmose-dlq")
    from osmose.bus.blobs import BlobStore, LocalBlobStore

    store: BlobStore | None = Resources(settings).blobs
    if isinstance(store, LocalBlobStore) and not store.root.is_dir():   # not the deployment's folder
        click.echo(f"warning: no blob folder at {store.root}: the letters' blobs are not checked "
                   "(--data-dir/--blob-dir or OSMOSE_BLOB_URL name the services' store)", err=True)
        store = None
    chosen = run_async(asyncio.to_thread(replay_dead_letters, config, stage, job_ids=job_ids, blobs=store))
    expired = [entry for entry in chosen if entry.expired]
    for entry in chosen:
        envelope = entry.letter.envelope
        if entry.expired:
            click.echo(f"NOT replayed {envelope.job_id} ({envelope.file}): blob-expired: "
                       f"{', '.join(entry.missing_blobs)} no longer in the blob store (past the blob retention); "
                       "submit the file again", err=True)
        else:
            click.echo(f"replayed {envelope.job_id} ({envelope.file})")
    click.echo(f"{len(chosen) - len(expired)} job(s) replayed at {stage}"
               + (f"; {len(expired)} not replayed, their blobs expired" if expired else ""), err=True)
    sys.exit(1 if expired else 0)


# -- blobs -----------------------------------------------------------------------------------------

@click.group()
def blobs() -> None:
    """The claim-check blob store (OSMOSE_BLOB_URL, or the folder OSMOSE_BLOB_DIR / DATA_DIR/blobs).

    \b
    Examples:
      osmose blobs sweep --dry-run
      osmose blobs sweep --retention-days 14     # as a daily Kubernetes CronJob (the Helm chart's blobSweep)
    """


@blobs.command("sweep")
@click.option("--retention-days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Remove blobs nobody stored for this long. [env OSMOSE_BLOB_RETENTION_DAYS; default 14]")
@click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")
@click.option("--force", is_flag=True,
              help="Allow a retention shorter than the input topics' (messages still waiting refer to blobs).")
@kafka_options
@data_dir_option
@click.option("--blob-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The claim-check folder. [env OSMOSE_BLOB_DIR; default DATA_DIR/blobs]")
@json_option
def blobs_sweep(retention_days: float | None, dry_run: bool, force: bool, kafka_bootstrap: str | None,
                topic_prefix: str | None, data_dir: Path | None, blob_dir: Path | None, as_json: bool) -> None:
    """Remove blobs not stored again for the retention period, and leftovers of dead writers.

    Every Submit or stage output that stores bytes already there restarts their age, so
    only blobs no recent message refers to are old. Blobs a dead letter still on its topic
    needs are kept whatever their age (read from the broker: the sweep fails rather than
    guess when the broker cannot be read), so `osmose dlq replay` works for the
    dead-letter topics' retention. The ownership markers of the blobs removed (`owners/`,
    `claims/`, `documents/`) go with them. Safe to run while the services run.
    """
    from osmose.bus.blobs.retention import sweep
    from osmose.bus.topics import INPUT_RETENTION_MS
    from osmose.hosts.dead_letters import referenced_blobs
    from osmose.hosts.wiring import Resources

    settings = settings_from(data_dir, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, blob_dir=blob_dir,
                             blob_retention_days=retention_days)
    setup_logging(settings, 0)
    retention_s = settings.blob_retention_days * 86400
    if retention_s * 1000 < INPUT_RETENTION_MS and not force:
        raise click.UsageError(f"a retention of {settings.blob_retention_days:g} days is shorter than the input "
                               f"topics' ({INPUT_RETENTION_MS / 86_400_000:g} days): messages still waiting "
                               "would lose their blobs (--force to do it anyway)")
    config = _bus_config(settings, "osmose-blobs")
    store = Resources(settings).blobs

    def run() -> object:
        return sweep(store, retention_s=retention_s, keep=referenced_blobs(config, store), dry_run=dry_run)

    report = run_async(asyncio.to_thread(run))
    data = report.as_dict()  # type: ignore[attr-defined]
    if as_json:
        click.echo(json.dumps(data))
    else:
        verb = "would remove" if dry_run else "removed"
        click.echo(f"{data['examined']} blob(s) examined in {store!r}: {verb} {data['removed']} "
                   f"({data['bytes_removed']:,} bytes); kept {data['kept_young']} stored within "
                   f"{settings.blob_retention_days:g} days and {data['kept_referenced']} older ones dead letters "
                   f"need; {data['scratch_removed']} leftover temporary file(s)/upload(s) and "
                   f"{data['markers_removed']} ownership marker(s) of the removed blobs removed")


# -- topics ----------------------------------------------------------------------------------------

@click.command()
@kafka_options
@json_option
@click.option("--create", is_flag=True, help="Also create the topics that do not exist yet (idempotent).")
def topics(kafka_bootstrap: str | None, topic_prefix: str | None, as_json: bool, create: bool) -> None:
    """Print the Kafka topics of the pipeline: names, partitions, retention, compaction.

    Declared once (osmose.bus.topics, from the stage list); the services create them
    at start (or, with OSMOSE_KAFKA_CREATE_TOPICS=false, wait for an operator to), and
    deployment tooling (the Helm chart) reads `osmose topics --json`. `--create` creates
    whatever OSMOSE_KAFKA_CREATE_TOPICS says.
    """
    from osmose.bus.kafka_client import ensure_topics
    from osmose.bus.topics import declare_topics

    settings = settings_from(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    setup_logging(settings, 0)
    config = _bus_config(settings, "osmose-topics")
    specs = declare_topics(config.prefix)
    if create:
        created = run_async(asyncio.to_thread(ensure_topics, dataclasses.replace(config, create_topics=True), specs))
        click.echo(f"{len(created)} topic(s) created, {len(specs) - len(created)} already existed", err=True)
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in specs], ensure_ascii=False, indent=2))
        return
    width = max(len(s.name) for s in specs)
    click.echo(f"{'topic':<{width}}  partitions  retention  cleanup         what")
    for s in specs:
        what = {"input": f"{s.priority} input of {s.stage}", "dead-letter": f"dead letters of {s.stage}",
                "job-status": "job status, keyed by job id"}[s.kind]
        click.echo(f"{s.name:<{width}}  {s.partitions:>10}  {s.retention_ms // 86_400_000:>7} d  "
                   f"{s.configs()['cleanup.policy']:<14}  {what}")


# -- describe --------------------------------------------------------------------------------------

@click.command()
@kafka_options
@json_option
def describe(kafka_bootstrap: str | None, topic_prefix: str | None, as_json: bool) -> None:
    """Print the pipeline as declared: stages (role, port, resources, tiers), consumer groups, topics.

    Everything here comes from one declaration (osmose.pipeline); the services use
    exactly these names and ports, and the Helm chart is generated from and tested
    against `osmose describe --json`. Needs no broker.
    """
    from osmose.bus.topics import describe_pipeline

    settings = settings_from(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    setup_logging(settings, 0)
    try:
        description = describe_pipeline(settings.topic_prefix, PIPELINE)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(description, ensure_ascii=False, indent=2))
        return
    click.echo(f"{'stage':<10} {'role':<10} {'port':>5}  {'tiers':<20} {'consumer group':<22} resources")
    for stage in description["stages"]:
        click.echo(f"{stage['name']:<10} {stage['role']:<10} {stage['port']:>5}  {','.join(stage['tiers']):<20} "
                   f"{stage['consumer_group']:<22} {','.join(stage['resources']) or '-'}")
    for tier, plan in description["tiers"].items():
        click.echo(f"{tier}: {' -> '.join(plan)}")
    click.echo(f"job status: {description['job_topic']}; `osmose topics` lists every topic")
