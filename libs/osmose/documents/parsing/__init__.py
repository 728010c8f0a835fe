"""Document parsing: PowerPoint decks (PPTX, PPTM, PPSX, legacy PPT) and PDFs
into :class:`osmose.v1.document_pb2.Document` messages.

Public API::

    parse_document(path, *, settings, file_name=None) -> Document
    parse_document_bytes(data, *, settings, file_name) -> Document
    detect_format(data) -> SourceFormat          (raises for non-presentations)
    ConverterMissingError                        (LibreOffice needed but absent)

Modules, one topic each: ``sniff`` (real format from bytes), ``limits``
(bounds and warnings), ``ooxml_package``/``ooxml_salvage`` (opening and
repairing OOXML zips), ``pptx_parser``/``pptx_shapes``/``pptx_charts``/
``pptx_pictures`` (decks), ``pdf_parser``/``pdf_page``/``pdf_tables`` (PDFs),
``worker`` (``ParserPool``: parsing in bounded worker processes), ``geometry`` (boxes, reading order),
``images`` (image sizes from headers), ``ooxml_text`` (DrawingML text).
Legacy .ppt files are converted by :mod:`osmose.documents.libreoffice` first;
errors and reason codes are listed in :mod:`osmose.documents.exceptions`.
"""

from osmose.documents.exceptions import ConverterMissingError
from osmose.documents.parsing.document_parser import parse_document, parse_document_bytes
from osmose.documents.parsing.sniff import detect_format

__all__ = ["ConverterMissingError", "detect_format", "parse_document", "parse_document_bytes"]
