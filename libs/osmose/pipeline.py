"""The pipeline, declared once: what each stage is and which tiers run it.

Everything that needs to know a stage reads it here: both hosts (in-process and
services) build stages and walk a tier's plan from :data:`PIPELINE`, the Kafka
topics and consumer groups are derived from it (:mod:`osmose.bus.topics`), the
CLI's stage choices and ports come from it, and `osmose describe --json` prints it
for the Helm chart and its tests. Adding a stage means adding one :class:`Stage`
here plus its own package (``factory``); no host names a stage.

A stage's ``role`` says what a host does with it beyond running it:

``front-door``
    the first stage; its process also serves the ingestion API (Submit, GetJob,
    WatchJob, Cancel) and it decides the document's tier, so it runs for every tier.
``writer``
    the only writer of the stores; its process opens them at start, runs one
    document at a time through it, and serves the query side (Search, Stats).
``worker``
    any other stage: consume, process, forward.

Preview (searchable in seconds, enriched in the background): a document whose plan asks for
a preview (``plan.preview``, decided by the front door) and gets a richer tier than
:data:`PREVIEW_TIER` runs twice in one job. The *preview pass* is :data:`PREVIEW_TIER`'s plan
(``plan.tier`` is FAST, ``plan.enrich_tier`` the tier decided); once the writer has persisted
it, the document is searchable and the *enrichment pass* starts: ``plan.tier`` becomes
``enrich_tier`` and the document goes on at :meth:`Pipeline.enrichment_start` (the decided
tier's plan after the front door, whose parse and plan it reuses). :func:`begin_enrichment`
is that step, shared by both hosts; the writer replaces the preview's rows in place.

``resources`` name what the host hands the stage's constructor as keyword arguments
(see :class:`osmose.hosts.wiring.Resources`); the stage's own settings come as a
small config object built by the stage class (``Config.from_settings``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb

__all__ = [
    "METRICS_PORT_OFFSET",
    "PIPELINE",
    "RESOURCES",
    "ROLES",
    "STAGES",
    "PREVIEW_TIER",
    "TIER_NAMES",
    "Pipeline",
    "Resource",
    "Role",
    "Stage",
    "begin_enrichment",
    "tier_from_name",
    "tier_name",
]

Role = Literal["front-door", "worker", "writer"]
Resource = Literal["graph", "vectors", "embeddings", "models", "parser"]
ROLES: tuple[Role, ...] = ("front-door", "worker", "writer")
RESOURCES: tuple[Resource, ...] = ("graph", "vectors", "embeddings", "models", "parser")

TIER_NAMES: dict[pb.Tier, str] = {pb.TIER_FAST: "fast", pb.TIER_STANDARD: "standard", pb.TIER_DEEP: "deep"}
ALL_TIERS = frozenset(TIER_NAMES)
#: a stage's /metrics port, unless declared, is its gRPC port plus this
METRICS_PORT_OFFSET = 1000
RICH_TIERS = frozenset({pb.TIER_STANDARD, pb.TIER_DEEP})
#: the tier of a preview's first pass (searchable as soon as its chunks are embedded)
PREVIEW_TIER = pb.TIER_FAST


@dataclass(frozen=True, kw_only=True)
class Stage:
    """One stage of the pipeline and everything a host, the CLI or the chart needs to know of it."""

    name: str
    #: ``module:Class`` of the stage; the class takes its config object and ``resources`` as keywords
    factory: str
    #: gRPC port of the stage's own process (`osmose serve NAME`)
    port: int
    role: Role = "worker"
    resources: frozenset[Resource] = field(default_factory=frozenset)
    #: tiers that run this stage; a tier that does not name it never sends it a message
    tiers: frozenset[pb.Tier] = ALL_TIERS
    description: str = ""
    #: fully qualified gRPC service with the stage's ``Process`` RPC, or None (reachable over Kafka only)
    grpc_service: str | None = None
    #: HTTP port of the process's Prometheus ``/metrics``; 0 = the gRPC port + :data:`METRICS_PORT_OFFSET`
    metrics_port: int = 0

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or not self.name.islower():
            raise ValueError(f"stage name must be a lower-case identifier, got {self.name!r}")
        if ":" not in self.factory:
            raise ValueError(f"stage {self.name}: factory must be 'module:Class', got {self.factory!r}")
        if self.role not in ROLES:
            raise ValueError(f"stage {self.name}: role must be one of {ROLES}, got {self.role!r}")
        unknown = set(self.resources) - set(RESOURCES)
        if unknown:
            raise ValueError(f"stage {self.name}: unknown resources {sorted(unknown)}; known: {RESOURCES}")
        if not self.tiers or not self.tiers <= ALL_TIERS:
            raise ValueError(f"stage {self.name}: tiers must be a non-empty subset of {sorted(ALL_TIERS)}")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"stage {self.name}: port {self.port} out of range")
        if not self.metrics_port:
            object.__setattr__(self, "metrics_port", self.port + METRICS_PORT_OFFSET)
        if not 1 <= self.metrics_port <= 65535 or self.metrics_port == self.port:
            raise ValueError(f"stage {self.name}: metrics port {self.metrics_port} out of range or equal to the gRPC port")

    @property
    def internal_port(self) -> int:
        """The mutual-TLS listener of the stage's ``Process`` RPC (secure mode)."""
        return self.port + 100

    @property
    def health_port(self) -> int:
        """The plaintext listener with the health service only, for kubelet's gRPC probes (secure mode)."""
        return self.port + 200

    def load(self) -> type[Any]:
        """The stage class named by ``factory`` (imported on first use)."""
        module, _, attr = self.factory.partition(":")
        return getattr(importlib.import_module(module), attr)

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "factory": self.factory, "port": self.port, "internal_port": self.internal_port,
                "health_port": self.health_port, "metrics_port": self.metrics_port, "role": self.role,
                "resources": sorted(self.resources), "tiers": [tier_name(t) for t in sorted(self.tiers)],
                "grpc_service": self.grpc_service, "description": self.description}


class Pipeline:
    """Stages in order, with the front door first and exactly one writer."""

    def __init__(self, stages: Iterable[Stage]) -> None:
        self.stages: tuple[Stage, ...] = tuple(stages)
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique: {names}")
        ports = [p for s in self.stages for p in (s.port, s.internal_port, s.health_port, s.metrics_port)]
        if len(set(ports)) != len(ports):
            raise ValueError(f"stage ports must be unique (port, +100, +200, metrics of each): {sorted(ports)}")
        if not self.stages or self.stages[0].role != "front-door" or self.stages[0].tiers != ALL_TIERS:
            raise ValueError("the first stage must be the front door, run for every tier")
        if [s.role for s in self.stages].count("front-door") != 1:
            raise ValueError("exactly one stage is the front door")
        writers = [s for s in self.stages if s.role == "writer"]
        if len(writers) != 1 or writers[0].tiers != ALL_TIERS:
            raise ValueError("exactly one stage is the writer, run for every tier")
        self._by_name = {s.name: s for s in self.stages}

    def __iter__(self) -> Iterator[Stage]:
        return iter(self.stages)

    def __len__(self) -> int:
        return len(self.stages)

    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def __getitem__(self, name: str) -> Stage:
        try:
            return self._by_name[name]
        except KeyError:
            raise ValueError(f"unknown stage {name!r}; stages are {', '.join(self._by_name)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def front_door(self) -> Stage:
        return self.stages[0]

    @property
    def writer(self) -> Stage:
        return next(s for s in self.stages if s.role == "writer")

    def plan(self, tier: pb.Tier) -> tuple[Stage, ...]:
        """The stages `tier` runs, in order. The front door runs before the tier is known
        (it decides it), so every plan starts with it."""
        return tuple(s for s in self.stages if tier in s.tiers)

    def next_stage(self, stage: str, tier: int) -> Stage | None:
        """The stage after `stage` in `tier`'s plan, or None when the document is done."""
        position = self.names().index(self[stage].name)
        return next((s for s in self.stages[position + 1:] if tier in s.tiers), None)

    def enrichment_start(self, tier: pb.Tier) -> Stage | None:
        """The first stage of a preview's enrichment pass to `tier`: the stage after the front
        door in `tier`'s plan (the front door's parse and plan are reused, not redone)."""
        return self.next_stage(self.front_door.name, tier)

    def position(self, stage: str) -> int:
        """0 for the front door, 1 for the next stage, …"""
        return self.names().index(self[stage].name)

    def describe(self) -> dict[str, Any]:
        """The pipeline as a JSON document (stages, each tier's plan)."""
        return {"stages": [s.as_dict() for s in self.stages],
                "tiers": {tier_name(t): [s.name for s in self.plan(t)] for t in sorted(ALL_TIERS)}}


STAGES: tuple[Stage, ...] = (
    Stage(name="triage", factory="osmose.services.triage:TriageStage", port=50051, metrics_port=51051,
          role="front-door",
          resources=frozenset({"parser"}), grpc_service="osmose.v1.TriageService",
          description="parse, detect language, pick the tier, flag slides for vision, segment"),
    Stage(name="vision", factory="osmose.services.vision:VisionStage", port=50052, metrics_port=51052,
          resources=frozenset({"models"}), tiers=RICH_TIERS, grpc_service="osmose.v1.VisionService",
          description="render/OCR/describe the slides flagged for vision"),
    Stage(name="extractor", factory="osmose.services.extractor:ExtractorStage", port=50053, metrics_port=51053,
          resources=frozenset({"models"}), tiers=RICH_TIERS, grpc_service="osmose.v1.ExtractorService",
          description="concepts per segment"),
    Stage(name="embedder", factory="osmose.services.embedder:EmbedderStage", port=50054, metrics_port=51054,
          resources=frozenset({"embeddings", "models"}), grpc_service="osmose.v1.EmbedderService",
          description="chunk and embed slide text"),
    Stage(name="miner", factory="osmose.services.miner:MinerStage", port=50055, metrics_port=51055,
          resources=frozenset({"embeddings", "models"}), tiers=RICH_TIERS, grpc_service="osmose.v1.MinerService",
          description="canonical concepts; relations in DEEP"),
    Stage(name="persister", factory="osmose.services.persister:PersisterStage", port=50056, metrics_port=51056,
          role="writer",
          resources=frozenset({"graph", "vectors"}), grpc_service="osmose.v1.PersisterService",
          description="write graph and vectors, idempotently"),
)

#: the pipeline every host runs unless given another one (tests declare extra stages)
PIPELINE = Pipeline(STAGES)


def begin_enrichment(item: ppb.WorkItem, pipeline: Pipeline = PIPELINE) -> Stage | None:
    """After the writer persisted a preview pass (``plan.enrich_tier`` set): turn `item` into
    its enrichment pass and return the stage it goes to next; None when `item` is no preview
    pass (the document is done). The preview's chunks are dropped (the enrichment's embedder
    cuts them again and its embeddings of identical chunks come from the cache)."""
    tier = item.plan.enrich_tier
    if tier == pb.TIER_UNSPECIFIED:
        return None
    item.plan.tier = tier
    item.plan.ClearField("enrich_tier")
    del item.chunks[:]
    return pipeline.enrichment_start(tier)


def tier_name(tier: pb.Tier) -> str:
    return TIER_NAMES.get(tier, "unspecified")


def tier_from_name(name: str | None) -> pb.Tier:
    if not name:
        return pb.TIER_UNSPECIFIED
    for value, label in TIER_NAMES.items():
        if label == name.lower():
            return value
    raise ValueError(f"unknown tier {name!r}; choose one of {', '.join(TIER_NAMES.values())}")
