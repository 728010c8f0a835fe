"""Wiring: which store, model and backend each stage gets, decided once from Settings.

A stage is built by lookup in its declaration (:mod:`osmose.pipeline`): the class named
by ``factory``, its config object from ``Config.from_settings``, and the ``resources``
it declares, passed as keywords. Every host builds its stages here: the in-process host (all six stages in one
process) and the service host (`osmose serve STAGE`, one stage per process).
So the choice "embedded store or Neo4j", "local model or TEI", "heuristics or
an LLM" is made in one place and means the same in both modes.

`Resources` opens things lazily (a triage process never loads the embedding
model; `osmose stats` never loads it either) and closes what it opened.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from osmose.config import Settings
from osmose.pipeline import PIPELINE, Pipeline, Resource, Stage
from osmose.stage import PipelineStage

if TYPE_CHECKING:
    from osmose.bus.blobs import BlobStore
    from osmose.documents.parsing.worker import ParserPool
    from osmose.embeddings.base import Embeddings
    from osmose.embeddings.cached import CachedEmbeddings
    from osmose.models import ModelRuntime
    from osmose.query import Searcher
    from osmose.stores.graph import GraphStore
    from osmose.stores.vectors import VectorStore

__all__ = ["DEFAULT_IN_FLIGHT", "Resources", "build_stage", "build_stages"]

logger = logging.getLogger(__name__)

#: documents in flight without model backends to keep busy (the work is CPU-bound)
DEFAULT_IN_FLIGHT = 2


class Resources:
    """Stores, embeddings and model clients of one process, opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._graph: GraphStore | None = None
        self._vectors: VectorStore | None = None
        self._embeddings: CachedEmbeddings | None = None
        self._models: ModelRuntime | None = None
        self._parser_pool: ParserPool | None = None
        self._blobs: BlobStore | None = None
        self._opened: list[Any] = []

    def _track(self, resource: Any) -> Any:
        self._opened.append(resource)
        return resource

    @property
    def graph(self) -> GraphStore:
        if self._graph is None:
            s = self.settings
            if s.graph_uri:  # neo4j://… or bolt://…: a Neo4j server
                from osmose.stores.neo4j_graph import Neo4jGraphStore

                password = s.graph_password.get_secret_value() if s.graph_password else None
                self._graph = self._track(Neo4jGraphStore(s.graph_uri, user=s.graph_user, password=password))
            else:
                from osmose.stores.sqlite_graph import SqliteGraphStore

                s.data_dir.mkdir(parents=True, exist_ok=True)
                self._graph = self._track(SqliteGraphStore(s.graph_path))
        return self._graph

    @property
    def vectors(self) -> VectorStore:
        if self._vectors is None:
            from osmose.embeddings.minilm import MiniLMEmbeddings
            from osmose.stores.qdrant_store import QdrantVectorStore

            s = self.settings
            s.data_dir.mkdir(parents=True, exist_ok=True)
            remote = self.models.embeddings if self.models is not None else None
            dim = remote.dim if remote is not None else MiniLMEmbeddings.dim
            if s.qdrant_url:  # a Qdrant server, one collection for every tenant
                api_key = s.qdrant_api_key.get_secret_value() if s.qdrant_api_key else None
                store = QdrantVectorStore(url=s.qdrant_url, api_key=api_key, dim=dim)
            else:
                store = QdrantVectorStore(path=s.vector_path, dim=dim)
            self._vectors = self._track(store)
        return self._vectors

    @property
    def embeddings(self) -> CachedEmbeddings:
        if self._embeddings is None:
            from osmose.embeddings.cached import CachedEmbeddings
            from osmose.models.cache import open_content_cache

            s = self.settings
            cache_url = s.cache_url.get_secret_value() if s.cache_url else None
            cache = self._track(open_content_cache(cache_url=cache_url, sqlite_path=s.cache_path,
                                                   namespace="embeddings", ttl_s=s.cache_ttl_days * 86400,
                                                   max_entries=s.cache_max_entries))
            # TEI when OSMOSE_TEI_URL is set (the router's embeddings endpoint), else the local model.
            model: Embeddings | None = self.models.embeddings if self.models is not None else None
            if model is None:
                from osmose.embeddings.minilm import MiniLMEmbeddings

                model = MiniLMEmbeddings(batch_size=s.embed_batch_size, max_tokens=s.chunk_max_tokens)
            self._embeddings = CachedEmbeddings(model, cache)
        return self._embeddings

    @property
    def models(self) -> ModelRuntime | None:
        """Model backends (router, clients, breakers, call cache) when any model URL is set, else None."""
        s = self.settings
        if self._models is None and (s.llm_url or s.vision_url or s.tei_url):
            from osmose.models import ModelRuntime

            self._models = self._track(ModelRuntime.from_settings(s))
        return self._models

    def documents_in_flight(self, stage: Stage | None = None) -> int:
        """Documents worked on at once, from the model backends' capacity: the router's chat slots
        x ``documents_per_slot`` (:meth:`osmose.models.config.RouterConfig.documents_in_flight`)
        when model endpoints are set, else :data:`DEFAULT_IN_FLIGHT`. The in-process host asks
        for the whole pipeline (`stage` None); the service host asks per stage, and a stage that
        does not call the models (it declares no ``models`` resource) gets the default."""
        if stage is not None and "models" not in stage.resources:
            return DEFAULT_IN_FLIGHT
        models = self.models
        return models.config.documents_in_flight(minimum=DEFAULT_IN_FLIGHT) if models is not None \
            else DEFAULT_IN_FLIGHT

    @property
    def blobs(self) -> BlobStore:
        """The claim-check store: a shared folder, or an S3-compatible bucket (OSMOSE_BLOB_URL)."""
        if self._blobs is None:
            from osmose.bus.blobs import open_blob_store

            s = self.settings
            secret = s.blob_s3_secret_access_key
            self._blobs = open_blob_store(
                url=s.blob_url, local_dir=s.blob_path, endpoint_url=s.blob_s3_endpoint, region=s.blob_s3_region,
                access_key_id=s.blob_s3_access_key_id,
                secret_access_key=secret.get_secret_value() if secret else None, ca_bundle=s.blob_s3_ca_bundle)
        return self._blobs

    def get(self, resource: Resource) -> Any:
        """A declared resource by name (see :data:`osmose.pipeline.RESOURCES`)."""
        return getattr(self, resource)

    @property
    def parser(self) -> ParserPool:
        """Worker processes that parse documents with a deadline (osmose.parsing.worker)."""
        if self._parser_pool is None:
            from osmose.documents.parsing.worker import ParserPool

            self._parser_pool = self._track(ParserPool(size=2))
        return self._parser_pool

    def cache_erasers(self) -> list[Callable[[str], int]]:
        """What forgets a tenant's cached embeddings and model answers in this process's caches
        (shared ones with OSMOSE_CACHE_URL; per-process SQLite files otherwise)."""
        from osmose.documents.rendering import erase_render_cache

        erasers: list[Callable[[str], int]] = [self.embeddings.erase,
                                               lambda tenant: erase_render_cache(self.settings.data_dir, tenant)]
        if self.models is not None:
            erasers.append(self.models.erase)
        return erasers

    def document_cache_erasers(self) -> list[Callable[[str, str], int]]:
        """What forgets one document's cached embeddings, model answers and converted deck in this
        process's caches (see :meth:`cache_erasers`)."""
        from osmose.documents.rendering import erase_rendered_document

        erasers: list[Callable[[str, str], int]] = [
            self.embeddings.erase_document,
            lambda tenant, doc_id: erase_rendered_document(self.settings.data_dir, tenant, doc_id)]
        if self.models is not None:
            erasers.append(self.models.erase_document)
        return erasers

    def searcher(self) -> Searcher:
        from osmose.query import Searcher

        return Searcher(embeddings=self.embeddings, vectors=self.vectors, graph=self.graph)

    async def close(self) -> None:
        for resource in reversed(self._opened):
            close = getattr(resource, "aclose", None) or getattr(resource, "close", None)
            if close is None:
                continue
            try:
                result = close()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # closing one must not keep the others open
                logger.exception("closing %r failed", resource)
        self._opened = []
        self._graph = self._vectors = self._embeddings = None
        self._models = None
        self._parser_pool = None


def build_stage(stage: Stage | str, resources: Resources, *, pipeline: Pipeline = PIPELINE) -> PipelineStage:
    """The declared stage (or the one called so in `pipeline`), wired to this process's resources."""
    decl = pipeline[stage] if isinstance(stage, str) else stage
    cls = decl.load()
    config = cls.Config.from_settings(resources.settings)
    built = cls(config, **{name: resources.get(name) for name in sorted(decl.resources)})
    if built.name != decl.name:
        raise ValueError(f"{decl.factory} builds a stage named {built.name!r}, declared as {decl.name!r}")
    return built


def build_stages(resources: Resources, *, pipeline: Pipeline = PIPELINE) -> dict[str, PipelineStage]:
    return {decl.name: build_stage(decl, resources) for decl in pipeline}
