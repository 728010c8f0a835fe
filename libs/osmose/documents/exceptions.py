"""Errors specific to the parsing package, placed in the platform's one error tree.

Rejected input is reported with the :class:`osmose.errors.DocumentError`
subclasses and a stable ``reason`` code. The only error defined here is about
the machine, not the document::

    ConfigurationError
    └── ConverterMissingError   LibreOffice (soffice) is needed for legacy .ppt and is absent

Reason codes raised by this package (``DocumentError.reason``):

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
=========================  ==================================================
"""

from __future__ import annotations

from osmose.errors import ConfigurationError

__all__ = ["ConverterMissingError"]


class ConverterMissingError(ConfigurationError):
    """A system tool the parser needs (LibreOffice's ``soffice``) is not installed."""
