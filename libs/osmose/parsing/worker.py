"""Parsing in worker processes, with a deadline and a memory ceiling per document.

MuPDF and LibreOffice are C code: a pathological file can loop or allocate
without end, and a thread cannot be interrupted. So documents are parsed by
long-lived worker processes (started once, reused: no import cost per file)
talking a small length-prefixed protocol over stdin/stdout. A worker that
misses the deadline is killed and replaced; its document is rejected with
reason ``parse-timeout`` (or ``parser-crashed`` if the worker died), and the
next document gets a fresh worker. The caller's process never hangs and never
runs out of memory because of one file.

Protocol (each frame = 4-byte big-endian length + body):
  request : JSON header {"file_name", "limits", "soffice"}, then the file bytes
  response: JSON header {"ok": true} then a serialised Document,
            or {"ok": false, "error": <class path>, "message", "reason"}
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import queue
import struct
import subprocess
import sys
import threading
import time
from dataclasses import asdict

from osmose.config import Limits, Settings
from osmose.errors import DocumentError, OsmoseError
from osmose.v1 import document_pb2 as pb

__all__ = ["ParserPool"]

logger = logging.getLogger(__name__)

_LEN = struct.Struct(">I")
_OLE_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")
# Address-space ceiling of a worker (bytes); a file that needs more is rejected.
WORKER_MEMORY_LIMIT_BYTES = 4 * 1024**3


def _write_frame(stream, body: bytes) -> None:  # noqa: ANN001 - binary stream
    stream.write(_LEN.pack(len(body)))
    stream.write(body)


def _read_exact(stream, n: int) -> bytes:  # noqa: ANN001
    chunks = []
    while n:
        chunk = stream.read(n)
        if not chunk:
            raise EOFError("worker stream closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_frame(stream) -> bytes:  # noqa: ANN001
    (size,) = _LEN.unpack(_read_exact(stream, _LEN.size))
    return _read_exact(stream, size)


class _Worker:
    """One worker process; used by one caller at a time."""

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "osmose.parsing.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, env=env,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(Exception):
                stream.close()

    def request(self, header: dict, data: bytes, timeout: float) -> tuple[dict, bytes]:
        """Send one document and wait at most `timeout` seconds for the answer."""
        answer: dict[str, object] = {}

        def exchange() -> None:
            try:
                _write_frame(self.proc.stdin, json.dumps(header).encode())
                _write_frame(self.proc.stdin, data)
                self.proc.stdin.flush()
                answer["header"] = json.loads(_read_frame(self.proc.stdout))
                answer["body"] = _read_frame(self.proc.stdout)
            except (EOFError, OSError, ValueError) as exc:
                answer["failure"] = exc

        thread = threading.Thread(target=exchange, name="parse-worker-io", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            self.kill()  # unblocks the I/O thread
            thread.join(5)
            raise TimeoutError
        if "failure" in answer:
            self.kill()
            raise EOFError(str(answer["failure"]))
        return answer["header"], answer["body"]  # type: ignore[return-value]


class ParserPool:
    """Up to `size` worker processes, started on demand and reused.

    Thread-safe: the triage stage calls :meth:`parse` from worker threads.
    """

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    def parse(self, data: bytes, *, settings: Settings, file_name: str) -> pb.Document:
        header = {"file_name": file_name, "limits": asdict(settings.limits), "soffice": settings.soffice}
        timeout = settings.limits.parse_timeout_s
        if data[:8] == _OLE_MAGIC:  # legacy .ppt: LibreOffice converts it first
            timeout += settings.limits.convert_timeout_s
        with self._slots:
            worker = self._checkout()
            started = time.perf_counter()
            try:
                reply, body = worker.request(header, data, timeout)
            except TimeoutError:
                raise DocumentError(
                    f"parsing took longer than {timeout:.0f} s and was stopped", reason="parse-timeout"
                ) from None
            except EOFError:
                code = worker.proc.returncode
                raise DocumentError(
                    f"the parser process died on this file (exit {code}; out of memory or a crash in a native "
                    "library)", reason="parser-crashed",
                ) from None
            self._idle.put(worker)
        logger.debug("parsed %s in a worker in %.2fs", file_name, time.perf_counter() - started)
        if reply.get("ok"):
            doc = pb.Document()
            doc.ParseFromString(body)
            return doc
        raise _rebuild_error(reply)

    def _checkout(self) -> _Worker:
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return _Worker()
            if worker.alive():
                return worker
            worker.kill()

    def close(self) -> None:
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return
            with contextlib.suppress(Exception):
                worker.proc.stdin.close()  # EOF: the worker exits on its own
                worker.proc.wait(timeout=5)
            worker.kill()


def _rebuild_error(reply: dict) -> Exception:
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

def _serve() -> None:
    import resource

    from osmose.parsing.document_parser import parse_document_bytes

    with contextlib.suppress(ValueError, OSError):
        # Soft limit only: LibreOffice, started from here for legacy .ppt, lifts it for itself.
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = WORKER_MEMORY_LIMIT_BYTES if hard == resource.RLIM_INFINITY else min(hard, WORKER_MEMORY_LIMIT_BYTES)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames on the protocol stream
    while True:
        try:
            header = json.loads(_read_frame(stdin))
            data = _read_frame(stdin)
        except (EOFError, OSError):  # the caller closed the pipe or is gone: nothing left to do
            return
        settings = Settings(limits=Limits(**header["limits"]), soffice=header.get("soffice"))
        try:
            doc = parse_document_bytes(data, settings=settings, file_name=header["file_name"])
            reply, body = {"ok": True}, doc.SerializeToString()
        except Exception as exc:  # sent back to the caller, which raises it
            reply = {"ok": False, "error": f"{type(exc).__module__}.{type(exc).__qualname__}",
                     "message": exc.args[0] if exc.args else str(exc),
                     "reason": getattr(exc, "reason", None)}
            body = b""
        try:
            _write_frame(stdout, json.dumps(reply).encode())
            _write_frame(stdout, body)
            stdout.flush()
        except OSError:  # BrokenPipeError: the caller died (e.g. kill -9); exit quietly
            return


if __name__ == "__main__":
    logging.basicConfig(level=Settings.from_env().log_level)  # the caller's environment, inherited
    _serve()
