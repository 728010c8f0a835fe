"""Persister: the only writer of the stores. Writes a document's graph and chunk
vectors idempotently (its process also serves the query side, :mod:`osmose.query`)."""

from osmose.services.persister.stage import PersisterConfig, PersisterStage

__all__ = ["PersisterConfig", "PersisterStage"]
