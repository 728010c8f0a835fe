"""Which graph and vector store the wiring picks, from settings alone (no server is contacted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from osmose.config import Settings
from osmose.errors import ConfigurationError
from osmose.hosts.wiring import Resources
from osmose.stores.neo4j_graph import Neo4jGraphStore
from osmose.stores.qdrant_store import QdrantVectorStore
from osmose.stores.sqlite_graph import SqliteGraphStore

pytestmark = pytest.mark.anyio


async def test_embedded_by_default(tmp_path: Path, anyio_backend: str) -> None:
    resources = Resources(Settings(data_dir=tmp_path))
    try:
        assert isinstance(resources.graph, SqliteGraphStore)
        vectors = resources.vectors
        assert isinstance(vectors, QdrantVectorStore) and vectors._local
    finally:
        await resources.close()


async def test_servers_when_configured(tmp_path: Path, anyio_backend: str) -> None:
    settings = Settings.from_env({
        "OSMOSE_DATA_DIR": str(tmp_path), "OSMOSE_GRAPH_URI": "neo4j://graph.example:7687",
        "OSMOSE_GRAPH_USER": "osmose", "OSMOSE_GRAPH_PASSWORD": "s3cret",
        "OSMOSE_QDRANT_URL": "http://qdrant.example:6333", "OSMOSE_QDRANT_API_KEY": "key",
    })
    resources = Resources(settings)
    try:
        graph = resources.graph
        assert isinstance(graph, Neo4jGraphStore) and (graph._uri, graph._user) == ("neo4j://graph.example:7687", "osmose")
        vectors = resources.vectors
        assert isinstance(vectors, QdrantVectorStore) and not vectors._local
        assert (vectors._url, vectors._api_key) == ("http://qdrant.example:6333", "key")
        assert not (tmp_path / "graph.sqlite").exists()
    finally:
        await resources.close()


def test_neo4j_without_a_password_is_a_configuration_error(tmp_path: Path) -> None:
    resources = Resources(Settings(data_dir=tmp_path, graph_uri="bolt://127.0.0.1:7687"))
    with pytest.raises(ConfigurationError, match="OSMOSE_GRAPH_PASSWORD"):
        resources.graph  # noqa: B018
