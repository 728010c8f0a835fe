"""Osmose: decks and PDFs to a knowledge graph and a vector index.

Shared library code lives here (models, config, errors, parsing, stores,
embeddings, hosts, CLI); each pipeline stage lives in ``osmose.services.<stage>``.
"""

__version__ = "0.1.0"
