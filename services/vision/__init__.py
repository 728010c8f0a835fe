"""Vision: text for the slides triage flagged as visual.

Image-only pages are rendered (by :mod:`osmose.documents.rendering`: PyMuPDF,
decks through LibreOffice first) and read by Tesseract; other flagged slides, and
image-only pages when OCR cannot run, get a structured description of their parsed
content. ``slide.vision`` records which path was taken, with what, and what was missing.
"""

from osmose.services.vision.describe import describe_slide
from osmose.services.vision.ocr import OcrResult, Tesseract, clean_ocr_text, tesseract_languages
from osmose.services.vision.stage import SlideDescriber, VisionConfig, VisionStage

__all__ = [
    "VisionConfig",
    "OcrResult",
    "SlideDescriber",
    "Tesseract",
    "VisionStage",
    "clean_ocr_text",
    "describe_slide",
    "tesseract_languages",
]
