"""The answer pipeline, one typed path for `ask` and `stream`:

    prepare (language, stand-alone question) -> retrieve (hybrid) -> generate (backend)
    -> check (citations) -> Answer

Its collaborators (retriever, backend, settings) are injected, each step takes and returns an
`AnswerState`, and nothing about a request is kept anywhere else, so one pipeline serves
concurrent requests and each step can be tested alone. `assistant.answer.chain` composes the
same steps as LangChain runnables.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from assistant.answer.base import AnswerBackend, GenerationRequest, Passage
from assistant.answer.citations import check_citations
from assistant.answer.followup import previous_user_turn, standalone_question
from assistant.language import detect_question_language
from assistant.prompting import phrase, render_prompt
from assistant.schema import Answer, Citation, RetrievedPassage, SentenceRecord

if TYPE_CHECKING:
    from assistant.retrieve import Filters, HybridRetriever


@dataclass(frozen=True)
class AnswerState:
    question: str
    history: tuple[dict[str, str], ...]
    filters: Filters
    language: str = "en"
    search_question: str = ""
    passages: tuple[Passage, ...] = ()
    query_vector: np.ndarray | None = None
    sentences: tuple[tuple[SentenceRecord, np.ndarray], ...] = ()
    vocabulary: frozenset[str] = frozenset()
    sentence_similarities: tuple[float, ...] = ()
    raw_answer: str = ""
    answerability: float | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def timed(self, step: str, started: float, **changes: object) -> AnswerState:
        timings = {**self.timings, step: round((time.perf_counter() - started) * 1000, 1)}
        return replace(self, timings=timings, **changes)  # type: ignore[arg-type]

    def request(self) -> GenerationRequest:
        return GenerationRequest(
            question=self.search_question or self.question,
            language=self.language,
            passages=list(self.passages),
            history=list(self.history),
            query_vector=self.query_vector,
            sentences=list(self.sentences),
            asked=self.question,
            vocabulary=self.vocabulary,
            sentence_similarities=list(self.sentence_similarities),
        )


class AnswerPipeline:
    def __init__(self, retriever: HybridRetriever, backend: AnswerBackend, top_k: int) -> None:
        self.retriever = retriever
        self.backend = backend
        self.top_k = top_k

    def prepare(self, state: AnswerState) -> AnswerState:
        started = time.perf_counter()
        language = detect_question_language(state.question)
        previous = previous_user_turn(state.history)
        if previous and _undecided(state.question):
            # "Och 2024?" and "2024?" say too little to tell their language: keep the
            # language the conversation was in.
            language = detect_question_language(previous)
        search = state.question
        if previous:
            if self.backend.can_rewrite:
                system = render_prompt("condense", "system")
                user = render_prompt(
                    "condense", "user", history=list(state.history[-6:]), question=state.question
                )
                search = self.backend.complete(system, user).strip() or state.question
            else:
                search = standalone_question(state.question, language, state.history)
        return state.timed("prepare", started, language=language, search_question=search)

    def retrieve(self, state: AnswerState) -> AnswerState:
        started = time.perf_counter()
        result = self.retriever.retrieve(
            state.search_question, self.top_k, state.language, state.filters
        )
        timings = {**state.timings}
        timings.update({f"retrieve_{k}": round(v, 1) for k, v in result.timings_ms.items()})
        passages = tuple(Passage(n=i + 1, scored=c) for i, c in enumerate(result.chunks))
        return replace(state, timings=timings).timed(
            "retrieve",
            started,
            passages=passages,
            query_vector=result.query_vector,
            sentences=tuple(result.sentences),
            vocabulary=self.retriever.lexical.vocabulary(),
            sentence_similarities=tuple(result.sentence_similarities),
        )

    def generate(self, state: AnswerState) -> AnswerState:
        started = time.perf_counter()
        if not state.passages:
            return state.timed("generate", started, raw_answer="", answerability=0.0)
        draft = self.backend.draft(state.request())
        return state.timed(
            "generate", started, raw_answer=draft.text, answerability=draft.answerability
        )

    def stream_generate(self, state: AnswerState) -> Iterator[str | AnswerState]:
        """Yields text deltas, then the state with the whole answer."""
        started = time.perf_counter()
        if not state.passages or not self.backend.streams:
            done = self.generate(state)
            if done.raw_answer:
                yield done.raw_answer
            yield done
            return
        parts: list[str] = []
        for delta in self.backend.stream(state.request()):
            parts.append(delta)
            yield delta
        yield state.timed("generate", started, raw_answer="".join(parts))

    def finalise(self, state: AnswerState) -> Answer:
        started = time.perf_counter()
        language = state.language
        passages = list(state.passages)
        # The embedder lets generated text pass by meaning (a Swedish sentence citing a
        # Finnish row); verbatim quotes (the extractive backend's) are matched first anyway.
        checked = check_citations(
            state.raw_answer,
            passages,
            language,
            embedder=self.retriever.embedder,
            sentences=state.sentences,
        )
        refused = not checked.citations
        text = checked.text
        if not refused:
            text, passages, checked.citations = _number_in_order(text, passages, checked.citations)
        timings = {**state.timings, "check": round((time.perf_counter() - started) * 1000, 1)}
        return Answer(
            answer=phrase("refusal", language) if refused else text,
            language=language,
            refused=refused,
            citations=[] if refused else checked.citations,
            retrieved=[
                RetrievedPassage(
                    n=p.n,
                    chunk_id=p.scored.chunk_id,
                    doc=p.source,
                    title=p.title,
                    page=p.page,
                    text=p.text,
                    score=round(p.scored.score, 4),
                )
                for p in passages
            ],
            timings_ms=timings,
            unsupported_sentences=[] if refused else checked.unsupported,
            backend=self.backend.name,
            question=state.question,
            answerability=state.answerability,
        )

    # Whole runs ---------------------------------------------------------------------------
    def run(self, state: AnswerState) -> Answer:
        return self.finalise(self.generate(self.retrieve(self.prepare(state))))

    def stream(self, state: AnswerState) -> Iterator[str | Answer]:
        started = time.perf_counter()
        state = self.retrieve(self.prepare(state))
        if not self.backend.streams:
            # Nothing to gain from streaming text that arrives at once: show the checked,
            # numbered answer only.
            answer = self.finalise(self.generate(state))
            answer.timings_ms["total"] = round((time.perf_counter() - started) * 1000, 1)
            yield answer.answer
            yield answer
            return
        for item in self.stream_generate(state):
            if isinstance(item, AnswerState):
                state = item
            else:
                yield item
        answer = self.finalise(state)
        answer.timings_ms["total"] = round((time.perf_counter() - started) * 1000, 1)
        yield answer


def _number_in_order(
    text: str, passages: list[Passage], citations: list[Citation]
) -> tuple[str, list[Passage], list[Citation]]:
    """Number the cited passages 1..n in the order the answer cites them (the others follow),
    so the first source is always [1] and numbers have no gaps."""
    order = list(dict.fromkeys(c.n for c in citations))
    order += [p.n for p in passages if p.n not in order]
    new_number = {old: new for new, old in enumerate(order, 1)}
    text = re.sub(
        r"\[(\d{1,3})\]",
        lambda m: f"[{new_number.get(int(m.group(1)), int(m.group(1)))}]",
        text,
    )
    by_number = {p.n: p for p in passages}
    renumbered = [Passage(n=new_number[p.n], scored=by_number[p.n].scored) for p in passages]
    renumbered.sort(key=lambda p: p.n)
    cited = [c.model_copy(update={"n": new_number[c.n]}) for c in citations]
    return text, renumbered, cited


def _undecided(question: str) -> bool:
    """A turn with no word that names a language (only numbers, a name or one word)."""
    words = [w for w in question.split() if any(ch.isalpha() for ch in w)]
    return len(words) <= 1
