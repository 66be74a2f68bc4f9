"""The offline default backend: answers by quoting the best-supported sentences of the top
passages, framed by a lead-in in the question's language, or refuses when evidence is weak.

A sentence's support combines its embedding similarity to the question (multilingual, so it
works across languages) with how many of the question's content words it or its passage
contains (stemmed). A question naming a number or a name that none of the passages contains
is refused: that is the most common shape of a question the documents cannot answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assistant.answer.base import AnswerBackend, GenerationRequest, Passage
from assistant.answer.evidence import (
    QuestionFacts,
    can_answer_type,
    content_terms,
    expected_answer_type,
    split_question,
)
from assistant.ingest.chunking import sentence_spans
from assistant.ingest.cleaning import is_list_item, is_table_row
from assistant.prompting import phrase
from embeddings.base import Embedder

_LIST_ITEMS = 4


@dataclass
class Candidate:
    passage: Passage
    text: str
    order: int
    # Column headers of a table row, shown so the figures can be read.
    context: str = ""
    similarity: float = 0.0
    coverage: float = 0.0
    score: float = 0.0


@dataclass(frozen=True)
class ExtractiveConfig:
    passages: int = 4
    max_sentences: int = 3
    # Refusal: weighted support below this is "not in the documents". Calibrated on the
    # development questions in evals/ (README "Refusals"); change with care.
    min_support: float = 0.5
    similarity_weight: float = 1.0
    coverage_weight: float = 0.35
    # How close (in support) further sentences must be to the best to be quoted too.
    keep_margin: float = 0.1


class ExtractiveBackend(AnswerBackend):
    name = "extractive"

    def __init__(self, embedder: Embedder, config: ExtractiveConfig | None = None) -> None:
        self.embedder = embedder
        self.config = config or ExtractiveConfig()
        self.last_support = 0.0
        self._question_language = "und"

    def generate(self, request: GenerationRequest) -> str:
        picked = self.select(request)
        if not picked:
            return phrase("refusal", request.language)
        source = picked[0].passage.title
        quotes = " ".join(
            f"{c.context + ': ' if c.context else ''}“{c.text}” [{c.passage.n}]" for c in picked
        )
        return f"{phrase('lead_in', request.language, source=source)} {quotes}"

    def select(self, request: GenerationRequest) -> list[Candidate]:
        config = self.config
        self._question_language = request.language
        passages = request.passages[: config.passages]
        if not passages:
            return []
        languages = [request.language, *{str(p.meta.get("language", "")) for p in passages}]
        facts = QuestionFacts.of(request.question, languages)
        context = " ".join(p.text + " " + str(p.meta.get("section", "")) for p in passages)
        if facts.missing_specifics(context):
            self.last_support = 0.0
            return []

        candidates, vectors = self._stored_candidates(passages, request)
        if not candidates:
            candidates = self._candidates(passages)
            if not candidates:
                return []
            vectors = self.embedder.embed(
                [f"{c.passage.meta.get('section') or ''}: {c.text}" for c in candidates],
                "passage",
            )
        query = request.query_vector
        if query is None:
            query = self.embedder.embed_query(request.question)
        similarities = vectors @ np.asarray(query, dtype=np.float32)
        vectors_by_id = {id(c): v for c, v in zip(candidates, vectors, strict=True)}
        for candidate, similarity in zip(candidates, similarities, strict=True):
            candidate.similarity = float(similarity)
            own = facts.coverage(candidate.text, languages)
            section = facts.coverage(str(candidate.passage.meta.get("section", "")), languages)
            candidate.coverage = max(own, 0.5 * section + 0.5 * own)
            candidate.score = (
                config.similarity_weight * candidate.similarity
                + config.coverage_weight * candidate.coverage
            )
        answer_type = expected_answer_type(request.question)
        ranked = [
            c
            for c in sorted(candidates, key=lambda c: -c.score)
            if can_answer_type(c.text, answer_type)
        ]
        if not ranked:
            self.last_support = 0.0
            return []
        best = ranked[0]
        self.last_support = self._support(best)
        if self.last_support < config.min_support:
            return []
        picked = [best]
        # A two-part question ("What is X, and why Y?") gets the best sentence for each part.
        for part in split_question(request.question)[1:]:
            part_best = self._best_for(part, ranked, vectors_by_id, languages)
            if part_best is not None and all(part_best.text != p.text for p in picked):
                picked.append(part_best)
        covered = facts.terms & content_terms(" ".join(p.text for p in picked), languages)
        for candidate in ranked[1:]:
            if len(picked) >= config.max_sentences:
                break
            # Overlapping chunks hold the same sentence twice; quote it once.
            if any(candidate.text == p.text for p in picked):
                continue
            # A sentence that covers question words the quotes so far do not (the second
            # half of a two-part question) may trail the best one by twice the margin.
            new_terms = (facts.terms & content_terms(candidate.text, languages)) - covered
            margin = config.keep_margin * (2 if new_terms else 1)
            if candidate.score >= best.score - margin:
                picked.append(candidate)
                covered |= new_terms
        # Quote in reading order within each passage, passages in rank order.
        return sorted(picked, key=lambda c: (c.passage.n, c.order))

    def _best_for(
        self,
        part: str,
        ranked: list[Candidate],
        vectors: dict[int, np.ndarray],
        languages: list[str],
    ) -> Candidate | None:
        """The candidate that best answers one part of a question (same scoring)."""
        query = self.embedder.embed_query(part)
        facts = QuestionFacts.of(part, languages)
        answer_type = expected_answer_type(part)
        scored = [
            (
                self.config.similarity_weight * float(vectors[id(c)] @ query)
                + self.config.coverage_weight * facts.coverage(c.text, languages),
                c,
            )
            for c in ranked
            if can_answer_type(c.text, answer_type)
        ]
        return max(scored, key=lambda pair: pair[0])[1] if scored else None

    def _support(self, candidate: Candidate) -> float:
        # e5 cosines are compressed into ~0.75-0.92; rescale so 0.80 -> 0 and 0.90 -> 1.
        similarity = (candidate.similarity - 0.80) / 0.10
        if candidate.passage.meta.get("language") != self._question_language:
            # Across languages the question's words cannot occur in the passage, so lexical
            # coverage says nothing; only the multilingual similarity does, and e5 scores a
            # translation about 0.02 lower than the same sentence in the question's language.
            return similarity + 0.2
        return 0.6 * similarity + 0.4 * candidate.coverage

    @staticmethod
    def _stored_candidates(
        passages: list[Passage], request: GenerationRequest
    ) -> tuple[list[Candidate], np.ndarray]:
        """Candidates from the sentence index: their vectors were computed at ingest."""
        by_chunk = {p.scored.chunk_id: p for p in passages}
        candidates: list[Candidate] = []
        vectors: list[np.ndarray] = []
        for record, vector in request.sentences:
            passage = by_chunk.get(str(record.metadata.get("parent")))
            if passage is None:
                continue
            candidates.append(
                Candidate(
                    passage=passage,
                    text=_with_list(passage.text, record.text.strip()),
                    order=int(record.metadata.get("start", 0)),
                    context=str(record.metadata.get("context") or ""),
                )
            )
            vectors.append(vector)
        if not vectors:
            return [], np.zeros((0, 1), dtype=np.float32)
        return candidates, np.vstack(vectors)

    @staticmethod
    def _candidates(passages: list[Passage]) -> list[Candidate]:
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
