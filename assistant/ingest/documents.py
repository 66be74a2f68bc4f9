"""From a file on disk to cleaned pages and metadata-carrying chunks (no index involved)."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import replace
from pathlib import Path

from assistant.ingest.chunking import split_text
from assistant.ingest.cleaning import CleanPage, clean_pages, normalise
from assistant.ingest.loaders import Limits, load_file
from assistant.ingest.sentences import Sentence, sentences_of
from assistant.language import detect_language
from assistant.schema import Chunk, LoadedDocument, Page
from assistant.store.records import ChunkMeta

# Bump when loading, cleaning or chunking changes, so re-ingesting rebuilds the chunks.
PIPELINE_VERSION = "20"


def document_id(path: Path, root: Path) -> str:
    """The file's path relative to root when inside it, else absolute. The ingest passes a
    fixed root (the folder holding the data dir, or ASSISTANT_DOCUMENTS_ROOT), so the id of a
    file does not depend on where the command was run from."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def content_hash(path: Path, chunk_tokens: int, overlap: int, groups: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    digest.update(f"|{chunk_tokens}|{overlap}|{PIPELINE_VERSION}|{','.join(groups)}".encode())
    # A title given beside the file is part of what was indexed: changing it re-ingests.
    digest.update(f"|{title_from_titles_file(path) or ''}".encode())
    return digest.hexdigest()


def load_document(
    path: Path,
    groups: tuple[str, ...] = (),
    *,
    doc_id: str | None = None,
    limits: Limits | None = None,
) -> LoadedDocument:
    raw = load_file(path, limits)
    if raw.from_layout:
        cleaned = clean_pages(raw.pages)
    else:
        cleaned = []
        for page_text, heads in zip(raw.pages, raw.headings or [[]] * len(raw.pages), strict=True):
            text = "\n".join(line for line in normalise(page_text).split("\n") if line)
            cleaned.append(CleanPage(text=text, headings=_locate(text, heads)))
    pages = [
        Page(number=number, text=page.text, headings=page.headings)
        for number, page in zip(raw.numbers, cleaned, strict=True)
    ]
    full_text = "\n".join(page.text for page in pages)
    # A title given in a .assistant-titles file beside the document wins (a PDF's own title
    # is often "Microsoft Word - doc1.docx", and a text file has none). Headings make poor
    # titles (a first heading is often "1. Introduction"): without a title, the file name,
    # written as words, is the most recognisable name for users (answers say "According to
    # <title>", never "... .txt").
    title = title_from_titles_file(path) or raw.title.strip() or title_from_file_name(path)
    return LoadedDocument(
        path=os.fspath(path),
        # Without an id from the ingest (which passes a fixed root), the absolute path: never
        # an id that changes with the working directory.
        doc_id=doc_id or path.resolve().as_posix(),
        title=title[:200],
        pages=pages,
        language=detect_language(full_text),
        groups=groups,
    )


def _locate(text: str, headings: list[str]) -> tuple[tuple[int, str], ...]:
    found: list[tuple[int, str]] = []
    position = 0
    for heading in headings:
        heading = normalise(heading).strip()
        index = text.find(heading, position)
        if index >= 0:
            found.append((index, heading))
            position = index + len(heading)
    return tuple(found)


def chunk_document(
    document: LoadedDocument, chunk_tokens: int, overlap: int, doc_hash: str
) -> list[Chunk]:
    chunks: list[Chunk] = []
    section = ""
    for page in document.pages:
        headings = list(page.headings)
        for piece in split_text(page.text, chunk_tokens, overlap):
            # The section a chunk belongs to: the last heading at or before its start.
            while headings and headings[0][0] <= piece.start:
                section = headings.pop(0)[1]
            # The title is embedded with the text (Chunk.indexed_text): a new title is a new
            # chunk, so renaming a document re-embeds it rather than keeping stale vectors.
            chunk_id = hashlib.sha256(
                f"{PIPELINE_VERSION}\x1f{document.doc_id}\x1f{document.title}\x1f{page.number}"
                f"\x1f{piece.start}\x1f{piece.text}".encode()
            ).hexdigest()[:32]
            meta = ChunkMeta(
                doc_id=document.doc_id,
                source=Path(document.path).name,
                title=document.title,
                section=section,
                language=document.language,
                page=page.number,
                char_start=piece.start,
                char_end=piece.end,
                tokens=piece.tokens,
                content_hash=doc_hash,
                groups=document.groups,
            )
            chunks.append(Chunk(chunk_id, piece.text, meta))
    return [
        replace(chunk, meta=replace(chunk.meta, chunk_index=index, n_chunks=len(chunks)))
        for index, chunk in enumerate(chunks)
    ]


# Lines of the previous page that may head a table or tiles at the top of the next one.
_CARRIED_HEADER_LINES = 4


def sentence_records(document: LoadedDocument, chunks: list[Chunk]) -> list[Sentence]:
    # A heading orphaned at the foot of a page ("Kaupunginvaltuusto ja -hallitus /
    # KONSERNIHALLINTO") still names the tiles or table at the top of the next.
    pages: dict[int | None, str] = {}
    previous_tail = ""
    for page in document.pages:
        pages[page.number] = f"{previous_tail}\n{page.text}" if previous_tail else page.text
        previous_tail = "\n".join(page.text.rstrip().split("\n")[-_CARRIED_HEADER_LINES:])
    return [
        sentence
        for chunk in chunks
        for sentence in sentences_of(chunk, pages.get(chunk.meta.page, chunk.text))
    ]


TITLES_FILE = ".assistant-titles"


def title_from_titles_file(path: Path) -> str | None:
    """The document's title from a `.assistant-titles` file in its folder: one
    `file name: Title` per line, `#` starts a comment. None when there is no such line."""
    titles = path.parent / TITLES_FILE
    try:
        lines = titles.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        name, sep, title = line.partition(":")
        if sep and not line.lstrip().startswith("#") and name.strip() == path.name:
            return " ".join(title.split())[:200] or None
    return None


def title_from_file_name(path: Path) -> str:
    """'lahti-konsernihallinto-seurantaraportti-q1-2025.txt' -> 'Lahti konsernihallinto
    seurantaraportti Q1 2025'."""
    words = re.split(r"[-_\s.]+", path.stem)
    shown = [w.upper() if re.fullmatch(r"[a-z]\d+|\d+[a-z]", w) else w for w in words if w]
    text = " ".join(shown) or path.name
    return text[:1].upper() + text[1:]
