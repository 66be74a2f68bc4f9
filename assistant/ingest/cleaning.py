"""Cleaning of text extracted from PDFs (and light normalisation for every format).

PDF extraction breaks lines inside sentences, hyphenates words across lines and repeats page
furniture (running headers, page numbers). We undo that, but keep list items and table rows on
their own lines, because a table row cut into a sentence can no longer be quoted or read.
A key-figure tile of a report ("TOIMINTATUOTOT" / "ENNUSTE" / "5,6" / "milj. euroa" /
"(2024: 7,4)", one short line each) becomes one line: joined as prose, a tile's figure ran on
into the next tile's label, and "5,6 milj. euroa (2024: 7,4) TOIMINTAKULUT ENNUSTE 40,7" was
quoted as the operating costs.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

_BULLET = re.compile(r"^(?:[•▪◦●■□➢►‣⁃*]|[-–—](?=\s)|\(?[a-zA-Z0-9]{1,3}\)(?=\s))")
_NUMBER_TOKEN = re.compile(r"^[-−+]?\(?\d[\d\s.,]*%?\)?$")
# One table cell: a number, signed, with decimals or a percent sign.
CELL = re.compile(r"^[-−–+]?\d+(?:[.,]\d+)?%?$")
_NUMBER_GROUP = re.compile(r"(?<![\w,.])[-−]?\d{1,3}(?:[  ]\d{3})*(?:[.,]\d+)?(?![\w])")
_TERMINAL = '.!?:;”"»'
_PAGE_NUMBER = re.compile(r"^(?:(?:sivu|sida|page|s\.)\s*)?\d{1,3}(?:\s*/\s*\d{1,3})?$", re.I)
# "5.1.1.4 Region Stockholm ska ...": a numbered point of a strategy is a line of its own
# even when it is long and has no final full stop.
_NUMBERED_POINT = re.compile(r"^\d{1,2}(?:\.\d{1,2}){1,4}\.?\s+\S")
_HEADING_NUMBER = re.compile(r"^\d{1,2}(?:\.\d{1,2})*\.?\s+\S")
# A word hyphenated at a line end is re-joined unless the next word shows that the hyphen is a
# real compound dash: "hälso- och sjukvård", "tasa- ja", "short- and long-term".
_KEEP_HYPHEN_BEFORE = {"och", "eller", "samt", "ja", "tai", "sekä", "and", "or", "und", "et"}
# Footnote markers glued to a word by PDF extraction ("translationell1 och klinisk forskning2").
_FOOTNOTE = re.compile(r"(?<=[a-zåäöü]{4})\d{1,2}(?=[\s,.;:)]|$)", re.M)
# Key-figure tiles: a label in capitals over one to four short lines, a figure, an optional
# unit and an optional comparison in parentheses.
_TILE_LABEL_CHARS = 40
_TILE_VALUE = re.compile(r"^[-−–+]?\d{1,3}(?:[  ]?\d{3})*(?:[.,]\d+)?\s*%?$")
_TILE_UNIT_CHARS = 25
_TILE_COMPARISON = re.compile(r"^\(.{1,40}\)$")
# A tile once joined: "TOIMINTAKULUT ENNUSTE 40,7 milj. euroa (2024: 33,5)".
_TILE_LINE = re.compile(
    r"^[A-ZÅÄÖÜ][A-ZÅÄÖÜ/\-– ]{2,60}\s[-−–+]?\d{1,3}(?:[  ]?\d{3})*(?:[.,]\d+)?\s*%?"
    r"(?:\s[^\d()]{1,25})?(?:\s\(.{1,40}\))?$"
)
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\ufeff"), None)


@dataclass(frozen=True)
class CleanPage:
    text: str
    headings: tuple[tuple[int, str], ...]


def normalise(text: str) -> str:
    """NFC, no invisible characters, plain spaces, no trailing blanks."""
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = re.sub(r"[\u00a0\u2007\u202f]", " ", text)
    return "\n".join(re.sub(r" {2,}", " ", line).strip() for line in text.split("\n"))


def is_table_row(line: str) -> bool:
    """A label followed by two or more numbers, or a line made only of numbers."""
    tokens = line.split()
    # "Valmistus omaan käyttöön 675 600 600 600 0": five cells that would read as one number
    # with space as the thousands separator; three or more number tokens end a row.
    trailing = 0
    for token in reversed(tokens):
        if not CELL.match(token):
            break
        trailing += 1
    if trailing >= 3 and len(tokens) - trailing <= 8:
        return True
    groups = _NUMBER_GROUP.findall(line)
    if len(groups) >= 3:
        label = _NUMBER_GROUP.sub("", line).strip()
        return len(label.split()) <= 8
    return bool(line) and all(_NUMBER_TOKEN.match(tok) for tok in line.split()) and len(groups) >= 2


# A short line with a figure between two table rows is a row with empty cells.
SPARSE_ROW_CHARS = 60


def is_sparse_row(line: str) -> bool:
    """A short line with a figure ("- Käyttöomaisuuden myyntitappiot 235 0"): too few numbers
    to read as a table row alone, but a row with empty cells when it stands between rows."""
    return len(line) < SPARSE_ROW_CHARS and any(ch.isdigit() for ch in line)


def is_list_item(line: str) -> bool:
    return bool(_BULLET.match(line))


def looks_like_heading(line: str) -> bool:
    if len(line) > 90 or line[-1] in _TERMINAL or line[-1] == ",":
        return False
    words = line.split()
    if not 1 <= len(words) <= 10 or is_table_row(line):
        return False
    first = line.lstrip("0123456789. ")
    return bool(first) and (first[0].isupper() or _HEADING_NUMBER.match(line) is not None)


def _ends_sentence(line: str) -> bool:
    return bool(line) and line[-1] in _TERMINAL


def _starts_lower(line: str) -> bool:
    return bool(line) and (line[0].islower() or line[0] in "(,%")


def repeated_furniture(pages: Sequence[str]) -> set[str]:
    """Short lines that recur on many pages: running headers and footers."""
    if len(pages) < 3:
        return set()
    counts: Counter[str] = Counter()
    for page in pages:
        counts.update({line.strip() for line in page.split("\n") if 0 < len(line.strip()) <= 60})
    threshold = max(3, int(0.4 * len(pages)))
    return {line for line, n in counts.items() if n >= threshold}


def is_tile(line: str) -> bool:
    """A key-figure tile joined into one line by clean_page."""
    return bool(_TILE_LINE.match(line.strip()))


def tile_label(line: str) -> str:
    """A tile's label, the capitals before its figure ("TOIMINTATUOTOT ENNUSTE")."""
    return re.split(r"\s[-−–+]?\d", line.strip(), maxsplit=1)[0]


def _is_tile_label(line: str) -> bool:
    letters = [ch for ch in line if ch.isalpha()]
    return (
        len(line) <= _TILE_LABEL_CHARS
        and len(letters) >= 3
        and all(ch.isupper() for ch in letters)
        and not any(ch.isdigit() for ch in line)
    )


def _is_tile_unit(line: str) -> bool:
    return (
        len(line) <= _TILE_UNIT_CHARS
        and not any(ch.isdigit() for ch in line)
        and not _is_tile_label(line)
        and not is_list_item(line)
    )


def _join_tiles(lines: list[str]) -> tuple[list[str], set[int]]:
    """Each key-figure tile joined into one line; also the indexes of those lines."""
    out: list[str] = []
    tiles: set[int] = set()
    index = 0
    while index < len(lines):
        end = index
        while end < len(lines) and end - index < 4 and _is_tile_label(lines[end].strip()):
            end += 1
        if end > index and end < len(lines) and _TILE_VALUE.match(lines[end].strip()):
            stop = end + 1
            while stop < len(lines) and stop - end <= 2 and _is_tile_unit(lines[stop].strip()):
                stop += 1
            if stop < len(lines) and _TILE_COMPARISON.match(lines[stop].strip()):
                stop += 1
            tiles.add(len(out))
            out.append(" ".join(line.strip() for line in lines[index:stop]))
            index = stop
            continue
        out.append(lines[index])
        index += 1
    return out, tiles


def clean_page(raw: str, furniture: set[str] | frozenset[str] = frozenset()) -> CleanPage:
    """Join broken lines and hyphenations of one page; find its headings."""
    lines = [line for line in normalise(raw).split("\n") if line and line not in furniture]
    if lines and _PAGE_NUMBER.match(lines[-1]):
        lines.pop()
    if lines and _PAGE_NUMBER.match(lines[0]):
        lines.pop(0)
    lines, tiles = _join_tiles(lines)

    out: list[str] = []
    heading_flags: list[bool] = []
    for index, line in enumerate(lines):
        nxt = lines[index + 1] if index + 1 < len(lines) else ""
        prev = out[-1] if out else ""
        # A tile is a line of its own: it joins onto nothing, and nothing joins onto it.
        if index in tiles or index - 1 in tiles:
            out.append(line)
            heading_flags.append(False)
            continue
        # A numbered heading runs on over two lines ("5.1.1.3 Universitetssjukvården och
        # kunskapsstyrningen ska" / "göra forskningsresultat till klinisk vardag"): the
        # continuation belongs to the heading, which stays one.
        if (
            prev
            and heading_flags[-1]
            and _NUMBERED_POINT.match(prev)
            and _starts_lower(line)
            and not _ends_sentence(prev)
            and len(prev) + len(line) <= 160
        ):
            out[-1] = f"{prev} {line}"
            continue
        prev_closed = not prev or _ends_sentence(prev) or heading_flags[-1]
        structural = is_list_item(line) or is_table_row(line) or is_table_row(prev)
        if prev and not structural and not prev_closed:
            broken_word = prev.endswith("-") and len(prev) > 1 and prev[-2].isalpha()
            if broken_word and _starts_lower(line):
                first_word = line.split()[0].strip(",.")
                joiner = " " if first_word.lower() in _KEEP_HYPHEN_BEFORE else ""
                out[-1] = prev[:-1] + line if not joiner else prev + joiner + line
                continue
            if broken_word and line[0].isupper():
                # A compound with a name, broken at its dash ("Lahti-" / "Pisteellä",
                # "Päijät-" / "Häme"): the dash is the word's own, and a space would cut
                # the name in two.
                out[-1] = prev + line
                continue
            numbered_point = _NUMBERED_POINT.match(prev) is not None and not _starts_lower(line)
            if not numbered_point and (
                _starts_lower(line) or line[0].isdigit() or not looks_like_heading(prev)
            ):
                out[-1] = f"{prev} {line}"
                continue
        heading = (
            prev_closed
            and looks_like_heading(line)
            and (not nxt or not _starts_lower(nxt) or _NUMBERED_POINT.match(line) is not None)
            and not is_list_item(line)
        )
        out.append(line)
        heading_flags.append(heading)

    out = [_FOOTNOTE.sub("", line) for line in out]
    text = "\n".join(out)
    headings: list[tuple[int, str]] = []
    offset = 0
    for line, flag in zip(out, heading_flags, strict=True):
        if flag:
            headings.append((offset, line))
        offset += len(line) + 1
    return CleanPage(text=text, headings=tuple(headings))


def clean_pages(raw_pages: Sequence[str]) -> list[CleanPage]:
    furniture = repeated_furniture(raw_pages)
    return [clean_page(page, furniture) for page in raw_pages]
