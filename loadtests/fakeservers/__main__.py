"""Command line: run a fake chat (vLLM) or embeddings (TEI) server, or change a running one's faults.

    python -m loadtests.fakeservers chat [--host H] [--port 8000] [--slots 8] [--model NAME ...]
                                         [--time-scale 1] [--decode-tps 100] [--fault SPEC ...]
    python -m loadtests.fakeservers tei  [--port 8080] [--dim 384] [--max-client-batch-size 32]
                                         [--max-batch-tokens 16384] [--slots 4] [--fault SPEC ...]
    python -m loadtests.fakeservers faults URL [SPEC ...] [--append]   # no SPEC = clear

Also runnable as a script (``python loadtests/fakeservers/__main__.py ...``).
A fault SPEC is ``kind[:key=value...]``, e.g. ``429:count=3:retry_after=1``, ``500:rate=0.1``,
``hang:count=1:seconds=20``, ``malformed:count=2``, ``slow:factor=20`` (see faults.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `loadtests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from loadtests.fakeservers.capacity import LatencyModel  # noqa: E402
from loadtests.fakeservers.chat import DEFAULT_MODELS, ChatServer  # noqa: E402
from loadtests.fakeservers.faults import parse_fault  # noqa: E402
from loadtests.fakeservers.runner import BaseServer, post_json  # noqa: E402
from loadtests.fakeservers.tei import TeiServer  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtests.fakeservers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, port: int) -> None:
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=port, help=f"0 = any free port (default {port})")
        p.add_argument("--slots", type=int, default=None, help="requests served at once; more wait in a queue")
        p.add_argument("--time-scale", type=float, default=1.0, help="multiplies every latency (0 = instant)")
        p.add_argument("--fault", action="append", default=[], metavar="SPEC", help="inject a fault (repeatable)")
        p.add_argument("--seed", type=int, default=0, help="seed for rate-based faults")
        p.add_argument("--api-key", default=os.environ.get("FAKESERVER_API_KEY", ""),
                       help="require this bearer token, like vLLM's/TEI's --api-key (default $FAKESERVER_API_KEY)")

    chat = sub.add_parser("chat", help="OpenAI-compatible chat server (vLLM-like)")
    common(chat, 8000)
    chat.add_argument("--model", action="append", default=None, help=f"served model (default {', '.join(DEFAULT_MODELS)})")
    chat.add_argument("--max-waiting", type=int, default=0, help="queue bound, 503 beyond (0 = unbounded)")
    chat.add_argument("--decode-tps", type=float, default=100.0, help="output tokens/s per request")
    chat.add_argument("--prefill-tps", type=float, default=10_000.0, help="prompt tokens/s per request")

    tei = sub.add_parser("tei", help="Text Embeddings Inference compatible server")
    common(tei, 8080)
    tei.add_argument("--model-id", default="sentence-transformers/all-MiniLM-L6-v2")
    tei.add_argument("--dim", type=int, default=384)
    tei.add_argument("--max-client-batch-size", type=int, default=32)
    tei.add_argument("--max-batch-tokens", type=int, default=16384)
    tei.add_argument("--max-input-length", type=int, default=512)
    tei.add_argument("--max-concurrent-requests", type=int, default=512)

    faults = sub.add_parser("faults", help="set (or clear) the faults of a running server")
    faults.add_argument("url", help="the server's root URL, e.g. http://127.0.0.1:8000")
    faults.add_argument("specs", nargs="*", metavar="SPEC")
    faults.add_argument("--append", action="store_true", help="add to the current faults instead of replacing them")
    return parser


async def _serve(server: BaseServer, label: str) -> None:
    await server.start_async()
    print(f"fake {label} server listening on {server.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop_async()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "faults":
        body = {"faults": [parse_fault(s).as_dict() for s in args.specs], "mode": "append" if args.append else "replace"}
        print(post_json(f"{args.url.rstrip('/')}/admin/faults", body))
        return 0
    faults = [parse_fault(s) for s in args.fault]
    if args.command == "chat":
        latency = LatencyModel(prefill_tps=args.prefill_tps, decode_tps=args.decode_tps, time_scale=args.time_scale)
        server: BaseServer = ChatServer(host=args.host, port=args.port, models=tuple(args.model or DEFAULT_MODELS),
                                        slots=args.slots or 8, max_waiting=args.max_waiting, latency=latency,
                                        faults=faults, seed=args.seed, api_key=args.api_key)
    else:
        latency = LatencyModel(base_s=0.005, prefill_tps=200_000, decode_tps=1.0, time_scale=args.time_scale)
        server = TeiServer(host=args.host, port=args.port, model_id=args.model_id, dim=args.dim,
                           max_client_batch_size=args.max_client_batch_size, max_batch_tokens=args.max_batch_tokens,
                           max_input_length=args.max_input_length,
                           max_concurrent_requests=args.max_concurrent_requests, slots=args.slots or 4,
                           latency=latency, faults=faults, seed=args.seed, api_key=args.api_key)
    asyncio.run(_serve(server, args.command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
