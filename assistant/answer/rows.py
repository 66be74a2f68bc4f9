"""Which line of a table answers: the row whose label names what was asked, a labelled key
figure, never the table's unit and column line. Rows of a financial table embed almost alike
(they share caption and headers), so their labels decide, by the concepts they name in any
language (assistant/answer/tables.py)."""

from __future__ import annotations

import re

from assistant.answer.base import GenerationRequest
from assistant.answer.candidates import Candidate
from assistant.answer.tables import asks_for_column, concept_words, row_match, split_row
from assistant.ingest.cleaning import is_table_row, is_tile, tile_label

_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")


# The unit line of a table ("1 000 euroa"), with the years of its column headers.
_UNIT = re.compile(r"\b1[\s\u00a0]?000\s*(?:euroa|euro|eur|€|kr|kronor|sek|\$)", re.IGNORECASE)


def is_column_header_line(text: str) -> bool:
    """A table's header line ("1 000 euroa TP 2024") holds its unit and the years of its
    columns, no figure of any row: no answer to "how much"."""
    unit = _UNIT.search(text)
    bare = _YEAR.sub(" ", _UNIT.sub(" ", text))
    return bool(unit) and not any(ch.isdigit() for ch in bare)


_LABELLED_FIGURE = re.compile(r"^([^\W\d_][^\d:]{2,40}?)\s+[+−–-]?\d")


def asked_row(
    question: str, typed: list[Candidate], request: GenerationRequest, languages: list[str]
) -> Candidate | None:
    """The table row whose label names what a table question asks about. Rows of a
    financial table embed almost alike (they share caption and headers), so similarity
    alone often picks the neighbouring row; the label's concepts decide instead (ties go to
    the better-scored row). Only for questions that name a column of the table."""
    asked = request.asked or request.question
    rows = [
        (label, c)
        for c in typed
        if c.context
        and is_table_row(c.text)
        and asks_for_column(asked, c.context, request.language)
        # A real row: a label, then cells only (not a figure box read as one line).
        for label, cells in [split_row(c.text)]
        if label and cells
    ]
    # A key-figure tile is a row of its own: its label names the figure and the column
    # ("YLIJÄÄMÄ TASEESSA ENNUSTE 112,9 milj. euroa").
    rows += [
        (label, c)
        for c in typed
        if is_tile(c.text)
        for label in [tile_label(c.text)]
        if asks_for_column(asked, f"{label} {c.context}", request.language)
    ]
    # A labelled figure in a box of key figures ("Tulosennuste +3,1 milj. euroa") whose label
    # the question says word for word is the answer; one whose label only shares a concept
    # with it ("Toimintatuottojen poikkeamaennuste" for "toimintatuottojen ennuste") is not.
    said = set(re.findall(r"\w+", asked.lower()))
    listed = {id(c) for _, c in rows}
    for c in typed:
        labelled = _LABELLED_FIGURE.match(c.text.strip())
        if (
            labelled
            and c.context
            and id(c) not in listed
            and len(c.text) <= 80
            and set(re.findall(r"\w+", labelled.group(1).lower())) <= said
            # A bare column word ("Ennuste -2,2 milj. euroa") names no figure of its own.
            and _names_more_than_a_column(labelled.group(1))
            and asks_for_column(asked, f"{labelled.group(1)} {c.context}", request.language)
        ):
            return c
    if not rows:
        return None
    # A follow-up fragment ("Och förra året?") names its column; its row was named the turn
    # before.
    for wording in dict.fromkeys((question, request.question)):
        scored = [
            (row_match(wording, _without_column_words(label), languages), -i, c)
            for i, (label, c) in enumerate(rows)
        ]
        strength, _, row = max(scored, key=lambda item: item[:2])
        if strength > 0:
            return row
    return None


def label_matches(asked: str, row: Candidate, languages: list[str]) -> bool:
    label, cells = split_row(row.text)
    if not label or not cells:
        return True
    return row_match(asked, _without_column_words(label), languages) > 0


def _names_more_than_a_column(label: str) -> bool:
    column = concept_words(label)
    return any(word.lower() not in column for word in label.split())


def _without_column_words(label: str) -> str:
    """A row's or tile's label without the column it names ("TOIMINTATUOTOT ENNUSTE" ->
    "TOIMINTATUOTOT"): the column decides whether a row is eligible, the rest which row."""
    column = concept_words(label)
    return " ".join(w for w in label.split() if w.lower() not in column) or label


def header_words(candidate: Candidate) -> str:
    return " ".join(sorted(concept_words(candidate.context))) if candidate.context else ""
