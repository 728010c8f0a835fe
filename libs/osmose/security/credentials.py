"""Credentials to principals: OIDC/JWT bearer tokens and static API keys.

``authorization: Bearer <jwt>``
    verified with the issuer's keys (a JWKS document from a file — a mounted Secret or
    ConfigMap — or a URL), the configured issuer and audience; the tenant, plan and roles
    come from claims (``osmose_tenant``, ``osmose_plan``, ``osmose_roles`` by default).
``x-api-key: <key>``
    for service accounts: the key's SHA-256 is looked up in a file of hashed keys (a mounted
    Secret), so the file never holds a usable key. ``osmose keys new`` prints a key and its
    entry.

The keys file (YAML or JSON)::

    keys:
      - name: ingest-bot            # the principal's subject in audit lines
        sha256: 5f1c…               # hex SHA-256 of the key
        tenant: acme
        plan: business              # starter | business | enterprise
        roles: []                   # or [admin]
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from osmose.security.entitlements import plan_named
from osmose.security.exceptions import AuthenticationError, PermissionDeniedError, SecurityError
from osmose.security.principal import Principal

__all__ = ["ApiKeys", "Authenticator", "JwtVerifier", "authenticator_from_settings", "generate_api_key", "hash_api_key"]

API_KEY_PREFIX = "osk_"


def generate_api_key() -> str:
    """A new random API key (shown once; store only its hash)."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _principal(*, subject: str, tenant: object, plan: object, roles: object, method: str) -> Principal:
    if not isinstance(tenant, str) or not tenant or len(tenant) > 128 or any(c.isspace() for c in tenant):
        raise AuthenticationError(f"unauthenticated: the credential of {subject!r} names no valid tenant")
    role_set = frozenset(roles) if isinstance(roles, list | tuple) else frozenset()
    try:
        resolved = plan_named(str(plan or "starter"))
    except PermissionDeniedError as exc:
        raise AuthenticationError(f"unauthenticated: {exc}") from None
    return Principal(subject=subject, tenant=tenant, plan=resolved, roles=role_set, method=method)


@dataclass(frozen=True)
class ApiKeys:
    """Hashed API keys -> principals."""

    by_hash: Mapping[str, Principal] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ApiKeys:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise SecurityError(f"configuration: cannot read the API keys file {path}: {exc}") from None
        entries = data.get("keys", []) if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise SecurityError(f"configuration: {path} must hold `keys: [...]`")
        by_hash: dict[str, Principal] = {}
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or len(str(entry.get("sha256", ""))) != 64:
                raise SecurityError(f"configuration: {path}: keys[{i}] needs name, sha256 (64 hex), tenant, plan")
            by_hash[str(entry["sha256"]).lower()] = _principal(
                subject=str(entry.get("name") or f"key-{i}"), tenant=entry.get("tenant"), plan=entry.get("plan"),
                roles=entry.get("roles") or [], method="api-key")
        return cls(by_hash)

    def principal(self, key: str) -> Principal:
        digest = hash_api_key(key)
        for known, principal in self.by_hash.items():   # constant-time comparison of each
            if hmac.compare_digest(known, digest):
                return principal
        raise AuthenticationError("unauthenticated: unknown API key")


class JwtVerifier:
    """Verifies bearer tokens (RS256/ES256/EdDSA) against the issuer's JWKS."""

    ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA")

    def __init__(self, *, issuer: str, audience: str, jwks: Mapping[str, Any] | None = None,
                 jwks_url: str | None = None, tenant_claim: str = "osmose_tenant",
                 plan_claim: str = "osmose_plan", roles_claim: str = "osmose_roles", leeway_s: float = 30) -> None:
        import jwt

        if (jwks is None) == (jwks_url is None):
            raise SecurityError("configuration: give the JWKS as a document or as a URL, not both or neither")
        self.issuer, self.audience = issuer, audience
        self.tenant_claim, self.plan_claim, self.roles_claim = tenant_claim, plan_claim, roles_claim
        self.leeway_s = leeway_s
        self._keys = jwt.PyJWKSet.from_dict(dict(jwks)) if jwks is not None else None
        self._client = jwt.PyJWKClient(jwks_url, cache_keys=True) if jwks_url else None

    @classmethod
    def from_file(cls, path: Path, **kwargs: Any) -> JwtVerifier:
        try:
            return cls(jwks=json.loads(path.read_text(encoding="utf-8")), **kwargs)
        except (OSError, ValueError) as exc:
            raise SecurityError(f"configuration: cannot read the JWKS file {path}: {exc}") from None

    def _key(self, token: str) -> Any:
        import jwt

        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token).key
        kid = jwt.get_unverified_header(token).get("kid")
        assert self._keys is not None
        for key in self._keys.keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise AuthenticationError("unauthenticated: the token's key is not among the issuer's keys")

    def principal(self, token: str) -> Principal:
        import jwt

        try:
            claims = jwt.decode(token, self._key(token), algorithms=list(self.ALGORITHMS), audience=self.audience,
                                issuer=self.issuer, leeway=self.leeway_s,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("unauthenticated: the token has expired") from None
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"unauthenticated: invalid token ({type(exc).__name__})") from None
        return _principal(subject=str(claims["sub"]), tenant=claims.get(self.tenant_claim),
                          plan=claims.get(self.plan_claim), roles=claims.get(self.roles_claim) or [], method="jwt")


class Authenticator:
    """Maps a call's metadata to a principal with whichever credential kinds are configured."""

    def __init__(self, *, api_keys: ApiKeys | None = None, jwt: JwtVerifier | None = None) -> None:
        if api_keys is None and jwt is None:
            raise SecurityError("configuration: an authenticator needs API keys, a token issuer, or both")
        self.api_keys, self.jwt = api_keys, jwt

    def authenticate(self, metadata: Iterable[tuple[str, str | bytes]]) -> Principal:
        headers = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in metadata or ()}
        bearer = headers.get("authorization", "")
        if bearer:
            scheme, _, token = bearer.partition(" ")
            if scheme.lower() != "bearer" or not token or self.jwt is None:
                raise AuthenticationError("unauthenticated: bearer tokens are not accepted here")
            return self.jwt.principal(token.strip())
        key = headers.get("x-api-key", "")
        if key:
            if self.api_keys is None:
                raise AuthenticationError("unauthenticated: API keys are not accepted here")
            return self.api_keys.principal(key)
        raise AuthenticationError("unauthenticated: the call carries no credential "
                                  "(authorization: Bearer <token>, or x-api-key)")


def authenticator_from_settings(settings: Any) -> Authenticator | None:
    """The authenticator the settings configure (API keys file and/or JWT issuer), or None."""
    api_keys = ApiKeys.load(settings.api_keys_file) if settings.api_keys_file else None
    verifier = None
    if settings.jwt_issuer:
        if settings.jwt_jwks_file:
            verifier = JwtVerifier.from_file(settings.jwt_jwks_file, issuer=settings.jwt_issuer,
                                             audience=settings.jwt_audience)
        elif settings.jwt_jwks_url:
            verifier = JwtVerifier(issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                                   jwks_url=settings.jwt_jwks_url)
        else:
            raise SecurityError("configuration: OSMOSE_JWT_ISSUER needs OSMOSE_JWT_JWKS_FILE or OSMOSE_JWT_JWKS_URL")
    if api_keys is None and verifier is None:
        return None
    return Authenticator(api_keys=api_keys, jwt=verifier)
