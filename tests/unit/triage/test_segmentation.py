from __future__ import annotations

from osmose.services.triage.segmentation import segment_document
from osmose.v1 import document_pb2 as pb


def _doc(slides: list[tuple[str, str, str]]) -> pb.Document:
    doc = pb.Document(doc_id="d" * 32)
    for i, (section, title, body) in enumerate(slides, 1):
        s = doc.slides.add(number=i, title=title, section=section)
        s.blocks.add(text=title, role=pb.BLOCK_ROLE_TITLE)
        if body:
            s.blocks.add(text=body, role=pb.BLOCK_ROLE_BODY)
    return doc


KAFKA = "kafka brokers partitions consumer groups offsets replication topics retention"
GARDEN = "tomatoes basil watering compost seedlings greenhouse soil mulch harvest"


def test_every_slide_in_exactly_one_segment_in_order() -> None:
    doc = _doc([("", f"Slide {i}", KAFKA) for i in range(30)])
    segments = segment_document(doc, max_slides=12)
    numbers = [n for seg in segments for n in seg.slide_numbers]
    assert numbers == list(range(1, 31))
    assert all(len(seg.slide_numbers) <= 12 for seg in segments)
    assert [seg.index for seg in segments] == list(range(len(segments)))


def test_sections_split_and_name_segments() -> None:
    doc = _doc([("Intro", "Kafka", KAFKA), ("Intro", "More Kafka", KAFKA),
                ("Garden", "Tomatoes", GARDEN), ("Garden", "Basil", GARDEN)])
    segments = segment_document(doc)
    assert [list(s.slide_numbers) for s in segments] == [[1, 2], [3, 4]]
    assert [s.title for s in segments] == ["Intro", "Garden"]


def test_topic_change_starts_a_segment_without_sections() -> None:
    doc = _doc([("", "Kafka basics", KAFKA), ("", "Kafka topics", KAFKA), ("", "Kafka offsets", KAFKA),
                ("", "Growing tomatoes", GARDEN), ("", "Compost", GARDEN)])
    segments = segment_document(doc)
    assert [list(s.slide_numbers) for s in segments] == [[1, 2, 3], [4, 5]]
    assert segments[1].title == "Growing tomatoes"


def test_section_header_slide_opens_a_segment() -> None:
    doc = _doc([("", "Kafka basics", KAFKA), ("", "Kafka topics", KAFKA),
                ("", "Part two: operations", ""), ("", "Kafka offsets", KAFKA)])
    segments = segment_document(doc)
    assert [list(s.slide_numbers) for s in segments] == [[1, 2], [3, 4]]


def test_segment_ids_are_content_derived_and_stable() -> None:
    doc = _doc([("", "Kafka", KAFKA)] * 3)
    assert [s.segment_id for s in segment_document(doc)] == [s.segment_id for s in segment_document(doc)]
