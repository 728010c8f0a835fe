"""Hosts run the stages: in one process (this package), as services, or in batch."""
