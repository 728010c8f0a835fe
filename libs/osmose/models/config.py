"""The router configuration: endpoints, tasks and their fallback chains, read from YAML.

Small frozen value objects with defaults as module constants, validated when
loaded. The default file ships with Osmose (``router.yaml`` next to this
module); ``OSMOSE_ROUTER_CONFIG`` names another one. Endpoint URLs are usually
``${llm_url}``, ``${vision_url}`` or ``${tei_url}``: those take the value of the
matching setting (``OSMOSE_LLM_URL``, ...), and an endpoint whose URL ends up
empty is *off* — its tasks go to the next endpoint of their chain, then to the
non-LLM path. Nothing else is read from the environment.

Format (every key but ``endpoints.*.url`` and ``tasks.*.chain`` optional)::

    retry_budget_per_document: 20
    endpoints:
      <name>:
        url: ${llm_url}
        protocol: openai | tei
        concurrency: 16            # requests in flight, all documents of the process together
        requests_per_second: 0     # 0 = unlimited
        tokens_per_minute: 0       # prompt + max output tokens (estimated), 0 = unlimited
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
        batch_size: 4              # items (segments) per call, for tasks that pack several
        max_input_chars: 12000     # text budget of one call's variable part
    embeddings: <endpoint name>    # the TEI endpoint used for embeddings
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

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
]

DEFAULT_RETRY_BUDGET = 20
PROTOCOLS = frozenset({"openai", "tei"})
FALLBACKS = frozenset({"heuristic", "fail"})
_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
#: settings an endpoint URL may refer to as ${name}
URL_SETTINGS = ("llm_url", "vision_url", "tei_url")


@dataclass(frozen=True, kw_only=True)
class TimeoutConfig:
    """Per-call deadline: `initial` until `samples` latencies are known, then
    `multiplier` x their `percentile`, kept within [`min`, `max`] seconds."""

    connect: float = 5.0
    initial: float = 60.0
    min: float = 5.0
    max: float = 300.0
    percentile: float = 95.0
    multiplier: float = 3.0
    samples: int = 20

    def validate(self, where: str) -> None:
        if not 0 < self.min <= self.initial <= self.max:
            raise RouterConfigError(f"{where}: need 0 < min <= initial <= max")
        if not 0 < self.percentile <= 100 or self.multiplier < 1 or self.samples < 1 or self.connect <= 0:
            raise RouterConfigError(f"{where}: percentile in (0, 100], multiplier >= 1, samples >= 1, connect > 0")


@dataclass(frozen=True, kw_only=True)
class RetryConfig:
    """Attempts per call (1 = no retry); exponential backoff with jitter between them,
    or the server's Retry-After when it sends one (up to `max_retry_after` seconds:
    beyond that the call fails at once rather than holding the document)."""

    attempts: int = 4
    backoff_initial: float = 0.5
    backoff_max: float = 20.0
    jitter: float = 1.0
    max_retry_after: float = 60.0

    def validate(self, where: str) -> None:
        if self.attempts < 1 or self.backoff_initial < 0 or self.backoff_max < 0 or self.jitter < 0:
            raise RouterConfigError(f"{where}: attempts >= 1 and non-negative backoff")


@dataclass(frozen=True, kw_only=True)
class BreakerConfig:
    """Opens when, over the last `window_seconds`, at least `min_calls` calls were made
    and `error_rate` of them failed; after `open_seconds` it lets `half_open_calls`
    probes through, and closes when they succeed."""

    window_seconds: float = 60.0
    min_calls: int = 5
    error_rate: float = 0.5
    open_seconds: float = 30.0
    half_open_calls: int = 1

    def validate(self, where: str) -> None:
        if self.window_seconds <= 0 or self.open_seconds < 0 or self.min_calls < 1 or self.half_open_calls < 1:
            raise RouterConfigError(f"{where}: positive window, min_calls and half_open_calls")
        if not 0 < self.error_rate <= 1:
            raise RouterConfigError(f"{where}: error_rate in (0, 1]")


@dataclass(frozen=True, kw_only=True)
class EndpointConfig:
    name: str
    url: str  # "" = off
    protocol: str = "openai"
    concurrency: int = 16
    requests_per_second: float = 0.0
    tokens_per_minute: float = 0.0
    model: str = ""  # tei: the served model (its name goes into cache keys)
    dim: int = 384  # tei: vector size
    timeout: TimeoutConfig = field(default_factory=TimeoutConfig)
    retries: RetryConfig = field(default_factory=RetryConfig)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def validate(self) -> None:
        where = f"endpoint {self.name!r}"
        if self.protocol not in PROTOCOLS:
            raise RouterConfigError(f"{where}: protocol must be one of {sorted(PROTOCOLS)}")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise RouterConfigError(f"{where}: url must start with http:// or https://, got {self.url!r}")
        if self.concurrency < 1 or self.requests_per_second < 0 or self.tokens_per_minute < 0:
            raise RouterConfigError(f"{where}: concurrency >= 1, rate limits >= 0")
        if self.protocol == "tei" and (not self.model or self.dim < 1):
            raise RouterConfigError(f"{where}: a tei endpoint needs model and dim")
        self.timeout.validate(where)
        self.retries.validate(where)
        self.breaker.validate(where)


@dataclass(frozen=True, kw_only=True)
class Target:
    """One link of a task's chain: a model on an endpoint, with its parameters."""

    endpoint: str
    model: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.endpoint}:{self.model}"


@dataclass(frozen=True, kw_only=True)
class TaskRoute:
    task: str
    chain: tuple[Target, ...]
    fallback: str = "heuristic"
    batch_size: int = 4
    max_input_chars: int = 12_000

    def validate(self, endpoints: Mapping[str, EndpointConfig]) -> None:
        where = f"task {self.task!r}"
        if not self.chain:
            raise RouterConfigError(f"{where}: chain is empty")
        for target in self.chain:
            endpoint = endpoints.get(target.endpoint)
            if endpoint is None:
                raise RouterConfigError(f"{where}: unknown endpoint {target.endpoint!r}")
            if endpoint.protocol != "openai":
                raise RouterConfigError(f"{where}: endpoint {target.endpoint!r} does not speak the chat protocol")
            if not target.model:
                raise RouterConfigError(f"{where}: every chain entry needs a model")
        if self.fallback not in FALLBACKS:
            raise RouterConfigError(f"{where}: fallback must be one of {sorted(FALLBACKS)}")
        if self.batch_size < 1 or self.max_input_chars < 500:
            raise RouterConfigError(f"{where}: batch_size >= 1, max_input_chars >= 500")


@dataclass(frozen=True, kw_only=True)
class RouterConfig:
    endpoints: Mapping[str, EndpointConfig]
    tasks: Mapping[str, TaskRoute]
    embeddings: str | None = None
    retry_budget_per_document: int = DEFAULT_RETRY_BUDGET
    source: str = "<default>"

    def __post_init__(self) -> None:
        for endpoint in self.endpoints.values():
            endpoint.validate()
        for route in self.tasks.values():
            route.validate(self.endpoints)
        if self.embeddings is not None:
            endpoint = self.endpoints.get(self.embeddings)
            if endpoint is None or endpoint.protocol != "tei":
                raise RouterConfigError(f"embeddings: {self.embeddings!r} is not a tei endpoint")
        if self.retry_budget_per_document < 0:
            raise RouterConfigError("retry_budget_per_document must be >= 0")

    def route(self, task: str) -> TaskRoute | None:
        return self.tasks.get(task)

    @property
    def embedding_endpoint(self) -> EndpointConfig | None:
        """The TEI endpoint for embeddings, when one is configured and on."""
        endpoint = self.endpoints.get(self.embeddings) if self.embeddings else None
        return endpoint if endpoint is not None and endpoint.enabled else None


def default_router_text() -> str:
    return resources.files("osmose.models").joinpath("router.yaml").read_text(encoding="utf-8")


def load_router_config(path: Path | None = None, *, urls: Mapping[str, str | None] | None = None) -> RouterConfig:
    """The router configuration from `path` (None = the shipped default), with
    ``${llm_url}``-style placeholders replaced by `urls` (missing = empty = off)."""
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
    return parse_router_config(raw, urls=urls or {}, source=source)


def parse_router_config(raw: Any, *, urls: Mapping[str, str | None], source: str = "<dict>") -> RouterConfig:
    if not isinstance(raw, dict):
        raise RouterConfigError(f"{source}: the top level must be a mapping")
    _no_unknown(raw, {"version", "retry_budget_per_document", "endpoints", "tasks", "embeddings"}, source)
    endpoints = {}
    for name, spec in _mapping(raw.get("endpoints") or {}, f"{source}: endpoints").items():
        spec = _mapping(spec, f"{source}: endpoint {name!r}")
        where = f"{source}: endpoint {name!r}"
        _no_unknown(spec, {f.name for f in fields(EndpointConfig)} - {"name"}, where)
        values = {k: v for k, v in spec.items() if k not in ("timeout", "retries", "breaker", "url")}
        endpoints[name] = EndpointConfig(
            name=name,
            url=_expand_url(str(spec.get("url") or ""), urls, where),
            timeout=_section(TimeoutConfig, spec.get("timeout"), f"{where}: timeout"),
            retries=_section(RetryConfig, spec.get("retries"), f"{where}: retries"),
            breaker=_section(BreakerConfig, spec.get("breaker"), f"{where}: breaker"),
            **_typed(EndpointConfig, values, where),
        )
    tasks = {}
    for task, spec in _mapping(raw.get("tasks") or {}, f"{source}: tasks").items():
        where = f"{source}: task {task!r}"
        spec = _mapping(spec, where)
        _no_unknown(spec, {"chain", "fallback", "batch_size", "max_input_chars"}, where)
        chain = []
        for entry in spec.get("chain") or []:
            entry = _mapping(entry, f"{where}: chain entry")
            _no_unknown(entry, {"endpoint", "model", "params"}, f"{where}: chain entry")
            chain.append(Target(endpoint=str(entry.get("endpoint", "")), model=str(entry.get("model", "")),
                                params=dict(_mapping(entry.get("params") or {}, f"{where}: params"))))
        values = {k: v for k, v in spec.items() if k != "chain"}
        tasks[task] = TaskRoute(task=task, chain=tuple(chain), **_typed(TaskRoute, values, where))
    try:
        return RouterConfig(
            endpoints=endpoints, tasks=tasks, embeddings=raw.get("embeddings"),
            retry_budget_per_document=int(raw.get("retry_budget_per_document", DEFAULT_RETRY_BUDGET)),
            source=source,
        )
    except RouterConfigError as exc:
        raise RouterConfigError(f"{source}: {exc}") from None


def _expand_url(url: str, urls: Mapping[str, str | None], where: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in URL_SETTINGS:
            raise RouterConfigError(f"{where}: unknown placeholder ${{{name}}}; use one of {URL_SETTINGS}")
        return urls.get(name) or ""

    return _PLACEHOLDER.sub(value, url).rstrip("/")


def _mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise RouterConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _no_unknown(spec: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(spec) - known)
    if unknown:
        raise RouterConfigError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")


def _typed(cls: type, values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`values` converted to the types of `cls`'s fields (int, float, str)."""
    types = {f.name: f.type for f in fields(cls)}
    out = {}
    for key, value in values.items():
        kind = types[key]
        try:
            out[key] = {"int": int, "float": float, "str": str}.get(kind, lambda v: v)(value)
        except (TypeError, ValueError):
            raise RouterConfigError(f"{where}: {key} must be {kind}, got {value!r}") from None
    return out


def _section(cls: type, spec: Any, where: str) -> Any:
    if spec is None:
        return cls()
    spec = _mapping(spec, where)
    _no_unknown(spec, {f.name for f in fields(cls)}, where)
    return cls(**_typed(cls, spec, where))
