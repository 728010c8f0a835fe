"""Pieces every `osmose` command shares: settings from flags, logging, options, file expansion."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from osmose.config import DEFAULT_TENANT, Settings
from osmose.errors import ConfigurationError, OsmoseError
from osmose.pipeline import TIER_NAMES

__all__ = [
    "SUPPORTED_SUFFIXES",
    "TIERS",
    "UnreachableExit",
    "data_dir_option",
    "expand_paths",
    "graph_uri_option",
    "json_option",
    "kafka_options",
    "run_async",
    "server_option",
    "settings_from",
    "setup_logging",
    "tenant_option",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

SUPPORTED_SUFFIXES = {".pptx", ".pptm", ".ppsx", ".ppt", ".pdf"}
TIERS = list(TIER_NAMES.values())


class UnreachableExit(click.ClickException):
    """No server or broker answered: exit status 2, like a usage or configuration error."""

    exit_code = 2


def settings_from(data_dir: Path | None = None, tenant: str | None = None, **overrides: object) -> Settings:
    try:
        return Settings.from_env().with_overrides(data_dir=data_dir, tenant=tenant, **overrides)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc


# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with every field the caller passed as `extra`
    (job_id, doc_id, tenant, trace_id, counts, …)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
                                    "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(settings: Settings, verbose: int, *, default: int | None = None, as_json: bool = False) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else (
        default if default is not None else getattr(logging, settings.log_level, logging.WARNING))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    # Dependencies are chatty about damaged files; their messages become warnings in our reports.
    # kafka-python warns about its own event loop's timing and transient metadata; errors still show.
    for noisy in ("pptx", "yake", "httpx", "qdrant_client", "kafka"):
        logging.getLogger(noisy).setLevel(max(level, logging.ERROR))


def expand_paths(paths: tuple[Path, ...]) -> list[Path]:
    """Files as given; directories searched recursively for supported documents."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES))
        else:
            files.append(path)
    return files


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    from osmose.bus.exceptions import BusUnavailableError
    from osmose.hosts.service_client import ServiceUnreachable as _Unreachable

    try:
        return asyncio.run(coro)
    except (_Unreachable, BusUnavailableError) as exc:
        raise UnreachableExit(str(exc)) from exc
    except ConfigurationError as exc:
        raise UnreachableExit(f"configuration: {exc}") from exc
    except OsmoseError as exc:
        raise click.ClickException(str(exc)) from exc


data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Where the graph, vector index and caches live. [env OSMOSE_DATA_DIR; default ./osmose-data]")
tenant_option = click.option(
    "--tenant", default=None, metavar="T",
    help="Tenant the documents belong to; data of one tenant is never visible to another. "
         "[env OSMOSE_TENANT; default 'default']")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
graph_uri_option = click.option(
    "--graph-uri", default=None, metavar="URI",
    help="Graph store: unset = the embedded store in the data directory; neo4j://HOST:7687 or "
         "bolt://HOST:7687 = a Neo4j server. [env OSMOSE_GRAPH_URI]")
server_option = click.option(
    "--server", default=None, metavar="HOST:PORT",
    help="Ask a running `osmose serve` (the persister's port, or `serve all`'s 50051) instead of "
         "opening the local data directory.")


def kafka_options(func: F) -> F:
    """--kafka and --topic-prefix (they override OSMOSE_KAFKA_BOOTSTRAP and OSMOSE_TOPIC_PREFIX)."""
    func = click.option("--topic-prefix", default=None, metavar="P",
                        help="Prefix of every topic name, so deployments can share a cluster. "
                             "[env OSMOSE_TOPIC_PREFIX; default osmose]")(func)
    return click.option("--kafka", "kafka_bootstrap", default=None, metavar="HOST:PORT[,...]",
                        help="Kafka bootstrap servers. [env OSMOSE_KAFKA_BOOTSTRAP; default 127.0.0.1:9092]")(func)


def requested_tenant(settings: Settings, flag: str | None) -> str:
    """The tenant a request to a server names: the --tenant flag, or OSMOSE_TENANT; with a
    credential and neither given, none, so the server takes the credential's own."""
    if flag:
        return flag
    if (settings.token or settings.api_key) and settings.tenant == DEFAULT_TENANT:
        return ""
    return settings.tenant
