"""Settings: one validated object per process, read from the environment once.

Defaults work offline on a laptop. Nothing reads the environment at import
time: call :meth:`Settings.from_env` (the CLI does) and pass the object down.
Keyword construction (``Settings(data_dir=..., tenant=...)``) never reads the
environment, so tests and embedders get exactly what they ask for.

Every ``OSMOSE_*`` variable is a field of :class:`Settings`: a top-level field
``name`` is read from ``OSMOSE_<NAME>``; the nested :class:`Limits` and
:class:`TriagePolicy` keep short flat names of their own (``OSMOSE_MAX_PAGES``,
``OSMOSE_MAX_FILE_MB`` in MiB, ...), declared next to each field.
:func:`environment_variables` lists them all; the README's configuration table
is tested against it (tests/unit/test_config.py).

Passwords, keys and URLs that may carry credentials are :class:`~pydantic.SecretStr`:
``repr``, ``str``, dumps and error messages show ``**********``; the one place
that needs the value calls ``.get_secret_value()``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.dataclasses import dataclass as validated_dataclass
from pydantic.dataclasses import is_pydantic_dataclass
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from osmose.errors import ConfigurationError
from osmose.pipeline import PIPELINE

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_TENANT",
    "ENV_PREFIX",
    "EnvironmentVariable",
    "Limits",
    "Settings",
    "TriagePolicy",
    "environment_variables",
]

ENV_PREFIX = "OSMOSE_"
DEFAULT_DATA_DIR = Path("./osmose-data")
DEFAULT_TENANT = "default"
DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_SERVER = f"127.0.0.1:{PIPELINE.front_door.port}"   # the front door
MIB = 2**20
# Values are validated, never echoed, in errors; inputs are added back for non-secret fields only.
_VALUE_CONFIG = ConfigDict(hide_input_in_errors=True)


def _env(name: str, *, scale: int = 1) -> dict[str, Any]:
    """Field metadata: the variable a nested field is read from (`scale` multiplies its value)."""
    return {"env": name, "env_scale": scale}


@validated_dataclass(frozen=True, kw_only=True, config=_VALUE_CONFIG)
class Limits:
    """Bounds that keep one bad file from hurting anyone else."""

    # A pydantic dataclass (not a model): the parse worker ships it as `asdict(limits)`.
    max_file_bytes: Annotated[int, Field(ge=1, json_schema_extra=_env("OSMOSE_MAX_FILE_MB", scale=MIB))] = 256 * MIB
    max_pages: Annotated[int, Field(ge=1, json_schema_extra=_env("OSMOSE_MAX_PAGES"))] = 2000
    # Pictures/pages are never decoded above this many pixels (decompression bombs).
    max_image_pixels: Annotated[int, Field(ge=1, json_schema_extra=_env("OSMOSE_MAX_IMAGE_PIXELS"))] = 40_000_000
    # Seconds for one LibreOffice conversion (legacy .ppt or PPTX rendering).
    convert_timeout_s: Annotated[float, Field(gt=0, json_schema_extra=_env("OSMOSE_CONVERT_TIMEOUT_S"))] = 180.0
    # Seconds to parse one document (in a worker process, killed beyond it); a legacy
    # .ppt also gets convert_timeout_s for its LibreOffice conversion.
    parse_timeout_s: Annotated[float, Field(gt=0, json_schema_extra=_env("OSMOSE_PARSE_TIMEOUT_S"))] = 120.0
    # Seconds for OCR of one page.
    ocr_timeout_s: Annotated[float, Field(gt=0, json_schema_extra=_env("OSMOSE_OCR_TIMEOUT_S"))] = 60.0
    # Characters of text kept per page (beyond this a page is truncated with a warning). Not a variable.
    max_page_chars: Annotated[int, Field(ge=1)] = 200_000


@validated_dataclass(frozen=True, kw_only=True, config=_VALUE_CONFIG)
class TriagePolicy:
    """How triage picks a tier and decides where vision is worth its cost."""

    # Documents up to this many pages get DEEP, up to standard_max_pages STANDARD, beyond FAST.
    deep_max_pages: Annotated[int, Field(ge=0, json_schema_extra=_env("OSMOSE_DEEP_MAX_PAGES"))] = 150
    standard_max_pages: Annotated[int, Field(ge=0, json_schema_extra=_env("OSMOSE_STANDARD_MAX_PAGES"))] = 1000
    # A page needs vision when pictures/charts cover at least this share of it
    # and it carries fewer than vision_max_words words of text. Not variables.
    vision_min_visual_ratio: Annotated[float, Field(ge=0, le=1)] = 0.35
    vision_max_words: Annotated[int, Field(ge=0)] = 40
    # The per-document budget, checked right after parsing from estimates (characters / 3 per
    # embedding token, characters / 4 per LLM token, one LLM call per flagged slide and per segment
    # and LLM pass). Tokens to embed beyond max_embed_tokens: the document is refused (`too-large`;
    # every tier embeds all its text). LLM calls or LLM tokens of the tier beyond the other two:
    # the next lower tier that fits (DEEP -> STANDARD -> FAST), with the reason in the report.
    max_embed_tokens: Annotated[int, Field(ge=1, json_schema_extra=_env("OSMOSE_MAX_EMBED_TOKENS"))] = 3_000_000
    max_model_calls: Annotated[int, Field(ge=0, json_schema_extra=_env("OSMOSE_MAX_MODEL_CALLS"))] = 2_000
    max_llm_tokens: Annotated[int, Field(ge=0, json_schema_extra=_env("OSMOSE_MAX_LLM_TOKENS"))] = 2_000_000
    # Documents of at least this many pages given STANDARD or DEEP are made searchable at FAST first
    # and enriched afterwards in the same job (as with `osmose ingest --preview`); 0 = only on request.
    preview_min_pages: Annotated[int, Field(ge=0, json_schema_extra=_env("OSMOSE_PREVIEW_MIN_PAGES"))] = 0


_NESTED: dict[str, type] = {"limits": Limits, "triage": TriagePolicy}


@dataclass(frozen=True, kw_only=True)
class EnvironmentVariable:
    """One ``OSMOSE_*`` variable: where its value lands in :class:`Settings`."""

    name: str
    path: tuple[str, ...]  # ("tenant",) or ("limits", "max_pages")
    default: Any
    secret: bool = False
    scale: int = 1  # the variable's value times `scale` is the field's (MiB -> bytes)


class Settings(BaseSettings):
    """Everything one process is configured with. Frozen; copy with :meth:`with_overrides`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid",
                                      hide_input_in_errors=True, validate_default=True)

    data_dir: Path = DEFAULT_DATA_DIR
    tenant: str = DEFAULT_TENANT
    limits: Limits = Field(default_factory=Limits)
    triage: TriagePolicy = Field(default_factory=TriagePolicy)
    # Texts per forward pass of the local embedding model.
    embed_batch_size: Annotated[int, Field(ge=1)] = 32
    # Upper bound of one chunk, in model tokens (all-MiniLM-L6-v2 reads 256).
    chunk_max_tokens: Annotated[int, Field(ge=16, le=512)] = 256
    # Paths of optional system tools; None = look them up on PATH.
    soffice: str | None = None
    tesseract: str | None = None
    # Log level for library loggers.
    log_level: str = "WARNING"
    # -- backends; None = the embedded default --------------------------------------------------
    # Graph: unset = embedded SQLite graph in data_dir; neo4j://… or bolt://… = a Neo4j server.
    graph_uri: str | None = None
    graph_user: str = "neo4j"
    graph_password: SecretStr | None = None
    # Vectors: unset = Qdrant local mode in data_dir; http(s)://… = a Qdrant server.
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    # Models: OpenAI-compatible base URLs including /v1 (vLLM), TEI's base URL; unset = offline paths.
    llm_url: str | None = None
    vision_url: str | None = None
    tei_url: str | None = None
    # API keys of those endpoints (vLLM/TEI `--api-key`), sent as a bearer token; the router YAML names
    # them as ${llm_api_key}, ${vision_api_key}, ${tei_api_key}, never holds a key itself.
    llm_api_key: SecretStr | None = None
    vision_api_key: SecretStr | None = None
    tei_api_key: SecretStr | None = None
    # YAML file for the LLM router; None = the default shipped with Osmose.
    router_config: Path | None = None
    # Model-call cache: unset = SQLite in data_dir; redis://… = Redis (the URL may carry a password).
    cache_url: SecretStr | None = None
    # -- distributed mode (osmose serve / submit) ------------------------------------------------
    kafka_bootstrap: str = DEFAULT_KAFKA_BOOTSTRAP
    # Prefix of every topic name (several deployments can share one cluster).
    topic_prefix: str = "osmose"
    # Claim-check blob store shared by the service processes; None = data_dir/blobs.
    blob_dir: Path | None = None
    # A cluster's blob store: s3://bucket[/prefix] on any S3-compatible server; None = the folder above.
    blob_url: str | None = None
    blob_s3_endpoint: str | None = None          # None = AWS S3
    blob_s3_region: str | None = None
    blob_s3_access_key_id: str | None = None     # None (both) = boto3's chain: AWS_*, web identity, …
    blob_s3_secret_access_key: SecretStr | None = None
    blob_s3_ca_bundle: str | None = None         # a CA file for a private endpoint
    # The front door `osmose submit` talks to.
    server: str = DEFAULT_SERVER
    # Documents one stage works on at once, per priority class (`osmose serve`); None = derived:
    # a stage that calls the models takes the router's chat slots x documents_per_slot (the
    # in-process host's rule), the others 2.
    max_in_flight: Annotated[int, Field(ge=1, le=64)] | None = None
    # Faults (`osmose serve`): the deadline of one attempt of a stage (beyond it: dead letter
    # `stage-timeout`); deliveries of one message to one stage before it is dead-lettered as
    # `delivery-limit` (each time, the process holding it died); during a dependency outage the
    # longest pause between two tries of a waiting document and how long it waits at most (then
    # `dependency-unavailable`); how long a publish is retried while the broker does not answer.
    stage_timeout_s: Annotated[float, Field(gt=0)] = 900.0
    max_deliveries: Annotated[int, Field(ge=1, le=100)] = 5
    outage_retry_cap_s: Annotated[float, Field(gt=0)] = 30.0
    outage_max_s: Annotated[float, Field(gt=0)] = 3600.0
    publish_retry_s: Annotated[float, Field(ge=0)] = 300.0
    # Look-aheads (`osmose serve`): the extractor sends copies of its work item ahead to the embedder
    # and (DEEP) the miner, whose model answers land in the caches the real messages recall (README,
    # "How the service host keeps the pool busy"); false = every stage after the previous one (staged).
    lookahead: bool = True
    # Work items above this size travel through the blob store, not inside the Kafka message.
    claim_check_bytes: Annotated[int, Field(ge=1024, le=900 * 1024)] = 256 * 1024
    # -- bounds on growth (see the README, "Bounded resources") ---------------------------------
    # Blobs not stored again for this long are removed by `osmose blobs sweep` (those a dead letter
    # still on its topic refers to are kept); at least the input topics' retention (7 days).
    blob_retention_days: Annotated[float, Field(gt=0)] = 14.0
    # Terminal jobs the in-memory job table keeps (GetJob/WatchJob, idempotent Submit): at most this
    # many, and none ended longer ago than the age below; older ones are NOT_FOUND.
    job_table_max_ended: Annotated[int, Field(ge=1)] = 10_000
    job_table_ended_ttl_s: Annotated[float, Field(gt=0)] = 24 * 3600.0
    # gRPC calls one listener serves at once (RESOURCE_EXHAUSTED beyond), and Submit/WatchJob
    # streams one front door holds open; a Submit stream silent this long is ended.
    max_concurrent_rpcs: Annotated[int, Field(ge=1)] = 512
    max_streams: Annotated[int, Field(ge=1)] = 256
    submit_idle_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    # Model-call and embedding caches: entries older than this are recomputed (SQLite rows are
    # pruned, Redis keys expire), and a SQLite cache keeps at most this many rows.
    cache_ttl_days: Annotated[float, Field(gt=0)] = 30.0
    cache_max_entries: Annotated[int, Field(ge=1)] = 1_000_000
    # Decks converted to PDF kept on disk (data_dir/cache/renders): the least recently used are
    # removed beyond this many bytes.
    render_cache_max_bytes: Annotated[int, Field(ge=0)] = 2 * 1024**3
    # Kafka transport: TLS and SASL (credentials from a Secret), and durability of created topics.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None      # client certificate, for brokers that require one
    kafka_ssl_keyfile: Path | None = None
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # Replicas of each created topic (None = the broker's default) and writes a broker must hold
    # before it acknowledges (with acks=all): 3 and 2 on a production cluster.
    kafka_replication_factor: Annotated[int, Field(ge=1, le=16)] | None = None
    kafka_min_insync_replicas: Annotated[int, Field(ge=1, le=16)] | None = None
    # False when an operator owns the topics (Strimzi KafkaTopic, Terraform...): services then wait
    # for the declared topics instead of creating them (their Kafka user needs no CreateTopics ACL).
    kafka_create_topics: bool = True
    # -- security of the gRPC services (osmose serve) and of their clients ---------------------
    # TLS: this process's certificate and key, and the CA that signs its peers' (mTLS); PEM files.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    # Credentials the public listener accepts: hashed API keys (a file), and/or JWTs of one issuer.
    api_keys_file: Path | None = None
    jwt_issuer: str | None = None
    jwt_audience: str = "osmose"
    jwt_jwks_file: Path | None = None
    jwt_jwks_url: str | None = None
    # What a client (`osmose submit/search/stats --server`) presents: a bearer token or an API key.
    token: SecretStr | None = None
    api_key: SecretStr | None = None
    # -- observability -----------------------------------------------------------------------------
    # OTLP/gRPC endpoint for traces (e.g. http://otel-collector:4317); None = no export (offline).
    otlp_endpoint: str | None = None

    def __init__(self, **values: Any) -> None:
        # One error type for every bad setting, whether it came from a variable or a keyword.
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigurationError(_explain(exc)) from None

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Keywords only: the environment is read by from_env, explicitly, once.
        return (init_settings,)

    @field_validator("tenant")
    @classmethod
    def _tenant_is_a_name(cls, tenant: str) -> str:
        # Control characters too (NUL ends a C string; a tenant is a key in every store and header).
        if not tenant or len(tenant) > 128 or any(c.isspace() or not c.isprintable() for c in tenant):
            raise ValueError(f"tenant must be 1-128 characters without spaces or control characters, got {tenant!r}")
        # A tenant also names folders and object-key segments (render cache, blob ownership index):
        # no path separator, and not a name a path resolves elsewhere ("." or "..", or hidden).
        if "/" in tenant or "\\" in tenant or tenant.startswith("."):
            raise ValueError(f"tenant must not contain '/' or '\\' nor start with '.', got {tenant!r}")
        return tenant

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level_is_known(cls, level: object) -> object:
        if isinstance(level, str):
            level = level.strip().upper()
            if level not in logging.getLevelNamesMapping():
                raise ValueError(f"log level must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
        return level

    @field_validator("cache_url")
    @classmethod
    def _cache_url_is_redis(cls, url: SecretStr | None) -> SecretStr | None:
        # The URL may carry a password: the message names the scheme only.
        if url is not None and not url.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            scheme = url.get_secret_value().partition("://")[0] if "://" in url.get_secret_value() else "no scheme"
            raise ValueError(f"must be redis://, rediss:// or unix:// (got {scheme})")
        return url

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
        """A validated copy with the given fields replaced (None values are ignored)."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        values.update({k: v for k, v in changes.items() if v is not None})
        return type(self)(**values)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``OSMOSE_*`` variables of `environ` (default: this process's environment)."""
        source = _EnvironmentSource(cls, environ=os.environ if environ is None else environ)
        return cls(**source())


def environment_variables() -> tuple[EnvironmentVariable, ...]:
    """Every variable :meth:`Settings.from_env` reads, in field order."""
    found = []
    for name, info in Settings.model_fields.items():
        nested = _NESTED.get(name)
        if nested is None:
            found.append(EnvironmentVariable(name=ENV_PREFIX + name.upper(), path=(name,), default=info.get_default(
                call_default_factory=True), secret=_is_secret(info.annotation)))
            continue
        assert is_pydantic_dataclass(nested)   # what _NESTED holds; tells the type checker
        for sub, sub_info in nested.__pydantic_fields__.items():
            extra = sub_info.json_schema_extra
            if isinstance(extra, dict) and "env" in extra:
                scale = int(extra["env_scale"])  # type: ignore[arg-type]
                found.append(EnvironmentVariable(name=str(extra["env"]), path=(name, sub), scale=scale,
                                                 default=sub_info.default / scale if scale != 1 else sub_info.default))
    return tuple(found)


def _is_secret(annotation: object) -> bool:
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


class _EnvironmentSource(PydanticBaseSettingsSource):
    """The ``OSMOSE_*`` entries of a mapping as raw field values (empty = unset).

    A custom source rather than pydantic-settings' EnvSettingsSource: it reads a given
    mapping (tests pass one), and the nested groups have flat names of their own.
    """

    def __init__(self, settings_cls: type[BaseSettings], *, environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ reads every variable at once

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for variable in environment_variables():
            raw = self._environ.get(variable.name)
            if raw is None or raw.strip() == "":
                continue
            value: Any = raw
            if variable.scale != 1:
                try:
                    value = round(float(raw) * variable.scale)
                except (ValueError, OverflowError):
                    raise ConfigurationError(f"{variable.name} must be a number, got {raw!r}") from None
            target = values
            for key in variable.path[:-1]:
                target = target.setdefault(key, {})
            target[variable.path[-1]] = value
        return values


def _explain(exc: ValidationError) -> str:
    """A validation error as one line per problem, naming the variable and never a secret."""
    by_path = {v.path: v for v in environment_variables()}
    lines = []
    for error in exc.errors(include_url=False):
        path = tuple(str(part) for part in error["loc"])
        variable = by_path.get(path)
        where = f"{variable.name} ({'.'.join(path)})" if variable else ".".join(path) or exc.title
        if error["type"] == "value_error":
            message = str(error["ctx"]["error"])
        else:
            message = error["msg"]
            if variable is not None and not variable.secret and "input" in error and variable.scale == 1:
                message += f", got {error['input']!r}"
        lines.append(f"{where}: {message}")
    return "; ".join(lines)
