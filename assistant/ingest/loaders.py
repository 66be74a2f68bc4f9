"""File loaders: each turns one file into raw pages (with page numbers where the format has
them) and headings where the format marks them. Cleaning happens afterwards, in one place."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import DocumentError

SUPPORTED_SUFFIXES = (".pdf", ".docx", ".html", ".htm", ".md", ".markdown", ".txt")
# Page-break convention of the default corpus: a line that starts with exactly one space and
# then text begins a new PDF page (corpus/README.md).
_LEADING_SPACE_PAGE = re.compile(r"\n(?= \S)")


@dataclass
class RawDocument:
    pages: list[str]
    # Page numbers parallel to pages; None for formats without pages.
    numbers: list[int | None]
    title: str = ""
    # True when the text comes from a layout (PDF), so line breaks need repairing.
    from_layout: bool = True
    headings: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True)
class Limits:
    """What one file may cost. Hostile or accidental giants are refused with the setting to
    raise in the message, before they take hours to embed or gigabytes to unpack."""

    max_file_bytes: int = 100 * 2**20
    max_chars: int = 2_000_000
    docx_max_unpacked_bytes: int = 200 * 2**20
    docx_max_ratio: float = 100.0

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        return cls(
            max_file_bytes=int(settings.ingest_max_file_mb * 2**20),
            max_chars=settings.ingest_max_chars,
            docx_max_unpacked_bytes=int(settings.ingest_docx_max_unpacked_mb * 2**20),
            docx_max_ratio=settings.ingest_docx_max_ratio,
        )

    def file_too_large(self, size: int) -> str:
        return (
            f"file is {_mb(size)}, larger than the limit of {_mb(self.max_file_bytes)} "
            f"(ASSISTANT_INGEST_MAX_FILE_MB)"
        )


def _mb(size: float) -> str:
    return f"{size / 2**20:.1f} MB"


# Byte-order marks, longest first (the UTF-32 LE mark begins with the UTF-16 LE one).
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise DocumentError(
                    str(path),
                    f"starts with a {encoding.upper()} byte-order mark but is not "
                    f"valid {encoding.upper()} ({exc.reason} at byte {exc.start})",
                ) from exc
    if b"\x00" in data[:4096]:
        raise DocumentError(str(path), "binary content in a text file (wrong extension?)")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DocumentError(str(path), "text is neither UTF-8 nor Windows-1252")


def load_txt(path: Path) -> RawDocument:
    text = _read_text(path)
    if "\f" in text:
        pages = text.split("\f")
    elif len(_LEADING_SPACE_PAGE.findall(text)) >= 1 and text.startswith(" "):
        pages = _LEADING_SPACE_PAGE.split(text)
    else:
        return RawDocument(pages=[text], numbers=[None])
    return RawDocument(pages=pages, numbers=list(range(1, len(pages) + 1)))


def load_pdf(path: Path) -> RawDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise DocumentError(str(path), "encrypted PDF (password required)")
            except DocumentError:
                raise
            except Exception as exc:
                raise DocumentError(str(path), f"encrypted PDF: {exc}") from exc
        pages = [page.extract_text() or "" for page in reader.pages]
        metadata: dict[str, Any] = dict(reader.metadata or {})
        title = str(metadata.get("/Title") or "")
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise DocumentError(str(path), f"unreadable PDF: {exc}") from exc
    return RawDocument(pages=pages, numbers=list(range(1, len(pages) + 1)), title=title)


def load_docx(path: Path) -> RawDocument:
    import docx

    try:
        document = docx.Document(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DocumentError(str(path), f"unreadable Word file: {exc}") from exc
    lines: list[str] = []
    headings: list[str] = []
    for block in _docx_blocks(document):
        lines.append(block[0])
        if block[1]:
            headings.append(block[0])
    title = document.core_properties.title or (headings[0] if headings else "")
    return RawDocument(
        pages=["\n".join(lines)],
        numbers=[None],
        title=title,
        from_layout=False,
        headings=[headings],
    )


def _docx_blocks(document: object) -> list[tuple[str, bool]]:
    """Paragraphs and table rows in document order, with a heading flag."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    blocks: list[tuple[str, bool]] = []
    for item in document.iter_inner_content():  # type: ignore[attr-defined]
        if isinstance(item, Paragraph):
            text = item.text.strip()
            style = (item.style.name if item.style is not None else "") or ""
            if text:
                blocks.append((text, style.lower().startswith(("heading", "title"))))
        elif isinstance(item, Table):
            for row in item.rows:
                cells = [cell.text.strip() for cell in row.cells]
                # Merged cells repeat their text in python-docx; keep each once.
                unique = [c for i, c in enumerate(cells) if c and (i == 0 or c != cells[i - 1])]
                if unique:
                    blocks.append((" | ".join(unique), False))
    return blocks


# Block-level elements: each starts a new line. Everything else (a, code, span, em, strong,
# tt, DocBook's literal/command/filename spans, ...) is inline and joined without added spaces.
_HTML_BLOCKS = frozenset(
    "address article aside blockquote body caption center dd details div dl dt fieldset "
    "figcaption figure form h1 h2 h3 h4 h5 h6 header hr legend li main menu ol p pre section "
    "summary table tbody td tfoot th thead tr ul".split()
)
_HTML_HEADINGS = frozenset(("h1", "h2", "h3", "h4", "h5", "h6"))
# A cell holding one of these (or several paragraphs) makes its row a layout row, read as
# blocks. One <p> per cell is still a data cell (Word's HTML wraps every cell in one).
_HTML_LAYOUT = _HTML_BLOCKS - {"p", "td", "th", "caption", "center"}
_HTML_SKIPPED = ("script", "style", "nav", "footer", "noscript", "template", "head")
# Navigation that is not a <nav>: DocBook's navheader/navfooter tables and tables of contents
# repeat chapter titles and link labels ("Kapitel 7. GUI-System | | Kapitel 9. Systemtipps").
_HTML_NAVIGATION = frozenset(
    ("navheader", "navfooter", "toc", "list-of-tables", "list-of-figures", "breadcrumb")
)
# HTML collapses these (not the no-break space) into one space.
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")


def load_html(path: Path) -> RawDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_read_text(path), "html.parser")
    title = soup.title.get_text(strip=True) if soup.title else ""
    for tag in soup(_HTML_SKIPPED):
        tag.decompose()
    for tag in soup.find_all(_is_navigation):
        tag.decompose()
    lines = _HtmlLines()
    lines.block(soup.body or soup)
    return RawDocument(
        pages=["\n".join(lines.lines)],
        numbers=[None],
        title=title,
        from_layout=False,
        headings=[lines.headings],
    )


def _is_navigation(tag: Any) -> bool:
    return bool(_HTML_NAVIGATION.intersection(tag.get("class") or ())) or (
        tag.get("role") == "navigation"
    )


class _HtmlLines:
    """Text of an HTML tree as lines, the way a browser lays it out: whitespace inside a block
    collapses to single spaces, and only block boundaries (and <br>) break lines, because
    sentence splitting works line by line. A table row is one line of " | "-joined cells; a
    row whose cells hold paragraphs or lists (layout tables such as DocBook's admonitions)
    is read as blocks instead."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.headings: list[str] = []
        self._inline: list[str] = []
        self._bullet = False  # the next line begins a list item

    def block(self, element: Any) -> None:
        from bs4 import NavigableString, Tag

        for node in element.children:
            if isinstance(node, Tag):
                self._tag(node)
            elif type(node) is NavigableString:  # not comments, doctypes or CDATA
                self._inline.append(str(node))

    def _tag(self, tag: Any) -> None:
        name = tag.name
        if name == "br":
            self._flush()
        elif name == "pre":
            self._flush()
            for line in tag.get_text().split("\n"):
                self._emit(line.strip())
        elif name in _HTML_HEADINGS:
            self._flush()
            text = _inline_text(tag)
            if text:
                self.lines.append(text)
                self.headings.append(text)
        elif name == "tr":
            self._flush()
            self._row(tag)
        elif name == "li":
            self._flush()
            self._bullet = True
            self.block(tag)
            self._flush()
            self._bullet = False
        elif name in _HTML_BLOCKS:
            self._flush()
            self.block(tag)
            self._flush()
        else:
            self.block(tag)

    def _row(self, row: Any) -> None:
        cells = row.find_all(("td", "th"), recursive=False)
        if any(cell.find(_HTML_LAYOUT) or len(cell.find_all("p")) > 1 for cell in cells):
            for cell in cells:
                self.block(cell)
                self._flush()
            return
        texts = [_inline_text(cell) for cell in cells]
        filled = [t for t in texts if t]
        if len(filled) == 1:  # a label such as an admonition's "Tipp" is no table row
            self._emit(filled[0])
        elif filled:
            self._emit(" | ".join(texts))

    def _flush(self) -> None:
        text = _collapse("".join(self._inline))
        self._inline = []
        self._emit(text)

    def _emit(self, text: str) -> None:
        if not text:
            return
        if self._bullet:
            text = f"• {text}"
            self._bullet = False
        self.lines.append(text)


def _collapse(text: str) -> str:
    return _HTML_SPACE.sub(" ", text).strip()


def _inline_text(tag: Any) -> str:
    """A heading's or a cell's text on one line (a <br> in it is a space)."""
    from bs4 import NavigableString, Tag

    parts = [
        " " if isinstance(node, Tag) else str(node)
        for node in tag.descendants
        if (isinstance(node, Tag) and node.name == "br") or type(node) is NavigableString
    ]
    return _collapse("".join(parts))


def load_markdown(path: Path) -> RawDocument:
    text = _read_text(path)
    lines: list[str] = []
    headings: list[str] = []
    in_code = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            in_code = not in_code
            continue
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*$", stripped)
        if match and not in_code:
            headings.append(match.group(1))
            lines.append(match.group(1))
            continue
        stripped = re.sub(r"^[-*+]\s+", "• ", stripped)
        stripped = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", stripped)  # links keep their text
        stripped = re.sub(r"(\*\*|__|`)", "", stripped)
        lines.append(stripped)
    # Markdown paragraphs wrap lines; join them so sentences are whole.
    joined = re.sub(r"(?<=[^\n])\n(?=[^\n•|])", " ", "\n".join(lines))
    title = headings[0] if headings else ""
    return RawDocument(
        pages=[re.sub(r"\n{2,}", "\n", joined)],
        numbers=[None],
        title=title,
        from_layout=False,
        headings=[headings],
    )


LOADERS: dict[str, Callable[[Path], RawDocument]] = {
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".html": load_html,
    ".htm": load_html,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_txt,
}

_MAGIC = {
    ".pdf": (b"%PDF",),
    ".docx": (b"PK\x03\x04",),
}


def _check_zip(path: Path, limits: Limits) -> None:
    """Refuse a zip bomb before python-docx unpacks it: the declared sizes in the central
    directory are checked, and what is read later cannot exceed them (zipfile verifies)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DocumentError(str(path), f"unreadable Word file: {exc}") from exc
    unpacked = sum(m.file_size for m in members)
    packed = sum(m.compress_size for m in members) or 1
    if unpacked > limits.docx_max_unpacked_bytes:
        raise DocumentError(
            str(path),
            f"unpacks to {_mb(unpacked)}, more than the limit of "
            f"{_mb(limits.docx_max_unpacked_bytes)} (ASSISTANT_INGEST_DOCX_MAX_UNPACKED_MB); "
            f"a zip bomb?",
        )
    # Ordinary Word XML compresses 5-30x; only large members count, so a tiny run of
    # repeated characters does not trip it.
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > 2**20 and ratio > limits.docx_max_ratio:
            raise DocumentError(
                str(path),
                f"{member.filename} unpacks {ratio:.0f}x ({_mb(packed)} packed in all), more "
                f"than the limit of {limits.docx_max_ratio:.0f}x "
                f"(ASSISTANT_INGEST_DOCX_MAX_RATIO); a zip bomb?",
            )


def load_file(path: Path, limits: Limits | None = None) -> RawDocument:
    """Load one file or raise DocumentError naming it and the reason."""
    limits = limits or Limits()
    suffix = path.suffix.lower()
    loader = LOADERS.get(suffix)
    if loader is None:
        raise DocumentError(str(path), f"unsupported file type {suffix or '(none)'}")
    try:
        head = path.open("rb").read(8)
    except OSError as exc:
        raise DocumentError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    if not head:
        raise DocumentError(str(path), "empty file")
    magic = _MAGIC.get(suffix)
    if magic and not head.startswith(magic):
        raise DocumentError(str(path), f"not a real {suffix} file (content does not match)")
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise DocumentError(str(path), limits.file_too_large(size))
    if suffix == ".docx":
        _check_zip(path, limits)
    try:
        document = loader(path)
    except DocumentError:
        raise
    except Exception as exc:  # a parser bug on one file must not abort an ingest
        raise DocumentError(str(path), f"could not parse: {type(exc).__name__}: {exc}") from exc
    if not any(page.strip() for page in document.pages):
        raise DocumentError(str(path), "no extractable text (scanned or empty document?)")
    chars = sum(len(page) for page in document.pages)
    if chars > limits.max_chars:
        raise DocumentError(
            str(path),
            f"{chars:,} characters of text, more than the limit of {limits.max_chars:,} "
            f"(ASSISTANT_INGEST_MAX_CHARS); split the document or raise the limit",
        )
    return document
