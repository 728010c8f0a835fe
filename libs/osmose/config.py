"""Settings: one validated object per process, read from the environment once.

Defaults work offline on a laptop. Nothing reads the environment at import
time: call :func:`Settings.from_env` (the CLI does) and pass the object down.
Every setting is listed in the README's configuration table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from osmose.errors import ConfigurationError

__all__ = ["Limits", "Settings", "TriagePolicy", "DEFAULT_DATA_DIR", "DEFAULT_TENANT"]

DEFAULT_DATA_DIR = Path("./osmose-data")
DEFAULT_TENANT = "default"


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Bounds that keep one bad file from hurting anyone else."""

    max_file_bytes: int = 256 * 1024 * 1024
    max_pages: int = 2000
    # Pictures/pages are never decoded above this many pixels (decompression bombs).
    max_image_pixels: int = 40_000_000
    # Seconds for one LibreOffice conversion (legacy .ppt or PPTX rendering).
    convert_timeout_s: float = 180.0
    # Seconds to parse one document (in a worker process, killed beyond it); a legacy
    # .ppt also gets convert_timeout_s for its LibreOffice conversion.
    parse_timeout_s: float = 120.0
    # Seconds for OCR of one page.
    ocr_timeout_s: float = 60.0
    # Characters of text kept per page (beyond this a page is truncated with a warning).
    max_page_chars: int = 200_000


@dataclass(frozen=True, kw_only=True)
class TriagePolicy:
    """How triage picks a tier and decides where vision is worth its cost."""

    # Documents up to this many pages get DEEP, up to standard_max_pages STANDARD, beyond FAST.
    deep_max_pages: int = 150
    standard_max_pages: int = 1000
    # A page needs vision when pictures/charts cover at least this share of it
    # and it carries fewer than vision_max_words words of text.
    vision_min_visual_ratio: float = 0.35
    vision_max_words: int = 40


@dataclass(frozen=True, kw_only=True)
class Settings:
    data_dir: Path = DEFAULT_DATA_DIR
    tenant: str = DEFAULT_TENANT
    limits: Limits = field(default_factory=Limits)
    triage: TriagePolicy = field(default_factory=TriagePolicy)
    # Texts per forward pass of the local embedding model.
    embed_batch_size: int = 32
    # Upper bound of one chunk, in model tokens (all-MiniLM-L6-v2 reads 256).
    chunk_max_tokens: int = 256
    # Paths of optional system tools; None = look them up on PATH.
    soffice: str | None = None
    tesseract: str | None = None
    # Log level for library loggers.
    log_level: str = "WARNING"
    # -- backends; None = the embedded default --------------------------------------------------
    # Graph: unset = embedded SQLite graph in data_dir; neo4j://… or bolt://… = a Neo4j server.
    graph_uri: str | None = None
    graph_user: str = "neo4j"
    graph_password: str | None = None
    # Vectors: unset = Qdrant local mode in data_dir; http(s)://… = a Qdrant server.
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    # Models: OpenAI-compatible base URLs including /v1 (vLLM), TEI's base URL; unset = offline paths.
    llm_url: str | None = None
    vision_url: str | None = None
    tei_url: str | None = None
    # YAML file for the LLM router; None = the default shipped with Osmose.
    router_config: Path | None = None
    # Model-call cache: unset = SQLite in data_dir; redis://… = Redis.
    cache_url: str | None = None
    # -- distributed mode (osmose serve / submit) ------------------------------------------------
    kafka_bootstrap: str = "127.0.0.1:9092"
    # Prefix of every topic name (several deployments can share one cluster).
    topic_prefix: str = "osmose"
    # Claim-check blob store shared by the service processes; None = data_dir/blobs.
    blob_dir: Path | None = None

    def __post_init__(self) -> None:
        if not self.tenant or len(self.tenant) > 128 or any(c.isspace() for c in self.tenant):
            raise ConfigurationError(f"tenant must be 1-128 characters without spaces, got {self.tenant!r}")
        if self.embed_batch_size < 1:
            raise ConfigurationError("OSMOSE_EMBED_BATCH_SIZE must be at least 1")
        if not 16 <= self.chunk_max_tokens <= 512:
            raise ConfigurationError("OSMOSE_CHUNK_MAX_TOKENS must be between 16 and 512")
        if self.limits.max_file_bytes < 1 or self.limits.max_pages < 1:
            raise ConfigurationError("file size and page limits must be positive")

    @property
    def graph_path(self) -> Path:
        return self.data_dir / "graph.sqlite"

    @property
    def vector_path(self) -> Path:
        return self.data_dir / "qdrant"

    @property
    def blob_path(self) -> Path:
        return self.blob_dir or self.data_dir / "blobs"

    @property
    def cache_path(self) -> Path:
        return self.data_dir / "cache" / "embeddings.sqlite"

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the given fields replaced (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def num(name: str, default: float, kind: type = int) -> float:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                return kind(raw)
            except ValueError:
                raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None

        limits = Limits(
            max_file_bytes=int(num("OSMOSE_MAX_FILE_MB", Limits.max_file_bytes / 2**20, float) * 2**20),
            max_pages=int(num("OSMOSE_MAX_PAGES", Limits.max_pages)),
            max_image_pixels=int(num("OSMOSE_MAX_IMAGE_PIXELS", Limits.max_image_pixels)),
            convert_timeout_s=num("OSMOSE_CONVERT_TIMEOUT_S", Limits.convert_timeout_s, float),
            ocr_timeout_s=num("OSMOSE_OCR_TIMEOUT_S", Limits.ocr_timeout_s, float),
            parse_timeout_s=num("OSMOSE_PARSE_TIMEOUT_S", Limits.parse_timeout_s, float),
        )
        triage = TriagePolicy(
            deep_max_pages=int(num("OSMOSE_DEEP_MAX_PAGES", TriagePolicy.deep_max_pages)),
            standard_max_pages=int(num("OSMOSE_STANDARD_MAX_PAGES", TriagePolicy.standard_max_pages)),
        )
        return cls(
            data_dir=Path(env.get("OSMOSE_DATA_DIR") or DEFAULT_DATA_DIR),
            tenant=env.get("OSMOSE_TENANT") or DEFAULT_TENANT,
            limits=limits,
            triage=triage,
            embed_batch_size=int(num("OSMOSE_EMBED_BATCH_SIZE", 32)),
            chunk_max_tokens=int(num("OSMOSE_CHUNK_MAX_TOKENS", 256)),
            soffice=env.get("OSMOSE_SOFFICE") or None,
            tesseract=env.get("OSMOSE_TESSERACT") or None,
            log_level=(env.get("OSMOSE_LOG_LEVEL") or "WARNING").upper(),
            graph_uri=env.get("OSMOSE_GRAPH_URI") or None,
            graph_user=env.get("OSMOSE_GRAPH_USER") or "neo4j",
            graph_password=env.get("OSMOSE_GRAPH_PASSWORD") or None,
            qdrant_url=env.get("OSMOSE_QDRANT_URL") or None,
            qdrant_api_key=env.get("OSMOSE_QDRANT_API_KEY") or None,
            llm_url=env.get("OSMOSE_LLM_URL") or None,
            vision_url=env.get("OSMOSE_VISION_URL") or None,
            tei_url=env.get("OSMOSE_TEI_URL") or None,
            router_config=Path(env["OSMOSE_ROUTER_CONFIG"]) if env.get("OSMOSE_ROUTER_CONFIG") else None,
            cache_url=env.get("OSMOSE_CACHE_URL") or None,
            kafka_bootstrap=env.get("OSMOSE_KAFKA_BOOTSTRAP") or "127.0.0.1:9092",
            topic_prefix=env.get("OSMOSE_TOPIC_PREFIX") or "osmose",
            blob_dir=Path(env["OSMOSE_BLOB_DIR"]) if env.get("OSMOSE_BLOB_DIR") else None,
        )
