"""Writes the small generated seeds in tests/fuzz/corpus (run once; the files are committed).

    .venv/bin/python -m tests.fuzz.make_seeds
"""

from __future__ import annotations

from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb
from tests.fuzz.hostile import minimal_deck, minimal_pdf
from tests.fuzz.targets import COMMITTED


def main() -> None:
    (COMMITTED / "pptx").mkdir(parents=True, exist_ok=True)
    (COMMITTED / "pdf").mkdir(parents=True, exist_ok=True)
    (COMMITTED / "envelope").mkdir(parents=True, exist_ok=True)
    (COMMITTED / "pptx" / "minimal.pptx").write_bytes(minimal_deck())
    (COMMITTED / "pptx" / "three-slides.pptx").write_bytes(minimal_deck(slides=3, notes="notes\nline two"))
    (COMMITTED / "pdf" / "minimal.pdf").write_bytes(minimal_pdf())
    item = ppb.WorkItem(job_id="job-1", tenant="acme", source_uri="sha256:" + "0" * 64)
    item.document.file_name = "deck.pptx"
    item.document.slides.add(number=1, title="t").blocks.add(text="hello")
    inline = epb.Envelope(job_id="job-1", doc_id="d" * 32, tenant="acme", stage="triage", file="deck.pptx",
                          payload=item.SerializeToString())
    ref = epb.Envelope(job_id="job-2", tenant="acme", stage="parser", blob_ref="sha256:" + "1" * 64)
    (COMMITTED / "envelope" / "inline.bin").write_bytes(inline.SerializeToString())
    (COMMITTED / "envelope" / "blob-ref.bin").write_bytes(ref.SerializeToString())


if __name__ == "__main__":
    main()
