"""Text embeddings: the interface, the local all-MiniLM-L6-v2 model and the cache."""

from osmose.embeddings.base import Embeddings, EmbedResult

__all__ = ["EmbedResult", "Embeddings"]
