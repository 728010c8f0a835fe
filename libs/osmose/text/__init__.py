"""Text processing shared by stages: language-independent analysis for retrieval."""
