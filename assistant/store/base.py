"""The vector-store interface the rest of the application sees."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Generic

import numpy as np

from assistant.schema import Record
from assistant.store.records import Meta, Where

__all__ = ["VectorStore", "Where"]


class VectorStore(ABC, Generic[Meta]):
    """Records of one kind: chunks (VectorStore[ChunkMeta]) or sentences
    (VectorStore[SentenceMeta]); metadata is encoded by the records' own to_store/from_store."""

    @abstractmethod
    def upsert(self, chunks: Sequence[Record[Meta]], vectors: np.ndarray) -> None: ...

    @abstractmethod
    def update_metadata(
        self, chunks: Sequence[Record[Meta]], replacing: Mapping[str, Meta] | None = None
    ) -> None:
        """Rewrite the metadata of existing records, keeping their vectors; replacing holds
        the metadata being overwritten (by id), so what the new one lacks is removed."""

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> None: ...

    @abstractmethod
    def delete_where(self, where: Where) -> None:
        """Delete every record whose metadata matches (e.g. the sentences of stale chunks)."""

    @abstractmethod
    def metadata_by_id(self) -> dict[str, Meta]:
        """Every record id with its metadata (no text, no vectors): the ingest diff reads it."""

    @abstractmethod
    def iter_chunks(self, batch: int = 2000) -> Iterator[Record[Meta]]:
        """Every chunk with its text, in pages (the lexical index is rebuilt from this)."""

    @abstractmethod
    def get(self, ids: Sequence[str]) -> list[Record[Meta]]: ...

    @abstractmethod
    def get_where(self, where: Where) -> list[tuple[Record[Meta], np.ndarray]]:
        """Records matching the filter, with their vectors."""

    @abstractmethod
    def get_with_vectors(self, ids: Sequence[str]) -> list[tuple[Record[Meta], np.ndarray]]:
        """Records by id, with their vectors."""

    @abstractmethod
    def query(
        self, vector: np.ndarray, k: int, where: Where | None = None
    ) -> list[tuple[Record[Meta], float]]:
        """The k nearest chunks with cosine similarity, best first."""

    @abstractmethod
    def count(self) -> int: ...

    def follow_writes(self, *, force: bool = False) -> None:
        """Make writes of other processes visible to this one (a no-op where they always
        are); called by a writer after it takes the write lock."""
        return None

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """Collection-level facts: embedding model, dimension, name, where it lives."""
