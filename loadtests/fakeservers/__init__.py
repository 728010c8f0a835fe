"""Local servers that speak vLLM's (OpenAI-compatible) and TEI's protocols, for tests and benchmarks.

They model capacity (slots, a queue, latency from prompt and output tokens),
expose Prometheus metrics under the real servers' names, inject faults on
demand, and answer deterministically from the prompt so a pipeline run against
them produces real-looking concepts, relations, vision summaries and vectors.

In tests (background thread, ephemeral port)::

    with ChatServer(slots=4, latency=LatencyModel(time_scale=0)) as llm, TeiServer(dim=384) as tei:
        settings = Settings(llm_url=llm.openai_url, vision_url=llm.openai_url, tei_url=tei.url, ...)
        llm.set_faults(Fault("429", count=2, retry_after=1))
        assert llm.scrape()["fakeserver_peak_requests_in_flight"] <= 4

From a shell (``dev/backends.sh up`` does this on fixed ports)::

    python -m loadtests.fakeservers chat --port 8000
    python -m loadtests.fakeservers tei --port 8080 --dim 384
    python -m loadtests.fakeservers faults http://127.0.0.1:8000 429:count=5:retry_after=2
"""

from loadtests.fakeservers.capacity import Capacity, LatencyModel
from loadtests.fakeservers.chat import DEFAULT_MODELS, ChatServer
from loadtests.fakeservers.faults import Fault, FaultPlan, parse_fault
from loadtests.fakeservers.metrics import parse_metrics
from loadtests.fakeservers.tei import TeiServer, hashed_embedding

__all__ = [
    "DEFAULT_MODELS",
    "Capacity",
    "ChatServer",
    "Fault",
    "FaultPlan",
    "LatencyModel",
    "TeiServer",
    "hashed_embedding",
    "parse_fault",
    "parse_metrics",
]
