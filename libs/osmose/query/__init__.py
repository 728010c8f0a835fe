"""The query side, shared by both hosts and the gRPC client: hybrid search with graph
context, and per-tenant counts. Results are the protobuf messages of
``osmose/v1/services.proto`` on every path, so a hit is defined (and mapped) once.
"""

from __future__ import annotations

from google.protobuf.message import Message

from osmose.query.search import Searcher
from osmose.query.stats import COLUMNS, stats_as_table, tenant_stats
from osmose.v1 import services_pb2 as spb

__all__ = ["COLUMNS", "Searcher", "hit_as_dict", "stats_as_table", "tenant_stats"]


def hit_as_dict(hit: spb.SearchHit) -> dict[str, object]:
    """A hit as `osmose search --json` prints it: every field in the proto's order, empty ones included."""
    return _as_dict(hit)


def _as_dict(message: Message) -> dict[str, object]:
    out: dict[str, object] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.message_type is not None:
            out[field.name] = [_as_dict(v) for v in value] if _repeated(field) else _as_dict(value)
        else:
            out[field.name] = list(value) if _repeated(field) else value
    return out


def _repeated(field: object) -> bool:
    return bool(getattr(field, "is_repeated", False) or getattr(field, "label", 0) == 3)
