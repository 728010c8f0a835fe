"""Who is calling: the tenant, plan and roles a verified credential maps to."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

from osmose.security.entitlements import PLANS, Plan
from osmose.security.exceptions import AuthenticationError, PermissionDeniedError

__all__ = ["ADMIN", "LOCAL_PRINCIPAL", "Principal", "current_principal", "using_principal"]

#: the role that may act on any tenant (audited)
ADMIN = "admin"


@dataclass(frozen=True, kw_only=True)
class Principal:
    subject: str                       # who: the token's `sub`, or the API key's name
    tenant: str                        # whose data it may touch
    plan: Plan
    roles: frozenset[str] = field(default_factory=frozenset)
    method: str = "none"               # jwt | api-key | insecure-local

    @property
    def admin(self) -> bool:
        return ADMIN in self.roles

    def tenant_for(self, requested: str | None) -> str:
        """The tenant a request acts on: the caller's own when it names none or its own;
        another only for an admin; anything else is refused, naming the tenant asked for."""
        if not requested or requested == self.tenant:
            return self.tenant
        if self.admin:
            return requested
        raise PermissionDeniedError(f"permission-denied: {self.subject} may not act on tenant {requested!r}")

    def require_admin(self, action: str) -> None:
        if not self.admin:
            raise PermissionDeniedError(f"permission-denied: {action} needs the {ADMIN} role")


#: the caller of a plaintext listener on loopback (`--insecure`, the embedded default and tests):
#: trusted as the tenant each request names, which is exactly what the CLI on a laptop does
LOCAL_PRINCIPAL = Principal(subject="local", tenant="", plan=PLANS["enterprise"], roles=frozenset({ADMIN}),
                            method="insecure-local")

_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("osmose_principal", default=None)


def current_principal() -> Principal:
    """The principal of the RPC being served (set by :class:`osmose.security.interceptor.AuthInterceptor`)."""
    principal = _current.get()
    if principal is None:
        raise AuthenticationError("unauthenticated: no credential was verified for this call")
    return principal


def using_principal(principal: Principal) -> contextvars.Token[Principal | None]:
    return _current.set(principal)
