"""No secret set in the environment ever reaches stdout, stderr, a log line or an error message.

The passwords and keys are distinctive strings; each run greps everything the
process wrote for them: a successful ingest at DEBUG level with --json, stats,
and the error paths a misconfigured deployment hits (a bad graph URI, a graph
server that does not answer, a Redis cache that does not answer, a bad setting).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support import CliResult, run_osmose

GRAPH_PASSWORD = "pw-Lm4sQ8-graph-secret"
QDRANT_API_KEY = "key-Tz6nH1-qdrant-secret"
CACHE_PASSWORD = "pw-Vc2kJ7-cache-secret"
SECRETS = (GRAPH_PASSWORD, QDRANT_API_KEY, CACHE_PASSWORD)
# Set but unused by the embedded default (no graph URI, no Qdrant URL): the happy path carries them too.
SECRET_ENV = {"OSMOSE_GRAPH_PASSWORD": GRAPH_PASSWORD, "OSMOSE_QDRANT_API_KEY": QDRANT_API_KEY,
              "OSMOSE_LOG_LEVEL": "DEBUG"}


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_no_secret(result: CliResult) -> None:
    for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked on {stream}:\n{text[-3000:]}"


@pytest.fixture(scope="module")
def ingested(samples: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CliResult]:
    data = tmp_path_factory.mktemp("secret-data")
    return data, run_osmose("ingest", samples[2], "--json", "-vv", data_dir=data, env=SECRET_ENV)


def test_ingest_at_debug_level_prints_no_secret(ingested: tuple[Path, CliResult]) -> None:
    _, result = ingested
    assert result.code == 0, result.stderr
    assert result.json_lines()[0]["status"] == "ok"
    assert " DEBUG " in result.stderr, "the run should log at debug level"
    assert_no_secret(result)


def test_stats_prints_no_secret(ingested: tuple[Path, CliResult]) -> None:
    data, _ = ingested
    for args in (("stats", "--json"), ("stats",)):
        result = run_osmose(*args, data_dir=data, env=SECRET_ENV)
        assert result.code == 0, result.stderr
        assert_no_secret(result)


def test_a_bad_graph_uri_with_a_password_set(tmp_path: Path) -> None:
    result = run_osmose("stats", "--graph-uri", "nonsense://graph:7687", data_dir=tmp_path, env=SECRET_ENV)
    assert result.code != 0 and "invalid graph URI" in result.stderr
    assert_no_secret(result)


def test_a_graph_server_that_does_not_answer(tmp_path: Path) -> None:
    """The Neo4j driver logs its connection attempts at debug level (OSMOSE_LOG_LEVEL), then gives up."""
    tmp_path.joinpath("data").mkdir()
    result = run_osmose("stats", "--graph-uri", f"bolt://127.0.0.1:{closed_port()}", data_dir=tmp_path / "data",
                        env=SECRET_ENV)
    assert result.code != 0 and "unreachable" in result.stderr and " DEBUG neo4j" in result.stderr
    assert_no_secret(result)


def test_a_cache_that_does_not_answer(samples: list[Path], tmp_path: Path) -> None:
    env = {**SECRET_ENV, "OSMOSE_CACHE_URL": f"redis://:{CACHE_PASSWORD}@127.0.0.1:{closed_port()}/0"}
    result = run_osmose("ingest", samples[2], "--json", "-vv", data_dir=tmp_path, env=env)
    assert result.code != 0
    assert_no_secret(result)


@pytest.mark.parametrize("bad", [
    {"OSMOSE_MAX_PAGES": "lots"},
    {"OSMOSE_CACHE_URL": f"memcached://:{CACHE_PASSWORD}@cache:11211"},
])
def test_a_bad_setting_with_secrets_set(bad: dict[str, str], tmp_path: Path) -> None:
    result = run_osmose("stats", "--json", data_dir=tmp_path, env={**SECRET_ENV, **bad})
    assert result.code == 2 and next(iter(bad)) in result.stderr
    assert_no_secret(result)
