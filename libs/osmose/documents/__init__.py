"""Documents: reading decks and PDFs (parsing) and drawing their pages (rendering).

Both halves run untrusted files through native code (MuPDF, LibreOffice), so both
share the same machinery, one module per topic:

- ``parsing/``: PPTX/PPT/PDF bytes to a :class:`osmose.v1.document_pb2.Document`
  (``parse_document``), in-process or in bounded worker processes (``ParserPool``);
- ``rendering/``: page images of a document's source file (``DocumentRenderer``),
  rendered in a bounded worker process;
- ``worker_process``: the one bounded-worker helper both use (deadline, memory
  ceiling, kill on timeout, environment without credentials, reuse);
- ``libreoffice``: the one way LibreOffice is run (legacy .ppt to PPTX, decks to PDF);
- ``system_tools``: the one lookup of system tools (``soffice``, ``tesseract``) and
  running them with a deadline;
- ``pymupdf_loader``: PyMuPDF without its slow optional add-ons;
- ``exceptions``: the errors of this package.

Nothing is imported here, so importing one half never loads the other (or PyMuPDF).
"""

__all__: list[str] = []
