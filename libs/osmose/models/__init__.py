"""Model backends: vLLM (OpenAI-compatible chat, vision) and TEI clients, the LLM router,
resilience (retries, budgets, breakers, adaptive deadlines, limits) and the model-call cache.

Modules, one topic each:

* ``config`` — the router configuration (YAML; the default is ``router.yaml`` here)
* ``runtime`` — :class:`ModelRuntime` (per process) and :class:`ModelSession` (per document)
* ``openai_chat`` / ``tei`` — the two wire protocols; ``http`` — pooled clients and error mapping
* ``backend`` — one endpoint: limits, breaker, adaptive deadline, retries around each request
* ``breaker``, ``retry``, ``timeouts``, ``limits`` — the resilience pieces
* ``cache`` / ``redis_cache`` — content-addressed answers (SQLite default, Redis when configured)
* ``usage`` / ``context`` — cost accounting per document
* ``json_output`` — parse, repair and check structured answers (``jsonschema``)
* ``structured`` — the structured-task driver over segments (recall, pack, gather, repair, remember)
* ``exceptions`` — the error classes, in :mod:`osmose.errors`' tree

Stages use a session and never name a model: which model serves a task is configuration.
"""

from osmose.models.config import RouterConfig, Target, TaskRoute, load_router_config
from osmose.models.exceptions import (
    CircuitOpenError,
    ModelConnectionError,
    ModelOutputError,
    ModelOverloadedError,
    ModelRequestError,
    ModelServerError,
    ModelTimeoutError,
    ModelUnavailableError,
    RouterConfigError,
)
from osmose.models.json_output import parse_json_answer, schema_errors
from osmose.models.openai_chat import ChatRequest, ChatResponse, ImageInput, JsonSchema
from osmose.models.runtime import ChatAnswer, ModelRuntime, ModelSession
from osmose.models.structured import SegmentAnswers, SegmentBlock, SegmentTask, ask_segments, segments_schema
from osmose.models.usage import TaskUsage, UsageRecorder, usage_dict

__all__ = [
    "ChatAnswer",
    "ChatRequest",
    "ChatResponse",
    "CircuitOpenError",
    "ImageInput",
    "JsonSchema",
    "ModelConnectionError",
    "ModelOutputError",
    "ModelOverloadedError",
    "ModelRequestError",
    "ModelRuntime",
    "ModelServerError",
    "ModelSession",
    "ModelTimeoutError",
    "ModelUnavailableError",
    "RouterConfig",
    "RouterConfigError",
    "SegmentAnswers",
    "SegmentBlock",
    "SegmentTask",
    "TaskRoute",
    "TaskUsage",
    "Target",
    "UsageRecorder",
    "ask_segments",
    "load_router_config",
    "parse_json_answer",
    "schema_errors",
    "segments_schema",
    "usage_dict",
]
