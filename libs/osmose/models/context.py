"""Which document a model call is made for, when the call cannot be told explicitly.

Chat calls go through a :class:`~osmose.models.runtime.ModelSession` the stage
holds. Embeddings go through the shared ``Embeddings`` interface (the local
model has no notion of documents), so a stage binds its session's accounting
here around its embedding calls and the TEI client charges the calls and the
retries to it. ``asyncio.gather`` copies the context into its tasks, so every
batch in flight is charged to the right document.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from osmose.models.retry import RetryBudget
from osmose.models.usage import UsageRecorder

__all__ = ["Accounting", "bind_accounting", "current_accounting"]


@dataclass(frozen=True)
class Accounting:
    usage: UsageRecorder
    budget: RetryBudget


_CURRENT: ContextVar[Accounting | None] = ContextVar("osmose_model_accounting", default=None)


def current_accounting() -> Accounting | None:
    return _CURRENT.get()


@contextmanager
def bind_accounting(accounting: Accounting) -> Iterator[Accounting]:
    token = _CURRENT.set(accounting)
    try:
        yield accounting
    finally:
        _CURRENT.reset(token)
