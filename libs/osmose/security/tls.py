"""TLS for gRPC listeners and channels, from PEM files (the chart mounts them from Secrets).

Public listener: server certificate; clients verify it against the CA they are given.
Internal listener (the stages' `Process` RPCs): mutual TLS, a client certificate signed by the
deployment's CA is required. Plaintext is for loopback only, behind an explicit `--insecure`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import grpc

from osmose.errors import ConfigurationError

__all__ = ["TlsFiles", "channel_credentials", "is_loopback", "server_credentials"]


@dataclass(frozen=True, kw_only=True)
class TlsFiles:
    cert: Path | None = None     # this process's certificate (server, or client for mTLS)
    key: Path | None = None
    ca: Path | None = None       # the CA that signs the peers' certificates

    @property
    def configured(self) -> bool:
        return self.cert is not None and self.key is not None


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the {what} {path}: {exc.strerror}") from None


def server_credentials(files: TlsFiles, *, require_client_cert: bool) -> grpc.ServerCredentials:
    if not files.configured:
        raise ConfigurationError("TLS needs a certificate and a key (OSMOSE_TLS_CERT, OSMOSE_TLS_KEY)")
    ca = _read(files.ca, "CA certificate")
    if require_client_cert and ca is None:
        raise ConfigurationError("mutual TLS needs the CA that signs client certificates (OSMOSE_TLS_CA)")
    key, cert = _read(files.key, "TLS key"), _read(files.cert, "TLS certificate")
    assert key is not None and cert is not None   # files.configured
    return grpc.ssl_server_credentials([(key, cert)],
                                       root_certificates=ca, require_client_auth=require_client_cert)


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(root_certificates=_read(files.ca, "CA certificate"),
                                        private_key=_read(files.key, "TLS key"),
                                        certificate_chain=_read(files.cert, "TLS certificate"))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
