"""The model-call cache: replays make no call, keys are content-addressed, SQLite by default, Redis when configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.fakeservers import ChatServer, Fault
from osmose.cache import SqliteCache
from osmose.config import Settings
from osmose.errors import ConfigurationError
from osmose.models import ChatRequest, ImageInput, ModelRuntime
from osmose.models.cache import ModelCache, open_content_cache
from osmose.models.openai_chat import key_material
from osmose.models.redis_cache import RedisCache
from tests.unit.models.backends import redis_server, router, runtime, write_router

pytestmark = pytest.mark.anyio

TASK = "vision_summary"


def request(user: str = "Title: Overview", image: bytes = b"\x89PNG-one") -> ChatRequest:
    return ChatRequest(system="Describe the slide.", user=user, images=(ImageInput.from_bytes(image),))


async def _twice(models: ModelRuntime, first: ChatRequest, second: ChatRequest) -> tuple[bool, bool, int, int]:
    try:
        a = await models.session().chat(TASK, first)
        session = models.session()
        b = await session.chat(TASK, second)
        usage = session.usage.task(TASK)
        return a.cached, b.cached, usage.calls, usage.cache_hits
    finally:
        await models.aclose()


async def test_a_replay_makes_no_call(chat: ChatServer, tmp_path: Path) -> None:
    models = runtime(router(vision=chat.openai_url), tmp_path)
    first, second, calls, hits = await _twice(models, request(), request())
    assert (first, second, calls, hits) == (False, True, 0, 1)
    assert chat.chat_requests == 1
    assert (models.cache.hits, models.cache.misses) == (1, 1)


async def test_the_cache_survives_the_process(chat: ChatServer, tmp_path: Path) -> None:
    await _twice(runtime(router(vision=chat.openai_url), tmp_path), request(), request("Title: other"))
    assert chat.chat_requests == 2
    again = runtime(router(vision=chat.openai_url), tmp_path)  # a new process over the same data dir
    first, second, calls, _ = await _twice(again, request(), request("Title: other"))
    assert (first, second, calls) == (True, True, 0)
    assert chat.chat_requests == 2


async def test_a_failed_call_is_not_cached(chat: ChatServer, tmp_path: Path) -> None:
    chat.set_faults(Fault("500", count=1))
    models = runtime(router(vision=chat.openai_url, attempts=1), tmp_path)

    async def go() -> bool:
        try:
            with pytest.raises(Exception, match="500"):
                await models.session().chat(TASK, request())
            return (await models.session().chat(TASK, request())).cached
        finally:
            await models.aclose()

    assert await go() is False and chat.chat_requests == 2


def test_keys_are_content_addressed() -> None:
    params = {"temperature": 0, "max_tokens": 300}
    base = key_material("m", params, request())
    assert key_material("m", params, request("Title: Overview   \n")) == base  # trailing spaces
    assert key_material("m", params, request("Title: Ove\u0301rview")) == key_material(
        "m", params, request("Title: Ov\u00e9rview"))  # Unicode normal form
    assert key_material("m2", params, request()) != base
    assert key_material("m", {**params, "temperature": 0.7}, request()) != base
    assert key_material("m", params, request(image=b"\x89PNG-two")) != base
    # an image counts by its hash, not by how it is loaded
    digest_only = ChatRequest(system="Describe the slide.", user="Title: Overview",
                              images=(ImageInput(digest=request().images[0].digest, load=lambda: None),))
    assert key_material("m", params, digest_only) == base


def test_sqlite_is_the_default_and_redis_urls_are_checked(tmp_path: Path) -> None:
    store = open_content_cache(cache_url=None, sqlite_path=tmp_path / "c.sqlite", namespace="models")
    assert isinstance(store, SqliteCache)
    store.close()
    with pytest.raises(ConfigurationError, match="redis://"):
        open_content_cache(cache_url="memcached://x", sqlite_path=tmp_path / "c.sqlite", namespace="models")


def test_redis_cache_round_trip(tmp_path: Path) -> None:
    with redis_server(tmp_path) as url:
        cache = RedisCache(url, namespace="models")
        assert cache.ping()
        cache.put_many({"a": b"1", "b": b"\x00\xff"})
        assert cache.get_many(["a", "b", "c"]) == {"a": b"1", "b": b"\x00\xff"}
        other = RedisCache(url, namespace="embeddings")  # namespaces do not see each other
        assert other.get_many(["a"]) == {}
        cache.close()
        other.close()


async def test_processes_share_answers_through_redis(chat: ChatServer, tmp_path: Path) -> None:
    with redis_server(tmp_path) as url:
        config_path = write_router(tmp_path / "router.yaml", vision="${vision_url}")
        settings = Settings(data_dir=tmp_path / "one", vision_url=chat.openai_url, cache_url=url,
                            router_config=config_path)
        await _twice(ModelRuntime.from_settings(settings), request(), request("Title: B"))
        assert chat.chat_requests == 2
        elsewhere = Settings(data_dir=tmp_path / "two", vision_url=chat.openai_url, cache_url=url,
                             router_config=config_path)
        first, second, calls, hits = await _twice(ModelRuntime.from_settings(elsewhere), request(),
                                                        request("Title: B"))
        assert (first, second, calls, hits) == (True, True, 0, 1)
        assert chat.chat_requests == 2
        assert not (tmp_path / "two" / "cache" / "models.sqlite").exists()


async def test_a_broken_cache_degrades_to_misses(chat: ChatServer, tmp_path: Path) -> None:
    with redis_server(tmp_path) as url:
        pass  # stopped: the URL now points nowhere
    models = ModelRuntime(router(vision=chat.openai_url), cache=ModelCache(RedisCache(url, namespace="models")))
    first, second, calls, _ = await _twice(models, request(), request())
    assert (first, second, calls) == (False, False, 1)
    assert models.cache.errors >= 2


def test_sqlite_entries_expire_and_the_row_count_is_bounded(tmp_path: Path) -> None:
    now = [1_000_000.0]
    cache = SqliteCache(tmp_path / "c.sqlite", namespace="models", ttl_s=3600, max_entries=5, prune_every=4,
                        clock=lambda: now[0])
    cache.put_many({f"k{i}": b"v" for i in range(3)})
    now[0] += 1800
    cache.put_many({f"k{i}": b"v" for i in range(3, 6)})
    assert len(cache) == 5               # 6 rows written (past prune_every): trimmed to max_entries, oldest first
    assert set(cache.get_many(f"k{i}" for i in range(6))) == {"k1", "k2", "k3", "k4", "k5"}
    now[0] += 1800 + 1                                               # the first three are past the TTL
    assert set(cache.get_many(f"k{i}" for i in range(6))) == {"k3", "k4", "k5"}   # expired reads are misses
    assert cache.prune() == 2 and len(cache) == 3
    cache.close()
    # A cache written before rows had an age keeps its rows (they start their age now).
    import sqlite3

    old = sqlite3.connect(tmp_path / "old.sqlite")
    old.execute("CREATE TABLE cache_models (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
    old.execute("INSERT INTO cache_models VALUES ('a', x'01')")
    old.commit()
    old.close()
    migrated = SqliteCache(tmp_path / "old.sqlite", namespace="models", ttl_s=3600, clock=lambda: now[0])
    assert migrated.get_many(["a"]) == {"a": b"\x01"}
    migrated.close()


def test_redis_entries_get_the_ttl(tmp_path: Path) -> None:
    import redis

    with redis_server(tmp_path) as url:
        cache = open_content_cache(cache_url=url, sqlite_path=tmp_path / "unused.sqlite", namespace="models",
                                   ttl_s=7200)
        cache.put_many({"k": b"v"})
        client = redis.Redis.from_url(url)
        ttl = client.ttl("osmose:models:k")
        client.close()
        cache.close()
    assert 7100 < ttl <= 7200


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_erasing_a_document_forgets_the_answers_it_used(backend: str, chat: ChatServer, tmp_path: Path) -> None:
    """Answers are marked with the document they were asked or reused for (osmose.cache): erasing
    the document removes them, whichever document wrote them first; the tenant's other answers and
    the other tenant's stay, and asking again is a miss (a hit would tell the document was there)."""
    from contextlib import ExitStack

    from osmose.cache import document_scope

    with ExitStack() as stack:
        if backend == "redis":
            store: object = RedisCache(stack.enter_context(redis_server(tmp_path)), namespace="models")
        else:
            store = SqliteCache(tmp_path / "models.sqlite", namespace="models")
        models = ModelRuntime(router(vision=chat.openai_url), cache=ModelCache(store))  # type: ignore[arg-type]
        try:
            async def ask(tenant: str, doc_id: str, user: str) -> bool:
                with document_scope(tenant, doc_id):
                    return (await models.session(scope=tenant).chat(TASK, request(user))).cached

            assert not await ask("acme", "d1", "Title: secret plan")
            assert await ask("acme", "d2", "Title: secret plan")       # d2 reuses d1's answer: marked for d2 too
            assert not await ask("acme", "d2", "Title: other slide")
            assert not await ask("globex", "g1", "Title: secret plan")  # tenants share nothing
            assert models.erase_document("acme", "d2") == 2
            assert models.erase_document("acme", "d2") == 0            # idempotent
            assert not await ask("acme", "d3", "Title: secret plan")   # gone, though d1 wrote it
            assert await ask("globex", "g2", "Title: secret plan")      # the other tenant's stays
            assert models.erase_document("acme", "d1") == 1            # the answer d3 wrote again (d1 used it)
            assert models.erase("acme") >= 1 and models.erase("globex") >= 2
            assert models.cache.store.keys_with_prefix("t") == []
        finally:
            await models.aclose()
