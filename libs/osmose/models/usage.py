"""Cost accounting: what the model backends were asked for one document.

A :class:`UsageRecorder` belongs to one document at one stage (a
:class:`~osmose.models.runtime.ModelSession` holds it); the stage adds it to the
work item's ``model_usage`` (see :func:`add_to_proto`), so the counts travel
with the document through every host and end in the CLI's ``--json`` line
(``"model"``) and in the job status.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from osmose.v1 import pipeline_pb2 as ppb

__all__ = ["TASKS", "TaskUsage", "UsageRecorder", "add_to_proto", "merge_usage", "usage_dict"]

#: task names used by the stages (the router may define more)
TASKS = ("vision_summary", "concept_extraction", "relation_typing", "embedding")


@dataclass
class TaskUsage:
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    backend_seconds: float = 0.0
    retries: int = 0
    failures: int = 0
    fallbacks: int = 0

    def add(self, other: TaskUsage) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


class UsageRecorder:
    """Per-task counters; plain attribute updates (one event loop, no await in between)."""

    def __init__(self) -> None:
        self.by_task: dict[str, TaskUsage] = {}

    def task(self, name: str) -> TaskUsage:
        usage = self.by_task.get(name)
        if usage is None:
            usage = self.by_task[name] = TaskUsage()
        return usage

    @property
    def total(self) -> TaskUsage:
        total = TaskUsage()
        for usage in self.by_task.values():
            total.add(usage)
        return total


def _fill(message: ppb.TaskUsage, usage: TaskUsage | ppb.TaskUsage) -> None:
    message.calls += usage.calls
    message.cache_hits += usage.cache_hits
    message.prompt_tokens += usage.prompt_tokens
    message.output_tokens += usage.output_tokens
    message.backend_seconds = round(message.backend_seconds + usage.backend_seconds, 6)
    message.retries += usage.retries
    message.failures += usage.failures
    message.fallbacks += usage.fallbacks


def merge_usage(into: ppb.ModelUsage, extra: ppb.ModelUsage) -> None:
    """Adds another work item's ``model_usage`` (a side stage's, a look-ahead's) to `into`."""
    for name in sorted(extra.by_task):
        _fill(into.by_task[name], extra.by_task[name])
    _fill(into.total, extra.total)


def add_to_proto(item_usage: ppb.ModelUsage, recorder: UsageRecorder) -> None:
    """Adds `recorder`'s counts to a work item's ``model_usage`` (tasks with no activity are left out)."""
    for name, usage in sorted(recorder.by_task.items()):
        if usage == TaskUsage():
            continue
        _fill(item_usage.by_task[name], usage)
        _fill(item_usage.total, usage)


def _as_dict(message: ppb.TaskUsage) -> dict[str, int | float]:
    usage = TaskUsage(calls=message.calls, cache_hits=message.cache_hits, prompt_tokens=message.prompt_tokens,
                      output_tokens=message.output_tokens, backend_seconds=round(message.backend_seconds, 3),
                      retries=message.retries, failures=message.failures, fallbacks=message.fallbacks)
    return asdict(usage)


def usage_dict(usage: ppb.ModelUsage) -> dict[str, object]:
    """The ``"model"`` object of the --json line: totals, then ``by_task``. Same keys
    whether or not any model was called (offline: zeros and an empty ``by_task``)."""
    out: dict[str, object] = dict(_as_dict(usage.total))
    out["by_task"] = {name: _as_dict(usage.by_task[name]) for name in sorted(usage.by_task)}
    return out
