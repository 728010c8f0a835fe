"""Deterministic answers built from the prompt, so downstream stages get real-looking data.

The same request always gets the same answer. What is answered depends on the
request's ``response_format``:

* schema named ``osmose_concepts`` — concepts of each ``SEGMENT <id>`` block of the
  prompt, read from its ``[slide N] text`` lines: acronym definitions
  ("Zero Trust Network Access (ZTNA)"), capitalised names, acronyms, and word pairs
  repeated in the segment; typed by simple rules; with the slides they occur on;
* schema named ``osmose_relations`` — for each segment, pairs of its ``CONCEPT cN: name``
  mentioned on the same line, labelled from the words between them ("uses", "part of", ...);
* any other schema — a minimal instance of it, strings taken from the prompt;
* no schema, with an image — a description of the image (size, ink coverage, a
  fingerprint) and of the slide text given with it;
* no schema, no image — the first words of the prompt, restated.

The prompt layout (``SEGMENT``, ``[slide N]``, ``CONCEPT``) is the one Osmose's
extractor and miner write; a prompt without it is one segment of unnumbered lines.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["answer_for", "count_tokens", "describe_image", "prompt_parts"]

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_SEGMENT = re.compile(r"^SEGMENT\s+(\S+)", re.MULTILINE)
_SLIDE_LINE = re.compile(r"^\[slide (\d+)\]\s?(.*)$")
_CONCEPT_LINE = re.compile(r"^CONCEPT\s+(\w+):\s*(.+)$")
_DEFINITION = re.compile(r"((?:[A-Z][\w'-]* +){1,6}[A-Z][\w'-]*) *\(([A-Z][A-Za-z0-9&]{1,9})\)")
_ACRONYM = re.compile(r"\b[A-Z][A-Z0-9&]{1,7}s?\b")
_CAPITALISED = re.compile(r"\b[A-Z][\w'-]*[a-z0-9][\w'-]*(?: +(?:of|for|and|de|du|des|la|le|der|die|das|und)? *"
                          r"[A-Z][\w'-]*){1,3}\b")
_NAME_WORD = re.compile(r"(?<=\w )[A-Z][a-z][\w-]{2,}\b")  # a capitalised word inside a line
_WORD = re.compile(r"[^\W\d_][\w'-]+", re.UNICODE)
_STOP = frozenset("""a an the and or of for to in on at by with from as is are was were be been this that these
those it its our your their we you they not no but if then than so such can will would should may might must
all any each more most other some into over under about after before between through during per via also only
how what when where which who why use used using les des une pour dans sur avec par est sont der die das und
mit für von den dem ein eine ist sind el la los las del para con por que y en de le du et à""".split())  # noqa: SIM905
_NOT_ACRONYMS = frozenset({"I", "A", "OK", "AM", "PM", "TODO", "FAQ", "II", "III", "IV", "VS"})
_ROLE = re.compile(r"\b(manager|owner|engineer|developer|officer|architect|analyst|admin\w*|team|user|attacker|"
                   r"lead|director|auditor|customer)s?$", re.IGNORECASE)
_STANDARD = re.compile(r"\b(iso|iec|rfc|nist|gdpr|hipaa|pci|soc ?2|owasp|http|tls|oauth|saml|w3c|ieee)\b|\d{3,}",
                       re.IGNORECASE)
_TOOL = re.compile(r"\b(python|java|sql|kubernetes|docker|spark|kafka|excel|azure|aws|git\w*|linux|windows|"
                   r"postgres\w*|mysql|react|api|sdk|server|studio|\.net|c#|html|css|javascript)\b", re.IGNORECASE)
_PRACTICE = re.compile(r"\w+(ing|ment|tion|sion|ance|ence|ure)$", re.IGNORECASE)
_VERB_LABELS = (
    (re.compile(r"\b(uses?|using|relies on|built on|runs on|with)\b", re.I), "USES"),
    (re.compile(r"\b(is an?|are|is the|kind of|type of)\b", re.I), "IS_A"),
    (re.compile(r"\b(part of|includes?|contains?|consists? of|within|in)\b", re.I), "PART_OF"),
    (re.compile(r"\b(implements?|implementation|realises?|applies)\b", re.I), "IMPLEMENTS"),
    (re.compile(r"\b(requires?|depends? on|needs?)\b", re.I), "DEPENDS_ON"),
    (re.compile(r"\b(complies|compliance|regulates?|mandates?|governs?)\b", re.I), "REGULATES"),
    (re.compile(r"\b(produces?|generates?|creates?|outputs?)\b", re.I), "PRODUCES"),
    (re.compile(r"\b(vs\.?|versus|instead of|unlike|replaces?)\b", re.I), "CONTRASTS_WITH"),
)
MAX_CONCEPTS = 10
MAX_RELATIONS = 12


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


@dataclass
class _Segment:
    id: str
    lines: list[tuple[int, str]] = field(default_factory=list)  # (slide, text)
    concepts: dict[str, str] = field(default_factory=dict)  # relation prompts: id -> name


def prompt_parts(messages: Sequence[Mapping[str, Any]]) -> tuple[str, str, list[str]]:
    """(system text, user text, image data URLs) of a chat request."""
    system, user, images = [], [], []
    for message in messages:
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
        for part in parts:
            if part.get("type") == "text":
                (system if message.get("role") == "system" else user).append(str(part.get("text", "")))
            elif part.get("type") == "image_url":
                images.append(str((part.get("image_url") or {}).get("url", "")))
    return "\n".join(system), "\n".join(user), images


def _segments(user: str) -> list[_Segment]:
    segments: list[_Segment] = []
    current: _Segment | None = None
    for raw in user.splitlines():
        line = raw.strip()
        head = _SEGMENT.match(line)
        if head:
            current = _Segment(head.group(1))
            segments.append(current)
            continue
        if current is None:
            current = _Segment("1")
            segments.append(current)
        concept = _CONCEPT_LINE.match(line)
        if concept:
            current.concepts[concept.group(1)] = concept.group(2).strip()
            continue
        slide = _SLIDE_LINE.match(line)
        if slide:
            current.lines.append((int(slide.group(1)), slide.group(2)))
        elif line:
            current.lines.append((0, line))
    return segments


def _concept_type(name: str, types: Sequence[str], *, acronym: bool) -> str:
    def pick(wanted: str) -> str | None:
        return wanted if wanted in types else None

    if _STANDARD.search(name):
        return pick("STANDARD") or types[0]
    if _TOOL.search(name):
        return pick("TOOL") or types[0]
    if _ROLE.search(name):
        return pick("ROLE") or types[0]
    last = name.split()[-1] if name.split() else name
    if not acronym and _PRACTICE.match(last) and last[:1].islower():
        return pick("PRACTICE") or types[0]
    if acronym or name[:1].isupper():
        return pick("ENTITY") or types[0]
    return pick("TOPIC") or types[-1]


def _occurs(name: str, text: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(name) + r"(?!\w)", text, re.IGNORECASE) is not None


def _segment_concepts(segment: _Segment, types: Sequence[str]) -> list[dict[str, Any]]:
    text = "\n".join(t for _, t in segment.lines)
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    aliases: dict[str, set[str]] = {}
    acronyms: set[str] = set()

    def add(name: str, weight: int = 1) -> str:
        words = name.split()
        while len(words) > 1 and words[0].lower() in _STOP:  # "The Identity Provider"
            words = words[1:]
        name = " ".join(words).strip(" .,:;-")
        if len(name) < 2 or name.lower() in _STOP:
            return ""
        counts[name] += weight
        first.setdefault(name, len(first))
        return name

    for _, line in segment.lines:
        for long, short in _DEFINITION.findall(line):
            name = add(long, 3)
            if name:
                aliases.setdefault(name, set()).add(short)
    defined = {a for values in aliases.values() for a in values}
    for _, line in segment.lines:
        for acronym in _ACRONYM.findall(line):
            if acronym not in _NOT_ACRONYMS and acronym not in defined:
                acronyms.add(acronym)
                add(acronym)
        for name in _CAPITALISED.findall(line):
            add(name)
        for word in _NAME_WORD.findall(line):
            if word.lower() not in _STOP and \
                    sum(1 for _, other in segment.lines if word in other) >= 2:
                add(word)  # a capitalised word used on two lines is a name ("Kubernetes"), once is noise
    words = [w.lower() for w in _WORD.findall(text)]
    pairs = Counter(f"{a} {b}" for a, b in zip(words, words[1:], strict=False) if a not in _STOP and b not in _STOP)
    for pair, n in pairs.items():
        if n >= 3 and all(len(w) > 3 for w in pair.split()):
            add(pair, n)
    # One spelling per name (the capitalised one), and no piece of a longer name that is as frequent.
    by_fold: dict[str, str] = {}
    for name in sorted(counts, key=lambda n: (n.islower(), first[n])):
        kept = by_fold.setdefault(name.casefold(), name)
        if kept != name:
            counts[kept] += counts.pop(name)
    names = list(counts)
    for name in names:
        if any(name != other and _occurs(name, other) and counts[other] >= counts[name] for other in names):
            del counts[name]
    ranked = sorted(counts, key=lambda n: (-counts[n], -len(n), first[n]))[:MAX_CONCEPTS]
    out = []
    for name in ranked:
        forms = [name, *aliases.get(name, ())]
        slides = sorted({s for s, line in segment.lines if s and any(_occurs(f, line) for f in forms)})
        out.append({"name": name, "type": _concept_type(name, types, acronym=name in acronyms),
                    "aliases": sorted(aliases.get(name, ())), "slides": slides})
    return out


def _relation_label(between: str) -> str:
    for pattern, label in _VERB_LABELS:
        if pattern.search(between):
            return label
    return "RELATED_TO"


def _segment_relations(segment: _Segment, labels: Sequence[str]) -> list[dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for slide, line in segment.lines:
        spots = []
        for cid, name in segment.concepts.items():
            match = re.search(r"(?<!\w)" + re.escape(name) + r"(?!\w)", line, re.IGNORECASE)
            if match:
                spots.append((match.start(), match.end(), cid))
        spots.sort()
        for (_s1, e1, a), (s2, _e2, b) in zip(spots, spots[1:], strict=False):
            if a == b or s2 < e1:
                continue
            label = _relation_label(line[e1:s2])
            if label not in labels:
                label = labels[-1]
            entry = found.setdefault((a, b), {"source": a, "target": b, "label": label, "slides": []})
            if slide and slide not in entry["slides"]:
                entry["slides"].append(slide)
    return list(found.values())[:MAX_RELATIONS]


def _enum_at(schema: Mapping[str, Any], *path: str) -> list[str]:
    node: Any = schema
    for key in path:
        if not isinstance(node, Mapping):
            return []
        node = node.get("items") if key == "[]" else (node.get("properties") or {}).get(key)
    return list(node.get("enum", [])) if isinstance(node, Mapping) else []


def _instance(schema: Mapping[str, Any], words: list[str], depth: int = 0) -> Any:
    """A minimal value that satisfies `schema` (the subset Osmose uses)."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _instance(props.get(name, {}), words, depth + 1) for name in schema.get("required", props)}
    if kind == "array":
        return [_instance(schema.get("items", {}), words, depth + 1) for _ in range(schema.get("minItems", 0))]
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    return " ".join(words[depth:depth + 3]) or "text"


def describe_image(data_url: str) -> str:
    """Size, ink coverage and a fingerprint of a PNG given as a data URL (other types: size in bytes)."""
    try:
        payload = base64.b64decode(data_url.split(",", 1)[1])
    except (IndexError, ValueError):
        return "an unreadable image"
    digest = hashlib.sha256(payload).hexdigest()[:8]
    if payload[:8] != b"\x89PNG\r\n\x1a\n" or len(payload) < 33:
        return f"an image of {len(payload)} bytes (fingerprint {digest})"
    width, height, _depth, color = struct.unpack(">IIBB", payload[16:26])
    idat = b""
    pos = 8
    while pos + 8 <= len(payload):
        length, kind = struct.unpack(">I4s", payload[pos:pos + 8])
        if kind == b"IDAT":
            idat += payload[pos + 8:pos + 8 + length]
        pos += 12 + length
    try:
        raw = zlib.decompress(idat)
    except zlib.error:
        raw = b""
    sample = raw[:: max(1, len(raw) // 50_000)] if raw else b""
    ink = sum(1 for b in sample if b < 200) / len(sample) if sample else 0.0
    density = "mostly empty" if ink < 0.05 else "sparse" if ink < 0.2 else "dense" if ink < 0.5 else "very dense"
    mode = {0: "greyscale", 2: "colour", 3: "palette", 4: "greyscale", 6: "colour"}.get(color, "colour")
    return f"a {width}x{height} {mode} image, {density} ({ink:.0%} ink, fingerprint {digest})"


def _vision_text(user: str, images: list[str]) -> str:
    described = "; ".join(describe_image(url) for url in images)
    lines = [line.strip() for line in user.splitlines() if line.strip()]
    title = next((line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("title:")), "")
    labels = ("text on the page:", "picture descriptions in the file:")
    text_lines = [line.split(":", 1)[1] if line.lower().startswith(labels) else line for line in lines
                  if not line.lower().startswith(("title:", "describe", "answer"))]
    words = [w for w in _WORD.findall(" ".join(text_lines)) if w.lower() not in _STOP]
    keywords = list(dict.fromkeys(words))[:12]
    parts = [f"The slide shows {described}."]
    if title:
        parts.append(f"It is titled \"{title}\".")
    if keywords:
        parts.append("The visual elements relate to " + ", ".join(keywords) + ".")
    return " ".join(parts)


def answer_for(request: Mapping[str, Any]) -> str:
    """The answer text for a chat completion request."""
    import json

    _system, user, images = prompt_parts(request.get("messages") or [])
    fmt = request.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        schema = spec.get("schema") or {}
        name = spec.get("name", "")
        segments = _segments(user)
        if name == "osmose_concepts":
            types = _enum_at(schema, "segments", "[]", "concepts", "[]", "type") or ["TOPIC"]
            value: Any = {"segments": [{"id": s.id, "concepts": _segment_concepts(s, types)} for s in segments]}
        elif name == "osmose_relations":
            labels = _enum_at(schema, "segments", "[]", "relations", "[]", "label") or ["RELATED_TO"]
            value = {"segments": [{"id": s.id, "relations": _segment_relations(s, labels)} for s in segments]}
        else:
            value = _instance(schema, _WORD.findall(user)[:20])
        return json.dumps(value, ensure_ascii=False)
    if fmt.get("type") == "json_object":
        return json.dumps({"text": " ".join(_WORD.findall(user)[:30])})
    if images:
        return _vision_text(user, images)
    words = _WORD.findall(user)
    return "Summary: " + " ".join(words[:40]) + ("…" if len(words) > 40 else "")
