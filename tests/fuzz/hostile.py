"""Hostile documents, built in memory: the cases a review found uncovered (issue 13, item 8).

Each builder returns file bytes small enough to commit or build in milliseconds, but
written to hurt a naive parser: entity expansion, deep XML nesting, huge shape counts,
invalid UTF-8, giant notes, PDFs with very many objects or a huge content stream, zip
bombs (lying or honest about their sizes). The PPTX builders start from a minimal deck
written by python-pptx and replace or add zip members.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable

from pptx import Presentation
from pptx.util import Inches

SLIDE = "ppt/slides/slide1.xml"
NOTES = "ppt/notesSlides/notesSlide1.xml"
_P = "http://schemas.openxmlformats.org/presentationml/2006/main"
_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def minimal_deck(*, notes: str = "speaker notes", slides: int = 1) -> bytes:
    """A small valid deck: title + body text and notes on each slide."""
    prs = Presentation()
    for number in range(1, slides + 1):
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = f"Slide {number} title"
        slide.placeholders[1].text = "zero trust network access\nsecond paragraph"
        box = slide.shapes.add_textbox(Inches(1), Inches(5), Inches(4), Inches(1))
        box.text_frame.text = "a caption"
        slide.notes_slide.notes_text_frame.text = notes
    out = io.BytesIO()
    prs.save(out)
    return out.getvalue()


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def rezip(entries: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, blob in entries.items():
            zf.writestr(name, blob)
    return out.getvalue()


def with_member(name: str, blob: bytes, *, base: bytes | None = None) -> bytes:
    entries = members(base or minimal_deck())
    entries[name] = blob
    return rezip(entries)


def _slide_xml(shapes: str, *, prolog: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>{prolog}'
        f'<p:sld xmlns:a="{_A}" xmlns:r="{_R}" xmlns:p="{_P}"><p:cSld><p:spTree>'
        '<p:nvGrpSpPr><p:cNvPr id="1" name=""/><p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr><p:grpSpPr/>'
        f"{shapes}</p:spTree></p:cSld></p:sld>"
    ).encode()


def _text_shape(shape_id: int, text: str, *, x: int = 0, y: int = 0) -> str:
    return (
        f'<p:sp><p:nvSpPr><p:cNvPr id="{shape_id}" name="t{shape_id}"/><p:cNvSpPr txBox="1"/><p:nvPr/></p:nvSpPr>'
        f'<p:spPr><a:xfrm><a:off x="{x}" y="{y}"/><a:ext cx="914400" cy="914400"/></a:xfrm></p:spPr>'
        f"<p:txBody><a:bodyPr/><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:txBody></p:sp>"
    )


# -- PPTX -----------------------------------------------------------------------------------------------

def billion_laughs_pptx(levels: int = 10) -> bytes:
    """The classic entity expansion (10 levels of 10: 10^10 'lol') in the slide part."""
    decls = ['<!ENTITY lol0 "lol">']
    decls += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels)]
    prolog = f"<!DOCTYPE p:sld [{''.join(decls)}]>"
    return with_member(SLIDE, _slide_xml(_text_shape(2, f"&lol{levels - 1};"), prolog=prolog))


def external_entity_pptx() -> bytes:
    """An external entity (XXE): must not be fetched nor read from disk."""
    prolog = '<!DOCTYPE p:sld [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    return with_member(SLIDE, _slide_xml(_text_shape(2, "&xxe;"), prolog=prolog))


def entity_in_content_types_pptx() -> bytes:
    """Entity expansion in [Content_Types].xml, which Osmose parses itself before python-pptx."""
    entries = members(minimal_deck())
    decls = '<!ENTITY a0 "aaaaaaaaaa">' + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 9))
    ct = entries["[Content_Types].xml"].decode()
    ct = ct.replace("?>", f"?><!DOCTYPE Types [{decls}]>", 1).replace("<Default ", '<Default Foo="&a8;" ', 1)
    entries["[Content_Types].xml"] = ct.encode()
    return rezip(entries)


def deep_nesting_pptx(depth: int = 100_000) -> bytes:
    """Group shapes nested `depth` deep (libxml2 refuses beyond its depth limit; a recursive walk
    below it would hit Python's recursion limit)."""
    open_group = (
        '<p:grpSp><p:nvGrpSpPr><p:cNvPr id="9" name="g"/><p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr>'
        '<p:grpSpPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="10" cy="10"/><a:chOff x="0" y="0"/>'
        '<a:chExt cx="10" cy="10"/></a:xfrm></p:grpSpPr>'
    )
    body = open_group * depth + _text_shape(2, "deep") + "</p:grpSp>" * depth
    return with_member(SLIDE, _slide_xml(body))


def nested_groups_pptx(depth: int = 250) -> bytes:
    """Group shapes nested just under libxml2's default depth limit (256 elements)."""
    return deep_nesting_pptx(depth)


def deep_text_nesting_pptx(depth: int = 5000) -> bytes:
    """Deeply nested elements inside a text body (not shapes): depth beyond any recursion limit."""
    inner = "<a:r><a:t>x</a:t></a:r>"
    body = "<a:p>" + "<a:fld>" * depth + inner + "</a:fld>" * depth + "</a:p>"
    shape = _text_shape(2, "a").replace("<a:p><a:r><a:t>a</a:t></a:r></a:p>", body)
    return with_member(SLIDE, _slide_xml(shape))


def many_shapes_pptx(count: int = 100_000) -> bytes:
    """One slide with `count` text boxes (compresses to a few hundred KB)."""
    shapes = "".join(_text_shape(i + 2, f"s{i}", x=i * 10, y=i * 10) for i in range(count))
    return with_member(SLIDE, _slide_xml(shapes))


def invalid_utf8_pptx() -> bytes:
    """Slide XML with bytes that are not UTF-8 (and a lone surrogate as a character reference)."""
    xml = _slide_xml(_text_shape(2, "PLACEHOLDER") + _text_shape(3, "&#xD800; lone surrogate"))
    return with_member(SLIDE, xml.replace(b"PLACEHOLDER", b"caf\xe9 \xff\xfe \xc3\x28 \xed\xa0\x80"))


def latin1_declared_pptx() -> bytes:
    """Slide XML declaring another encoding, with characters valid in it."""
    xml = _slide_xml(_text_shape(2, "PLACEHOLDER")).replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"')
    return with_member(SLIDE, xml.replace(b"PLACEHOLDER", b"caf\xe9 cr\xe8me"))


def giant_notes_pptx(chars: int = 50_000_000) -> bytes:
    """Speaker notes of `chars` characters (50 MB of text deflates to ~50 KB)."""
    deck = minimal_deck(notes="NOTESMARKER")
    entries = members(deck)
    name = next(n for n in entries if n.startswith("ppt/notesSlides/") and n.endswith(".xml"))
    entries[name] = entries[name].replace(b"NOTESMARKER", b"word " * (chars // 5))
    return rezip(entries)


def giant_text_pptx(chars: int = 50_000_000) -> bytes:
    """One text run of `chars` characters on the slide."""
    return with_member(SLIDE, _slide_xml(_text_shape(2, "x" * chars)))


def many_slides_pptx(count: int = 3000) -> bytes:
    """A presentation part listing more slides than limits.max_pages (all pointing at one slide)."""
    entries = members(minimal_deck())
    pres = entries["ppt/presentation.xml"].decode()
    start = pres.index("<p:sldIdLst>")
    end = pres.index("</p:sldIdLst>")
    first = pres[start + len("<p:sldIdLst>"):end]
    rid = first.split('r:id="')[1].split('"')[0]
    ids = "".join(f'<p:sldId id="{256 + i}" r:id="{rid}"/>' for i in range(count))
    entries["ppt/presentation.xml"] = (pres[:start] + "<p:sldIdLst>" + ids + pres[end:]).encode()
    return rezip(entries)


def zip_bomb_honest_pptx(size: int = 2 * 1024**3) -> bytes:
    """A member whose central directory says it inflates to `size` bytes (2 GiB of zeros)."""
    return _raw_zip_with_member(members(minimal_deck()), "ppt/media/bomb.bin", declared=size, actual=size)


def zip_bomb_lying_pptx(actual: int = 1024**3) -> bytes:
    """A slide part whose headers declare a few bytes but whose deflate stream inflates to `actual`
    bytes (zipfile must stop at the declared size, then fail the CRC)."""
    return _raw_zip_with_member(members(minimal_deck()), SLIDE, declared=100, actual=actual)


def many_members_pptx(count: int = 25_000) -> bytes:
    """More zip members than MAX_ZIP_ENTRIES (empty stored files)."""
    entries = members(minimal_deck())
    for i in range(count):
        entries[f"ppt/junk/{i}.bin"] = b""
    return rezip(entries, compression=zipfile.ZIP_STORED)


def _deflate_zeros(size: int) -> tuple[bytes, int]:
    """(raw deflate stream of `size` zero bytes, a CRC that is NOT checked to be right).

    A full flush resets the compressor, so every 1 MiB block of zeros deflates to the same
    bytes: the stream is that block repeated, built in milliseconds for any size.
    """
    mib = 1 << 20
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(bytes(mib)) + comp.flush(zlib.Z_FULL_FLUSH)
    tail_comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = tail_comp.compress(bytes(size % mib)) + tail_comp.flush()
    stream = block * (size // mib) + tail
    return stream, 0x1234_5678


def _raw_zip_with_member(entries: dict[str, bytes], name: str, *, declared: int, actual: int) -> bytes:
    """A zip of `entries` (stored) plus/replacing `name`, deflated from `actual` zero bytes, its
    headers declaring `declared` uncompressed bytes (zip64 when above 4 GiB - 1)."""
    entries = {k: v for k, v in entries.items() if k != name}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, blob in entries.items():
            zf.writestr(member, blob)
    body = out.getvalue()
    # Cut the central directory off, append the hostile member, write a new directory by hand.
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        infos = zf.infolist()
        cd_start = zf.start_dir
    local = body[:cd_start]
    stream, crc = _deflate_zeros(actual)
    if declared != actual:
        crc = 0x1234_5678
    fname = name.encode()
    offset = len(local)
    header = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(stream),
                         min(declared, 0xFFFF_FFFF), len(fname), 0)
    local += header + fname + stream
    central = io.BytesIO()
    for info in infos:
        central.write(_central_record(info.filename.encode(), info.CRC, info.compress_size, info.file_size,
                                      info.header_offset, method=info.compress_type))
    central.write(_central_record(fname, crc, len(stream), declared, offset, method=8))
    cd = central.getvalue()
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(infos) + 1, len(infos) + 1, len(cd), len(local), 0)
    return local + cd + end


def _central_record(name: bytes, crc: int, csize: int, usize: int, offset: int, *, method: int) -> bytes:
    extra = b""
    if usize > 0xFFFF_FFFE:
        extra = struct.pack("<2HQ", 1, 8, usize)
        usize = 0xFFFF_FFFF
    return struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc, csize, usize,
                       len(name), len(extra), 0, 0, 0, 0, offset) + name + extra


# -- PDF -------------------------------------------------------------------------------------------------

def _pdf(objects: list[bytes], *, root: int = 1, xref: bool = True) -> bytes:
    """A PDF from numbered object bodies (object i+1 is objects[i]) with a correct xref table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    start = out.tell()
    if xref:
        out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
        out.write(b"".join(b"%010d 00000 n \n" % off for off in offsets))
    out.write(b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, start))
    return out.getvalue()


def _stream(content: bytes, *, compress: bool = False, extra: bytes = b"") -> bytes:
    if compress:
        content = zlib.compress(content, 9)
        extra += b" /Filter /FlateDecode"
    return b"<< /Length %d%s >>\nstream\n" % (len(content), extra) + content + b"\nendstream"


def minimal_pdf(text: bytes = b"Hello fuzzing world") -> bytes:
    content = b"BT /F1 24 Tf 72 720 Td (" + text + b") Tj ET"
    return _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        _stream(content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ])


def many_objects_pdf(count: int = 1_000_000) -> bytes:
    """One page plus `count` unreferenced objects (about 30 bytes each: ~30 MB for a million)."""
    base = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        _stream(b"BT /F1 12 Tf 72 720 Td (many objects) Tj ET"),
    ]
    return _pdf(base + [b"<< /N %d >>" % i for i in range(count)])


def many_pages_pdf(count: int = 5000) -> bytes:
    """A page tree of `count` pages (more than limits.max_pages) sharing one content stream."""
    kids = b" ".join(b"%d 0 R" % (i + 4) for i in range(count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % count,
        _stream(b"BT /F1 12 Tf 72 720 Td (page) Tj ET"),
    ]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R >>"] * count
    return _pdf(objects)


def huge_content_stream_pdf(operators: int = 2_000_000) -> bytes:
    """A page whose (deflated) content stream shows `operators` text runs: ~40 MB inflated."""
    content = b"BT /F1 1 Tf " + b"1 0 0 1 10 10 Tm (ab) Tj " * operators + b"ET"
    return _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        _stream(content, compress=True),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ])


def flate_bomb_pdf(size: int = 1024**3) -> bytes:
    """A content stream that inflates to `size` zero bytes (1 GiB from ~1 MB)."""
    stream, _ = _deflate_zeros(size)
    zstream = b"\x78\xda" + stream + struct.pack(">L", 1)  # zlib wrapper; the adler is wrong on purpose
    return _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(zstream) + zstream + b"\nendstream",
    ])


def deep_array_pdf(depth: int = 100_000) -> bytes:
    """An object nested `depth` arrays deep."""
    return _pdf([
        b"<< /Type /Catalog /Pages 2 0 R /Junk " + b"[" * depth + b"]" * depth + b" >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    ])


def page_tree_cycle_pdf() -> bytes:
    """A /Pages node that is its own kid."""
    return _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    ])


def huge_mediabox_pdf() -> bytes:
    """A page of 10^9 x 10^9 points (renderers and table finders that allocate per point suffer)."""
    return _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 1000000000 1000000000] /Contents 4 0 R >>",
        _stream(b"0 0 m 1000000000 1000000000 l S " * 1000),
    ])


#: name -> (builder, what it is); the tests parse every one of them, in-process and in a worker
HOSTILE: dict[str, Callable[[], bytes]] = {
    "billion-laughs.pptx": billion_laughs_pptx,
    "external-entity.pptx": external_entity_pptx,
    "entity-in-content-types.pptx": entity_in_content_types_pptx,
    "deep-nesting.pptx": deep_nesting_pptx,
    "nested-groups-250.pptx": nested_groups_pptx,
    "deep-text-nesting.pptx": deep_text_nesting_pptx,
    "many-shapes.pptx": many_shapes_pptx,
    "invalid-utf8.pptx": invalid_utf8_pptx,
    "latin1-declared.pptx": latin1_declared_pptx,
    "giant-notes.pptx": giant_notes_pptx,
    "giant-text.pptx": giant_text_pptx,
    "many-slides.pptx": many_slides_pptx,
    "zip-bomb-honest.pptx": zip_bomb_honest_pptx,
    "zip-bomb-lying.pptx": zip_bomb_lying_pptx,
    "many-members.pptx": many_members_pptx,
    "many-objects.pdf": many_objects_pdf,
    "many-pages.pdf": many_pages_pdf,
    "huge-content-stream.pdf": huge_content_stream_pdf,
    "flate-bomb.pdf": flate_bomb_pdf,
    "deep-array.pdf": deep_array_pdf,
    "page-tree-cycle.pdf": page_tree_cycle_pdf,
    "huge-mediabox.pdf": huge_mediabox_pdf,
}
