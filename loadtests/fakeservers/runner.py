"""Running a fake server: in a background thread (tests, benchmarks) or in the foreground (CLI).

Each server runs its own event loop, so a test's client (sync or async, any
loop) talks to it over real TCP exactly as it would talk to vLLM or TEI.
``port=0`` picks a free ephemeral port; :attr:`BaseServer.url` says which.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from typing import Any

from aiohttp import web

from loadtests.fakeservers.faults import Fault, FaultPlan
from loadtests.fakeservers.metrics import parse_metrics

__all__ = ["BaseServer"]


class BaseServer:
    """Common lifecycle, fault plan and admin routes of the chat and TEI servers."""

    kind = "server"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, faults: list[Fault] | None = None,
                 seed: int = 0, api_key: str = "") -> None:
        #: like vLLM's and TEI's --api-key: every route but /health, /metrics and /admin needs the bearer token
        self.api_key = api_key
        self.unauthorized = 0
        self.host = host
        self.port = port
        self.faults = FaultPlan(faults, seed=seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    # -- to be provided by subclasses ------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def on_start(self) -> None:
        """Called in the server's loop before it accepts requests (create loop-bound state here)."""

    def metrics_text(self) -> str:
        raise NotImplementedError

    # -- lifecycle -----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        open_path = request.path in ("/health", "/metrics") or request.path.startswith("/admin/")
        if self.api_key and not open_path and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            self.unauthorized += 1
            return web.json_response({"error": "Unauthorized"}, status=401)
        return await handler(request)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._auth])
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/admin/faults", self._get_faults)
        app.router.add_post("/admin/faults", self._set_faults)
        app.router.add_delete("/admin/faults", self._clear_faults)
        self.routes(app)
        return app

    async def start_async(self) -> None:
        self.on_start()
        # Handlers are cancelled when their client goes away (a hung request must not live on).
        self._runner = web.AppRunner(self.app(), handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # noqa: SLF001 - aiohttp exposes no other way
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop_async(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> BaseServer:
        """Start in a daemon thread; returns once the port accepts connections."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._stopped = asyncio.Event()
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:  # reported to the starting thread
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_until_complete(self._stopped.wait())
            loop.run_until_complete(self.stop_async())
            loop.close()

        self._thread = threading.Thread(target=main, name=f"fake-{self.kind}", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError(f"fake {self.kind} server did not start")
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> BaseServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call_in_loop(self, fn: Any) -> Any:
        """Run `fn()` in the server's loop (to touch loop-bound state from another thread)."""
        assert self._loop is not None
        done = threading.Event()
        result: list[Any] = []

        def run() -> None:
            result.append(fn())
            done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(10)
        return result[0] if result else None

    # -- helpers for tests -----------------------------------------------------------------------------

    def scrape(self) -> dict[str, float]:
        """This server's /metrics, parsed (over HTTP, as Prometheus would)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:  # noqa: S310 - local
            return parse_metrics(response.read().decode())

    def set_faults(self, *faults: Fault, append: bool = False) -> None:
        self.faults.set(list(faults), append=append)

    # -- admin routes ------------------------------------------------------------------------------------

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self.metrics_text(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type": "text/plain; version=0.0.4"})

    async def _get_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"faults": self.faults.list(), "injected": self.faults.injected})

    async def _set_faults(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            faults = [Fault.from_dict(f) for f in body.get("faults", [])]
        except (ValueError, TypeError, AttributeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.faults.set(faults, append=body.get("mode") == "append")
        return web.json_response({"faults": self.faults.list()})

    async def _clear_faults(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return web.json_response({"faults": []})


def post_json(url: str, body: Any) -> Any:
    """A tiny synchronous JSON POST (admin calls from scripts)."""
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310 - local
        return json.loads(response.read() or b"null")
