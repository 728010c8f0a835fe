"""Bounded worker processes: native code on untrusted files, with a deadline and a memory ceiling.

MuPDF and LibreOffice are C code: a pathological file can loop or allocate without
end, and a thread can be neither interrupted nor capped. So parsing and rendering
run in long-lived worker processes (started once and reused: no import cost per
file). A worker that misses its deadline is killed with its whole process group;
one that hits its memory ceiling dies alone. The caller never hangs and never runs
out of memory because of one file, and the next request gets a fresh worker.

Protocol, over the worker's stdin/stdout; every message is two frames (4-byte
big-endian length + body), a JSON header then a binary body:

1. the parent starts ``python -m osmose.documents.worker_process SPEC_JSON`` in a new
   session, with an environment without settings or credentials (:func:`worker_env`);
2. the worker lowers its soft ``RLIMIT_AS`` to the ceiling (children such as
   LibreOffice may lift it back to the hard limit), points fd 1 at stderr (a C
   library that prints cannot corrupt the protocol), builds its handler
   (``module:factory``, called with the spec's config) and sends ``handler.hello()``;
   a handler that cannot be built ends the worker (its traceback goes to stderr);
3. for every request it sends ``handler.handle(header, body)``; it exits at end of input.

Why not ``pebble`` or ``multiprocessing``: their workers are forked or spawned
interpreters fed pickled calls, with no stateful worker (a render worker keeps one
PDF open for many pages), no session of its own to kill as a group, the parent's
whole environment, and exceptions that lose their keyword arguments when pickled.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import queue
import resource
import selectors
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from osmose.documents.system_tools import kill_group, untrusted_env

__all__ = ["Handler", "WorkerGone", "WorkerPool", "WorkerProcess", "WorkerSpec", "worker_env"]

logger = logging.getLogger(__name__)

_MODULE = "osmose.documents.worker_process"  # not __name__: that is "__main__" in the worker
_LEN = struct.Struct(">I")
_WRITE_CHUNK = 1 << 16
_CLOSE_GRACE_S = 2.0
_EXIT_GRACE_S = 1.0
_STDERR_TAIL_CHARS = 200
# A worker reads files: it needs neither the platform's settings nor anything like a credential.

Header = dict[str, Any]


class WorkerGone(Exception):
    """The worker exited (crash, memory ceiling, kill) before it answered; the message says how."""

    def __init__(self, message: str, *, returncode: int | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode


class Handler(Protocol):
    """The worker side: built once per worker process by the spec's factory."""

    def hello(self) -> Header: ...

    def handle(self, header: Header, body: bytes) -> tuple[Header, bytes]: ...


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker runs and within which bounds."""

    handler: str  # "package.module:factory"; factory(config) -> Handler, called in the worker
    memory_limit_bytes: int  # soft RLIMIT_AS of the worker
    config: Mapping[str, Any] = field(default_factory=dict)  # JSON, given to the factory
    start_timeout_s: float = 60.0  # Python start, imports and the factory
    capture_stderr: bool = False  # keep stderr in a file (its last line explains a death); else inherit


def worker_env() -> dict[str, str]:
    """The current environment without ``OSMOSE_*`` settings and anything that looks like a secret."""
    return untrusted_env(PYTHONUNBUFFERED="1")


class WorkerProcess:
    """One worker process, started at construction; one request at a time.

    :meth:`request` and :meth:`wait_ready` raise ``TimeoutError`` (the worker was
    killed) or :class:`WorkerGone`; after either the worker is reaped and unusable.
    :meth:`interrupt` may be called from another thread.
    """

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.hello: Header = {}
        # Closed when the worker is reaped, after its last line is kept for ended().
        self._stderr: IO[bytes] | None = tempfile.TemporaryFile() if spec.capture_stderr else None  # noqa: SIM115
        self._stderr_tail = ""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", _MODULE, json.dumps(
                {"handler": spec.handler, "config": dict(spec.config), "memory_limit_bytes": spec.memory_limit_bytes})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=worker_env(),
            start_new_session=True, bufsize=0,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin, self._stdout = self._proc.stdin.fileno(), self._proc.stdout.fileno()
        os.set_blocking(self._stdin, False)
        os.set_blocking(self._stdout, False)
        self._buffer = bytearray()
        self._lock = threading.Lock()
        self._busy = False
        self._interrupted = False
        self._reaped = False

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return not self._reaped and not self._interrupted and self._proc.poll() is None

    def wait_ready(self) -> Header:
        """The worker's hello, once it has started (within ``spec.start_timeout_s``)."""
        self.hello, _ = self._exchange(None, b"", timeout_s=self.spec.start_timeout_s)
        return self.hello

    def request(self, header: Header, body: bytes = b"", *, timeout_s: float) -> tuple[Header, bytes]:
        """Send one request and wait at most `timeout_s` seconds for its answer."""
        return self._exchange(header, body, timeout_s=timeout_s)

    def interrupt(self) -> None:
        """Kill the worker now (thread-safe); a request in flight ends with :class:`WorkerGone`."""
        with self._lock:
            self._interrupted = True
            if self._busy:
                self._signal()  # the request's own thread reaps it
            else:
                self._reap()

    def close(self) -> None:
        """End of input, a short grace period to exit, then the kill."""
        with self._lock:
            if self._reaped:
                return
            with contextlib.suppress(OSError):
                self._proc.stdin.close()  # type: ignore[union-attr]
            self._reap(grace_s=_CLOSE_GRACE_S)

    def kill(self) -> None:
        with self._lock:
            self._reap()

    def ended(self) -> str:
        """How the worker ended, for error messages: exit code or signal, and its last stderr line."""
        code = self._proc.returncode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return f"{how}: {self._stderr_tail}" if self._stderr_tail else how

    # -- the exchange ------------------------------------------------------------------------------

    def _exchange(self, header: Header | None, body: bytes, *, timeout_s: float) -> tuple[Header, bytes]:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            if self._reaped or self._interrupted:
                raise WorkerGone(self.ended(), returncode=self._proc.returncode)
            self._busy = True
        failed, grace = True, 0.0
        try:
            with selectors.DefaultSelector() as selector:
                if header is not None:
                    encoded = json.dumps(header).encode()
                    for part in (_LEN.pack(len(encoded)) + encoded + _LEN.pack(len(body)), body):
                        self._send(selector, part, deadline)
                reply = json.loads(self._receive(selector, deadline))
                data = self._receive(selector, deadline)
            failed = False
            return reply, data
        except TimeoutError:
            raise TimeoutError(f"no answer within {timeout_s:g}s") from None
        except (OSError, EOFError, ValueError):  # broken pipe, end of output, a garbled frame
            grace = _EXIT_GRACE_S  # it is probably exiting: let it, so its exit code says why
        finally:
            with self._lock:
                self._busy = False
                if failed or self._interrupted:
                    self._reap(grace_s=0.0 if self._interrupted else grace)
        raise WorkerGone(self.ended(), returncode=self._proc.returncode)

    def _send(self, selector: selectors.BaseSelector, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        selector.register(self._stdin, selectors.EVENT_WRITE)
        try:
            while view:
                if not selector.select(_remaining(deadline)):
                    raise TimeoutError
                with contextlib.suppress(BlockingIOError):
                    view = view[os.write(self._stdin, view[:_WRITE_CHUNK]):]
        finally:
            selector.unregister(self._stdin)

    def _receive(self, selector: selectors.BaseSelector, deadline: float) -> bytes:
        (size,) = _LEN.unpack(self._read_exact(selector, _LEN.size, deadline))
        return self._read_exact(selector, size, deadline)

    def _read_exact(self, selector: selectors.BaseSelector, n: int, deadline: float) -> bytes:
        selector.register(self._stdout, selectors.EVENT_READ)
        try:
            while len(self._buffer) < n:
                if not selector.select(_remaining(deadline)):
                    raise TimeoutError
                try:
                    chunk = os.read(self._stdout, n - len(self._buffer))
                except BlockingIOError:
                    continue
                if not chunk:
                    raise EOFError("the worker closed its output")
                self._buffer += chunk
        finally:
            selector.unregister(self._stdout)
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    # -- ending (with self._lock held) ---------------------------------------------------------------

    def _signal(self) -> None:
        if not self._reaped and self._proc.returncode is None:  # never signal a reaped (reusable) pid
            kill_group(self._proc.pid)

    def _reap(self, *, grace_s: float = 0.0) -> None:
        if self._reaped:
            return
        if grace_s:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=grace_s)
        self._signal()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)
        for stream in (self._proc.stdin, self._proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]
        if self._stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                self._stderr.seek(0)
                lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
                self._stderr_tail = lines[-1][:_STDERR_TAIL_CHARS] if lines else ""
            self._stderr.close()
        self._reaped = True


def _remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


class WorkerPool:
    """Up to `size` workers of one spec, started on demand and reused. Thread-safe."""

    def __init__(self, spec: WorkerSpec, *, size: int) -> None:
        self.spec = spec
        self.size = size
        self.started = 0  # workers started so far (a reused worker is not counted again)
        self._idle: queue.LifoQueue[WorkerProcess] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._count = threading.Lock()

    def request(self, header: Header, body: bytes = b"", *, timeout_s: float) -> tuple[Header, bytes]:
        """:meth:`WorkerProcess.request` on an idle or new worker (raises the same errors)."""
        with self._slots:
            worker = self._checkout()
            answer = worker.request(header, body, timeout_s=timeout_s)  # a failed worker is already reaped
            self._idle.put(worker)
            return answer

    def close(self) -> None:
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return
            worker.close()

    def _checkout(self) -> WorkerProcess:
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                break
            if worker.alive:
                return worker
            worker.kill()
        worker = WorkerProcess(self.spec)
        with self._count:
            self.started += 1
        worker.wait_ready()
        return worker


# -- the worker side ----------------------------------------------------------------------------------

def _lower_memory_ceiling(limit: int) -> None:
    if limit <= 0:
        return
    with contextlib.suppress(ValueError, OSError):
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(hard, limit), hard))


def _write_message(out: IO[bytes], header: Header, body: bytes) -> None:
    encoded = json.dumps(header).encode()
    out.write(b"".join((_LEN.pack(len(encoded)), encoded, _LEN.pack(len(body)), body)))
    out.flush()


def _read_frame(stream: IO[bytes]) -> bytes:
    size_bytes = stream.read(_LEN.size)
    if len(size_bytes) < _LEN.size:
        raise EOFError
    (size,) = _LEN.unpack(size_bytes)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return data


def serve(spec: Mapping[str, Any]) -> None:
    """Steps 2 and 3 of the protocol in the module docstring."""
    out = os.fdopen(os.dup(1), "wb")  # the protocol's private copy of stdout
    os.dup2(2, 1)
    _lower_memory_ceiling(int(spec.get("memory_limit_bytes") or 0))
    module, _, factory = str(spec["handler"]).partition(":")
    handler: Handler = getattr(importlib.import_module(module), factory)(dict(spec.get("config") or {}))
    try:
        _write_message(out, handler.hello(), b"")
        while True:
            try:
                header = json.loads(_read_frame(sys.stdin.buffer))
                body = _read_frame(sys.stdin.buffer)
            except (EOFError, OSError):  # the caller closed the pipe or is gone: nothing left to do
                return
            reply, data = handler.handle(header, body)
            _write_message(out, reply, data)
    except OSError:  # BrokenPipeError: the caller died (e.g. kill -9); exit quietly
        return


if __name__ == "__main__":
    from osmose.config import Settings  # the one reader of the environment

    logging.basicConfig(level=Settings.from_env().log_level)
    serve(json.loads(sys.argv[1]))
