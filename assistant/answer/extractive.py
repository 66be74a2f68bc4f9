"""The offline default backend: answers with the best-supported sentence of the top passages,
framed by a lead-in in the question's language that names the document's title and page, or
refuses when a calibrated answerability score says the evidence does not answer.

Shapes of answer:
* a fact: one verbatim quote (two for a two-part question);
* a table row: the cell, its row label and column header, then the row verbatim;
* an overview ("summarise ...", "what are the main goals ..."): 3-5 key sentences of the most
  relevant section, each cited.

A sentence's score is its embedding similarity to the question (multilingual, so it works
across languages) plus the share of the question's content words it contains (stemmed; zero
across languages, where only the similarity speaks). Nothing about a request is stored on the
backend: one instance serves concurrent requests.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field, replace

import numpy as np

from assistant.answer.answerability import (
    Signals,
    fallback_probability,
    load_calibration,
)
from assistant.answer.base import AnswerBackend, Draft, GenerationRequest, Passage
from assistant.answer.evidence import (
    QuestionFacts,
    can_answer_type,
    content_terms,
    expected_answer_type,
    split_question,
    unknown_share,
)
from assistant.answer.tables import (
    Header,
    Row,
    concept_words,
    glossary_words,
    parse_header,
    pick_column,
    row_cells,
)
from assistant.ingest.chunking import sentence_spans
from assistant.ingest.cleaning import is_list_item, is_table_row, looks_like_heading
from assistant.prompting import phrase
from assistant.text.profiles import continuation_words
from embeddings.base import Embedder

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
    vector: np.ndarray | None = field(default=None, repr=False)

    @property
    def section(self) -> str:
        return str(self.passage.meta.get("section") or "")


@dataclass(frozen=True)
class ExtractiveConfig:
    passages: int = 5
    # Refuse when the calibrated answerability is below this (settings.refusal_threshold).
    refusal_threshold: float = 0.45
    coverage_weight: float = 0.35
    overview_sentences: int = 4
    row_penalty: float = 0.05
    # A heading names a topic but answers nothing ("5.1.1.1 Region Stockholm ska ...").
    heading_penalty: float = 0.03
    # A continuation sentence is quoted with its predecessor up to this many words in all.
    continuation_words: int = 70


@dataclass
class Selection:
    """What the backend decided for one request (returned, never stored on the backend)."""

    picked: list[Candidate] = field(default_factory=list)
    shape: str = "refusal"  # fact | table | overview | refusal
    answerability: float | None = None
    signals: Signals | None = None
    reason: str = ""


class ExtractiveBackend(AnswerBackend):
    name = "extractive"
    streams = False

    def __init__(self, embedder: Embedder, config: ExtractiveConfig | None = None) -> None:
        self.embedder = embedder
        self.config = config or ExtractiveConfig()
        self.calibration = load_calibration(embedder.model_id)

    # Interface ----------------------------------------------------------------------------
    def generate(self, request: GenerationRequest) -> str:
        return self.draft(request).text

    def draft(self, request: GenerationRequest) -> Draft:
        selection = self.select(request)
        text = compose(selection, request)
        return Draft(text=text, answerability=selection.answerability)

    # Selection ----------------------------------------------------------------------------
    def select(self, request: GenerationRequest) -> Selection:
        config = self.config
        passages = request.passages[: config.passages]
        if not passages:
            return Selection(answerability=0.0, reason="nothing retrieved")
        languages = [request.language, *{str(p.meta.get("language", "")) for p in passages}]
        asked = request.asked or request.question
        facts = QuestionFacts.of(request.question, languages)
        context = " ".join(p.text + " " + str(p.meta.get("section", "")) for p in passages)
        # Numbers must match exactly: a year or amount absent from every passage means the
        # documents do not answer this question.
        if QuestionFacts.of(asked, languages).missing_specifics(context):
            return Selection(answerability=0.0, reason="a number of the question is absent")

        candidates = self._scored_candidates(passages, request, facts, languages)
        if not candidates:
            return Selection(answerability=0.0, reason="no candidate sentences")
        answer_type = expected_answer_type(asked, request.language) or expected_answer_type(
            request.question, request.language
        )
        ranked = sorted(candidates, key=lambda c: -c.score)
        typed = [c for c in ranked if can_answer_type(c.text, answer_type, asked)]
        if not typed:
            return Selection(answerability=0.0, reason=f"no sentence holds a {answer_type}")
        signals = self._signals(typed, candidates, request, facts, context)
        probability = (
            self.calibration.probability(signals)
            if self.calibration is not None
            else fallback_probability(signals)
        )
        probability = round(probability, 4)
        if probability < config.refusal_threshold:
            return Selection(answerability=probability, signals=signals, reason="evidence too weak")
        best = typed[0]
        if answer_type == "overview":
            return Selection(
                picked=self._overview(best, ranked),
                shape="overview",
                answerability=probability,
                signals=signals,
            )
        picked = [self._with_continuation(best, candidates, languages)]
        # A two-part question ("What is X, and why Y?") also gets the best sentence for each
        # part: the sentence that best matches the whole often answers only one of them
        # (measured on dev: 11 of 17 two-part questions answered, against 9 with the second
        # part only).
        parts = split_question(asked)
        for part in parts if len(parts) > 1 else []:
            part_best = self._best_for(part, candidates, request, languages)
            if part_best is not None and all(part_best.text not in p.text for p in picked):
                picked.append(part_best)
        shape = "table" if len(picked) == 1 and is_table_row(best.text) else "fact"
        return Selection(
            picked=sorted(picked, key=lambda c: (c.passage.n, c.order)),
            shape=shape,
            answerability=probability,
            signals=signals,
        )

    def _scored_candidates(
        self,
        passages: list[Passage],
        request: GenerationRequest,
        facts: QuestionFacts,
        languages: list[str],
    ) -> list[Candidate]:
        candidates, vectors = _complete_lists(*_stored_candidates(passages, request))
        if not candidates:
            candidates = _candidates(passages)
            if not candidates:
                return []
            vectors = self.embedder.embed(
                [f"{c.section}: {c.text}" if c.section else c.text for c in candidates],
                "passage",
            )
        query = request.query_vector
        if query is None:
            query = self.embedder.embed_query(request.question)
        similarities = vectors @ np.asarray(query, dtype=np.float32)
        own_terms = [
            content_terms(
                f"{c.text} {c.context} {_header_words(c)} {' '.join(glossary_words(c.text))}",
                languages,
            )
            for c in candidates
        ]
        section_terms = {c.section: content_terms(c.section, languages) for c in candidates}
        weights = facts.rarity_weights(own_terms)
        # The rows of one table share their header: decide once per header.
        asks_for_column = {
            c.context: _asks_for_column(request, c.context) for c in candidates if c.context
        }
        for candidate, vector, similarity, terms in zip(
            candidates, vectors, similarities, own_terms, strict=True
        ):
            candidate.vector = vector
            candidate.similarity = float(similarity)
            own = facts.coverage_of_terms(terms, weights)
            section = facts.coverage_of_terms(section_terms[candidate.section], weights)
            candidate.coverage = max(own, 0.5 * section + 0.5 * own)
            candidate.score = candidate.similarity + self.config.coverage_weight * (
                candidate.coverage
            )
            if "\n" not in candidate.text and looks_like_heading(candidate.text.strip()):
                candidate.score -= self.config.heading_penalty
            if candidate.context and not asks_for_column[candidate.context]:
                # A row is embedded with its table's caption and headers, which lifts every
                # row of a financial table for any question about money; a question that
                # names none of the table's columns (a year, "forecast") rarely wants a row.
                candidate.score -= self.config.row_penalty
        return candidates

    def _with_continuation(
        self, best: Candidate, candidates: list[Candidate], languages: list[str]
    ) -> Candidate:
        """The best sentence, extended by the next one of its passage when that one points
        back at it ("... initiativ till detta, exempelvis genom en problemlösarkonferens"):
        quoted alone, the first would leave out what the second adds. One verbatim span."""
        text = best.passage.text
        start = text.find(best.text)
        if start < 0 or is_table_row(best.text):
            return best
        end = start + len(best.text)
        following = [
            c
            for c in candidates
            if c.passage is best.passage and text.find(c.text, end) >= end and c.text != best.text
        ]
        if not following:
            return best
        nearest = min(following, key=lambda c: text.find(c.text, end))
        next_start = text.find(nearest.text, end)
        if text[end:next_start].strip() or is_table_row(nearest.text):
            return best
        # The sentence is in its document's language, whatever the question's.
        document_language = str(best.passage.meta.get("language") or "")
        words = continuation_words([document_language] if document_language else languages)
        if not _mentions_any(nearest.text, words):
            return best
        span = text[start : next_start + len(nearest.text)]
        if len(span.split()) > self.config.continuation_words:
            return best
        return replace(best, text=span)

    def _signals(
        self,
        typed: list[Candidate],
        candidates: list[Candidate],
        request: GenerationRequest,
        facts: QuestionFacts,
        context: str,
    ) -> Signals:
        best = typed[0]
        similarities = [c.similarity for c in candidates]
        cross = best.passage.meta.get("language") != request.language
        lexical_rank = best.passage.scored.lexical_rank
        ranked_similarities = request.sentence_similarities[:21]
        global_contrast = 0.0
        if len(ranked_similarities) > 3:
            rest = np.asarray(ranked_similarities[1:], dtype=np.float64)
            global_contrast = float(
                (ranked_similarities[0] - rest.mean()) / max(float(rest.std()), 1e-3)
            )
        return Signals(
            global_contrast=global_contrast,
            similarity=best.similarity,
            contrast=best.similarity - statistics.median(similarities),
            coverage=0.0 if cross else best.coverage,
            cross_language=1.0 if cross else 0.0,
            names_found=facts.names_found(context),
            lexical_agreement=1.0 if lexical_rank is not None and lexical_rank < 5 else 0.0,
            margin=best.score - typed[1].score if len(typed) > 1 else 0.1,
            unknown_words=0.0
            if cross
            else unknown_share(
                request.asked or request.question, [request.language], request.vocabulary
            ),
        )

    def _best_for(
        self,
        part: str,
        candidates: list[Candidate],
        request: GenerationRequest,
        languages: list[str],
    ) -> Candidate | None:
        """The candidate that best answers one part of a question (same scoring)."""
        query = np.asarray(self.embedder.embed_query(part), dtype=np.float32)
        facts = QuestionFacts.of(part, languages)
        answer_type = expected_answer_type(part, request.language)
        scored = [
            (
                float(c.vector @ query)
                + self.config.coverage_weight * facts.coverage(c.text, languages),
                c,
            )
            for c in candidates
            if c.vector is not None and can_answer_type(c.text, answer_type, part)
        ]
        return max(scored, key=lambda pair: pair[0])[1] if scored else None

    def _overview(self, best: Candidate, ranked: list[Candidate]) -> list[Candidate]:
        """Key sentences of the best candidate's section, topped up from the same document
        when the section is short, in reading order."""
        doc = best.passage.meta.get("doc_id")

        def usable(c: Candidate) -> bool:
            return (
                c.passage.meta.get("doc_id") == doc
                and not is_table_row(c.text)
                and len(c.text.split()) >= 5
            )

        same_section = [c for c in ranked if usable(c) and c.section == best.section]
        same_doc = [c for c in ranked if usable(c)]
        picked: list[Candidate] = [best]
        for candidate in [*same_section, *same_doc]:
            if len(picked) >= self.config.overview_sentences:
                break
            if all(candidate.text != p.text for p in picked):
                picked.append(candidate)
        return sorted(picked, key=_reading_order)


def _mentions_any(sentence: str, words: frozenset[str]) -> bool:
    padded = " " + " ".join(re.findall(r"[\w.]+", sentence.lower())) + " "
    return any(f" {word} " in padded for word in words)


def _asks_for_column(request: GenerationRequest, context: str) -> bool:
    header = parse_header(context)
    question = request.asked or request.question
    languages = [request.language]
    return pick_column(question, header, languages) is not None or bool(
        concept_words(question) & concept_words(context)
    )


def _header_words(candidate: Candidate) -> str:
    return " ".join(sorted(concept_words(candidate.context))) if candidate.context else ""


def _reading_order(candidate: Candidate) -> tuple[int, int, int]:
    meta = candidate.passage.meta
    return (int(meta.get("page") or 0), int(meta.get("char_start") or 0), candidate.order)


# Composition ----------------------------------------------------------------------------------
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
    languages = [request.language, str(candidate.passage.meta.get("language", ""))]
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


# Candidates -----------------------------------------------------------------------------------
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


def _complete_lists(
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
