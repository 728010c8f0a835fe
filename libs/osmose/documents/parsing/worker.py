"""Parsing in bounded worker processes, with a deadline and a memory ceiling per document.

The workers are :mod:`osmose.documents.worker_process` workers running
:func:`parse_handler`. A document whose worker misses the deadline is rejected
with reason ``parse-timeout`` (``parser-crashed`` if the worker died, e.g. on its
memory ceiling), and the next document gets a fresh worker.

Messages: the request header is ``{"file_name", "limits", "soffice"}`` with the
file bytes as body; the answer is ``{"ok": true}`` with a serialised Document, or
``{"ok": false, "error": <class path>, "message", "reason"}``, raised again here
as the same class when it is one of ours.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from typing import Any

from osmose.config import Limits, Settings
from osmose.documents.worker_process import WorkerGone, WorkerPool, WorkerSpec
from osmose.errors import DocumentError, OsmoseError
from osmose.v1 import document_pb2 as pb

__all__ = ["ParserPool", "parse_handler"]

logger = logging.getLogger(__name__)

_OLE_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")
# Address-space ceiling of a worker (bytes); a file that needs more is rejected.
WORKER_MEMORY_LIMIT_BYTES = 4 * 1024**3
_SPEC = WorkerSpec(handler="osmose.documents.parsing.worker:parse_handler",
                   memory_limit_bytes=WORKER_MEMORY_LIMIT_BYTES)


class ParserPool:
    """Up to `size` worker processes, started on demand and reused.

    Thread-safe: the triage stage calls :meth:`parse` from worker threads.
    """

    def __init__(self, size: int = 2, *, memory_limit_bytes: int = WORKER_MEMORY_LIMIT_BYTES) -> None:
        self.size = size
        spec = _SPEC if memory_limit_bytes == _SPEC.memory_limit_bytes else replace(
            _SPEC, memory_limit_bytes=memory_limit_bytes)
        self.workers = WorkerPool(spec, size=size)

    def parse(self, data: bytes, *, settings: Settings, file_name: str) -> pb.Document:
        header = {"file_name": file_name, "limits": asdict(settings.limits), "soffice": settings.soffice}
        timeout = settings.limits.parse_timeout_s
        if data[:8] == _OLE_MAGIC:  # legacy .ppt: LibreOffice converts it first
            timeout += settings.limits.convert_timeout_s
        started = time.perf_counter()
        try:
            reply, body = self.workers.request(header, data, timeout_s=timeout)
        except TimeoutError:
            raise DocumentError(
                f"parsing took longer than {timeout:.0f} s and was stopped", reason="parse-timeout"
            ) from None
        except WorkerGone as exc:
            raise DocumentError(
                f"the parser process died on this file (exit {exc.returncode}; out of memory or a crash in a native "
                "library)", reason="parser-crashed",
            ) from None
        logger.debug("parsed %s in a worker in %.2fs", file_name, time.perf_counter() - started)
        if reply.get("ok"):
            doc = pb.Document()
            doc.ParseFromString(body)
            return doc
        raise _rebuild_error(reply)

    def close(self) -> None:
        self.workers.close()


def _rebuild_error(reply: Mapping[str, Any]) -> Exception:
    """The worker's exception, as the same class when it is one of ours."""
    message, reason = str(reply.get("message", "")), reply.get("reason")
    module, _, name = str(reply.get("error", "")).rpartition(".")
    cls: type[BaseException] | None = None
    if module.startswith("osmose."):
        with contextlib.suppress(Exception):
            cls = getattr(importlib.import_module(module), name)
    if cls is not None and issubclass(cls, DocumentError):
        try:
            return cls(message, reason=reason)
        except TypeError:
            pass
    if cls is not None and issubclass(cls, OsmoseError):
        with contextlib.suppress(TypeError):
            return cls(message)
    return DocumentError(message or "parser failed", reason=reason or "unreadable")


# -- the worker side ---------------------------------------------------------------------------------

class _ParseHandler:
    def __init__(self, parse: Callable[..., pb.Document]) -> None:
        self._parse = parse

    def hello(self) -> dict[str, Any]:
        return {}

    def handle(self, header: dict[str, Any], body: bytes) -> tuple[dict[str, Any], bytes]:
        settings = Settings(limits=Limits(**header["limits"]), soffice=header.get("soffice"))
        try:
            doc = self._parse(body, settings=settings, file_name=header["file_name"])
        except Exception as exc:  # sent back to the caller, which raises it
            return {"ok": False, "error": f"{type(exc).__module__}.{type(exc).__qualname__}",
                    "message": exc.args[0] if exc.args else str(exc),
                    "reason": getattr(exc, "reason", None)}, b""
        return {"ok": True}, doc.SerializeToString()


def parse_handler(config: Mapping[str, Any]) -> _ParseHandler:
    """The worker-side factory (in the worker, after its memory ceiling is set)."""
    from osmose.documents.parsing.document_parser import parse_document_bytes

    return _ParseHandler(parse_document_bytes)
