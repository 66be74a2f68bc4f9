"""Candidate sentences of the retrieved passages, the unit the extractive backend scores
and quotes: from the sentence index (vectors computed at ingest) or, for an index built
without one, split from the passages. A candidate is always a verbatim span of its passage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from assistant.answer.base import GenerationRequest, Passage
from assistant.ingest.chunking import sentence_spans
from assistant.ingest.cleaning import is_list_item, is_table_row

_LIST_ITEMS = 4


@dataclass
class Candidate:
    passage: Passage
    text: str
    order: int
    # Caption and column headers of a table row, stored with the row at ingest.
    context: str = ""
    similarity: float = 0.0
    coverage: float = 0.0
    score: float = 0.0
    # A figure of it counts what a "how many" question asks about.
    counted: bool = False
    vector: np.ndarray | None = field(default=None, repr=False)

    @property
    def section(self) -> str:
        return self.passage.meta.section


def surroundings(candidate: Candidate) -> str:
    """The candidate with everything that frames it: passage, section, table headers and
    the document's title (a report's year is often only there)."""
    passage = candidate.passage
    return (
        f"{candidate.text} {candidate.context} {candidate.section} {passage.text} {passage.title}"
    )


def reading_order(candidate: Candidate) -> tuple[int, int, int]:
    meta = candidate.passage.meta
    return (meta.page or 0, meta.char_start, candidate.order)


def stored_candidates(
    passages: list[Passage], request: GenerationRequest
) -> tuple[list[Candidate], np.ndarray]:
    """Candidates from the sentence index: their vectors were computed at ingest."""
    by_chunk = {p.scored.chunk_id: p for p in passages}
    candidates: list[Candidate] = []
    vectors: list[np.ndarray] = []
    for record, vector in request.sentences:
        passage = by_chunk.get(record.meta.parent)
        if passage is None:
            continue
        candidates.append(
            Candidate(
                passage=passage,
                text=_with_list(passage.text, record.text.strip()),
                order=record.meta.start,
                context=record.meta.context,
            )
        )
        vectors.append(vector)
    if not vectors:
        return [], np.zeros((0, 1), dtype=np.float32)
    return candidates, np.vstack(vectors)


def complete_lists(
    candidates: list[Candidate], vectors: np.ndarray
) -> tuple[list[Candidate], np.ndarray]:
    """Overlapping chunks can cut a list after its introduction ("... avtal med:"): when the
    same sentence with its items comes from the next chunk, that one is the one to quote, so
    the cut copy is dropped."""
    complete = {
        c.text.split("\n", 1)[0]
        for c in candidates
        if "\n" in c.text and c.text.split("\n", 1)[0].endswith(":")
    }
    keep = [i for i, c in enumerate(candidates) if c.text not in complete]
    if len(keep) == len(candidates):
        return candidates, vectors
    return [candidates[i] for i in keep], vectors[keep]


def split_candidates(passages: list[Passage]) -> list[Candidate]:
    candidates: list[Candidate] = []
    for passage in passages:
        for order, (start, end) in enumerate(sentence_spans(passage.text)):
            text = passage.text[start:end].strip()
            if len(text.split()) >= 4 or is_table_row(text):
                candidates.append(Candidate(passage=passage, text=text, order=order))
    return candidates


def _with_list(passage_text: str, sentence: str) -> str:
    """A sentence that introduces a list ("... avtal med:") says nothing without its items:
    quote the items that follow it too (a contiguous, verbatim span of the passage)."""
    if not sentence.endswith(":"):
        return sentence
    start = passage_text.find(sentence)
    if start < 0:
        return sentence
    end = start + len(sentence)
    for _ in range(_LIST_ITEMS):
        newline = passage_text.find("\n", end)
        if newline < 0:
            break
        line_end = passage_text.find("\n", newline + 1)
        line_end = len(passage_text) if line_end < 0 else line_end
        if not is_list_item(passage_text[newline + 1 : line_end]):
            break
        end = line_end
    return passage_text[start:end]
