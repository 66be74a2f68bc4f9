"""Assistant: the one entry point behind the chat, the HTTP API, the CLI and the evals.

Components are built lazily from Settings (or injected), so `assistant ask` pays only for
what one question needs, and tests can pass real local parts or small fakes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import EmptyIndexError, QuestionError
from assistant.retrieve import Filters, HybridRetriever, Reranker
from assistant.schema import Answer
from assistant.settings import Settings
from assistant.store.records import ChunkMeta, SentenceMeta

if TYPE_CHECKING:
    from assistant.answer.base import AnswerBackend
    from assistant.answer.pipeline import AnswerPipeline
    from assistant.ingest.pipeline import IngestReport, Progress
    from assistant.store.base import VectorStore
    from assistant.store.lexical import LexicalIndex
    from embeddings.base import Embedder

History = Sequence[dict[str, str]] | Sequence[tuple[str, str]]


class Assistant:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        store: VectorStore[ChunkMeta] | None = None,
        sentences: VectorStore[SentenceMeta] | None = None,
        lexical: LexicalIndex | None = None,
        backend: AnswerBackend | None = None,
    ) -> None:
        self.settings = settings or Settings()
        if embedder is not None:
            self.__dict__["embedder"] = embedder
        if store is not None:
            self.__dict__["store"] = store
        if sentences is not None:
            self.__dict__["sentences"] = sentences
        if lexical is not None:
            self.__dict__["lexical"] = lexical
        if backend is not None:
            self.__dict__["backend"] = backend

    # Components ---------------------------------------------------------------------------
    @cached_property
    def embedder(self) -> Embedder:
        from embeddings.registry import create_embedder

        return create_embedder(self.settings)

    @cached_property
    def _client(self) -> Any:
        from assistant.store.chroma import make_client

        return make_client(self.settings)

    @cached_property
    def store(self) -> VectorStore[ChunkMeta]:
        from assistant.store.chroma import ChromaStore

        return ChromaStore(
            self._client,
            self.settings.collection,
            self.embedder.model_id,
            self.embedder.dim,
            records=ChunkMeta,
        )

    @cached_property
    def sentences(self) -> VectorStore[SentenceMeta]:
        """Sentence vectors of every chunk (see assistant.ingest.sentences)."""
        from assistant.store.chroma import ChromaStore

        return ChromaStore(
            self._client,
            f"{self.settings.collection}-sentences",
            self.embedder.model_id,
            self.embedder.dim,
            records=SentenceMeta,
        )

    @cached_property
    def lexical(self) -> LexicalIndex:
        from assistant.store.lexical import LexicalIndex, LexicalSource

        directory = Path(self.settings.index_dir) / "lexical" / self.settings.collection
        # The index follows the store (rebuilt when another process's ingest changed it).
        store = self.store
        index = LexicalIndex(directory, store if isinstance(store, LexicalSource) else None)
        index.load()
        return index

    @cached_property
    def retriever(self) -> HybridRetriever:
        s = self.settings
        return HybridRetriever(
            self.store,
            self.sentences,
            self.lexical,
            self.embedder,
            candidates=s.candidates,
            rrf_k=s.rrf_k,
            dense_weight=s.dense_weight,
            lexical_weight=s.lexical_weight,
            sentence_weight=s.sentence_weight,
            translation_weight=s.translation_weight,
            dedup_threshold=s.dedup_threshold,
            reranker=Reranker(s.reranker_path) if s.reranker_path else None,
        )

    @cached_property
    def backend(self) -> AnswerBackend:
        from assistant.answer.registry import create_backend

        return create_backend(self.settings, self.embedder)

    @cached_property
    def pipeline(self) -> AnswerPipeline:
        from assistant.answer.pipeline import AnswerPipeline

        return AnswerPipeline(self.retriever, self.backend, self.settings.top_k)

    @cached_property
    def chain(self) -> Any:
        from assistant.answer.chain import build_chain

        return build_chain(self.pipeline)

    # Ingestion ----------------------------------------------------------------------------
    def ingest(
        self,
        paths: Sequence[Path] | None = None,
        *,
        prune: bool = False,
        groups: Sequence[str] | None = None,
        progress: Progress | None = None,
        wait: bool = True,
        on_wait: Callable[[str], None] | None = None,
    ) -> IngestReport:
        """groups=None keeps each document's access groups; wait=False fails at once when
        another ingest holds the write lock (assistant.ingest.lock)."""
        from assistant.ingest.pipeline import Ingestor

        return Ingestor.for_assistant(self).ingest(
            list(paths or [self.settings.corpus_dir]),
            prune=prune,
            groups=groups,
            progress=progress,
            wait=wait,
            on_wait=on_wait,
        )

    def status(self) -> dict[str, Any]:
        metadata = self.store.metadata_by_id()
        documents: dict[str, dict[str, Any]] = {}
        for meta in metadata.values():
            doc = documents.setdefault(
                meta.doc_id,
                {
                    "doc_id": meta.doc_id,
                    "title": meta.title,
                    "language": meta.language,
                    "chunks": 0,
                    # Shown as before: names joined by "," ("" for public).
                    "groups": ",".join(meta.groups),
                },
            )
            doc["chunks"] += 1
        languages: dict[str, int] = {}
        for doc in documents.values():
            languages[str(doc["language"])] = languages.get(str(doc["language"]), 0) + 1
        return {
            "collection": self.settings.collection,
            "documents": len(documents),
            "chunks": len(metadata),
            "languages": languages,
            "embedding_model": self.embedder.model_id,
            "embedding_dim": self.embedder.dim,
            "embedder": self.settings.embedder,
            "store": self.settings.store,
            "data_dir": str(Path(self.settings.data_dir).resolve()),
            "lexical_index_chunks": len(self.lexical.ids),
            "document_list": sorted(documents.values(), key=lambda d: str(d["doc_id"])),
        }

    # Questions ----------------------------------------------------------------------------
    def validate_question(self, question: str) -> str:
        question = (question or "").strip()
        if not question:
            raise QuestionError("the question is empty")
        limit = self.settings.max_question_chars
        if len(question) > limit:
            raise QuestionError(
                f"the question is {len(question)} characters long; the limit is {limit} "
                f"(ASSISTANT_MAX_QUESTION_CHARS)"
            )
        return question

    def ask(
        self, question: str, history: History = (), *, filters: Filters | None = None
    ) -> Answer:
        started = time.perf_counter()
        question = self.validate_question(question)
        if self.store.count() == 0:
            raise EmptyIndexError(
                f"nothing is indexed in collection {self.settings.collection!r} yet: "
                f"run 'assistant ingest' first"
            )
        from assistant.answer.pipeline import AnswerState

        state = AnswerState(
            question=question, history=_normalise_history(history), filters=filters or Filters()
        )
        answer: Answer = self.chain.invoke(state)
        answer.timings_ms["total"] = round((time.perf_counter() - started) * 1000, 1)
        return answer

    def stream(
        self, question: str, history: History = (), *, filters: Filters | None = None
    ) -> Iterator[str | Answer]:
        """Yields text deltas, then the final checked Answer."""
        from assistant.answer.pipeline import AnswerState

        question = self.validate_question(question)
        if self.store.count() == 0:
            raise EmptyIndexError("nothing is indexed yet: run 'assistant ingest' first")
        state = AnswerState(
            question=question, history=_normalise_history(history), filters=filters or Filters()
        )
        yield from self.pipeline.stream(state)


def _normalise_history(history: History) -> tuple[dict[str, str], ...]:
    turns: list[dict[str, str]] = []
    for turn in history or ():
        if isinstance(turn, dict):
            role, content = str(turn.get("role", "user")), str(turn.get("content", ""))
        else:
            user, assistant_text = turn
            turns.append({"role": "user", "content": str(user)})
            role, content = "assistant", str(assistant_text)
        if content:
            turns.append({"role": role, "content": content})
    return tuple(turns)
