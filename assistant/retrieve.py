"""Hybrid retrieval: dense (Chroma) and lexical (BM25) rankings fused with reciprocal-rank
fusion, near-duplicates removed, then an optional local cross-encoder rerank."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.answer.tables import translations
from assistant.schema import Chunk, ScoredChunk, SentenceRecord
from assistant.store.base import VectorStore, Where
from assistant.store.lexical import LexicalIndex
from assistant.store.records import ChunkMeta, SentenceMeta, Visible, visible_where
from embeddings.base import Embedder

_WORDS = re.compile(r"\w+")


@dataclass(frozen=True)
class Filters:
    """Restrictions on what may be retrieved. groups=None means access control is off;
    otherwise a chunk is visible when it has no groups or shares one with the caller."""

    doc_ids: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    groups: tuple[str, ...] | None = None

    def where(self) -> Where | None:
        clauses: list[Where] = []
        if self.doc_ids:
            clauses.append({"doc_id": {"$in": list(self.doc_ids)}})
        if self.languages:
            clauses.append({"language": {"$in": list(self.languages)}})
        if self.groups is not None:
            clauses.append(visible_where(self.groups))
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def allows(self, meta: Visible) -> bool:
        if self.doc_ids and meta.doc_id not in self.doc_ids:
            return False
        if self.languages and meta.language not in self.languages:
            return False
        if self.groups is not None:
            own = set(meta.groups)
            if own and not own & set(self.groups):
                return False
        return True


@dataclass
class RetrievalResult:
    chunks: list[ScoredChunk]
    query_vector: np.ndarray
    timings_ms: dict[str, float] = field(default_factory=dict)
    # Sentence records of the returned chunks with their vectors (for the extractive answer).
    sentences: list[tuple[SentenceRecord, np.ndarray]] = field(default_factory=list)
    # Similarities of the best sentences of the whole collection, best first: does one stand
    # out from the rest? (an answerability signal)
    sentence_similarities: list[float] = field(default_factory=list)


def _overlap(wa: set[str], wb: set[str]) -> float:
    return len(wa & wb) / max(1, len(wa | wb))


class Reranker:
    """A cross-encoder from a local directory (none ships on PyPI; see models.md)."""

    def __init__(self, path: Path) -> None:
        from sentence_transformers import CrossEncoder

        self._model = CrossEncoder(str(path), device="cpu", local_files_only=True)

    def rerank(self, question: str, chunks: list[ScoredChunk]) -> list[ScoredChunk]:
        scores = self._model.predict([(question, c.chunk.text) for c in chunks])
        for chunk, score in zip(chunks, scores, strict=True):
            chunk.score = float(score)
        return sorted(chunks, key=lambda c: -c.score)


class HybridRetriever:
    def __init__(
        self,
        store: VectorStore[ChunkMeta],
        sentences: VectorStore[SentenceMeta] | None,
        lexical: LexicalIndex,
        embedder: Embedder,
        *,
        candidates: int = 30,
        rrf_k: int = 60,
        dense_weight: float = 1.0,
        lexical_weight: float = 1.0,
        sentence_weight: float = 1.0,
        translation_weight: float = 0.5,
        dedup_threshold: float = 0.95,
        reranker: Reranker | None = None,
    ) -> None:
        self.store = store
        self.sentences = sentences
        self.lexical = lexical
        self.embedder = embedder
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.dense_weight = dense_weight
        self.lexical_weight = lexical_weight
        self.sentence_weight = sentence_weight
        self.translation_weight = translation_weight
        self.dedup_threshold = dedup_threshold
        self.reranker = reranker

    def retrieve(
        self, question: str, k: int, language: str, filters: Filters | None = None
    ) -> RetrievalResult:
        filters = filters or Filters()
        timings: dict[str, float] = {}
        started = time.perf_counter()
        vector = self.embedder.embed_query(question)
        timings["embed"] = (time.perf_counter() - started) * 1000

        started = time.perf_counter()
        where = filters.where()
        dense = self.store.query(vector, self.candidates, where)
        timings["dense"] = (time.perf_counter() - started) * 1000

        started = time.perf_counter()
        by_sentence: list[str] = []
        sentence_similarities: list[float] = []
        if self.sentences is not None:
            for record, similarity in self.sentences.query(vector, self.candidates * 2, where):
                sentence_similarities.append(float(similarity))
                parent = record.meta.parent
                if parent not in by_sentence:
                    by_sentence.append(parent)
        timings["dense_sentences"] = (time.perf_counter() - started) * 1000

        started = time.perf_counter()
        lexical = self.lexical.search(question, self.candidates, language, filters.allows)
        # The words the documents' other languages use for the concepts the question names
        # ("bokslut" -> "tilinpäätös"): a word search that crosses languages. It ranks beside
        # the others with less weight: a concept word is weaker evidence than a question word.
        translated: list[tuple[str, float]] = []
        words = translations(question, language) if self.translation_weight else set()
        if words and set(self.lexical.languages) - {language}:
            translated = self.lexical.search(
                " ".join(sorted(words)), self.candidates, language, filters.allows
            )
        timings["lexical"] = (time.perf_counter() - started) * 1000

        started = time.perf_counter()
        # BM25 can only match words of the question's own language: when no indexed document
        # is in that language (an English question over Swedish and Finnish reports), its
        # hits are noise and would push the dense hits down.
        lexical_weight = self.lexical_weight
        if language not in self.lexical.languages:
            lexical_weight = 0.0
        fused = self._fuse(
            dense, [(i, 0.0) for i in by_sentence], lexical, lexical_weight, translated
        )
        # Chunks reached through a sentence are fetched by id: check their own current
        # metadata, since sentence records keep the groups they were written with.
        fused = [c for c in fused if filters.allows(c.chunk.meta)]
        # Greedy dedup only needs as many survivors as are kept below (same result, less work).
        fused = self._dedup(fused, self.candidates if self.reranker is not None else k)
        if self.reranker is not None and fused:
            fused = self.reranker.rerank(question, fused[: self.candidates])
        top = fused[:k]
        timings["fuse"] = (time.perf_counter() - started) * 1000
        sentences: list[tuple[SentenceRecord, np.ndarray]] = []
        if self.sentences is not None and top:
            started = time.perf_counter()
            sentences = self._sentences_of(top)
            timings["sentences"] = (time.perf_counter() - started) * 1000
        return RetrievalResult(
            chunks=top,
            query_vector=vector,
            timings_ms=timings,
            sentences=sentences,
            sentence_similarities=sentence_similarities,
        )

    def _sentences_of(self, chunks: list[ScoredChunk]) -> list[tuple[SentenceRecord, np.ndarray]]:
        """Sentence records of the chunks: by the ids each chunk lists (fast), or by a
        metadata filter for indexes built before chunks listed them."""
        assert self.sentences is not None
        listed = [c.chunk.meta.sentence_ids for c in chunks]
        if all(ids is not None for ids in listed):
            return self.sentences.get_with_vectors([i for ids in listed for i in ids or ()])
        return self.sentences.get_where({"parent": {"$in": [c.chunk_id for c in chunks]}})

    def _fuse(
        self,
        dense: list[tuple[Chunk, float]],
        sentence_ranked: list[tuple[str, float]],
        lexical: list[tuple[str, float]],
        lexical_weight: float,
        translated: Sequence[tuple[str, float]] = (),
    ) -> list[ScoredChunk]:
        by_id: dict[str, ScoredChunk] = {}
        for rank, (chunk, similarity) in enumerate(dense):
            by_id[chunk.chunk_id] = ScoredChunk(
                chunk=chunk,
                score=self.dense_weight / (self.rrf_k + rank + 1),
                dense_rank=rank,
                similarity=similarity,
            )
        missing = [i for i, _ in [*sentence_ranked, *lexical, *translated] if i not in by_id]
        fetched = {c.chunk_id: c for c in self.store.get(list(dict.fromkeys(missing)))}
        for ranking, weight, is_lexical in (
            (sentence_ranked, self.sentence_weight, False),
            (lexical, lexical_weight, True),
            (translated, self.translation_weight, False),
        ):
            for rank, (chunk_id, _) in enumerate(ranking):
                scored = by_id.get(chunk_id)
                if scored is None:
                    found = fetched.get(chunk_id)
                    if found is None:  # deleted since the lexical index was built
                        continue
                    chunk = found
                    scored = by_id[chunk_id] = ScoredChunk(chunk=chunk, score=0.0)
                scored.score += weight / (self.rrf_k + rank + 1)
                if is_lexical:
                    scored.lexical_rank = rank
        return sorted(by_id.values(), key=lambda c: -c.score)

    def _dedup(self, chunks: list[ScoredChunk], limit: int) -> list[ScoredChunk]:
        # Word sets computed once per chunk: pairwise re-tokenising cost ~100 ms per question.
        kept: list[tuple[ScoredChunk, set[str]]] = []
        for candidate in chunks:
            if len(kept) >= limit:
                break
            words = set(_WORDS.findall(candidate.chunk.text.lower()))
            if all(_overlap(words, other) < self.dedup_threshold for _, other in kept):
                kept.append((candidate, words))
        return [scored for scored, _ in kept]
