"""Token-aware chunking with tiktoken.

Text is cut into units first (sentences inside paragraphs; list items and table rows whole),
then units are packed greedily up to `chunk_tokens`, with `overlap` tokens of whole trailing
units repeated at the start of the next chunk. A table (its run of rows with the short header
lines above it) is one unit when it fits in `TABLE_CHUNKS` chunks: split over several chunks,
the rows of its lower half lose their caption and headers, and a question about one of them
no longer retrieves it. Likewise a list with its introduction ("... avsiktsförklaringar
med:" and its items) is one unit when it fits in `LIST_CHUNKS` chunks: cut after the first
item, the answer to "which ones" quotes half the list. A cut therefore falls between
sentences or rows whenever one is near; only a single unit longer than a chunk is cut
inside, and then at a space that is not inside a number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

from assistant.ingest.cleaning import is_list_item, is_sparse_row, is_table_row
from assistant.text.profiles import profiles
from assistant.tokens import get_encoding

# Sentence end: terminal punctuation, space, then an upper-case letter, digit, quote or bullet.
# Abbreviations such as "mm." or "kap." followed by a lower-case word do not end a sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"”»]?\s+(?=[A-ZÅÄÖÜ0-9\"”«•(])")
# "18 kap. 2 §", "mm. KELAn", "milj. euroa": a period after these ends no sentence.
_ABBREVIATION = re.compile(
    r"\b(?:kap|mm|ca|s|t\.ex|bl\.a|s\.k|m\.m|d\.v\.s|o\.s\.v|t\.o\.m|fr\.o\.m|"
    r"nr|milj|mrd|esim|ks|ns|ym|jne|vrt|eur|kr|st|resp|"
    r"e\.g|i\.e|etc|no|p|pp|vs|dr|mr|mrs|ms|prof|art|kl|jfr|tel)\.$",
    re.I,
)
# The abbreviated words before and after a candidate sentence end: "z." + "B." in "z. B. Dateien",
# "u. a." in "u. a. Debian", "t.ex." in "t.ex. Region".
_DOTTED_BEFORE = re.compile(r"(?:\w+\. ?)*\w+\.$")
_DOTTED_AFTER = re.compile(r"(?:\w+\.(?: |$))+")
_DOTTED_PIECE = re.compile(r"\w+\.")
_RUN_ON_WORDS = 35
_RUN_ON_BREAK = re.compile(r"(?<=[)\d])\s+(?=[A-ZÅÄÖ][A-ZÅÄÖa-zåäö])")
# A space between two digit groups belongs to a number ("75 754"), so it is no place to cut.
_SPACE_IN_NUMBER = re.compile(r"(?<=\d) (?=\d)")
# A table is kept whole up to this many chunks' worth of tokens.
TABLE_CHUNKS = 3
# A list with its introduction is kept whole up to this many chunks' worth of tokens.
LIST_CHUNKS = 2
# Header lines above a table's first row: short lines ("1 000 euroa TP 2024", "Ennuste").
_HEADER_LINES = 8
_HEADER_LINE_CHARS = 40


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    tokens: int


@dataclass(frozen=True)
class TextChunk:
    start: int
    end: int
    text: str
    tokens: int


def sentence_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) character spans of sentences, list items and table rows. A period ends
    no sentence after an abbreviation (the list below, and every language profile's)."""
    offset = 0
    for line in text.split("\n"):
        end_of_line = offset + len(line)
        if line.strip():
            # Rows of HTML and Word tables are " | "-joined cells, numbers or not
            # ("Tätigkeit | Befehl"); a row is one unit, never cut into sentences.
            if _is_row_line(line) or is_list_item(line) or len(line) < 40:
                yield offset, end_of_line
            else:
                start = 0
                for match in _SENTENCE_END.finditer(line):
                    if _ABBREVIATION.search(line, 0, match.start()) or _ends_in_abbreviation(
                        line, match.start(), match.end()
                    ):
                        continue
                    end = match.start() + len(match.group(0).rstrip())
                    yield from _split_run_on(line, offset, start, end)
                    start = match.end()
                if start < len(line):
                    yield from _split_run_on(line, offset, start, len(line))
        offset = end_of_line + 1


@cache
def _profile_abbreviations() -> frozenset[str]:
    """Every language profile's abbreviations, written without spaces ("z. B." -> "z.b.")."""
    return frozenset(
        a.replace(" ", "") for profile in profiles().values() for a in profile.abbreviations
    )


def _ends_in_abbreviation(line: str, end: int, next_word: int) -> bool:
    """Whether the period before `end` belongs to an abbreviation of a language profile.
    Abbreviations written with spaces span the candidate end: in "z. B. Dateien" the first
    candidate is after "z.", and "z." + "B." is the abbreviation."""
    known = _profile_abbreviations()
    dotted = _DOTTED_BEFORE.search(line, max(0, end - 40), end)
    if not known or dotted is None:
        return False
    before = _DOTTED_PIECE.findall(dotted.group(0))
    following = _DOTTED_AFTER.match(line, next_word)
    after = _DOTTED_PIECE.findall(following.group(0)) if following else []
    for first in range(len(before)):
        for last in range(len(after) + 1):
            if "".join(before[first:] + after[:last]).lower() in known:
                return True
    return False


def _split_run_on(line: str, offset: int, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Text without sentence punctuation (infographics, slide bullets flattened by PDF
    extraction) can run on for a hundred words; cut it where a closing parenthesis or a
    number is followed by a capitalised word, so each piece states one thing."""
    if len(line[start:end].split()) <= _RUN_ON_WORDS:
        yield offset + start, offset + end
        return
    piece = start
    for match in _RUN_ON_BREAK.finditer(line, start, end):
        if len(line[piece : match.start()].split()) >= 3:
            yield offset + piece, offset + match.start()
            piece = match.end()
    yield offset + piece, offset + end


def _split_long(text: str, start: int, end: int, limit: int) -> Iterator[Span]:
    """Cut one over-long unit at spaces (never inside a number) into pieces of <= limit tokens."""
    encoding = get_encoding()
    piece_start = start
    last_space = -1
    position = start
    while position < end:
        if text[position] == " " and not _SPACE_IN_NUMBER.match(text, position):
            candidate = text[piece_start:position]
            if len(encoding.encode(candidate, disallowed_special=())) > limit and last_space > 0:
                piece = text[piece_start:last_space]
                yield Span(piece_start, last_space, len(encoding.encode(piece)))
                piece_start = last_space + 1
            last_space = position
        position += 1
    piece = text[piece_start:end]
    if len(encoding.encode(piece, disallowed_special=())) > limit and last_space > piece_start:
        yield Span(piece_start, last_space, len(encoding.encode(text[piece_start:last_space])))
        piece_start = last_space + 1
    if piece_start < end:
        yield Span(piece_start, end, len(encoding.encode(text[piece_start:end])))


def split_text(text: str, chunk_tokens: int, overlap: int) -> list[TextChunk]:
    """Split one page of cleaned text into chunks with character offsets into that text."""
    encoding = get_encoding()
    spans: list[Span] = []
    for start, end in sentence_spans(text):
        while start < end and text[start].isspace():
            start += 1
        if start >= end:
            continue
        tokens = len(encoding.encode(text[start:end], disallowed_special=()))
        if tokens > chunk_tokens:
            spans.extend(_split_long(text, start, end, chunk_tokens))
        else:
            spans.append(Span(start, end, tokens))

    spans = _tables_whole(text, spans, TABLE_CHUNKS * chunk_tokens)
    spans = _lists_whole(text, spans, LIST_CHUNKS * chunk_tokens)
    chunks: list[TextChunk] = []
    current: list[Span] = []
    size = 0
    for span in spans:
        if current and size + span.tokens > chunk_tokens:
            chunks.append(_make_chunk(text, current, size))
            # Carry whole trailing units worth at most `overlap` tokens into the next chunk.
            carried: list[Span] = []
            carried_size = 0
            # Never carry the whole chunk: the next one would then contain it entirely.
            for previous in reversed(current[1:]):
                if carried_size + previous.tokens > overlap:
                    break
                carried.insert(0, previous)
                carried_size += previous.tokens
            if carried_size + span.tokens > chunk_tokens:
                carried, carried_size = [], 0
            current, size = carried, carried_size
        current.append(span)
        size += span.tokens
    if current and (not chunks or current[-1].end > chunks[-1].end):
        chunks.append(_make_chunk(text, current, size))
    return chunks


def _is_row_line(line: str) -> bool:
    """A table row of figures, or of " | "-joined cells (HTML and Word tables)."""
    return is_table_row(line) or " | " in line


def _is_row(text: str, span: Span) -> bool:
    line = text[span.start : span.end]
    return "\n" not in line and _is_row_line(line)


def _tables_whole(text: str, spans: list[Span], limit: int) -> list[Span]:
    """Each run of two or more table rows, with the short header lines right above it,
    merged into one span when it holds at most `limit` tokens."""
    merged: list[Span] = []
    index = 0
    while index < len(spans):
        end = index
        while end < len(spans) and _is_row(text, spans[end]):
            end += 1
            # A row with empty cells ("Myyntitappiot 235 0") has too few numbers to read as
            # a row alone; between rows it still belongs to the table.
            if end + 1 < len(spans) and _is_row(text, spans[end + 1]):
                line = text[spans[end].start : spans[end].end]
                if "\n" not in line and is_sparse_row(line):
                    end += 1
        if end - index < 2:
            merged.append(spans[index])
            index += 1
            continue
        start = len(merged)
        while (
            start > 0
            and len(merged) - start < _HEADER_LINES
            and len(text[merged[start - 1].start : merged[start - 1].end]) < _HEADER_LINE_CHARS
        ):
            start -= 1
        block = [*merged[start:], *spans[index:end]]
        tokens = sum(s.tokens for s in block)
        if tokens <= limit:
            merged[start:] = [Span(block[0].start, block[-1].end, tokens)]
        else:
            merged.extend(spans[index:end])
        index = end
    return merged


def _starts_line(text: str, start: int) -> bool:
    return not text[text.rfind("\n", 0, start) + 1 : start].strip()


def _lists_whole(text: str, spans: list[Span], limit: int) -> list[Span]:
    """A sentence ending with ":" and the list items after it (each with the sentences that
    continue it) merged into one span when they hold at most `limit` tokens."""
    merged: list[Span] = []
    index = 0
    while index < len(spans):
        span = spans[index]
        end = index + 1
        if text[span.start : span.end].rstrip().endswith(":"):
            while end < len(spans) and (
                is_list_item(text[spans[end].start : spans[end].end].split("\n", 1)[0])
                or (end > index + 1 and not _starts_line(text, spans[end].start))
            ):
                end += 1
        block = spans[index:end]
        tokens = sum(s.tokens for s in block)
        if len(block) >= 2 and tokens <= limit:
            merged.append(Span(block[0].start, block[-1].end, tokens))
        else:
            merged.extend(block)
        index = end
    return merged


def _make_chunk(text: str, spans: list[Span], size: int) -> TextChunk:
    start, end = spans[0].start, spans[-1].end
    return TextChunk(start=start, end=end, text=text[start:end], tokens=size)
