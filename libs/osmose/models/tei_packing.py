"""Embedding requests shared by documents: texts queue here and leave packed up to TEI's limits.

Every ``embed`` call of the process (one per document and stage, several documents at once)
puts its texts in one queue ordered by ``(priority, order, arrival)`` — the callers'
:class:`~osmose.models.context.CallOrder`: premium documents, then older ones, first. A
request leaves whenever fewer than the endpoint's ``concurrency`` requests are out, packed
from the head of the queue up to ``max_client_batch_size`` texts and ``max_batch_tokens``
(estimated) tokens (TEI's ``/info``). So while the server has free slots a document's
texts leave at once, alone (no added latency); while every slot is busy the texts of the
documents behind queue, and the next request packs them together — fewer, fuller requests
exactly when the server is saturated. When the endpoint reads TEI's ``/metrics``
(``load_source: metrics``), inputs waiting in TEI's own queue (``te_queue_size``, every
client's) take slots too: each ``max_client_batch_size`` of them, one request's worth, leaves
one slot fewer (at least one request stays out), so texts pack here rather than queue there.

Accounting (a request can carry several documents' texts): the request is counted once —
its calls and retries for the document whose texts lead it, whose retry budget it spends and
in whose context (trace) it runs;
every document is charged its own texts' tokens and its share (by tokens) of the backend
seconds. A request that fails fails every document with texts in it; a document whose call
is cancelled has its queued texts dropped.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from osmose.models.context import CallOrder
from osmose.models.retry import RetryBudget
from osmose.models.usage import TaskUsage

__all__ = ["EmbedRequest", "RequestPacker"]


@dataclass(frozen=True, kw_only=True)
class EmbedRequest:
    """One request as it leaves: its texts, their estimated tokens, where it queues for a slot
    and whose accounting it runs under (the leading document's)."""

    texts: list[str]
    tokens: int
    priority: int
    order: int
    usage: TaskUsage
    budget: RetryBudget


#: sends one request and returns one vector per text (the TEI client's ``/embed`` with retries)
Send = Callable[[EmbedRequest], Awaitable[np.ndarray]]


@dataclass(eq=False)
class _Caller:
    texts: Sequence[str]
    costs: list[int]
    usage: TaskUsage
    budget: RetryBudget
    done: asyncio.Future[None]
    remaining: int
    #: the caller's context (its trace span): a request it leads runs in it
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    parts: list[tuple[list[int], np.ndarray]] = field(default_factory=list)


@dataclass(eq=False)
class _Piece:
    caller: _Caller
    index: int


class RequestPacker:
    """Packs the texts of every caller into requests, at most `slots` out at once."""

    def __init__(self, send: Send, *, slots: int, server_queue: Callable[[], int] | None = None) -> None:
        """`server_queue`: inputs waiting in the server's queue now (0 when unknown)."""
        self._send = send
        self.slots = max(1, slots)
        self._server_queue = server_queue
        self._queue: list[tuple[int, int, int, _Piece]] = []
        self._arrivals = itertools.count()
        self._out = 0
        self._tasks: set[asyncio.Task[None]] = set()
        #: requests sent and texts they carried (for tests and logs)
        self.requests = 0
        self.shared_requests = 0

    async def embed(self, texts: Sequence[str], costs: list[int], *, usage: TaskUsage, budget: RetryBudget,
                    call_order: CallOrder, max_items: int, max_tokens: int) -> list[tuple[list[int], np.ndarray]]:
        """The vectors of `texts`, as (indexes into `texts`, their vectors) parts."""
        caller = _Caller(texts=texts, costs=costs, usage=usage, budget=budget,
                         done=asyncio.get_running_loop().create_future(), remaining=len(texts))
        for index in range(len(texts)):
            heapq.heappush(self._queue, (call_order.priority, call_order.order, next(self._arrivals),
                                         _Piece(caller, index)))
        self._pump(max_items=max_items, max_tokens=max_tokens)
        await caller.done  # cancelled with the caller: its queued texts are skipped
        return caller.parts

    def _take(self, *, max_items: int, max_tokens: int) -> tuple[list[_Piece], int, int]:
        """The next request's pieces from the head of the queue, and its (priority, order)."""
        batch: list[_Piece] = []
        used = 0
        priority = order = 0
        while self._queue and len(batch) < max_items:
            head_priority, head_order, _, piece = self._queue[0]
            if piece.caller.done.done():  # its caller was cancelled or failed: nothing to send
                heapq.heappop(self._queue)
                continue
            cost = piece.caller.costs[piece.index]
            if batch and used + cost > max_tokens:
                break
            heapq.heappop(self._queue)
            if not batch:
                priority, order = head_priority, head_order
            batch.append(piece)
            used += cost
        return batch, priority, order

    def limit(self, max_items: int) -> int:
        """Requests out at once now: the slots, less one per request's worth of the server's queue."""
        queued = self._server_queue() if self._server_queue is not None else 0
        if queued <= 0:
            return self.slots
        return max(1, self.slots - math.ceil(queued / max(1, max_items)))

    def _pump(self, *, max_items: int, max_tokens: int) -> None:
        limit = self.limit(max_items)
        while self._out < limit:
            batch, priority, order = self._take(max_items=max_items, max_tokens=max_tokens)
            if not batch:
                return
            self._out += 1
            task = asyncio.get_running_loop().create_task(
                self._run(batch, priority, order, max_items=max_items, max_tokens=max_tokens),
                context=batch[0].caller.context)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[_Piece], priority: int, order: int, *, max_items: int, max_tokens: int) -> None:
        lead = batch[0].caller
        callers = list(dict.fromkeys(p.caller for p in batch))
        shared = TaskUsage()
        tokens = {c: sum(c.costs[p.index] for p in batch if p.caller is c) for c in callers}
        request = EmbedRequest(texts=[p.caller.texts[p.index] for p in batch], tokens=sum(tokens.values()),
                               priority=priority, order=order, usage=shared, budget=lead.budget)
        self.requests += 1
        self.shared_requests += len(callers) > 1
        cancelled = False
        try:
            vectors = await self._send(request)
        except BaseException as exc:
            cancelled = isinstance(exc, asyncio.CancelledError)
            for caller in callers:
                caller.usage.failures += 1
                if not caller.done.done():
                    if isinstance(exc, asyncio.CancelledError):
                        caller.done.cancel()
                    else:
                        caller.done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            for caller in callers:
                indexes = [i for i, p in enumerate(batch) if p.caller is caller]
                caller.usage.prompt_tokens += tokens[caller]
                caller.parts.append(([batch[i].index for i in indexes], vectors[indexes]))
                caller.remaining -= len(indexes)
                if caller.remaining == 0 and not caller.done.done():
                    caller.done.set_result(None)
        finally:
            lead.usage.calls += shared.calls
            lead.usage.retries += shared.retries
            total = max(1, request.tokens)
            for caller in callers:
                caller.usage.backend_seconds += shared.backend_seconds * tokens[caller] / total
            self._out -= 1
            if not cancelled:  # a request cancelled (shutdown) starts no other
                self._pump(max_items=max_items, max_tokens=max_tokens)
