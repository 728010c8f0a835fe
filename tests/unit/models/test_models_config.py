"""The router configuration: the shipped default, placeholders, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from osmose.config import Settings
from osmose.models import RouterConfigError, load_router_config
from osmose.models.config import parse_router_config
from tests.unit.models.backends import router_dict


def test_default_router_ships_with_the_package_and_is_off_without_urls() -> None:
    config = load_router_config(None)
    assert set(config.tasks) >= {"vision_summary", "concept_extraction", "relation_typing"}
    assert not any(e.enabled for e in config.endpoints.values())
    assert config.embedding_endpoint is None
    assert config.tasks["concept_extraction"].batch_size >= 2


def test_placeholders_take_the_settings_urls() -> None:
    config = load_router_config(None, urls={"llm_url": "http://gpu:8000/v1/", "tei_url": "http://tei:8080"})
    assert config.endpoints["llm"].url == "http://gpu:8000/v1"
    assert config.endpoints["llm"].enabled and not config.endpoints["vision"].enabled
    assert config.embedding_endpoint is not None and config.embedding_endpoint.url == "http://tei:8080"


def test_router_file_from_settings(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    raw = router_dict(llm="${llm_url}", batch_size=7)
    path.write_text(yaml.safe_dump(raw))
    settings = Settings.from_env({"OSMOSE_ROUTER_CONFIG": str(path), "OSMOSE_LLM_URL": "http://h:1/v1"})
    config = load_router_config(settings.router_config, urls={"llm_url": settings.llm_url})
    assert config.tasks["concept_extraction"].batch_size == 7
    assert config.endpoints["llm"].url == "http://h:1/v1"


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r["endpoints"]["llm"].update(protocol="grpc"), "protocol"),
    (lambda r: r["endpoints"]["llm"].update(colour="red"), "unknown key"),
    (lambda r: r["endpoints"]["llm"].update(url="ftp://x"), "http"),
    (lambda r: r["endpoints"]["llm"].update(url="${gpu_url}"), "placeholder"),
    (lambda r: r["endpoints"]["llm"]["breaker"].update(error_rate=2), "error_rate"),
    (lambda r: r["endpoints"]["llm"]["timeout"].update(min=100), "min <= initial"),
    (lambda r: r["tasks"]["concept_extraction"]["chain"][0].update(endpoint="nowhere"), "unknown endpoint"),
    (lambda r: r["tasks"]["concept_extraction"]["chain"][0].update(endpoint="tei"), "chat protocol"),
    (lambda r: r["tasks"]["concept_extraction"].update(fallback="pray"), "fallback"),
    (lambda r: r["tasks"]["concept_extraction"].update(batch_size="four"), "batch_size"),
    (lambda r: r.update(embeddings="llm"), "not a tei endpoint"),
    # unknown keys are refused at every level, and the message gives their path
    (lambda r: r.update(colour="red"), "top level: unknown key 'colour'"),
    (lambda r: r["endpoints"]["llm"]["timeout"].update(deadline=3), r"endpoints\.llm\.timeout: unknown key 'deadline'"),
    (lambda r: r["tasks"]["concept_extraction"]["chain"][0].update(temperature=0),
     r"tasks\.concept_extraction\.chain\.0: unknown key 'temperature'"),
    (lambda r: r["endpoints"]["llm"].update(name="other"), r"endpoints\.llm: unknown key 'name'"),
    (lambda r: r["endpoints"]["llm"].update(concurrency=0), r"endpoints\.llm\.concurrency: .*greater than or equal to 1"),
])
def test_invalid_configurations_are_rejected_with_the_reason(change, message: str) -> None:
    raw = router_dict(llm="http://h/v1")
    change(raw)
    with pytest.raises(RouterConfigError, match=message):
        parse_router_config(raw, urls={})


def test_unreadable_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(RouterConfigError, match="cannot read"):
        load_router_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("endpoints: [")
    with pytest.raises(RouterConfigError, match="invalid YAML"):
        load_router_config(bad)


def test_errors_name_the_source_and_every_problem() -> None:
    raw = router_dict(llm="http://h/v1")
    raw["endpoints"]["llm"]["colour"] = "red"
    raw["tasks"]["relation_typing"]["batch_size"] = 0
    with pytest.raises(RouterConfigError) as caught:
        parse_router_config(raw, urls={}, source="my-router.yaml")
    message = str(caught.value)
    assert message.startswith("my-router.yaml: ")
    assert "endpoints.llm: unknown key 'colour'" in message and "tasks.relation_typing.batch_size" in message


def test_the_source_is_not_a_key_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(router_dict(llm="${llm_url}")))
    assert load_router_config(path).source == str(path)
    with pytest.raises(RouterConfigError, match="unknown key 'source'"):
        parse_router_config({**router_dict(), "source": "elsewhere"}, urls={})
