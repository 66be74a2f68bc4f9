"""The answer-backend interface and the request it receives."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from assistant.schema import ScoredChunk, SentenceRecord
from assistant.store.records import ChunkMeta


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk as the answer step sees it, numbered from 1."""

    n: int
    scored: ScoredChunk

    @property
    def text(self) -> str:
        return self.scored.chunk.text

    @property
    def meta(self) -> ChunkMeta:
        return self.scored.chunk.meta

    @property
    def source(self) -> str:
        return self.meta.source or self.scored.chunk.doc_id

    @property
    def title(self) -> str:
        return self.meta.title or self.source

    @property
    def page(self) -> int | None:
        return self.meta.page


@dataclass
class GenerationRequest:
    # The question searched with: the user's turn, or for a follow-up the previous user turn
    # and this one (assistant.answer.followup).
    question: str
    language: str
    passages: list[Passage]
    history: list[dict[str, str]] = field(default_factory=list)
    query_vector: np.ndarray | None = None
    # Sentence records of the passages with their stored vectors, when the index has them.
    sentences: list[tuple[SentenceRecord, np.ndarray]] = field(default_factory=list)
    # The user's own turn, as typed (its numbers and answer type are what must be answered).
    asked: str = ""
    # Every token of the lexical index (may be empty): are the question's words anywhere?
    vocabulary: frozenset[str] = frozenset()
    # Similarities of the collection's best sentences to the question, best first.
    sentence_similarities: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Draft:
    """A backend's answer before the citation check."""

    text: str
    # Calibrated probability that the evidence answers the question (None: not estimated).
    answerability: float | None = None


class AnswerBackend(ABC):
    """Writes an answer whose sentences cite passages as [n]."""

    name: str = "base"
    # An LLM can rewrite a follow-up into a stand-alone question; the extractive one cannot.
    can_rewrite = False
    # Whether stream() yields text as it is generated (an LLM) or all at once (extractive).
    streams = True

    @abstractmethod
    def generate(self, request: GenerationRequest) -> str: ...

    def draft(self, request: GenerationRequest) -> Draft:
        """The answer with the backend's answerability estimate, when it has one."""
        return Draft(text=self.generate(request))

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        yield self.generate(request)

    def complete(self, system: str, user: str) -> str:
        """Plain completion for auxiliary prompts (question rewriting)."""
        raise NotImplementedError(f"backend {self.name} has no free-text completion")
