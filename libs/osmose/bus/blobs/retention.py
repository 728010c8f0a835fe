"""The retention sweep of the claim-check store (`osmose blobs sweep`, a Kubernetes CronJob).

Blobs are content addressed and shared by every job that stores the same bytes, so no job
can delete "its" blobs. A blob is removed instead when nobody stored it for the retention
period: every put of bytes already stored restarts their age (the local store touches the
file; the S3 store copies an object older than a day onto itself), so a blob that new
messages refer to stays young. Blobs that a dead letter still on its topic refers to are
kept whatever their age, so `osmose dlq replay` works for the dead-letter topics' whole
retention; the caller passes those references (:func:`osmose.hosts.dead_letters.referenced_blobs`).

The retention must exceed the input topics' retention: a message waiting in a backlog
refers to blobs stored when it was published.

A blob deleted takes its ownership markers with it (``owners/``, ``claims/``, ``documents/``:
:meth:`BlobStore.drop_claims`), so the index erasure reads never names a blob that is gone.
A claim made while the sweep deletes that very blob can be lost with them; the blob it
stores again then goes by retention, not by erasure.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from osmose.bus.blobs.protocol import BlobStore

__all__ = ["SCRATCH_AGE_S", "SweepReport", "sweep"]

logger = logging.getLogger(__name__)

#: temporary files and unfinished uploads older than this are leftovers of a dead writer
SCRATCH_AGE_S = 3600.0


@dataclass
class SweepReport:
    examined: int = 0
    removed: int = 0
    bytes_removed: int = 0
    kept_young: int = 0
    kept_referenced: int = 0
    scratch_removed: int = 0
    markers_removed: int = 0
    dry_run: bool = False
    removed_refs: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"examined": self.examined, "removed": self.removed, "bytes_removed": self.bytes_removed,
                "kept_young": self.kept_young, "kept_referenced": self.kept_referenced,
                "scratch_removed": self.scratch_removed, "markers_removed": self.markers_removed, "dry_run": self.dry_run}


def sweep(store: BlobStore, *, retention_s: float, keep: frozenset[str] | set[str] = frozenset(),
          dry_run: bool = False, now: float | None = None) -> SweepReport:
    """Remove the blobs of `store` not stored for `retention_s` seconds, except those in `keep`,
    and the leftovers of writers that died (older than :data:`SCRATCH_AGE_S`)."""
    horizon = (time.time() if now is None else now) - retention_s
    report = SweepReport(dry_run=dry_run)
    for blob in store.list_blobs():
        report.examined += 1
        if blob.stored_at >= horizon:
            report.kept_young += 1
        elif blob.ref in keep:
            report.kept_referenced += 1
        elif dry_run or store.delete_if_older(blob.ref, horizon):
            report.removed += 1
            report.bytes_removed += blob.size
            report.removed_refs.append(blob.ref)
            if not dry_run:
                report.markers_removed += store.drop_claims(blob.ref)
        else:
            report.kept_young += 1   # stored again while the sweep ran
    if not dry_run:
        report.scratch_removed = store.remove_scratch(SCRATCH_AGE_S)
    logger.info("blob sweep of %r: %s", store, report.as_dict())
    return report
