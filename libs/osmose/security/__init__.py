"""Security: who is calling (credentials -> principal), what they may do (plans, tenant checks),
transport security (TLS/mTLS), and the audit trail. See the README's security section."""

from __future__ import annotations

from osmose.security.audit import audit
from osmose.security.credentials import ApiKeys, Authenticator, JwtVerifier, generate_api_key, hash_api_key
from osmose.security.entitlements import PLANS, Plan, plan_named
from osmose.security.exceptions import AuthenticationError, PermissionDeniedError, SecurityError
from osmose.security.principal import ADMIN, LOCAL_PRINCIPAL, Principal, current_principal

__all__ = [
    "ADMIN",
    "LOCAL_PRINCIPAL",
    "PLANS",
    "ApiKeys",
    "AuthenticationError",
    "Authenticator",
    "JwtVerifier",
    "PermissionDeniedError",
    "Plan",
    "Principal",
    "SecurityError",
    "audit",
    "current_principal",
    "generate_api_key",
    "hash_api_key",
    "plan_named",
]
