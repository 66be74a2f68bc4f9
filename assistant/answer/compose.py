"""The extractive answer's text: a lead-in in the question's language naming the document's
title and page, then the cell of a table row, the quoted sentence(s), or an overview's key
sentences as a cited list; a refusal when nothing was picked."""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.answer.answerability import Signals
from assistant.answer.base import GenerationRequest, Passage
from assistant.answer.candidates import Candidate
from assistant.answer.tables import Header, Row, parse_header, pick_column, row_cells
from assistant.prompting import phrase


@dataclass
class Selection:
    """What the backend decided for one request (returned, never stored on the backend)."""

    picked: list[Candidate] = field(default_factory=list)
    shape: str = "refusal"  # fact | table | overview | refusal
    answerability: float | None = None
    signals: Signals | None = None
    reason: str = ""


def _lead_in(passage: Passage, language: str) -> str:
    if passage.page is not None:
        return phrase("lead_in_page", language, source=passage.title, page=passage.page)
    return phrase("lead_in", language, source=passage.title)


def _quote(candidate: Candidate) -> str:
    return f"“{candidate.text}” [{candidate.passage.n}]"


def _table_answer(candidate: Candidate, request: GenerationRequest) -> str | None:
    header: Header = parse_header(candidate.context)
    columns = len(header.columns) or None
    row: Row | None = row_cells(candidate.text, columns)
    if row is None or not row.label:
        return None
    unit = f" ({header.unit})" if header.unit else ""
    languages = [request.language, candidate.passage.meta.language]
    if columns and len(row.cells) == columns:
        column = pick_column(request.asked or request.question, header, languages)
        if column is not None:
            return f"{row.label}, {header.columns[column]}: {row.cells[column]}{unit}."
        cells = "; ".join(
            f"{label} {value}" for label, value in zip(header.columns, row.cells, strict=True)
        )
        return f"{row.label}{unit}: {cells}."
    return None


def compose(selection: Selection, request: GenerationRequest) -> str:
    language = request.language
    if not selection.picked:
        return phrase("refusal", language)
    first = selection.picked[0]
    lead = _lead_in(first.passage, language)
    if selection.shape == "overview":
        lines = "\n".join(f"- {_quote(c)}" for c in selection.picked)
        return f"{lead}\n{lines}"
    if selection.shape == "table":
        cell = _table_answer(first, request)
        if cell is not None:
            return f"{lead} {cell} {_quote(first)}"
    parts = []
    for candidate in selection.picked:
        prefix = f"{candidate.context}: " if candidate.context else ""
        parts.append(f"{prefix}{_quote(candidate)}")
    return f"{lead} {' '.join(parts)}"
