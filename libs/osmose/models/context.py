"""Which document a model call is made for, when the call cannot be told explicitly.

Chat calls go through a :class:`~osmose.models.runtime.ModelSession` the stage
holds. Embeddings go through the shared ``Embeddings`` interface (the local
model has no notion of documents), so a stage binds its session's accounting
here around its embedding calls and the TEI client charges the calls and the
retries to it. ``asyncio.gather`` copies the context into its tasks, so every
batch in flight is charged to the right document.

A host also binds a document's :class:`CallOrder` (its priority class and its place
in the host's queue) around its processing; sessions and embedding calls made for
it wait for backend slots in that order (see :mod:`osmose.models.limits`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from osmose.models.retry import RetryBudget
from osmose.models.usage import UsageRecorder

__all__ = ["DEFAULT_CALL_ORDER", "PREMIUM_PRIORITY", "Accounting", "CallOrder", "SegmentListener", "bind_accounting",
           "bind_call_order", "bind_segment_listener", "current_accounting", "current_call_order",
           "current_segment_listener"]

#: vLLM's convention: lower values are served first; 0 is everybody else
PREMIUM_PRIORITY = -1


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


@dataclass(frozen=True)
class CallOrder:
    priority: int = 0  # lower first (PREMIUM_PRIORITY for premium documents)
    order: int = 0  # the document's place in its host's queue: older first


#: everybody else's calls: priority 0, first in the queue order
DEFAULT_CALL_ORDER = CallOrder()
_ORDER: ContextVar[CallOrder | None] = ContextVar("osmose_model_call_order", default=None)


def current_call_order() -> CallOrder:
    return _ORDER.get() or DEFAULT_CALL_ORDER


@contextmanager
def bind_call_order(call_order: CallOrder) -> Iterator[CallOrder]:
    token = _ORDER.set(call_order)
    try:
        yield call_order
    finally:
        _ORDER.reset(token)


#: told ``(task, answers so far by segment id, segments still asked)`` each time a call of a
#: structured task (:func:`osmose.models.structured.ask_segments`) completes: lets a host start
#: the next stage's work on a document while this stage's last calls decode
SegmentListener = Callable[[str, Mapping[str, Sequence[Mapping[str, Any]]], int], None]

_LISTENER: ContextVar[SegmentListener | None] = ContextVar("osmose_segment_listener", default=None)


def current_segment_listener() -> SegmentListener | None:
    return _LISTENER.get()


@contextmanager
def bind_segment_listener(listener: SegmentListener | None) -> Iterator[SegmentListener | None]:
    token = _LISTENER.set(listener)
    try:
        yield listener
    finally:
        _LISTENER.reset(token)
