"""Pipeline stages: one sub-package per stage (``osmose.services.<stage>``)."""
