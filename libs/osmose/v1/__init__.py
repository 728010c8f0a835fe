"""Generated protobuf code for ``protos/osmose/v1`` (``make protos``).

Import messages as ``from osmose.v1 import document_pb2 as pb``.
"""

try:  # the generated modules are build output, not committed
    from osmose.v1 import document_pb2 as _document_pb2  # noqa: F401
except ImportError as exc:  # pragma: no cover - only without `make protos`
    raise ImportError(
        "osmose.v1 protobuf code is not generated: run `make protos` (or `make setup`)"
    ) from exc
