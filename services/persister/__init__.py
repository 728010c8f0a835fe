"""Persister: the only writer of the stores. Writes a document's graph and chunk
vectors idempotently and serves search over them."""

from osmose.services.persister.search import RelatedHit, Searcher, SearchHit, SupportingSlide
from osmose.services.persister.stage import PersisterStage

__all__ = ["PersisterStage", "RelatedHit", "SearchHit", "Searcher", "SupportingSlide"]
