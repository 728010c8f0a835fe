"""HTTP for the model clients: one pooled httpx.AsyncClient per endpoint, errors translated once.

Why httpx rather than the openai or huggingface-hub clients: both wrap httpx
anyway, and both bring behaviour that would fight ours — the openai client
retries on its own (twice by default, with its own backoff and no notion of a
per-document budget) and validates through pydantic models that lag behind
vLLM's extensions; huggingface-hub's InferenceClient is built around the Hub's
routing and its TEI support goes through its own task helpers. What Osmose
needs from the wire is small (three vLLM routes, three TEI routes) and must be
exactly controlled: connection pool size equal to the endpoint's concurrency,
connect timeout separate from the per-call deadline, Retry-After read from the
response, status codes mapped to our error tree in one place (here). httpx was
already a dependency, is maintained, async, and HTTP/1.1 keep-alive pooling is
what vLLM and TEI serve best.
"""

from __future__ import annotations

import email.utils
import time

import httpx

from osmose.models.exceptions import (
    ModelConnectionError,
    ModelOverloadedError,
    ModelRequestError,
    ModelServerError,
    ModelTimeoutError,
    ModelUnavailableError,
)

__all__ = ["make_client", "parse_retry_after", "raise_for_response", "translate"]

USER_AGENT = "osmose-model-client"


def make_client(base_url: str, *, concurrency: int, connect_timeout: float, api_key: str = "") -> httpx.AsyncClient:
    """A keep-alive pool sized to the endpoint's concurrency; no client-side total timeout
    (each call sets its own deadline). `api_key`, when set, goes out as a bearer token (vLLM's
    and TEI's ``--api-key``)."""
    headers = {"User-Agent": USER_AGENT}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=30)
    timeout = httpx.Timeout(None, connect=connect_timeout)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout,
                             headers=headers, trust_env=False)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), None when absent or invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _detail(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:300] if text else response.reason_phrase


def raise_for_response(response: httpx.Response, *, endpoint: str) -> None:
    """Nothing for 2xx; otherwise the matching error of our tree."""
    status = response.status_code
    if status < 400:
        return
    where = f"{endpoint} {response.request.method} {response.request.url.path}"
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if status == 429:
        raise ModelOverloadedError(f"{where}: 429 {_detail(response)}", endpoint=endpoint, retry_after=retry_after)
    if status >= 500 or status == 408:
        raise ModelServerError(f"{where}: {status} {_detail(response)}", endpoint=endpoint, status=status,
                               retry_after=retry_after)
    if status in (401, 403):   # the server's text may echo what was sent: not repeated here
        raise ModelRequestError(f"{where}: {status} {response.reason_phrase}: the endpoint refused the credential; "
                                "check its api_key (OSMOSE_LLM_API_KEY, OSMOSE_VISION_API_KEY, OSMOSE_TEI_API_KEY)",
                                endpoint=endpoint, status=status)
    raise ModelRequestError(f"{where}: {status} {_detail(response)}", endpoint=endpoint, status=status)


def translate(exc: Exception, *, endpoint: str) -> ModelUnavailableError:
    """An httpx transport error as one of ours."""
    if isinstance(exc, httpx.TimeoutException):
        return ModelTimeoutError(f"{endpoint}: {type(exc).__name__}: {exc}", endpoint=endpoint)
    if isinstance(exc, (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return ModelConnectionError(f"{endpoint}: {type(exc).__name__}: {exc or 'connection failed'}",
                                    endpoint=endpoint)
    return ModelUnavailableError(f"{endpoint}: {type(exc).__name__}: {exc}", endpoint=endpoint)
