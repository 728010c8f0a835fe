"""The extractor stage: concepts per segment without a language model.

YAKE keyphrases (CJK term heuristics for Chinese, Japanese and Korean),
Schwartz-Hearst acronym definitions, standalone acronyms and capitalised names,
typed by rules over word lists. :class:`ExtractorStage` adapts a work item to
:func:`extract_concepts`, which has no runtime in it.
"""

from osmose.services.extractor.extract import (
    MAX_CONCEPTS_PER_DOCUMENT,
    MAX_CONCEPTS_PER_SEGMENT,
    ExtractorLimits,
    extract_concepts,
)
from osmose.services.extractor.stage import ExtractorConfig, ExtractorStage

__all__ = [
    "ExtractorConfig",
    "MAX_CONCEPTS_PER_DOCUMENT",
    "MAX_CONCEPTS_PER_SEGMENT",
    "ExtractorLimits",
    "ExtractorStage",
    "extract_concepts",
]
