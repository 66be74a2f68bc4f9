"""Sentence records: the small units inside each chunk, embedded on their own.

A question usually matches one sentence far better than a 180-token chunk, so sentences get
their own vectors (parent-document retrieval: a sentence hit ranks its chunk). The extractive
answer reuses these vectors, so answering needs no embedding beyond the question.

A table row alone ("Liikevaihto 75 754 77 501 ...") means nothing to an embedding model, so
it is embedded with the table's caption and column headers in front of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from assistant.ingest.chunking import sentence_spans
from assistant.ingest.cleaning import SPARSE_ROW_CHARS, is_sparse_row, is_table_row, is_tile
from assistant.schema import Chunk, SentenceRecord
from assistant.store.records import SentenceMeta
from assistant.text.profiles import amount_words_in

_MIN_WORDS = 3
_HEADER_LINES = 8


@dataclass(frozen=True)
class Sentence:
    sentence_id: str
    parent: Chunk
    start: int  # offset in the parent chunk's text
    end: int
    context: str

    @property
    def text(self) -> str:
        return self.parent.text[self.start : self.end]

    def embedding_text(self) -> str:
        section = self.parent.meta.section
        prefix = " — ".join(p for p in (section, self.context) if p)
        return f"{prefix}: {self.text}" if prefix else self.text

    def as_record(self) -> SentenceRecord:
        meta = SentenceMeta.of_chunk(
            self.parent.meta, self.parent.chunk_id, self.start, self.end, self.context
        )
        return SentenceRecord(self.sentence_id, self.text, meta)


# A header line above a table is short.
_HEADER_CHARS = 60
# Lines above key-figure tiles that may name whose figures they are.
_TILE_HEADER_LINES = 4
_TILE_HEADER_CHARS = 90


def table_header(page_text: str, row_start: int) -> str:
    """Caption and column-header lines above the table that holds the row at row_start."""
    lines_before = page_text[:row_start].rstrip("\n").split("\n")
    # Walk up over the table's rows, then collect the header lines above them. A row with
    # empty cells ("- Käyttöomaisuuden myyntitappiot 235 0") has too few numbers to read as
    # a row alone; between rows it still belongs to the table (else the rows above it were
    # taken for the header of the rows below).
    while lines_before and (
        is_table_row(lines_before[-1])
        or (
            len(lines_before) > 1
            and is_sparse_row(lines_before[-1])
            and is_table_row(lines_before[-2])
        )
    ):
        lines_before.pop()
    return _lines_above(lines_before, _HEADER_LINES, _HEADER_CHARS)


def _is_figure_line(text: str) -> bool:
    """A short line with a sum of money or a per cent and no sentence ("Ennuste -2,2 milj.
    euroa (tavoite -2,2 milj. euroa)"): like a tile, it says what the figure is only in the
    heading above. A short cell row of a text table ("pop3 | 110 | pop3s | 995") is not one."""
    if "\n" in text or "|" in text or len(text) >= SPARSE_ROW_CHARS:
        return False
    if text.rstrip().endswith((".", ":", "?", "!")):
        return False
    return any(ch.isdigit() for ch in text) and bool("%" in text or amount_words_in(text))


def _follows_row(page_text: str, start: int) -> bool:
    """Whether the line above the one at `start` is a table row."""
    end = page_text.rfind("\n", 0, start)
    while end > 0:
        begin = page_text.rfind("\n", 0, end) + 1
        line = page_text[begin:end].strip()
        if line:
            return is_table_row(line)
        end = begin - 1
    return False


def tile_header(page_text: str, tile_start: int) -> str:
    """The lines above a group of key-figure tiles that say whose figures they are
    ("Kaupunginjohtaja ja konsernihallinnon vastuualue ilman Lahden Tilakeskusta")."""
    lines_before = page_text[:tile_start].rstrip("\n").split("\n")
    while lines_before and is_tile(lines_before[-1]):
        lines_before.pop()
    return _lines_above(lines_before, _TILE_HEADER_LINES, _TILE_HEADER_CHARS, stop=is_tile)


def _lines_above(
    lines_before: list[str],
    most: int,
    chars: int,
    stop: Callable[[str], bool] = lambda line: False,
) -> str:
    """Up to `most` short lines right above (the last of lines_before first), up to the first
    long one, full sentence or `stop` line, joined in reading order."""
    header: list[str] = []
    while lines_before and len(header) < most:
        line = lines_before.pop()
        if len(line) > chars or line.endswith(".") or stop(line):
            break
        header.insert(0, line)
    return " ".join(header)


def sentences_of(chunk: Chunk, page_text: str) -> list[Sentence]:
    base = chunk.meta.char_start
    records: list[Sentence] = []
    for start, end in sentence_spans(chunk.text):
        text = chunk.text[start:end].strip()
        located = _locate(page_text, text, base + start)
        # A row with empty cells ("- Käyttöomaisuuden myyntitappiot 235 0") below a row is
        # part of the table too: read without its caption it matched any question about a
        # number ("How many inhabitants does Lahti have?").
        row = is_table_row(text) or (is_sparse_row(text) and _follows_row(page_text, located))
        if not row and len(text.split()) < _MIN_WORDS:
            continue
        # A key-figure tile, like a table row, says whose figure it is only in the lines
        # above it ("Kaupunginvaltuusto ja -hallitus / KONSERNIHALLINTO").
        context = (
            table_header(page_text, located)
            if row
            else tile_header(page_text, located)
            if is_tile(text) or _is_figure_line(text)
            else ""
        )
        sentence_id = hashlib.sha256(f"{chunk.chunk_id}\x1f{start}".encode()).hexdigest()[:32]
        records.append(Sentence(sentence_id, chunk, start, end, context))
    return records


def _locate(page_text: str, text: str, expected: int) -> int:
    """Where the row starts in its page. Found by its text near the expected offset, because
    a chunk's char_start is not always the page offset of its first character (overlap)."""
    found = page_text.find(text, max(0, expected - 2000))
    if found < 0:
        found = page_text.find(text)
    return found if found >= 0 else expected
