"""The router configuration: endpoints, tasks and their fallback chains, read from YAML.

Small frozen pydantic models with defaults as module constants, validated when
loaded: a key the format does not know is refused (``extra="forbid"``), and every
error names its path in the file (``endpoints.llm.breaker.error_rate: ...``). The default file ships with Osmose (``router.yaml`` next to this
module); ``OSMOSE_ROUTER_CONFIG`` names another one. Endpoint URLs are usually
``${llm_url}``, ``${vision_url}`` or ``${tei_url}``: those take the value of the
matching setting (``OSMOSE_LLM_URL``, ...), and an endpoint whose URL ends up
empty is *off* — its tasks go to the next endpoint of their chain, then to the
non-LLM path. An endpoint's ``api_key`` is likewise only ever a placeholder,
``${llm_api_key}``, ``${vision_api_key}`` or ``${tei_api_key}`` (``OSMOSE_LLM_API_KEY``, ...,
from a Secret): a literal key in the file is refused, so the YAML can live in a ConfigMap.
Nothing else is read from the environment.

Format (every key but ``endpoints.*.url`` and ``tasks.*.chain`` optional)::

    retry_budget_per_document: 20
    documents_per_slot: 0.5        # documents in flight per slot of the LLM endpoints (at least 2)
    endpoints:
      <name>:
        url: ${llm_url}
        api_key: ${llm_api_key}    # optional; sent as `Authorization: Bearer …`
        protocol: openai | tei
        concurrency: 16            # requests in flight, all documents of the process together (the server's slots)
        priority_scheduling: false # openai only: send vLLM's per-request `priority` (server started with
                                   # --scheduling-policy priority; premium documents' calls go first)
        requests_per_second: 0     # 0 = unlimited
        tokens_per_minute: 0       # prompt + max output tokens (estimated), 0 = unlimited
        load_source: client        # client: size calls from this process's own calls; metrics: also from the
                                   # server's /metrics (vLLM running/waiting, TEI te_queue_size), all clients
        metrics_url: ""            # load_source metrics: "" = the server root + /metrics
        metrics_interval: 1.0      # load_source metrics: seconds between scrapes (older than 3 = not used)
        server_slots: 0            # load_source metrics: sequences the server runs at once, all clients
                                   # (vLLM --max-num-seqs); 0 = concurrency
        model: ...                 # tei only: the model TEI serves (part of cache keys)
        dim: 384                   # tei only: vector size
        timeout: {connect, initial, min, max, percentile, multiplier, samples}
        retries: {attempts, backoff_initial, backoff_max, jitter, max_retry_after}
        breaker: {window_seconds, min_calls, error_rate, open_seconds, half_open_calls}
    tasks:
      <task>:
        chain:                     # tried in order; an endpoint that is off or failing is skipped
          - {endpoint: <name>, model: <served model name>, params: {temperature: 0, max_tokens: 1024}}
        fallback: heuristic | fail # when no endpoint of the chain answers
        batch_size: 4              # items (segments) per call at most, for tasks that pack several
        packing: load              # load: fewer per call while the endpoint has free slots; full: always batch_size
        max_input_chars: 12000     # text budget of one call's variable part
    embeddings: <endpoint name>    # the TEI endpoint used for embeddings
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from osmose.models.exceptions import RouterConfigError

__all__ = [
    "DEFAULT_RETRY_BUDGET",
    "BreakerConfig",
    "EndpointConfig",
    "RetryConfig",
    "RouterConfig",
    "TaskRoute",
    "Target",
    "TimeoutConfig",
    "default_router_text",
    "load_router_config",
    "parse_router_config",
]

DEFAULT_RETRY_BUDGET = 20
PROTOCOLS = frozenset({"openai", "tei"})
FALLBACKS = frozenset({"heuristic", "fail"})
_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
#: settings an endpoint URL may refer to as ${name}
URL_SETTINGS = ("llm_url", "vision_url", "tei_url")
#: settings an endpoint api_key may refer to as ${name} (the only form an api_key may take)
KEY_SETTINGS = ("llm_api_key", "vision_api_key", "tei_api_key")
_ONLY_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


class _Section(BaseModel):
    """A part of the file: frozen, unknown keys refused, YAML numbers accepted where text is meant."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)


class TimeoutConfig(_Section):
    """Per-call deadline: `initial` until `samples` latencies are known, then
    `multiplier` x their `percentile`, kept within [`min`, `max`] seconds."""

    connect: float = Field(5.0, gt=0)
    initial: float = 60.0
    min: float = 5.0
    max: float = 300.0
    percentile: float = Field(95.0, gt=0, le=100)
    multiplier: float = Field(3.0, ge=1)
    samples: int = Field(20, ge=1)

    def check_bounds(self) -> None:
        # Checked where an endpoint uses it, not here: a lone TimeoutConfig (tests of the
        # clamp) may have initial outside [min, max].
        if not 0 < self.min <= self.initial <= self.max:
            raise ValueError("timeout: need 0 < min <= initial <= max")


class RetryConfig(_Section):
    """Attempts per call (1 = no retry); exponential backoff with jitter between them,
    or the server's Retry-After when it sends one (up to `max_retry_after` seconds:
    beyond that the call fails at once rather than holding the document)."""

    attempts: int = Field(4, ge=1)
    backoff_initial: float = Field(0.5, ge=0)
    backoff_max: float = Field(20.0, ge=0)
    jitter: float = Field(1.0, ge=0)
    max_retry_after: float = Field(60.0, ge=0)


class BreakerConfig(_Section):
    """Opens when, over the last `window_seconds`, at least `min_calls` calls were made
    and `error_rate` of them failed; after `open_seconds` it lets `half_open_calls`
    probes through, and closes when they succeed."""

    window_seconds: float = Field(60.0, gt=0)
    min_calls: int = Field(5, ge=1)
    error_rate: float = Field(0.5, gt=0, le=1)
    open_seconds: float = Field(30.0, ge=0)
    half_open_calls: int = Field(1, ge=1)


class EndpointConfig(_Section):
    name: str  # the key under `endpoints:` (set by RouterConfig, not written in the file)
    url: str = ""  # "" = off; ${llm_url}-style placeholders are expanded from the validation context
    # "${llm_api_key}"-style placeholder only, expanded from the validation context; empty = no key
    api_key: SecretStr = SecretStr("")
    protocol: Literal["openai", "tei"] = "openai"
    concurrency: int = Field(16, ge=1)
    priority_scheduling: bool = False
    requests_per_second: float = Field(0.0, ge=0)
    tokens_per_minute: float = Field(0.0, ge=0)
    model: str = ""  # tei: the served model (its name goes into cache keys)
    dim: int = 384  # tei: vector size
    # client: call sizing sees this process's calls only; metrics: also the server's (osmose.models.server_load)
    load_source: Literal["client", "metrics"] = "client"
    metrics_url: str = ""  # "" = derived from url (server root + /metrics)
    metrics_interval: float = Field(1.0, ge=0.1, le=60)
    server_slots: int = Field(0, ge=0)  # 0 = concurrency
    timeout: TimeoutConfig = TimeoutConfig()
    retries: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()

    @field_validator("url", "metrics_url", mode="before")
    @classmethod
    def _expand(cls, url: object, info: ValidationInfo) -> object:
        if url is None:
            return ""
        if not isinstance(url, str):
            return url
        urls: Mapping[str, str | None] = (info.context or {}).get("urls") or {}

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in URL_SETTINGS:
                raise ValueError(f"unknown placeholder ${{{name}}}; use one of {URL_SETTINGS}")
            return urls.get(name) or ""

        expanded = _PLACEHOLDER.sub(value, url).rstrip("/")
        if expanded and not expanded.startswith(("http://", "https://")):
            raise ValueError(f"{info.field_name} must start with http:// or https://, got {expanded!r}")
        return expanded

    @field_validator("api_key", mode="before")
    @classmethod
    def _key_from_settings(cls, key: object, info: ValidationInfo) -> object:
        if key is None or key == "":
            return ""
        match = _ONLY_PLACEHOLDER.fullmatch(key.strip()) if isinstance(key, str) else None
        if match is None or match.group(1) not in KEY_SETTINGS:
            # never echo what was written: it may be a real key
            raise ValueError(f"api_key must be one of {', '.join('${' + k + '}' for k in KEY_SETTINGS)}; "
                             "keys come from the environment (a Secret), never from this file")
        keys: Mapping[str, str | None] = (info.context or {}).get("keys") or {}
        return keys.get(match.group(1)) or ""

    @model_validator(mode="after")
    def _consistent(self) -> EndpointConfig:
        if self.protocol == "tei" and (not self.model or self.dim < 1):
            raise ValueError("a tei endpoint needs model and dim")
        for key in ("metrics_url", "server_slots"):
            if getattr(self, key) and self.load_source != "metrics":
                raise ValueError(f"{key} is only read with load_source: metrics")
        self.timeout.check_bounds()
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.url)


class Target(_Section):
    """One link of a task's chain: a model on an endpoint, with its parameters."""

    endpoint: str
    model: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.endpoint}:{self.model}"


class TaskRoute(_Section):
    task: str  # the key under `tasks:` (set by RouterConfig)
    chain: tuple[Target, ...] = Field(min_length=1)
    fallback: Literal["heuristic", "fail"] = "heuristic"
    batch_size: int = Field(4, ge=1)
    packing: Literal["load", "full"] = "load"
    max_input_chars: int = Field(12_000, ge=500)


class RouterConfig(_Section):
    version: int | None = None  # accepted for forward compatibility; one format so far
    retry_budget_per_document: int = Field(DEFAULT_RETRY_BUDGET, ge=0)
    documents_per_slot: float = Field(0.5, gt=0)
    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    tasks: dict[str, TaskRoute] = Field(default_factory=dict)
    embeddings: str | None = None
    # Where the configuration came from (file path or "<default router.yaml>"); not a key of the file.
    _source: str = PrivateAttr("<default>")

    @model_validator(mode="before")
    @classmethod
    def _names_from_keys(cls, raw: Any) -> Any:
        """Each endpoint and task knows its own name: the key it is written under."""
        if not isinstance(raw, dict):
            return raw
        raw = dict(raw)
        for section, field in (("endpoints", "name"), ("tasks", "task")):
            specs = raw.get(section)
            if specs is None:
                raw.pop(section, None)
            elif isinstance(specs, dict):
                named = {}
                for key, spec in specs.items():
                    if isinstance(spec, dict) and field in spec:
                        raise ValueError(f"{section}.{key}: unknown key {field!r}")
                    named[key] = {**spec, field: key} if isinstance(spec, dict) else spec
                raw[section] = named
        return raw

    @model_validator(mode="after")
    def _references_resolve(self) -> RouterConfig:
        for route in self.tasks.values():
            for target in route.chain:
                endpoint = self.endpoints.get(target.endpoint)
                if endpoint is None:
                    raise ValueError(f"tasks.{route.task}: unknown endpoint {target.endpoint!r}")
                if endpoint.protocol != "openai":
                    raise ValueError(f"tasks.{route.task}: endpoint {target.endpoint!r} does not speak "
                                     "the chat protocol")
        if self.embeddings is not None:
            endpoint = self.endpoints.get(self.embeddings)
            if endpoint is None or endpoint.protocol != "tei":
                raise ValueError(f"embeddings: {self.embeddings!r} is not a tei endpoint")
        return self

    @property
    def source(self) -> str:
        return self._source

    def route(self, task: str) -> TaskRoute | None:
        return self.tasks.get(task)

    @property
    def chat_slots(self) -> int:
        """Slots (concurrency) of the chat endpoints that are on and serve a task: the pool to keep busy."""
        used = {t.endpoint for route in self.tasks.values() for t in route.chain}
        return sum(e.concurrency for name, e in self.endpoints.items()
                   if name in used and e.enabled and e.protocol == "openai")

    def documents_in_flight(self, *, minimum: int = 2) -> int:
        """Documents a host works on at once: the chat slots x documents_per_slot, at least `minimum`
        (without model endpoints the work is CPU-bound, and `minimum` is the right number)."""
        return max(minimum, math.ceil(self.chat_slots * self.documents_per_slot))

    @property
    def embedding_endpoint(self) -> EndpointConfig | None:
        """The TEI endpoint for embeddings, when one is configured and on."""
        endpoint = self.endpoints.get(self.embeddings) if self.embeddings else None
        return endpoint if endpoint is not None and endpoint.enabled else None


def default_router_text() -> str:
    return resources.files("osmose.models").joinpath("router.yaml").read_text(encoding="utf-8")


def load_router_config(path: Path | None = None, *, urls: Mapping[str, str | None] | None = None,
                       keys: Mapping[str, str | None] | None = None) -> RouterConfig:
    """The router configuration from `path` (None = the shipped default), with
    ``${llm_url}``-style placeholders replaced by `urls` (missing = empty = off) and
    ``${llm_api_key}``-style ones by `keys` (missing = no key)."""
    if path is None:
        text, source = default_router_text(), "<default router.yaml>"
    else:
        try:
            text, source = path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise RouterConfigError(f"cannot read router config {path}: {exc}") from exc
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise RouterConfigError(f"{source}: invalid YAML: {exc}") from exc
    return parse_router_config(raw, urls=urls or {}, keys=keys or {}, source=source)


def parse_router_config(raw: Any, *, urls: Mapping[str, str | None], keys: Mapping[str, str | None] | None = None,
                        source: str = "<dict>") -> RouterConfig:
    """`raw` (the parsed YAML) validated; errors name the source and the path of each bad key."""
    if not isinstance(raw, dict):
        raise RouterConfigError(f"{source}: the top level must be a mapping")
    try:
        config = RouterConfig.model_validate(raw, context={"urls": urls, "keys": keys or {}})
    except ValidationError as exc:
        raise RouterConfigError(f"{source}: {_explain(exc)}") from None
    config._source = source
    return config


def _explain(exc: ValidationError) -> str:
    """One clause per problem: `endpoints.llm.breaker.error_rate: Input should be ... (got 2)`."""
    clauses = []
    errors = exc.errors(include_url=False)
    for error in errors:
        loc = [str(part) for part in error["loc"]]
        if error["type"] == "too_short" and any(len(e["loc"]) > len(loc) and e["loc"][:len(loc)] == error["loc"]
                                                for e in errors):
            continue  # a list whose bad items were dropped: the items' errors say it all
        if error["type"] == "extra_forbidden":
            where, message = ".".join(loc[:-1]) or "top level", f"unknown key {loc[-1]!r}"
        elif error["type"] == "value_error":
            where, message = ".".join(loc), str(error["ctx"]["error"])
        else:
            where, message = ".".join(loc), error["msg"]
            value = error.get("input")
            if isinstance(value, str | int | float | bool) and loc[-1:] not in (["url"], ["api_key"]):
                message += f" (got {value!r})"
        clauses.append(f"{where}: {message}" if where else message)
    return "; ".join(clauses)
