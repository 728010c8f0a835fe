"""Embedder: cuts slides into size-bounded chunks with their title context and
embeds them through a content-addressed cache (no text is embedded twice)."""

from osmose.services.embedder.stage import EmbedderConfig, EmbedderStage

__all__ = ["EmbedderConfig", "EmbedderStage"]
