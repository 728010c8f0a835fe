"""The OpenAI-compatible chat API as vLLM serves it: requests, payloads, responses.

Routes (base URL includes ``/v1``, as vLLM documents it): ``POST chat/completions``
with text and ``image_url`` content parts (images inline as ``data:`` URLs) and
``response_format: {"type": "json_schema", ...}`` for structured output (vLLM's
guided decoding); ``GET models``; ``GET /health`` at the server root.

A :class:`ChatRequest` is what a stage asks; it stays independent of any model
so the router can send it down a chain. Its static ``system`` part goes first
and is the same for every call of a task, so vLLM's automatic prefix caching
reuses its KV cache across calls.
"""

from __future__ import annotations

import base64
import hashlib
import json
import unicodedata
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from osmose.models.exceptions import ModelServerError
from osmose.models.http import raise_for_response

__all__ = [
    "ChatRequest",
    "ChatResponse",
    "ImageInput",
    "JsonSchema",
    "build_payload",
    "chat_completion",
    "health",
    "key_material",
    "list_models",
    "normalise_text",
]


@dataclass(frozen=True)
class ImageInput:
    """An image for the model, loaded only when the call is really made (not on a cache hit).

    `digest` identifies the image's content in cache keys (a hash of the bytes, or of
    what deterministically produces them)."""

    digest: str
    load: Callable[[], Awaitable[bytes]]
    media_type: str = "image/png"

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str = "image/png") -> ImageInput:
        async def load() -> bytes:
            return data

        return cls(digest=hashlib.sha256(data).hexdigest(), load=load, media_type=media_type)


@dataclass(frozen=True)
class JsonSchema:
    name: str
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class ChatRequest:
    system: str  # static instructions, identical across the calls of a task (prefix caching)
    user: str  # the variable part
    images: Sequence[ImageInput] = ()
    schema: JsonSchema | None = None
    #: what the output tokens are estimated at before the call (rate limiting); None = params' max_tokens
    expected_output_tokens: int | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)  # not sent, not in the key


@dataclass(frozen=True)
class ChatResponse:
    text: str
    finish_reason: str
    prompt_tokens: int
    output_tokens: int
    model: str

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "finish_reason": self.finish_reason, "prompt_tokens": self.prompt_tokens,
                "output_tokens": self.output_tokens, "model": self.model}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChatResponse:
        return cls(text=str(data["text"]), finish_reason=str(data.get("finish_reason", "")),
                   prompt_tokens=int(data.get("prompt_tokens", 0)), output_tokens=int(data.get("output_tokens", 0)),
                   model=str(data.get("model", "")))


def normalise_text(text: str) -> str:
    """NFC, no trailing spaces on lines, no surrounding blank lines: spelling-identical
    prompts get the same cache key."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def key_material(model: str, params: Mapping[str, Any], request: ChatRequest) -> str:
    """What identifies a call's answer: model, parameters, normalised input, images by digest."""
    return json.dumps({
        "model": model,
        "params": dict(params),
        "system": normalise_text(request.system),
        "user": normalise_text(request.user),
        "images": [(img.media_type, img.digest) for img in request.images],
        "schema": {"name": request.schema.name, "schema": request.schema.schema} if request.schema else None,
    }, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


async def build_payload(model: str, params: Mapping[str, Any], request: ChatRequest) -> dict[str, Any]:
    """The JSON body of ``POST /v1/chat/completions`` (loads the images)."""
    if request.images:
        content: Any = [{"type": "text", "text": request.user}]
        for image in request.images:
            data = base64.b64encode(await image.load()).decode("ascii")
            content.append({"type": "image_url", "image_url": {"url": f"data:{image.media_type};base64,{data}"}})
    else:
        content = request.user
    payload: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "system", "content": request.system}, {"role": "user", "content": content}],
        "stream": False,
        **dict(params),
    }
    if request.schema is not None:
        payload["response_format"] = {"type": "json_schema", "json_schema": {
            "name": request.schema.name, "schema": dict(request.schema.schema), "strict": True}}
    return payload


async def chat_completion(http: httpx.AsyncClient, payload: Mapping[str, Any], *, endpoint: str) -> ChatResponse:
    response = await http.post("chat/completions", json=payload)
    raise_for_response(response, endpoint=endpoint)
    try:
        data = response.json()
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
        usage = data.get("usage") or {}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        # A 200 whose body is not a chat completion is the server's fault, and may pass.
        raise ModelServerError(f"{endpoint}: malformed chat completion body ({type(exc).__name__}: {exc})",
                               endpoint=endpoint, status=response.status_code) from None
    return ChatResponse(
        text=text,
        finish_reason=str(choice.get("finish_reason") or ""),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        model=str(data.get("model") or payload.get("model", "")),
    )


async def list_models(http: httpx.AsyncClient, *, endpoint: str) -> list[str]:
    """Model names the server serves (``GET /v1/models``)."""
    response = await http.get("models")
    raise_for_response(response, endpoint=endpoint)
    try:
        return [str(m["id"]) for m in response.json().get("data", [])]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelServerError(f"{endpoint}: malformed /v1/models body: {exc}", endpoint=endpoint) from None


def root_url(base_url: str) -> str:
    """The server root of an OpenAI-style base URL (``http://h:8000/v1`` -> ``http://h:8000``)."""
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


async def health(http: httpx.AsyncClient, base_url: str) -> bool:
    """``GET /health`` at the server root: True when the server says it can serve."""
    try:
        response = await http.get(f"{root_url(base_url)}/health")
    except httpx.HTTPError:
        return False
    return response.status_code == 200
