"""One file's outcome, as every host reports it.

The in-process host (`osmose ingest --json`) and the service host (job status,
`osmose submit --wait --json`) build it from the final work item with the same
function, so both print exactly the same line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from osmose.errors import ConfigurationError, DocumentError, OsmoseError, RetryableError
from osmose.models.usage import usage_dict
from osmose.pipeline import tier_name
from osmose.security.exceptions import SecurityError
from osmose.v1 import pipeline_pb2 as ppb

__all__ = ["IngestReport", "describe_error", "fill_report"]


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(stable reason code, report text) of an error: the one wording every host uses, in
    reports, job status, dead letters and gRPC status messages."""
    if isinstance(exc, DocumentError):          # "<reason>: <explanation>"
        return exc.reason, str(exc)
    if isinstance(exc, ConfigurationError):     # e.g. LibreOffice missing for a .ppt
        return "configuration", f"configuration: {exc}"
    if isinstance(exc, RetryableError):
        return "retryable", f"retryable: {exc}"
    if isinstance(exc, SecurityError):          # "<reason>: <explanation>" already
        return str(exc).partition(":")[0], str(exc)
    if isinstance(exc, OsmoseError):
        return getattr(exc, "reason", "failed"), f"failed: {exc}"
    return "internal", f"internal error ({type(exc).__name__}): {exc}"


@dataclass
class IngestReport:
    """The outcome of one file; `as_dict` is the CLI's --json line."""

    file: str
    status: str = "ok"
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    doc_id: str | None = None
    tier: str | None = None
    slides: int = 0
    segments: int = 0
    concepts: int = 0
    relations: int = 0
    chunks: int = 0
    embedded: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    language: str = ""
    tier_reason: str = ""
    vision_slides: int = 0
    # Model backend use (calls, tokens, cache hits, backend seconds, by task); zeros when offline.
    model: dict[str, object] = field(default_factory=lambda: usage_dict(ppb.ModelUsage()))

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file, "status": self.status, "error": self.error, "warnings": self.warnings,
            "doc_id": self.doc_id, "tier": self.tier, "slides": self.slides, "segments": self.segments,
            "concepts": self.concepts, "relations": self.relations, "chunks": self.chunks,
            "embedded": self.embedded, "seconds": self.seconds, "model": self.model,
            "tier_reason": self.tier_reason,
        }


def fill_report(report: IngestReport, item: ppb.WorkItem) -> None:
    """Counts, tier and warnings of a finished (or failed) work item, into its report."""
    doc = item.document
    report.warnings = list(dict.fromkeys([*doc.warnings, *item.warnings]))
    report.model = usage_dict(item.model_usage)
    if not doc.doc_id:
        return
    report.doc_id = doc.doc_id
    report.tier = tier_name(item.plan.tier) if item.plan.tier else None
    report.tier_reason = item.plan.tier_reason
    report.language = item.plan.language
    report.vision_slides = item.plan.vision_slides
    report.slides = len(doc.slides)
    report.segments = len(item.segments)
    report.concepts = len({c.canonical_key for c in item.concepts if c.canonical_key})
    report.relations = len(item.relations)
    report.chunks = len(item.chunks)
    report.embedded = item.counters.embedded
