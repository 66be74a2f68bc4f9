"""Data passed between the stages: pages in, chunks stored, answers out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic

from pydantic import BaseModel, Field

from assistant.store.records import ChunkMeta, Meta, SentenceMeta


@dataclass(frozen=True)
class Page:
    """Cleaned text of one page (or of the whole file for formats without pages)."""

    number: int | None
    text: str
    # (character offset in text, heading) pairs, in order of appearance.
    headings: tuple[tuple[int, str], ...] = ()


@dataclass
class LoadedDocument:
    path: str
    doc_id: str
    title: str
    pages: list[Page]
    language: str = "und"
    content_hash: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Record(Generic[Meta]):
    """A stored text with its typed metadata: a chunk (ChunkMeta) or one sentence of a chunk
    (SentenceMeta), whose chunk_id is then the sentence's own id."""

    chunk_id: str
    text: str
    meta: Meta

    @property
    def doc_id(self) -> str:
        return self.meta.doc_id

    def indexed_text(self: Record[ChunkMeta]) -> str:
        """What both indexes see: the title and section heading as context for the text, so a
        question naming the document or section finds it (the stored text stays verbatim)."""
        context = " — ".join(part for part in (self.meta.title, self.meta.section) if part)
        return f"{context}\n{self.text}" if context else self.text


Chunk = Record[ChunkMeta]
SentenceRecord = Record[SentenceMeta]


@dataclass
class ScoredChunk:
    chunk: Chunk
    score: float
    dense_rank: int | None = None
    lexical_rank: int | None = None
    # Cosine similarity to the question (None when only the lexical index found it).
    similarity: float | None = None

    @property
    def chunk_id(self) -> str:
        return self.chunk.chunk_id


class Citation(BaseModel):
    n: int
    doc: str
    title: str
    page: int | None
    quote: str
    chunk_id: str
    score: float


class RetrievedPassage(BaseModel):
    n: int
    chunk_id: str
    doc: str
    title: str = ""
    page: int | None
    text: str
    score: float


class Answer(BaseModel):
    """What every front end receives from Assistant.ask."""

    answer: str
    language: str
    refused: bool
    citations: list[Citation] = Field(default_factory=list)
    retrieved: list[RetrievedPassage] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    # Sentences of the answer that carry no valid citation (marked, not silently kept).
    unsupported_sentences: list[str] = Field(default_factory=list)
    backend: str = ""
    question: str = ""
    # Calibrated probability (0..1) that the documents answer the question; None when the
    # backend does not estimate it. The eval report shows accuracy by band of this score.
    answerability: float | None = None
