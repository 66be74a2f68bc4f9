"""The vector-store interface the rest of the application sees."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from assistant.schema import Chunk

Where = dict[str, Any]


class VectorStore(ABC):
    @abstractmethod
    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None: ...

    @abstractmethod
    def update_metadata(self, chunks: Sequence[Chunk]) -> None:
        """Rewrite the metadata of existing chunks, keeping their vectors."""

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> None: ...

    @abstractmethod
    def delete_where(self, where: Where) -> None:
        """Delete every record whose metadata matches (e.g. the sentences of stale chunks)."""

    @abstractmethod
    def metadata_by_id(self) -> dict[str, dict[str, Any]]:
        """Every chunk id with its metadata (no text, no vectors): the ingest diff reads it."""

    @abstractmethod
    def iter_chunks(self, batch: int = 2000) -> Iterator[Chunk]:
        """Every chunk with its text, in pages (the lexical index is rebuilt from this)."""

    @abstractmethod
    def get(self, ids: Sequence[str]) -> list[Chunk]: ...

    @abstractmethod
    def get_where(self, where: Where) -> list[tuple[Chunk, np.ndarray]]:
        """Records matching the filter, with their vectors."""

    @abstractmethod
    def get_with_vectors(self, ids: Sequence[str]) -> list[tuple[Chunk, np.ndarray]]:
        """Records by id, with their vectors."""

    @abstractmethod
    def query(
        self, vector: np.ndarray, k: int, where: Where | None = None
    ) -> list[tuple[Chunk, float]]:
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
