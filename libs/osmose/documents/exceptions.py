"""Errors of the documents package, placed in the platform's one error tree.

Parsing reports rejected input with the :class:`osmose.errors.DocumentError`
subclasses and a stable ``reason`` code; rendering errors never stop a document
(the page is described from its parsed content instead, by the vision stage)::

    OsmoseError
    ├── ConfigurationError
    │   └── ConverterMissingError   LibreOffice (soffice) is needed for legacy .ppt and is absent
    └── RenderingError              a page could not be rendered (the page degrades)
        ├── ConversionError             LibreOffice could not turn the deck into a PDF
        └── RenderError                 a page could not be rendered to an image

Reason codes raised by parsing (``DocumentError.reason``):

=========================  ==================================================
empty                      0 bytes, or only whitespace/NUL bytes
no-slides / no-pages       a well-formed file with nothing in it
truncated                  the file was cut short (zip without central directory, PDF without xref)
corrupt                    the container or its XML/PDF objects cannot be read
unreadable                 a parser failed unexpectedly on this input (logged with a traceback)
encrypted                  password-protected (.ppt, OOXML EncryptedPackage, PDF)
not-a-presentation         HTML, Word, Excel, images, unknown bytes
unsupported-legacy-format  PowerPoint 4.0 and other pre-97 binaries
too-large                  file bigger than ``limits.max_file_bytes``
too-many-pages             more slides/pages than ``limits.max_pages``
uncompressed-too-large     zip members expand beyond the memory bound (zip bomb)
conversion-failed          LibreOffice could not convert a legacy .ppt
conversion-timeout         LibreOffice did not finish within ``limits.convert_timeout_s``
parse-timeout              a parse worker missed ``limits.parse_timeout_s`` and was killed
parser-crashed             a parse worker died (memory ceiling, crash in a native library)
=========================  ==================================================
"""

from __future__ import annotations

from osmose.errors import ConfigurationError, OsmoseError

__all__ = ["ConversionError", "ConverterMissingError", "RenderError", "RenderingError"]


class ConverterMissingError(ConfigurationError):
    """A system tool the parser needs (LibreOffice's ``soffice``) is not installed."""


class RenderingError(OsmoseError):
    """A page could not be rendered (the page degrades, the document goes on)."""


class ConversionError(RenderingError):
    """LibreOffice failed, timed out or produced no PDF."""


class RenderError(RenderingError):
    """A page could not be rendered (timeout, crash, decompression bomb, bad page)."""
