"""Chroma behind the VectorStore interface: embedded (PersistentClient) or a server
(HttpClient). Vectors are always computed by our embedder; Chroma's own default embedding
function would download a model at first use, so it is never used."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import BackendUnavailableError, IndexMismatchError
from assistant.schema import Chunk
from assistant.store.base import VectorStore, Where

# Chroma limits the size of one add call; stay far below it.
_WRITE_BATCH = 1000


def make_client(settings: Any) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.store == "chroma-http":
        try:
            return chromadb.HttpClient(
                host=settings.chroma_host,
                port=settings.chroma_port,
                ssl=settings.chroma_ssl,
                headers=settings.chroma_headers or None,
                settings=chroma_settings,
            )
        except Exception as exc:
            raise BackendUnavailableError(
                f"Chroma server at {settings.chroma_host}:{settings.chroma_port} "
                f"is not reachable: {exc}"
            ) from exc
    path = Path(settings.index_dir) / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


class ChromaStore(VectorStore):
    def __init__(
        self, client: Any, name: str, model_id: str, dim: int, *, create: bool = True
    ) -> None:
        self._client = client
        self.name = name
        self.model_id = model_id
        self.dim = dim
        self._collection = self._open(create)

    def _open(self, create: bool) -> Any:
        try:
            if create:
                collection = self._client.get_or_create_collection(
                    self.name,
                    configuration={"hnsw": {"space": "cosine"}},
                    metadata={"embedding_model": self.model_id, "embedding_dim": self.dim},
                    embedding_function=None,
                )
            else:
                collection = self._client.get_collection(self.name, embedding_function=None)
        except Exception as exc:
            if not create and "does not exist" in str(exc).lower():
                return None
            raise BackendUnavailableError(f"cannot open collection {self.name!r}: {exc}") from exc
        meta = collection.metadata or {}
        stored_model, stored_dim = meta.get("embedding_model"), meta.get("embedding_dim")
        if stored_model != self.model_id or int(stored_dim or -1) != self.dim:
            raise IndexMismatchError(
                f"collection {self.name!r} was built with {stored_model} ({stored_dim} dims), "
                f"but the configured embedder is {self.model_id} ({self.dim} dims). "
                f"Re-index with another --collection name, or delete the index and run "
                f"'assistant ingest' again."
            )
        return collection

    @property
    def exists(self) -> bool:
        return self._collection is not None

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        for start in range(0, len(chunks), _WRITE_BATCH):
            part = chunks[start : start + _WRITE_BATCH]
            self._collection.upsert(
                ids=[c.chunk_id for c in part],
                documents=[c.text for c in part],
                metadatas=[c.metadata for c in part],
                embeddings=vectors[start : start + _WRITE_BATCH].tolist(),
            )

    def update_metadata(self, chunks: Sequence[Chunk]) -> None:
        for start in range(0, len(chunks), _WRITE_BATCH):
            part = chunks[start : start + _WRITE_BATCH]
            self._collection.update(
                ids=[c.chunk_id for c in part], metadatas=[c.metadata for c in part]
            )

    def delete(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), _WRITE_BATCH):
            self._collection.delete(ids=list(ids[start : start + _WRITE_BATCH]))

    def delete_where(self, where: Where) -> None:
        if self._collection is not None:
            self._collection.delete(where=where)

    def get_where(self, where: Where) -> list[tuple[Chunk, np.ndarray]]:
        if self._collection is None:
            return []
        page = self._collection.get(where=where, include=["documents", "metadatas", "embeddings"])
        return [
            (chunk, np.asarray(vector, dtype=np.float32))
            for chunk, vector in zip(_to_chunks(page), page["embeddings"], strict=True)
        ]

    def metadata_by_id(self) -> dict[str, dict[str, Any]]:
        if self._collection is None:
            return {}
        result: dict[str, dict[str, Any]] = {}
        offset = 0
        while True:
            page = self._collection.get(include=["metadatas"], limit=5000, offset=offset)
            if not page["ids"]:
                return result
            result.update(zip(page["ids"], page["metadatas"], strict=True))
            offset += len(page["ids"])

    def iter_chunks(self, batch: int = 2000) -> Iterator[Chunk]:
        if self._collection is None:
            return
        offset = 0
        while True:
            page = self._collection.get(
                include=["documents", "metadatas"], limit=batch, offset=offset
            )
            if not page["ids"]:
                return
            yield from _to_chunks(page)
            offset += len(page["ids"])

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        if not ids or self._collection is None:
            return []
        page = self._collection.get(ids=list(ids), include=["documents", "metadatas"])
        by_id = {c.chunk_id: c for c in _to_chunks(page)}
        return [by_id[i] for i in ids if i in by_id]

    def query(
        self, vector: np.ndarray, k: int, where: Where | None = None
    ) -> list[tuple[Chunk, float]]:
        if self._collection is None:
            return []
        try:
            result = self._collection.query(
                query_embeddings=[np.asarray(vector, dtype=np.float32).tolist()],
                n_results=k,
                where=where or None,
                include=["documents", "metadatas", "distances"],
            )
        except Exception as exc:
            raise BackendUnavailableError(f"vector search failed: {exc}") from exc
        hits = []
        for chunk_id, text, meta, distance in zip(
            result["ids"][0],
            result["documents"][0],
            result["metadatas"][0],
            result["distances"][0],
            strict=True,
        ):
            chunk = Chunk(
                chunk_id=chunk_id,
                doc_id=str(meta.get("doc_id", "")),
                text=text,
                metadata=dict(meta),
            )
            hits.append((chunk, 1.0 - float(distance)))
        return hits

    def count(self) -> int:
        return 0 if self._collection is None else int(self._collection.count())

    def info(self) -> dict[str, Any]:
        return {"collection": self.name, "embedding_model": self.model_id, "dim": self.dim}


def _to_chunks(page: dict[str, Any]) -> Iterator[Chunk]:
    for chunk_id, text, meta in zip(page["ids"], page["documents"], page["metadatas"], strict=True):
        yield Chunk(
            chunk_id=chunk_id, doc_id=str(meta.get("doc_id", "")), text=text, metadata=dict(meta)
        )
