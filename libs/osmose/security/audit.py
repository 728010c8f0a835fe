"""Audit records: who did what to whose data, when — one structured log line each, on the
``osmose.audit`` logger (route it to an append-only sink in production). Never document text."""

from __future__ import annotations

import logging

from osmose.security.principal import Principal

__all__ = ["audit"]

_log = logging.getLogger("osmose.audit")


def audit(action: str, principal: Principal, *, tenant: str, outcome: str = "ok", **fields: object) -> None:
    """Record `action` (submit, search, stats, cancel, delete-document, delete-tenant, …)."""
    _log.info("audit %s by %s on tenant %s: %s", action, principal.subject, tenant, outcome,
              extra={"audit": True, "action": action, "principal": principal.subject, "auth": principal.method,
                     "roles": ",".join(sorted(principal.roles)), "tenant": tenant, "outcome": outcome, **fields})
