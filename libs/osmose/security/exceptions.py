"""Errors of authentication and authorisation, mapped to gRPC status codes by the hosts::

    OsmoseError
    └── SecurityError
        ├── AuthenticationError     no credential, or one that does not verify: UNAUTHENTICATED
        └── PermissionDeniedError   a valid caller asking for what it may not: PERMISSION_DENIED
"""

from __future__ import annotations

from osmose.errors import OsmoseError

__all__ = ["AuthenticationError", "PermissionDeniedError", "SecurityError"]


class SecurityError(OsmoseError):
    """Root of the security errors; the message starts with a stable reason code."""


class AuthenticationError(SecurityError):
    """The call carries no credential, or one that is expired, forged or unknown."""


class PermissionDeniedError(SecurityError):
    """The caller is known but may not do this (another tenant's data, a tier its plan lacks, an admin action)."""
