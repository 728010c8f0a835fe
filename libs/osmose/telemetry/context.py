"""Which document the current task works on, as metric labels (tier, tenant class, lane, stage).

The stage worker binds it around a document's processing; the model backends read it so
their metrics carry the document's tier without a model call knowing about documents.
``asyncio.gather`` copies the context into its tasks, so concurrent calls stay labelled.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["DocumentLabels", "bind_document", "current_document"]


@dataclass(frozen=True, kw_only=True)
class DocumentLabels:
    tier: str = "unspecified"
    tenant_class: str = "default"
    lane: str = "bulk"
    stage: str = ""


_NONE = DocumentLabels()
_CURRENT: ContextVar[DocumentLabels] = ContextVar("osmose_document_labels", default=_NONE)


def current_document() -> DocumentLabels:
    return _CURRENT.get()


@contextmanager
def bind_document(labels: DocumentLabels) -> Iterator[DocumentLabels]:
    token = _CURRENT.set(labels)
    try:
        yield labels
    finally:
        _CURRENT.reset(token)
