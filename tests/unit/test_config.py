"""Settings: every OSMOSE_* variable read once into one validated object, secrets never shown,
and the README's configuration table in step with the model."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from osmose.config import Limits, Settings, TriagePolicy, environment_variables
from osmose.errors import ConfigurationError
from tests.support import REPO

PASSWORD = "pw-Kq7vZ2-graph"
API_KEY = "key-Xy3mW9-qdrant"
CACHE_PASSWORD = "pw-Rr5tB8-cache"
S3_SECRET = "s3-Jd8pQ4-secret"
KAFKA_PASSWORD = "pw-Zt6nL1-kafka"
TOKEN = "tok-Wq2hR5-jwt"
CLIENT_KEY = "osk_Vb9cE3-client"
LLM_KEY, VISION_KEY, TEI_KEY = "sk-Gh4pN7-llm", "sk-Mc8sD2-vision", "sk-Tr1kF6-tei"
SECRETS = (PASSWORD, API_KEY, CACHE_PASSWORD, S3_SECRET, KAFKA_PASSWORD, TOKEN, CLIENT_KEY, LLM_KEY, VISION_KEY,
           TEI_KEY)
SECRET_ENV = {
    "OSMOSE_GRAPH_PASSWORD": PASSWORD,
    "OSMOSE_QDRANT_API_KEY": API_KEY,
    "OSMOSE_CACHE_URL": f"redis://:{CACHE_PASSWORD}@127.0.0.1:6379/0",
    "OSMOSE_BLOB_S3_SECRET_ACCESS_KEY": S3_SECRET,
    "OSMOSE_KAFKA_SASL_PASSWORD": KAFKA_PASSWORD,
    "OSMOSE_TOKEN": TOKEN,
    "OSMOSE_API_KEY": CLIENT_KEY,
    "OSMOSE_LLM_API_KEY": LLM_KEY,
    "OSMOSE_VISION_API_KEY": VISION_KEY,
    "OSMOSE_TEI_API_KEY": TEI_KEY,
}


def test_defaults_work_offline() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.graph_uri is None and settings.qdrant_url is None and settings.cache_url is None
    assert settings.limits == Limits() and settings.triage == TriagePolicy()
    assert settings.server == "127.0.0.1:50051" and settings.max_in_flight is None
    assert settings.claim_check_bytes == 256 * 1024 and settings.lookahead is True


def test_every_variable_lands_in_its_field(tmp_path: Path) -> None:
    env = {
        "OSMOSE_DATA_DIR": str(tmp_path), "OSMOSE_TENANT": "acme", "OSMOSE_MAX_FILE_MB": "1.5",
        "OSMOSE_MAX_PAGES": "7", "OSMOSE_MAX_IMAGE_PIXELS": "1000", "OSMOSE_CONVERT_TIMEOUT_S": "9",
        "OSMOSE_PARSE_TIMEOUT_S": "8.5", "OSMOSE_OCR_TIMEOUT_S": "7", "OSMOSE_DEEP_MAX_PAGES": "3",
        "OSMOSE_STANDARD_MAX_PAGES": "4", "OSMOSE_EMBED_BATCH_SIZE": "5", "OSMOSE_CHUNK_MAX_TOKENS": "128",
        "OSMOSE_MAX_EMBED_TOKENS": "900", "OSMOSE_MAX_MODEL_CALLS": "11", "OSMOSE_MAX_LLM_TOKENS": "700",
        "OSMOSE_PREVIEW_MIN_PAGES": "40",
        "OSMOSE_SOFFICE": "/opt/soffice", "OSMOSE_TESSERACT": "/opt/tesseract", "OSMOSE_LOG_LEVEL": "debug",
        "OSMOSE_GRAPH_URI": "bolt://g:7687", "OSMOSE_GRAPH_USER": "osmose", "OSMOSE_QDRANT_URL": "http://q:6333",
        "OSMOSE_LLM_URL": "http://l/v1", "OSMOSE_VISION_URL": "http://v/v1", "OSMOSE_TEI_URL": "http://t",
        "OSMOSE_ROUTER_CONFIG": "/etc/router.yaml", "OSMOSE_KAFKA_BOOTSTRAP": "k:9092",
        "OSMOSE_TOPIC_PREFIX": "staging", "OSMOSE_BLOB_DIR": "/shared/blobs", "OSMOSE_SERVER": "front:50051",
        "OSMOSE_MAX_IN_FLIGHT": "6", "OSMOSE_STAGE_TIMEOUT_S": "42", "OSMOSE_MAX_DELIVERIES": "3",
        "OSMOSE_OUTAGE_RETRY_CAP_S": "4", "OSMOSE_OUTAGE_MAX_S": "600", "OSMOSE_PUBLISH_RETRY_S": "90", "OSMOSE_LOOKAHEAD": "false", "OSMOSE_CLAIM_CHECK_BYTES": "4096", "OSMOSE_BLOB_URL": "s3://bucket/osmose",
        "OSMOSE_BLOB_S3_ENDPOINT": "http://s3:8333", "OSMOSE_BLOB_S3_REGION": "eu-west-1",
        "OSMOSE_BLOB_S3_ACCESS_KEY_ID": "AKIAOSMOSE", "OSMOSE_BLOB_S3_CA_BUNDLE": "/etc/ca.pem",
        "OSMOSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "OSMOSE_KAFKA_SSL_CAFILE": "/k/ca.pem",
        "OSMOSE_KAFKA_SSL_CERTFILE": "/k/c.pem", "OSMOSE_KAFKA_SSL_KEYFILE": "/k/k.pem",
        "OSMOSE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "OSMOSE_KAFKA_SASL_USERNAME": "osmose",
        "OSMOSE_KAFKA_REPLICATION_FACTOR": "3", "OSMOSE_KAFKA_MIN_INSYNC_REPLICAS": "2",
        "OSMOSE_KAFKA_CREATE_TOPICS": "false",
        "OSMOSE_TLS_CERT": "/t/server.pem", "OSMOSE_TLS_KEY": "/t/server-key.pem", "OSMOSE_TLS_CA": "/t/ca.pem",
        "OSMOSE_API_KEYS_FILE": "/s/keys.yaml", "OSMOSE_JWT_ISSUER": "https://id", "OSMOSE_JWT_AUDIENCE": "osm",
        "OSMOSE_JWT_JWKS_FILE": "/s/jwks.json", "OSMOSE_JWT_JWKS_URL": "https://id/jwks", "OSMOSE_OTLP_ENDPOINT": "http://otel:4317", **SECRET_ENV,
        "OSMOSE_BLOB_RETENTION_DAYS": "10.5", "OSMOSE_JOB_TABLE_MAX_ENDED": "500",
        "OSMOSE_JOB_TABLE_ENDED_TTL_S": "3600", "OSMOSE_MAX_CONCURRENT_RPCS": "64", "OSMOSE_MAX_STREAMS": "32",
        "OSMOSE_SUBMIT_IDLE_TIMEOUT_S": "12.5", "OSMOSE_CACHE_TTL_DAYS": "2", "OSMOSE_CACHE_MAX_ENTRIES": "1000",
        "OSMOSE_RENDER_CACHE_MAX_BYTES": "1048576",
        "UNRELATED": "ignored",
    }
    assert set(env) - {"UNRELATED"} == {v.name for v in environment_variables()}, "a variable is untested here"
    s = Settings.from_env(env)
    assert (s.data_dir, s.tenant) == (tmp_path, "acme")
    assert s.limits == Limits(max_file_bytes=1_572_864, max_pages=7, max_image_pixels=1000, convert_timeout_s=9,
                              parse_timeout_s=8.5, ocr_timeout_s=7)
    assert (s.triage.deep_max_pages, s.triage.standard_max_pages) == (3, 4)
    assert (s.triage.max_embed_tokens, s.triage.max_model_calls, s.triage.max_llm_tokens) == (900, 11, 700)
    assert s.triage.preview_min_pages == 40
    assert (s.embed_batch_size, s.chunk_max_tokens, s.log_level) == (5, 128, "DEBUG")
    assert (s.soffice, s.tesseract) == ("/opt/soffice", "/opt/tesseract")
    assert (s.graph_uri, s.graph_user, s.qdrant_url) == ("bolt://g:7687", "osmose", "http://q:6333")
    assert (s.llm_url, s.vision_url, s.tei_url) == ("http://l/v1", "http://v/v1", "http://t")
    assert s.router_config == Path("/etc/router.yaml")
    assert (s.kafka_bootstrap, s.topic_prefix, s.blob_dir) == ("k:9092", "staging", Path("/shared/blobs"))
    assert (s.server, s.max_in_flight, s.claim_check_bytes) == ("front:50051", 6, 4096)
    assert (s.stage_timeout_s, s.max_deliveries, s.outage_retry_cap_s, s.outage_max_s, s.publish_retry_s) == (
        42, 3, 4, 600, 90)
    assert s.lookahead is False
    assert (s.blob_url, s.blob_s3_endpoint, s.blob_s3_region, s.blob_s3_access_key_id, s.blob_s3_ca_bundle) == (
        "s3://bucket/osmose", "http://s3:8333", "eu-west-1", "AKIAOSMOSE", "/etc/ca.pem")
    assert s.otlp_endpoint == "http://otel:4317"
    assert s.kafka_create_topics is False
    assert (s.blob_retention_days, s.job_table_max_ended, s.job_table_ended_ttl_s) == (10.5, 500, 3600.0)
    assert (s.max_concurrent_rpcs, s.max_streams, s.submit_idle_timeout_s) == (64, 32, 12.5)
    assert (s.cache_ttl_days, s.cache_max_entries, s.render_cache_max_bytes) == (2.0, 1000, 1_048_576)
    assert s.blob_s3_secret_access_key is not None and s.blob_s3_secret_access_key.get_secret_value() == S3_SECRET
    assert (s.kafka_security_protocol, s.kafka_ssl_cafile, s.kafka_sasl_mechanism, s.kafka_sasl_username) == (
        "SASL_SSL", Path("/k/ca.pem"), "SCRAM-SHA-512", "osmose")
    assert (s.kafka_ssl_certfile, s.kafka_ssl_keyfile) == (Path("/k/c.pem"), Path("/k/k.pem"))
    assert (s.kafka_replication_factor, s.kafka_min_insync_replicas) == (3, 2)
    assert (s.tls_cert, s.tls_key, s.tls_ca) == (Path("/t/server.pem"), Path("/t/server-key.pem"), Path("/t/ca.pem"))
    assert (s.api_keys_file, s.jwt_issuer, s.jwt_audience) == (Path("/s/keys.yaml"), "https://id", "osm")
    assert (s.jwt_jwks_file, s.jwt_jwks_url) == (Path("/s/jwks.json"), "https://id/jwks")
    assert s.kafka_sasl_password is not None and s.kafka_sasl_password.get_secret_value() == KAFKA_PASSWORD
    assert s.token is not None and s.token.get_secret_value() == TOKEN
    assert s.api_key is not None and s.api_key.get_secret_value() == CLIENT_KEY
    assert [k.get_secret_value() if k else None for k in (s.llm_api_key, s.vision_api_key, s.tei_api_key)] == [
        LLM_KEY, VISION_KEY, TEI_KEY]
    assert isinstance(s.graph_password, SecretStr) and s.graph_password.get_secret_value() == PASSWORD
    assert s.qdrant_api_key is not None and s.qdrant_api_key.get_secret_value() == API_KEY
    assert s.cache_url is not None and s.cache_url.get_secret_value() == SECRET_ENV["OSMOSE_CACHE_URL"]


def test_an_empty_variable_means_unset() -> None:
    assert Settings.from_env({"OSMOSE_TENANT": "", "OSMOSE_MAX_PAGES": " ", "OSMOSE_GRAPH_URI": ""}) == Settings()


def test_keyword_construction_never_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSMOSE_TENANT", "from-env")
    monkeypatch.setenv("OSMOSE_GRAPH_URI", "bolt://elsewhere:7687")
    assert Settings().tenant == "default" and Settings(tenant="kw").graph_uri is None
    assert Settings.from_env().tenant == "from-env"


def test_importing_reads_no_environment() -> None:
    """A broken variable only matters when from_env runs, never at import."""
    code = "import osmose.config, osmose.cli.main, osmose.hosts.wiring"
    env = {"OSMOSE_MAX_PAGES": "lots", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_overrides_are_validated_and_none_keeps_the_value(tmp_path: Path) -> None:
    base = Settings.from_env({"OSMOSE_TENANT": "acme"})
    changed = base.with_overrides(data_dir=tmp_path, tenant=None, max_in_flight=4)
    assert (changed.data_dir, changed.tenant, changed.max_in_flight) == (tmp_path, "acme", 4)
    assert base.data_dir != tmp_path  # frozen: a copy, not a change
    with pytest.raises(ConfigurationError, match="max_in_flight"):
        base.with_overrides(max_in_flight=0)
    with pytest.raises(ConfigurationError, match="colour"):
        base.with_overrides(colour="red")


@pytest.mark.parametrize(("env", "message"), [
    ({"OSMOSE_MAX_PAGES": "abc"}, "OSMOSE_MAX_PAGES .*integer.*'abc'"),
    ({"OSMOSE_MAX_FILE_MB": "big"}, "OSMOSE_MAX_FILE_MB must be a number, got 'big'"),
    ({"OSMOSE_MAX_FILE_MB": "0"}, "OSMOSE_MAX_FILE_MB .*greater than or equal to 1"),
    ({"OSMOSE_PARSE_TIMEOUT_S": "-1"}, "OSMOSE_PARSE_TIMEOUT_S .*greater than 0"),
    ({"OSMOSE_EMBED_BATCH_SIZE": "0"}, "OSMOSE_EMBED_BATCH_SIZE .*greater than or equal to 1"),
    ({"OSMOSE_CHUNK_MAX_TOKENS": "1024"}, "OSMOSE_CHUNK_MAX_TOKENS .*less than or equal to 512"),
    ({"OSMOSE_TENANT": "two words"}, "tenant must be 1-128 characters without spaces"),
    ({"OSMOSE_TENANT": ".."}, "tenant must not contain '/' .* nor start with '.'"),
    ({"OSMOSE_TENANT": "acme/../globex"}, "tenant must not contain '/'"),
    ({"OSMOSE_LOG_LEVEL": "loud"}, "OSMOSE_LOG_LEVEL .*'LOUD'"),
    ({"OSMOSE_MAX_IN_FLIGHT": "100"}, "OSMOSE_MAX_IN_FLIGHT .*less than or equal to 64"),
    ({"OSMOSE_CLAIM_CHECK_BYTES": "10"}, "OSMOSE_CLAIM_CHECK_BYTES .*greater than or equal to 1024"),
    ({"OSMOSE_CACHE_URL": f"memcached://:{CACHE_PASSWORD}@h:1"}, r"OSMOSE_CACHE_URL .*redis://.*\(got memcached\)"),
])
def test_a_bad_value_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        Settings.from_env({**SECRET_ENV, **env})
    assert not any(secret in str(caught.value) for secret in SECRETS)


def test_secrets_never_show() -> None:
    settings = Settings.from_env(SECRET_ENV)
    shown = [repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump()),
             repr(settings.with_overrides(tenant="other"))]
    for text in shown:
        assert not any(secret in text for secret in SECRETS), text
    assert "**********" in repr(settings)
    secret_names = {v.name for v in environment_variables() if v.secret}
    assert secret_names == {"OSMOSE_GRAPH_PASSWORD", "OSMOSE_QDRANT_API_KEY", "OSMOSE_CACHE_URL",
                            "OSMOSE_BLOB_S3_SECRET_ACCESS_KEY", "OSMOSE_KAFKA_SASL_PASSWORD", "OSMOSE_TOKEN",
                            "OSMOSE_API_KEY", "OSMOSE_LLM_API_KEY", "OSMOSE_VISION_API_KEY", "OSMOSE_TEI_API_KEY"}


def test_a_secret_given_as_a_keyword_is_hidden_too() -> None:
    settings = Settings(graph_password=PASSWORD)  # type: ignore[arg-type]  # pydantic wraps it
    assert isinstance(settings.graph_password, SecretStr) and PASSWORD not in repr(settings)
    with pytest.raises(ConfigurationError) as caught:
        Settings(graph_password=PASSWORD, embed_batch_size=0)  # type: ignore[arg-type]
    assert PASSWORD not in str(caught.value)


# -- the README's table ------------------------------------------------------------------------------

def _readme_rows() -> dict[str, tuple[str, str]]:
    """`OSMOSE_*` -> (default, meaning) from the table under README's "## Configuration"."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\|\s*`(OSMOSE_\w+)`\s*\|(.*?)\|(.*)\|\s*$", line)
        if match:
            rows[match.group(1)] = (match.group(2).strip(), match.group(3).strip())
    return rows


def _shown(default: object) -> str:
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def test_readme_lists_exactly_the_variables_settings_reads() -> None:
    rows = _readme_rows()
    names = [v.name for v in environment_variables()]
    assert len(names) == len(set(names))
    assert sorted(set(names) - set(rows)) == [], "variables missing from README's configuration table"
    assert sorted(set(rows) - set(names)) == [], "README lists variables Settings does not read"


def test_readme_defaults_and_secrets_match_the_model() -> None:
    rows = _readme_rows()
    for variable in environment_variables():
        default, meaning = rows[variable.name]
        if variable.default is not None:
            assert _shown(variable.default) in default, (variable.name, default)
        if variable.secret:
            assert "secret" in meaning, f"README should say {variable.name} is a secret"
