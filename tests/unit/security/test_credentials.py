"""Credentials to principals: JWTs verified against the issuer's keys, hashed API keys, and the
tenant rules every request goes through."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from osmose.security import (
    ApiKeys,
    AuthenticationError,
    Authenticator,
    JwtVerifier,
    PermissionDeniedError,
    generate_api_key,
    hash_api_key,
)
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb

ISSUER, AUDIENCE = "https://id.example.test", "osmose"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def verifier(signing_key: rsa.RSAPrivateKey) -> JwtVerifier:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    return JwtVerifier(issuer=ISSUER, audience=AUDIENCE, jwks={"keys": [{**jwk, "kid": "k1", "use": "sig"}]})


def token(key: rsa.RSAPrivateKey, **claims: object) -> str:
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": int(time.time()) + 300,
            "osmose_tenant": "acme", "osmose_plan": "enterprise", **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


def test_a_valid_token_maps_to_its_tenant_plan_and_roles(signing_key: rsa.RSAPrivateKey,
                                                          verifier: JwtVerifier) -> None:
    principal = verifier.principal(token(signing_key, osmose_roles=["admin"]))
    assert (principal.subject, principal.tenant, principal.plan.name, principal.admin) == (
        "alice", "acme", "enterprise", True)
    assert principal.plan.priority == epb.PRIORITY_HIGH and principal.method == "jwt"


@pytest.mark.parametrize("claims, message", [
    ({"exp": int(time.time()) - 3600}, "expired"),
    ({"iss": "https://evil.test"}, "invalid token"),
    ({"aud": "someone-else"}, "invalid token"),
    ({"osmose_tenant": None}, "no valid tenant"),
    ({"osmose_tenant": "two words"}, "no valid tenant"),
    ({"osmose_plan": "platinum"}, "unknown-plan"),
])
def test_bad_tokens_are_refused(signing_key: rsa.RSAPrivateKey, verifier: JwtVerifier, claims: dict,
                                message: str) -> None:
    with pytest.raises(AuthenticationError, match=message):
        verifier.principal(token(signing_key, **claims))


def test_a_token_signed_by_another_key_is_refused(verifier: JwtVerifier) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(AuthenticationError, match="invalid token"):
        verifier.principal(token(other))


def test_api_keys_are_stored_hashed_and_looked_up(tmp_path: Path) -> None:
    key = generate_api_key()
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text(f"keys:\n  - name: bot\n    sha256: {hash_api_key(key)}\n    tenant: acme\n"
                         "    plan: starter\n")
    assert key not in keys_file.read_text()
    authenticator = Authenticator(api_keys=ApiKeys.load(keys_file))
    principal = authenticator.authenticate([("x-api-key", key)])
    assert (principal.subject, principal.tenant, principal.plan.name, principal.admin) == ("bot", "acme", "starter", False)
    with pytest.raises(AuthenticationError, match="unknown API key"):
        authenticator.authenticate([("x-api-key", generate_api_key())])
    with pytest.raises(AuthenticationError, match="no credential"):
        authenticator.authenticate([])
    with pytest.raises(AuthenticationError, match="bearer tokens are not accepted"):
        authenticator.authenticate([("authorization", "Bearer abc")])


def test_tenant_rules_and_plans(tmp_path: Path) -> None:
    key = generate_api_key()
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps({"keys": [{"name": "bot", "sha256": hash_api_key(key), "tenant": "acme",
                                               "plan": "starter"}]}))
    principal = ApiKeys.load(keys_file).principal(key)
    assert principal.tenant_for(None) == principal.tenant_for("acme") == "acme"
    with pytest.raises(PermissionDeniedError, match="tenant 'globex'"):
        principal.tenant_for("globex")
    with pytest.raises(PermissionDeniedError, match="admin"):
        principal.require_admin("deleting a tenant")
    principal.plan.check_tier(pb.TIER_STANDARD)
    with pytest.raises(PermissionDeniedError, match="tier-not-entitled"):
        principal.plan.check_tier(pb.TIER_DEEP)
