"""Triage: the front door's logic. Parses the file, detects languages, picks the
tier, flags the slides where vision is worth its cost and cuts the deck into
topical segments."""

from osmose.services.triage.stage import TriageConfig, TriageStage

__all__ = ["TriageConfig", "TriageStage"]
