"""Chroma behind the VectorStore interface: embedded (PersistentClient) or a server
(HttpClient). Vectors are always computed by our embedder; Chroma's own default embedding
function would download a model at first use, so it is never used.

Every write also stores a fresh random ``generation`` in the collection metadata. Other
processes compare it with the generation their BM25 copy was built from (see
assistant.store.lexical) and rebuild when it moved: that is how an ingest in one process
reaches the lexical index of every other process sharing the Chroma server.

Embedded Chroma (PersistentClient) keeps each collection's vector index in the memory of the
process that opened it, so a process does not see another process's writes: its index still
returns ids that the other process deleted ("Error finding id") and misses new ones. Every
write therefore also replaces a small marker file beside the database, and every process
checks it (one stat) before each operation: when another process wrote, it opens the store
again (a new client, loaded from disk) and its collections switch to it. See
docs/deployment.md, "Ingest while serving".
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from assistant.errors import BackendUnavailableError, IndexMismatchError
from assistant.schema import Record
from assistant.store.base import VectorStore, Where
from assistant.store.records import Meta

log = logging.getLogger(__name__)

# Chroma limits the size of one add call; stay far below it.
_WRITE_BATCH = 1000
# Chroma's HTTP client waits forever by default; a hung server must not hang every request.
_CONNECT_TIMEOUT_S = 3.0
_READ_TIMEOUT_S = 60.0
GENERATION_KEY = "generation"
# HNSW candidates explored per query. Chroma's default (100) let a search of a few hundred
# sentences miss the best one in some processes and not in others (the graph differs between
# loads): the same question got different evidence from run to run. 400 made the search
# exact and repeatable on the default corpus; on large collections it costs a little time.
HNSW_SEARCH_EF = 400
# Beside the embedded database; replaced after every write (see the module docstring).
WRITES_MARKER = "assistant-writes.json"
# Reopening reloads the vector indexes from disk: at most this often during a burst of
# writes (a change is still seen within this delay plus one question).
_REOPEN_INTERVAL_S = 2.0

T = TypeVar("T")


def _chroma_settings() -> Any:
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def make_client(settings: Any) -> Any:
    import chromadb

    chroma_settings = _chroma_settings()
    if settings.store == "chroma-http":
        try:
            client = chromadb.HttpClient(
                host=settings.chroma_host,
                port=settings.chroma_port,
                ssl=settings.chroma_ssl,
                headers=settings.chroma_headers or None,
                settings=chroma_settings,
            )
        except Exception as exc:
            raise BackendUnavailableError(
                f"the Chroma server at {_address(settings)} is not reachable ({exc}). "
                f"Start it ('chroma run --path DIR --port {settings.chroma_port}') or check "
                f"ASSISTANT_CHROMA_HOST / ASSISTANT_CHROMA_PORT."
            ) from exc
        _set_timeouts(client)
        return client
    path = Path(settings.index_dir) / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def _address(settings: Any) -> str:
    scheme = "https" if settings.chroma_ssl else "http"
    return f"{scheme}://{settings.chroma_host}:{settings.chroma_port}"


def _set_timeouts(client: Any) -> None:
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(_READ_TIMEOUT_S, connect=_CONNECT_TIMEOUT_S)


def _is_unavailable(exc: BaseException) -> bool:
    """Transport failures and server-side 5xx: worth retrying later, not the caller's fault."""
    import httpx
    from chromadb.errors import ChromaError

    if isinstance(exc, httpx.TransportError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, ChromaError):
        return exc.code() >= 500
    return "could not connect to a chroma server" in str(exc).lower()


def _is_stale_view(exc: BaseException) -> bool:
    """Embedded Chroma whose in-memory index lags behind the database (another process
    deleted records it still lists)."""
    return "error finding id" in str(exc).lower()


def _vanished(result: Any) -> bool:
    """A query or get result naming records without metadata: deleted since the in-memory
    index of embedded Chroma was loaded."""
    if not isinstance(result, dict) or not result.get("metadatas"):
        return False
    rows = result["metadatas"]
    if rows and isinstance(rows[0], list):
        rows = [m for row in rows for m in row]
    return any(m is None for m in rows)


def _persist_dir(client: Any) -> str | None:
    try:
        settings = client.get_settings()
    except Exception:
        return None
    if getattr(settings, "is_persistent", False) and settings.persist_directory:
        return str(settings.persist_directory)
    return None


class _Embedded:
    """This process's current client for one embedded database, and the marker state it was
    opened at. Shared by every ChromaStore of the process on that path, so that a writer's
    chunk and sentence collections always use one client (two clients of one path in one
    process would not see each other's writes)."""

    _lock = threading.Lock()
    _by_path: ClassVar[dict[str, _Embedded]] = {}

    def __init__(self, path: str, client: Any) -> None:
        self.path = path
        self.marker = Path(path) / WRITES_MARKER
        self.client = client
        self.version = 0
        self.stamp = _stamp(self.marker)
        self.reopened_at = time.monotonic()

    @classmethod
    def for_client(cls, client: Any) -> _Embedded | None:
        path = _persist_dir(client)
        if path is None:
            return None
        with cls._lock:
            entry = cls._by_path.get(path)
            if entry is None:
                entry = cls._by_path[path] = _Embedded(path, client)
            return entry

    def wrote(self) -> None:
        """After a write of this process: tell the others, and do not reopen for it."""
        tmp = self.marker.with_name(f"{self.marker.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "token": uuid.uuid4().hex}), "utf-8")
        os.replace(tmp, self.marker)
        with self._lock:
            self.stamp = _stamp(self.marker)

    def follow(self, *, force: bool = False) -> None:
        """Reopen when another process wrote since this client was opened."""
        stamp = _stamp(self.marker)
        if stamp == self.stamp and not force:
            return
        with self._lock:
            if stamp == self.stamp and not force:
                return
            if not force and time.monotonic() - self.reopened_at < _REOPEN_INTERVAL_S:
                return  # a burst of writes: the next operation after the interval reopens
            self._reopen(stamp)

    def _reopen(self, stamp: tuple[int, int, int] | None) -> None:
        import chromadb
        from chromadb.api.shared_system_client import SharedSystemClient

        # Chroma caches one System per path for the whole process; drop it from the cache
        # (without stopping it: a question may be running on it) so the new client loads
        # the database from disk.
        SharedSystemClient._identifier_to_system.pop(self.path, None)
        SharedSystemClient._identifier_to_refcount.pop(self.path, None)
        # The old client is not stopped: a question may still be running on it. It is freed
        # when the last store has switched and the last such question has returned.
        self.client = chromadb.PersistentClient(path=self.path, settings=_chroma_settings())
        self.version += 1
        self.stamp = stamp
        self.reopened_at = time.monotonic()
        log.info("embedded Chroma at %s changed by another process; reopened", self.path)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def _is_missing_collection(exc: BaseException) -> bool:
    from chromadb.errors import NotFoundError

    text = str(exc).lower()
    return isinstance(exc, NotFoundError) or ("collection" in text and "does not exist" in text)


class ChromaStore(VectorStore[Meta], Generic[Meta]):
    def __init__(
        self,
        client: Any,
        name: str,
        model_id: str,
        dim: int,
        *,
        records: type[Meta],
        create: bool = True,
    ) -> None:
        """records: the metadata type of this collection (ChunkMeta or SentenceMeta)."""
        self.records: type[Meta] = records
        self._embedded = _Embedded.for_client(client)
        if self._embedded is not None:
            # Another store of this process may already have moved to a newer client.
            client = self._embedded.client
            self._version = self._embedded.version
        self._client = client
        self.name = name
        self.model_id = model_id
        self.dim = dim
        self._create = create
        self._collection = self._open(create)

    def follow_writes(self, *, force: bool = False) -> None:
        """Embedded: switch to a fresh client when another process wrote since ours was
        opened (force: reopen even without a new marker). A server needs nothing."""
        if self._embedded is None:
            return
        self._embedded.follow(force=force)
        if self._embedded.version != self._version:
            self._client = self._embedded.client
            self._version = self._embedded.version
            self._collection = None  # opened again by name on the next operation

    def _open(self, create: bool) -> Any:
        try:
            if create:
                collection = self._client.get_or_create_collection(
                    self.name,
                    configuration={"hnsw": {"space": "cosine", "ef_search": HNSW_SEARCH_EF}},
                    metadata={"embedding_model": self.model_id, "embedding_dim": self.dim},
                    embedding_function=None,
                )
            else:
                collection = self._client.get_collection(self.name, embedding_function=None)
        except Exception as exc:
            if not create and _is_missing_collection(exc):
                return None
            raise BackendUnavailableError(self._unavailable(exc)) from exc
        self._check_model(collection.metadata or {})
        self._widen_search(collection)
        return collection

    @staticmethod
    def _widen_search(collection: Any) -> None:
        """Give a collection made before HNSW_SEARCH_EF was set the wider search (a mutable
        setting, changed once)."""
        try:
            hnsw = (collection.configuration or {}).get("hnsw") or {}
            if int(hnsw.get("ef_search") or 0) < HNSW_SEARCH_EF:
                collection.modify(configuration={"hnsw": {"ef_search": HNSW_SEARCH_EF}})
        except Exception as exc:  # an older server without mutable configuration: keep going
            log.warning("could not widen the HNSW search of %s: %s", collection.name, exc)

    def _check_model(self, meta: dict[str, Any]) -> None:
        stored_model, stored_dim = meta.get("embedding_model"), meta.get("embedding_dim")
        if stored_model != self.model_id or int(stored_dim or -1) != self.dim:
            raise IndexMismatchError(
                f"collection {self.name!r} was built with {stored_model} ({stored_dim} dims), "
                f"but the configured embedder is {self.model_id} ({self.dim} dims). "
                f"Re-index with another --collection name, or delete the index and run "
                f"'assistant ingest' again."
            )

    def _unavailable(self, exc: BaseException) -> str:
        where = "the Chroma server"
        server = getattr(self._client, "_server", None)
        url = getattr(server, "_api_url", None)
        if url:
            where = f"the Chroma server at {str(url).removesuffix('/api/v2')}"
        elif not hasattr(server, "_session"):
            where = "the embedded Chroma store"
        return (
            f"{where} is not available ({type(exc).__name__}: {exc}); collection {self.name!r}. "
            f"Questions will work again as soon as it is back."
        )

    def _call(self, operation: Callable[[Any], T], *, default: T) -> T:
        """Run one Chroma operation on the collection, mapping outages to
        BackendUnavailableError. A collection that vanished (the server was restarted on an
        empty directory, or the collection was deleted and rebuilt by another process) is
        opened again by name once."""
        for attempt in (1, 2):
            self.follow_writes()
            if self._collection is None:
                self._collection = self._open(self._create)
                if self._collection is None:
                    return default
            try:
                result = operation(self._collection)
                if attempt == 1 and self._embedded is not None and _vanished(result):
                    # Our in-memory index lists records another process deleted.
                    log.info("collection %s changed under us; reopening", self.name)
                    self.follow_writes(force=True)
                    continue
                return result
            except IndexMismatchError:
                raise
            except Exception as exc:
                if _is_missing_collection(exc) and attempt == 1:
                    log.info("collection %s vanished; opening it again by name", self.name)
                    self._collection = None
                    continue
                if _is_stale_view(exc) and attempt == 1:
                    # Embedded: written by another process between its marker and our last
                    # check. A Chroma server: its index listed records that a concurrent
                    # ingest deleted a moment before (seen once in 65 questions during an
                    # ingest); asking again sees the index after the delete.
                    log.info("collection %s changed under us; asking again", self.name)
                    if self._embedded is not None:
                        self.follow_writes(force=True)
                    continue
                if _is_unavailable(exc):
                    raise BackendUnavailableError(self._unavailable(exc)) from exc
                raise
        return default

    # Change tracking ------------------------------------------------------------------------
    def generation(self) -> str:
        """The generation stored by the last write ('' for a collection never written by
        this version). One small request, so cheap enough to poll every few seconds."""

        def read(_: Any) -> str:
            fresh = self._client.get_collection(self.name, embedding_function=None)
            return str((fresh.metadata or {}).get(GENERATION_KEY, ""))

        return self._call(read, default="")

    def _bump_generation(self) -> None:
        # modify() replaces the whole metadata, so the model keys are written again. A random
        # token rather than a counter: two writers doing read-increment-write could both
        # write the same number, and a reader would miss the second change.
        def bump(collection: Any) -> None:
            fresh = self._client.get_collection(self.name, embedding_function=None)
            meta = dict(fresh.metadata or {})
            meta.update(
                {
                    "embedding_model": self.model_id,
                    "embedding_dim": self.dim,
                    GENERATION_KEY: uuid.uuid4().hex,
                }
            )
            collection.modify(metadata=meta)

        self._call(bump, default=None)
        if self._embedded is not None:
            self._embedded.wrote()

    # Writes -----------------------------------------------------------------------------------
    @property
    def exists(self) -> bool:
        return self._collection is not None

    def upsert(self, chunks: Sequence[Record[Meta]], vectors: np.ndarray) -> None:
        if not chunks:
            return
        for start in range(0, len(chunks), _WRITE_BATCH):
            part = chunks[start : start + _WRITE_BATCH]
            part_vectors = vectors[start : start + _WRITE_BATCH]
            self._call(
                _method(
                    "upsert",
                    ids=[x.chunk_id for x in part],
                    documents=[x.text for x in part],
                    metadatas=[x.meta.to_store() for x in part],
                    embeddings=np.asarray(part_vectors, dtype=np.float32),
                ),
                default=None,
            )
        self._bump_generation()

    def update_metadata(
        self, chunks: Sequence[Record[Meta]], replacing: Mapping[str, Meta] | None = None
    ) -> None:
        if not chunks:
            return
        replacing = replacing or {}
        for start in range(0, len(chunks), _WRITE_BATCH):
            part = chunks[start : start + _WRITE_BATCH]
            metadatas = [x.meta.to_store(replacing.get(x.chunk_id)) for x in part]
            self._call(
                _method("update", ids=[x.chunk_id for x in part], metadatas=metadatas),
                default=None,
            )
        self._bump_generation()

    def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        for start in range(0, len(ids), _WRITE_BATCH):
            self._call(_method("delete", ids=list(ids[start : start + _WRITE_BATCH])), default=None)
        self._bump_generation()

    def delete_where(self, where: Where) -> None:
        if self._collection is None:
            return
        self._call(lambda c: c.delete(where=where), default=None)
        self._bump_generation()

    # Reads ------------------------------------------------------------------------------------
    def get_where(self, where: Where) -> list[tuple[Record[Meta], np.ndarray]]:
        return self._get_with_vectors(where=where)

    def get_with_vectors(self, ids: Sequence[str]) -> list[tuple[Record[Meta], np.ndarray]]:
        # By id is 10-30x cheaper than the same records through a metadata filter at 100k+.
        return self._get_with_vectors(ids=list(ids)) if ids else []

    def _get_with_vectors(self, **selector: Any) -> list[tuple[Record[Meta], np.ndarray]]:
        page = self._call(
            lambda c: c.get(**selector, include=["documents", "metadatas", "embeddings"]),
            default=None,
        )
        if page is None:
            return []
        return [
            (chunk, np.asarray(vector, dtype=np.float32))
            for chunk, vector in zip(self._records(page), page["embeddings"], strict=True)
        ]

    def _pages(self, include: list[str], batch: int) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self._call(
                _method("get", include=include, limit=batch, offset=offset), default=None
            )
            if page is None or not page["ids"]:
                return
            yield page
            offset += len(page["ids"])

    def all_ids(self, batch: int = 10_000) -> list[str]:
        """Every id, without text, metadata or vectors (for fingerprints)."""
        ids: list[str] = []
        for page in self._pages([], batch):
            ids.extend(page["ids"])
        return ids

    def metadata_by_id(self) -> dict[str, Meta]:
        result: dict[str, Meta] = {}
        read = self.records.from_store
        for page in self._pages(["metadatas"], 5000):
            result.update(
                (i, read(raw)) for i, raw in zip(page["ids"], page["metadatas"], strict=True)
            )
        return result

    def iter_chunks(self, batch: int = 2000) -> Iterator[Record[Meta]]:
        for page in self._pages(["documents", "metadatas"], batch):
            yield from self._records(page)

    def get(self, ids: Sequence[str]) -> list[Record[Meta]]:
        if not ids:
            return []
        page = self._call(
            lambda c: c.get(ids=list(ids), include=["documents", "metadatas"]), default=None
        )
        if page is None:
            return []
        by_id = {c.chunk_id: c for c in self._records(page)}
        return [by_id[i] for i in ids if i in by_id]

    def query(
        self, vector: np.ndarray, k: int, where: Where | None = None
    ) -> list[tuple[Record[Meta], float]]:
        result = self._call(
            lambda c: c.query(
                query_embeddings=np.asarray(vector, dtype=np.float32).reshape(1, -1),
                n_results=k,
                where=where or None,
                include=["documents", "metadatas", "distances"],
            ),
            default=None,
        )
        if result is None:
            return []
        hits = []
        for chunk_id, text, meta, distance in zip(
            result["ids"][0],
            result["documents"][0],
            result["metadatas"][0],
            result["distances"][0],
            strict=True,
        ):
            if meta is None:
                continue  # deleted by another process while we searched; gone next time
            chunk = Record(chunk_id, text, self.records.from_store(meta))
            hits.append((chunk, 1.0 - float(distance)))
        return hits

    def count(self) -> int:
        return int(self._call(lambda c: c.count(), default=0))

    def _records(self, page: dict[str, Any]) -> Iterator[Record[Meta]]:
        read = self.records.from_store
        for record_id, text, raw in zip(
            page["ids"], page["documents"], page["metadatas"], strict=True
        ):
            yield Record(record_id, text, read(raw))

    def info(self) -> dict[str, Any]:
        return {"collection": self.name, "embedding_model": self.model_id, "dim": self.dim}


def _method(name: str, **kwargs: Any) -> Callable[[Any], Any]:
    """collection.<name>(**kwargs) as a callable for ChromaStore._call."""
    return lambda collection: getattr(collection, name)(**kwargs)
