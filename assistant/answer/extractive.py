"""The offline default backend: answers with the best-supported sentence of the top passages,
framed by a lead-in in the question's language that names the document's title and page, or
refuses when the evidence does not answer.

Shapes of answer (assistant/answer/compose.py):
* a fact: one verbatim quote (two for a two-part question);
* a table row: the cell, its row label and column header, then the row verbatim; the row is
  the one whose label names what the question asks about (glossary concepts, any language);
* an overview ("summarise ...", "what are the main goals ..."): 3-5 key sentences of the most
  relevant section, each cited.

A sentence's score is its embedding similarity to the question (multilingual, so it works
across languages) plus the share of the question's content words it contains (stemmed; zero
across languages, where only the similarity speaks), plus a little when a figure of it counts
what a "how many" question asks about ("104 henkilötyövuotta").

Refusal is decided by rules first, each a way evidence can be about something else: a number
or year of the question is absent, a domain concept of the question (tax revenue, staff) is
named by no passage, no sentence holds the kind of answer asked for (a date, a sum of money)
or only sentences below the best two do; then by a calibrated answerability score
(assistant/answer/answerability.py). Nothing about a request is stored on the backend: one
instance serves concurrent requests.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, replace

import numpy as np

from assistant.answer.answerability import (
    Signals,
    fallback_probability,
    load_calibration,
)
from assistant.answer.base import AnswerBackend, Draft, GenerationRequest, Passage
from assistant.answer.candidates import (
    Candidate,
    complete_lists,
    reading_order,
    split_candidates,
    stored_candidates,
    surroundings,
)
from assistant.answer.compose import Selection, compose
from assistant.answer.evidence import (
    QuestionFacts,
    can_answer_type,
    content_terms,
    counts_what_is_asked,
    defines,
    expected_answer_type,
    gives_reason,
    has_question_word,
    name_found,
    names,
    split_question,
    unknown_share,
)
from assistant.answer.rows import asked_row, header_words, is_column_header_line, label_matches
from assistant.answer.tables import (
    absent_concepts,
    asks_for_column,
    glossary_concepts,
    glossary_words,
    lexicon_words,
    unknown_names,
)
from assistant.ingest.cleaning import is_table_row, is_tile, looks_like_heading
from assistant.text.profiles import continuation_words
from embeddings.base import Embedder

_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")


@dataclass(frozen=True)
class ExtractiveConfig:
    passages: int = 5
    # Refuse when the calibrated answerability is below this (settings.refusal_threshold).
    refusal_threshold: float = 0.45
    coverage_weight: float = 0.35
    overview_sentences: int = 5
    row_penalty: float = 0.05
    # A heading names a topic but answers nothing ("5.1.1.1 Region Stockholm ska ...").
    heading_penalty: float = 0.03
    # A continuation sentence is quoted with its predecessor up to this many words in all.
    continuation_words: int = 70
    # Refuse when this many better-matching sentences lack the asked-for kind of answer.
    typed_rank_limit: int = 2
    # Added for a figure that counts what a "how many" question asks about.
    counted_bonus: float = 0.1
    # Added for a defining sentence when the question asks what something means.
    definition_bonus: float = 0.1
    # Taken from a sentence whose passage and document name none of the question's names.
    unnamed_penalty: float = 0.05


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
        languages = [request.language, *{p.meta.language for p in passages}]
        asked = request.asked or request.question
        facts = QuestionFacts.of(request.question, languages)
        # A document's title says what all of it is about ("Forsknings- och
        # utvecklingsstrategi"): a concept it names is named by every passage of it.
        context = " ".join(f"{p.text} {p.meta.section} {p.meta.title}" for p in passages)
        # Numbers must match exactly: a year or amount absent from every passage means the
        # documents do not answer this question.
        if QuestionFacts.of(asked, languages).missing_specifics(context):
            return Selection(answerability=0.0, reason="a number of the question is absent")

        absent = absent_concepts(asked, context)
        if absent:
            return Selection(answerability=0.0, reason=f"the evidence names no {sorted(absent)}")
        strangers = unknown_names(request.question, request.language, request.vocabulary)
        if strangers:
            return Selection(answerability=0.0, reason=f"no document names {strangers}")

        # A fragment ("Och förra året?") asks for the same kind of answer as the turn before;
        # a follow-up with a question word of its own ("Vem ansvarar för det?") does not.
        answer_type = expected_answer_type(asked, request.language)
        if answer_type is None and not has_question_word(asked):
            answer_type = expected_answer_type(request.question, request.language)
        # The passages of the documents the question names by their title (all when none).
        named = _naming_passages(asked, request.language, passages)
        candidates = self._scored_candidates(
            passages, request, facts, languages, named, answer_type
        )
        if not candidates:
            return Selection(answerability=0.0, reason="no candidate sentences")
        ranked = sorted(candidates, key=lambda c: -c.score)
        typed = [c for c in ranked if can_answer_type(c.text, answer_type, asked, c.context)]
        if not typed:
            return Selection(answerability=0.0, reason=f"no sentence holds a {answer_type}")
        # A heading names what a section is about and answers nothing ("Lahden Tilakeskus,
        # toimitilajohtajan katsaus" quoted for "what does the review say about finances?").
        typed = [c for c in typed if not _is_heading(c)]
        if not typed:
            return Selection(answerability=0.0, reason="only headings match")
        # A follow-up fragment ("By when?") borrows its topic from the turn before: the
        # sentences on that topic that rank first may hold what was asked before, and the one
        # that holds this turn's kind of answer is a little further down.
        rank_limit = config.typed_rank_limit * (2 if request.question != asked else 1)
        if answer_type in ("date", "reason"):
            # Rows of figures never say when or why: a year or "forecast" in the question
            # lifts every row of a table with that column above the sentence that answers.
            ranked = [c for c in ranked if not (c.context and is_table_row(c.text))]
        if answer_type != "reference" and ranked.index(typed[0]) >= rank_limit:
            # The sentences that best match the question hold no answer of the asked kind
            # (no date for "when", no figure for "how many"): one further down that does is
            # about something else ("When will the new strategy be ready?" answered with the
            # date of a procurement). A reference number is a small part of a sentence
            # about something else, so for it the best sentence that holds one is the answer.
            return Selection(answerability=0.0, reason=f"the best sentences hold no {answer_type}")
        signals = self._signals(typed, candidates, request, facts, context)
        probability = (
            self.calibration.probability(signals)
            if self.calibration is not None
            else fallback_probability(signals)
        )
        probability = round(probability, 4)
        if probability < config.refusal_threshold:
            return Selection(answerability=probability, signals=signals, reason="evidence too weak")
        best = asked_row(asked, typed, request, languages) or typed[0]
        if (
            answer_type != "overview"
            and best.context
            and is_table_row(best.text)
            # A follow-up ("Entä vuonna 2024?") names its row in the turn before.
            and not any(
                label_matches(wording, best, languages)
                for wording in dict.fromkeys((asked, request.question))
            )
        ):
            # A row chosen by its table's caption alone ("SITOVA TASO YLI-/ALIJÄÄMÄ, TP 2024"
            # for "how much was spent on demolitions in 2024?"): its label, the one thing
            # that says what the figures are, shares nothing with the question.
            return Selection(answerability=0.0, signals=signals, reason="no row is what was asked")
        if request.question != asked and _names_missing(asked, best):
            # "Och i Lahtis?" after a question about Stockholm's health data: the fragment
            # names its new subject, and the best evidence is about the old one.
            return Selection(answerability=0.0, signals=signals, reason="the name is absent")
        years = set(_YEAR.findall(asked))
        if years and not years & set(_YEAR.findall(surroundings(best))):
            # "Turnover in 2023?" answered from a table of 2024 and 2025: a year elsewhere
            # among the passages (a date "12/2023") does not make this passage answer it.
            return Selection(answerability=0.0, signals=signals, reason="the year is absent")
        if answer_type == "overview":
            # A summary is made of sentences: a row of figures (or a row's context-bearing
            # neighbour) that matched the question's words is no key point.
            prose = [c for c in ranked if not c.context and not is_table_row(c.text)]
            first = next((c for c in typed if c in prose), None)
            if first is None:
                return Selection(answerability=0.0, signals=signals, reason="no sentences")
            anchor = self._section_anchor(first, prose, request, languages)
            return Selection(
                picked=self._overview(anchor, prose),
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
            part_best = self._best_for(part, candidates, request, languages, named)
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
        named: set[int],
        answer_type: str | None = None,
    ) -> list[Candidate]:
        candidates, vectors = complete_lists(*stored_candidates(passages, request))
        if not candidates:
            candidates = split_candidates(passages)
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
                f"{c.text} {c.context} {header_words(c)} {' '.join(glossary_words(c.text))} "
                f"{' '.join(lexicon_words(c.text, c.passage.meta.language))}",
                languages,
            )
            for c in candidates
        ]
        section_terms = {c.section: content_terms(c.section, languages) for c in candidates}
        weights = facts.rarity_weights(own_terms)
        # A follow-up ("Och klinisk forskning?") is searched with the previous question before
        # it, whose topic it replaces: its own words count as much as the whole question's.
        turn: QuestionFacts | None = None
        turn_weights: list[float] = []
        if request.asked and request.asked != request.question:
            turn = QuestionFacts.of(request.asked, languages)
            turn_weights = turn.rarity_weights(own_terms)
        # The rows of one table share their header: decide once per header.
        names_a_column = {
            c.context: asks_for_column(
                request.asked or request.question, c.context, request.language
            )
            for c in candidates
            if c.context
        }
        # "How many X": a figure followed by X is the answer's shape.
        counting = answer_type in ("number", "amount", "count")
        asked_concepts = glossary_concepts(request.asked or request.question, longest=True)
        for candidate, vector, similarity, terms in zip(
            candidates, vectors, similarities, own_terms, strict=True
        ):
            candidate.vector = vector
            candidate.similarity = float(similarity)
            own = facts.coverage_of_terms(terms, weights)
            section = facts.coverage_of_terms(section_terms[candidate.section], weights)
            candidate.coverage = max(own, 0.5 * section + 0.5 * own)
            if turn is not None and turn.terms:
                own_turn = turn.coverage_of_terms(terms, turn_weights)
                candidate.coverage = 0.5 * candidate.coverage + 0.5 * own_turn
            candidate.score = candidate.similarity + self.config.coverage_weight * (
                candidate.coverage
            )
            candidate.counted = counting and counts_what_is_asked(
                candidate.text, facts.terms, asked_concepts, languages
            )
            if candidate.counted or (
                # A rate is a per cent: "5 %:n vähentymä" answers "by how many percent".
                answer_type == "percentage"
                and can_answer_type(candidate.text, answer_type, context=candidate.context)
            ):
                candidate.score += self.config.counted_bonus
            if candidate.passage.n not in named:
                # "Hur ordnades Lahtis utbildningar?" is about Lahti: a sentence of the
                # Stockholm strategy on training answers another question.
                candidate.score -= self.config.unnamed_penalty
            if answer_type == "definition" and defines(candidate.text, request.question):
                candidate.score += self.config.definition_bonus
            if answer_type == "reason" and gives_reason(candidate.text):
                candidate.score += self.config.definition_bonus
            if "\n" not in candidate.text and (
                looks_like_heading(candidate.text.strip()) or candidate.text.rstrip().endswith(":")
            ):
                # A heading names a topic, and an introduction ("Hier eine Liste der ...:")
                # whose items could not be joined to it announces one: neither answers.
                candidate.score -= self.config.heading_penalty
            if _cut_by_page_break(candidate):
                # The rest of a sentence cut by a page break ("mellan vårdgivare är kritisk
                # ..." after "Samverkan" at the foot of the page before) is no quotable whole.
                candidate.score -= self.config.heading_penalty
            if candidate.context and not names_a_column[candidate.context]:
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
        document_language = best.passage.meta.language
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
        cross = best.passage.meta.language != request.language
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
        named: set[int],
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
            # A part is about what the whole question names ("och varför?" of Lahti's
            # training is not answered by the Stockholm strategy).
            if c.passage.n in named
            and c.vector is not None
            and can_answer_type(c.text, answer_type, part)
        ]
        return max(scored, key=lambda pair: pair[0])[1] if scored else None

    def _section_anchor(
        self,
        best: Candidate,
        ranked: list[Candidate],
        request: GenerationRequest,
        languages: list[str],
    ) -> Candidate:
        """For an overview, the best sentence of the section whose title the question names
        ("mitä kehityspalveluissa on tehty" -> "Kehityspalvelut"), when that is not the best
        sentence's own section: a summary is of a section, and its title says which. Among
        the sections whose titles share a word with the question, meaning decides (any
        language: "clinical research in network healthcare" -> "Klinisk forskning i
        nätverkssjukvården"). Words the question shares with the document's title frame it
        ("the Stockholm strategy", the "2025" of "Q1/2025") and name no section."""
        question = request.asked or request.question
        facts = QuestionFacts.of(question, languages)
        # A name ("Lahden") says whose sections, not which: "Tuloarvio sisältää ... sekä
        # Lahden" is no section about Lahti's ownership steering.
        asked_names = {name.lower() for name in names(question)}
        first = {c.section: c for c in reversed(ranked) if c.section}
        framing: dict[str, list[float]] = {}
        coverage = {}
        for section, candidate in first.items():
            meta = candidate.passage.meta
            if meta.title not in framing:
                frame = _title_terms(meta.title, meta.language, languages)
                framing[meta.title] = [
                    0.0 if words & (frame | asked_names) else 1.0 for words in facts.words
                ]
            weights = framing[meta.title]
            title = _SECTION_NUMBERING.sub("", section) or section
            coverage[section] = facts.coverage(title, languages, weights) if any(weights) else 0.0
        named = [section for section, covered in coverage.items() if covered > 0]
        if not named or named == [best.section]:
            return best
        sections = list(dict.fromkeys([best.section, *named] if best.section else named))
        titles = [_SECTION_NUMBERING.sub("", section) or section for section in sections]
        query = request.query_vector
        if query is None:
            query = self.embedder.embed_query(request.question)
        similarity = self.embedder.embed(titles, "passage") @ np.asarray(query, dtype=np.float32)
        score = {
            section: float(sim) + self.config.coverage_weight * coverage.get(section, 0.0)
            for section, sim in zip(sections, similarity, strict=True)
        }
        top = max(score, key=lambda section: score[section])
        if score[top] <= score.get(best.section, float("-inf")):
            return best
        return first[top]

    def _overview(self, best: Candidate, ranked: list[Candidate]) -> list[Candidate]:
        """Key sentences of the best candidate's section, topped up from the same document
        when the section is short, in reading order."""
        doc = best.passage.meta.doc_id

        def usable(c: Candidate) -> bool:
            words = c.text.split()
            figures = sum(any(ch.isdigit() for ch in w) for w in words)
            return (
                c.passage.meta.doc_id == doc
                and not c.context
                and not is_table_row(c.text)
                and len(words) >= 5
                and figures * 2 < len(words)
                and not looks_like_heading(c.text.strip())
            )

        same_section = [c for c in ranked if usable(c) and c.section == best.section]
        same_doc = [c for c in ranked if usable(c)]
        # The anchor may be a line of column headers under the section's title ("2025
        # KS+LTA 2025"): it decides the section, and is quoted only when it is a sentence.
        picked: list[Candidate] = [best] if usable(best) else []
        for candidate in [*same_section, *same_doc]:
            if len(picked) >= self.config.overview_sentences:
                break
            if all(candidate.text != p.text for p in picked):
                picked.append(candidate)
        return sorted(picked, key=reading_order)


def _naming_passages(question: str, language: str, passages: list[Passage]) -> set[int]:
    """The passages (by number) of the documents whose title names something the question
    names, in any of its forms ("Tukholman" is Stockholm); all of them when the question
    names nothing or no title names any of it. Only titles decide: a name inside a passage
    may be what the question leaves out ("without Tilakeskus")."""
    variants = [
        [name, *lexicon_words(name, language)] for name in names(question) if not name.isupper()
    ]
    everything = {p.n for p in passages}
    if not variants:
        return everything
    found = set()
    for passage in passages:
        text = passage.meta.title.lower()
        if any(name_found(word, text) for words in variants for word in words):
            found.add(passage.n)
    return found or everything


def _is_heading(candidate: Candidate) -> bool:
    text = candidate.text.strip()
    if candidate.context and is_column_header_line(text):
        return True
    return (
        "\n" not in text
        and not candidate.context
        and not is_table_row(text)
        and not is_tile(text)
        and looks_like_heading(text)
    )


def _cut_by_page_break(candidate: Candidate) -> bool:
    """A lower-case start at the very top of a page: the rest of the page before's sentence.
    (Elsewhere a lower-case start is a command or a file name, "apt-get install ...".)"""
    passage = candidate.passage
    return (
        candidate.text[:1].islower()
        and passage.meta.char_start == 0
        and passage.text.startswith(candidate.text[:40])
    )


_SECTION_NUMBERING = re.compile(r"^\s*\d+(?:\.\d+)*\.?\s*")


def _title_terms(title: str, language: str, languages: list[str]) -> set[str]:
    return content_terms(
        f"{title} {' '.join(glossary_words(title))} {' '.join(lexicon_words(title, language))}",
        languages,
    )


def _mentions_any(sentence: str, words: frozenset[str]) -> bool:
    padded = " " + " ".join(re.findall(r"[\w.]+", sentence.lower())) + " "
    return any(f" {word} " in padded for word in words)


def _names_missing(asked: str, best: Candidate) -> bool:
    """Whether a name of a follow-up turn is absent from the best candidate's passage and
    its document's title."""
    if has_question_word(asked):
        return False  # "Och den med KTH, vad avser den?" asks about the previous subject
    passage = best.passage
    text = f"{passage.text} {passage.meta.title} {passage.meta.section}"
    # An acronym ("KTH") may stand for a name the document spells out.
    return any(not name_found(name, text.lower()) for name in names(asked) if not name.isupper())
