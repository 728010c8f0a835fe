"""A :class:`~osmose.services.vision.stage.SlideDescriber` backed by a vision LLM.

One call per flagged page: the rendered page as an image part, the text parsed
from the file as context, a request for what the image shows beyond that text.
The call goes through the document's model session: router (task
``vision_summary``, no model named here), content-addressed cache (the image by
its hash), retries, breaker. When the breaker is open :meth:`available` says so
before the page is rendered for nothing, and the stage takes OCR or the
structured description instead (marked degraded).
"""

from __future__ import annotations

from osmose.models import ChatRequest, ImageInput, ModelSession
from osmose.text.slide_text import body_text
from osmose.v1 import document_pb2 as pb

__all__ = ["TASK", "ModelDescriber", "vision_request"]

TASK = "vision_summary"
MAX_CONTEXT_CHARS = 1500
# Static, identical for every page: sent first so the server's prefix cache reuses it.
SYSTEM = (
    "You describe presentation slides and document pages for a search index. You get the rendered page "
    "as an image and the text parsed from the file. Say what the image shows that the parsed text does "
    "not: diagrams (boxes, arrows, what connects to what), charts (kind, trend, notable values), photos, "
    "screenshots, and text that is visible only inside pictures. Write 2 to 6 plain sentences in the "
    "language of the page. No preamble, no lists, no markdown."
)


def vision_request(slide: pb.Slide, png: bytes, *, unit: str = "Slide") -> ChatRequest:
    """The request for one page. The page number stays out of it: the same page moved
    elsewhere in a new version of the deck is the same request (a cache hit)."""
    text = body_text(slide).strip()
    if len(text) > MAX_CONTEXT_CHARS:
        text = text[: MAX_CONTEXT_CHARS - 1].rstrip() + "…"
    alt = "; ".join(p.alt_text.strip() for p in slide.pictures if p.alt_text.strip())
    lines = [f"Title: {slide.title.strip()}" if slide.title.strip() else f"Title: (untitled {unit.lower()})"]
    lines.append("Text on the page:\n" + (text or "(none)"))
    if alt:
        lines.append(f"Picture descriptions in the file: {alt}")
    lines.append(f"Describe the image of this {unit.lower()}.")
    return ChatRequest(system=SYSTEM, user="\n".join(lines), images=(ImageInput.from_bytes(png),))


class ModelDescriber:
    """Vision summaries through a model session (one per document)."""

    def __init__(self, session: ModelSession, *, unit: str = "Slide") -> None:
        self.session = session
        self.unit = unit

    def available(self) -> bool:
        """False when no endpoint of the task's chain would take a call now (breaker open)."""
        return self.session.available(TASK)

    async def describe(self, slide: pb.Slide, png: bytes) -> str:
        answer = await self.session.chat(TASK, vision_request(slide, png, unit=self.unit))
        return answer.text
