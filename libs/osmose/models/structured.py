"""Structured tasks over segments: several segments per prompt, one JSON answer, one cache entry per segment.

A stage that asks a language model about a document's segments (concept
extraction, relation typing) declares a :class:`SegmentTask` — its system
prompt, the JSON schema of one answer item, the name of the per-segment answer
array — and hands its segments to :func:`ask_segments`, which runs the loop
every such task shares:

1. recall: a segment answered before (any deck, any version) makes no call;
2. pack: the other segments, consecutive, at most ``batch_size`` per call and about
   ``max_input_chars`` of text (the route's settings) — sized to the backend's load
   (:func:`call_size`): one segment per call while the endpoint has free slots for all of
   them (answers decode in parallel), packed up to ``batch_size`` as its queue grows — this
   process's queue, or the server's when the endpoint reads its ``/metrics``
   (prefill and per-call overhead saved where slots are the bottleneck);
3. gather: every call of the document in flight at once, the longest first (the backends'
   limits bound them; long calls started last would leave slots idle at the end);
4. repair: an answer that is not schema-valid JSON is asked once more, with
   what was wrong (a different prompt, so a different cache key);
5. remember: each segment's part of an answer is stored under its own content
   key, so a new version of a deck asks about changed segments only.

Segments left without an answer fail the document with a retryable error when
the route says ``fallback: fail``; otherwise they are counted as fallbacks and
returned, for the stage's offline path.

Prompt layout: the static instructions and the schema go in the system message,
identical for every call (vLLM's prefix cache then serves them from its KV
cache); the user message is ``SEGMENT s<k>`` blocks, the answer says which
local id each part is for.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from osmose.models.context import current_segment_listener
from osmose.models.exceptions import ModelOutputError, ModelRequestError, ModelUnavailableError
from osmose.models.json_output import parse_json_answer
from osmose.models.openai_chat import ChatRequest, JsonSchema
from osmose.text.budget import pack_greedy

if TYPE_CHECKING:
    from osmose.models.config import Target
    from osmose.models.runtime import ModelSession

__all__ = [
    "REPAIR",
    "SegmentAnswers",
    "SegmentBlock",
    "SegmentTask",
    "SegmentUnit",
    "ask_segments",
    "call_size",
    "segments_schema",
]

logger = logging.getLogger(__name__)

REPAIR = ("\n\nYour previous answer could not be used ({error}). Answer again: one JSON object that "
          "matches the schema, for every SEGMENT above, and nothing else.")
_MAX_ERROR_CHARS = 300  # of the parse error quoted in a repair prompt
_MISSING = "segments missing from the answer"
#: calls aimed at each free slot of the endpoint when sizing a document's calls (see call_size)
CALLS_PER_FREE_SLOT = 2

AnswerItems = list[dict[str, Any]]


class SegmentUnit(Protocol):
    """One segment's part of a prompt: which segment, and its text as the prompt shows it."""

    @property
    def segment_id(self) -> str: ...

    @property
    def block(self) -> str: ...


@dataclass(frozen=True)
class SegmentBlock:
    """The plain :class:`SegmentUnit`, for tasks that need nothing else per segment."""

    segment_id: str
    block: str


U = TypeVar("U", bound=SegmentUnit)


def segments_schema(answer_field: str, item: Mapping[str, Any], *, max_items: int) -> dict[str, Any]:
    """The answer schema of every segment task:
    ``{"segments": [{"id": "s1", <answer_field>: [<item>, ...at most max_items]}, ...]}``."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["segments"],
        "properties": {
            "segments": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["id", answer_field],
                    "properties": {
                        "id": {"type": "string"},
                        answer_field: {"type": "array", "maxItems": max_items, "items": dict(item)},
                    },
                },
            },
        },
    }


@dataclass(frozen=True, kw_only=True)
class SegmentTask:
    """What a stage declares about its task; the prompts, cache keys and answer reading follow."""

    name: str  # the route's task name (router config, usage accounting)
    title: str  # for error messages: "concept extraction"
    system: str  # static instructions, schema included: the same for every call
    schema_name: str  # response_format's name
    schema: Mapping[str, Any]  # from segments_schema
    answer_field: str  # the per-segment array in the schema

    @cached_property
    def version(self) -> str:
        """Identifies the prompt and schema: part of every per-segment cache key."""
        return hashlib.sha256((self.system + REPAIR).encode()).hexdigest()[:16]

    def item_key(self, block: str) -> str:
        """A segment's cache key: prompt version + the segment's text."""
        return hashlib.sha256(f"{self.version}\x00{block}".encode()).hexdigest()

    def request(self, units: Sequence[SegmentUnit]) -> ChatRequest:
        parts = [f"SEGMENT s{i + 1}\n{unit.block}" for i, unit in enumerate(units)]
        return ChatRequest(system=self.system, user="\n\n".join(parts),
                           schema=JsonSchema(self.schema_name, self.schema))

    @staticmethod
    def repair_request(first: ChatRequest, error: str) -> ChatRequest:
        """The same question again with what was wrong."""
        return ChatRequest(system=first.system, user=first.user + REPAIR.format(error=error[:_MAX_ERROR_CHARS]),
                           schema=first.schema)

    def read_answer(self, text: str, units: Sequence[SegmentUnit]) -> dict[str, AnswerItems]:
        """Segment id -> its answer items, for the segments the answer covers (the first
        part for a segment wins). Raises :class:`ModelOutputError` when the answer is not
        schema-valid JSON."""
        value = parse_json_answer(text, self.schema)
        local = {f"s{i + 1}": unit for i, unit in enumerate(units)}
        out: dict[str, AnswerItems] = {}
        for entry in value["segments"]:
            unit = local.get(str(entry["id"]).strip())
            if unit is not None and unit.segment_id not in out:
                out[unit.segment_id] = list(entry[self.answer_field])
        return out


@dataclass
class SegmentAnswers(Generic[U]):
    """What :func:`ask_segments` got: answers by segment id, and the segments left without one."""

    answers: dict[str, AnswerItems] = field(default_factory=dict)
    failed: list[U] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why, deduplicated

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


async def ask_segments(session: ModelSession, task: SegmentTask, units: Sequence[U]) -> SegmentAnswers[U]:
    """The model's answers for `units` (see the module docstring for the steps).

    Raises :class:`ModelUnavailableError` when some segments got no answer and the
    route says ``fallback: fail``; otherwise they are counted as fallbacks of the task
    and listed in ``failed``."""
    route = session.route(task.name)
    if route is None:
        raise ModelUnavailableError(f"no route for task {task.name!r}")
    result: SegmentAnswers[U] = SegmentAnswers()
    # 1. Segments answered before: no call.
    recalled = await asyncio.gather(*(session.recall(task.name, task.item_key(u.block)) for u in units))
    todo = []
    for unit, hit in zip(units, recalled, strict=True):
        if hit is None:
            todo.append(unit)
        else:
            result.answers[unit.segment_id] = hit[0]
    # 2.-3. The others, packed to the backend's load, all calls in flight at once (longest first).
    size = (call_size(session, task.name, len(todo), route.batch_size) if route.packing == "load"
            else route.batch_size)
    batches = pack_greedy(todo, size=lambda u: len(u.block), max_size=route.max_input_chars, max_items=size)
    batches.sort(key=lambda b: -sum(len(u.block) for u in b))
    listener = current_segment_listener()
    pending = [len(todo)]

    async def run(batch: list[U]) -> tuple[list[U], str]:
        outcome = await _run_batch(session, task, batch, result.answers)
        pending[0] -= len(batch)
        if listener is not None:
            try:
                listener(task.name, result.answers, pending[0])
            except Exception:  # a listener's problem never fails the document's calls
                logger.exception("segment listener failed")
        return outcome

    outcomes = await asyncio.gather(*(run(batch) for batch in batches))
    position = {id(unit): i for i, unit in enumerate(todo)}
    result.failed = sorted((unit for missing, _ in outcomes for unit in missing), key=lambda u: position[id(u)])
    result.reasons = list(dict.fromkeys(reason for _, reason in outcomes if reason))
    if result.failed:
        if route.fallback == "fail":
            raise ModelUnavailableError(f"{task.title} failed for {len(result.failed)} segments: {result.reason}")
        session.fallback(task.name, len(result.failed))
    return result


def call_size(session: ModelSession, task: str, units: int, batch_size: int) -> int:
    """Segments per call for `units` segments, from the live view of the endpoint that would
    serve them (its free slots: concurrency - in flight - queued; with ``load_source: metrics``
    in flight and queued include the server's other clients, see
    :attr:`osmose.models.backend.Backend.free`).

    Up to ``CALLS_PER_FREE_SLOT`` segments per free slot: one segment per call (the answers
    decode in parallel, and many short calls balance over the slots, where a few long ones
    leave slots idle while the last decodes). More segments than that: packed so each
    free slot gets about that many calls.

    None free: a queue. Packing saves each extra call's overhead and prefill, but the packed
    answers decode one after the other in one sequence: k segments hold one slot about k
    times as long. That pays only while the queue outlasts the packed call, so the size
    follows the queue's depth in waves — (calls queued + these segments) ÷ concurrency: one
    segment per call under two waves (the queue drains within about one call's time, and a
    long call would end up decoding alone at the end of a backlog), one more per further
    wave, up to ``batch_size``."""
    if units <= 0 or batch_size <= 1:
        return 1
    backend = next((backend for _target, backend in session.runtime.targets(task) if backend.breaker.allows()),
                   None)
    if backend is None:
        return batch_size
    free = backend.free
    if free <= 0:   # -free calls queued (here, or at the server with load_source: metrics), plus ours
        return max(1, min(batch_size, (units - free) // max(1, backend.limits.concurrency)))
    return max(1, min(batch_size, units // (free * CALLS_PER_FREE_SLOT)))


async def _run_batch(session: ModelSession, task: SegmentTask, batch: list[U],
                     answers: dict[str, AnswerItems]) -> tuple[list[U], str]:
    """Asks about one batch and remembers each answered segment (step 5); returns the
    segments left without an answer and why."""
    try:
        got, target = await _ask(session, task, batch)
    except (ModelUnavailableError, ModelRequestError) as exc:  # a repaired answer still unusable included
        return list(batch), f"{type(exc).__name__}: {exc}"
    missing = []
    for unit in batch:
        if unit.segment_id in got:
            answers[unit.segment_id] = got[unit.segment_id]
            await session.remember(task.name, target, task.item_key(unit.block), got[unit.segment_id])
        else:
            missing.append(unit)
    return missing, _MISSING if missing else ""


async def _ask(session: ModelSession, task: SegmentTask, batch: Sequence[SegmentUnit]
               ) -> tuple[dict[str, AnswerItems], Target]:
    """One call, and one repair call when the answer is unusable (step 4)."""
    request = task.request(batch)
    answer = await session.chat(task.name, request)
    try:
        return task.read_answer(answer.text, batch), answer.target
    except ModelOutputError as exc:
        logger.info("%s: unusable answer from %s (%s); asking again", task.name, answer.target.label, exc)
        repaired = await session.chat(task.name, task.repair_request(request, str(exc)))
        return task.read_answer(repaired.text, batch), repaired.target
