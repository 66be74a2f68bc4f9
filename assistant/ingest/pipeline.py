"""Incremental, crash-safe ingestion into the vector store and the lexical index.

Chroma is the single source of truth: every chunk carries its document's content hash, so
the diff against the files needs no separate manifest that could drift. For a changed file the
new chunks are written before the stale ones are deleted; a run killed in between leaves a
document with mixed hashes, which the next run sees as changed and repairs.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from assistant.errors import DocumentError
from assistant.ingest.documents import (
    chunk_document,
    content_hash,
    document_id,
    load_document,
    sentence_records,
)
from assistant.ingest.loaders import SUPPORTED_SUFFIXES
from assistant.schema import Chunk
from assistant.store.base import VectorStore
from assistant.store.lexical import LexicalIndex, sync
from embeddings.base import Embedder

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks_written: int = 0
    chunks_deleted: int = 0
    chunks_total: int = 0
    lexical_rebuilt: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "chunks_written": self.chunks_written,
            "chunks_deleted": self.chunks_deleted,
            "chunks_total": self.chunks_total,
            "lexical_rebuilt": self.lexical_rebuilt,
            "seconds": round(self.seconds, 2),
        }


def discover(paths: Sequence[Path], report: IngestReport) -> list[Path]:
    """Supported files under the given paths; explicit bad paths go to report.failed."""
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                hidden = any(part.startswith(".") for part in candidate.relative_to(path).parts)
                if (
                    candidate.is_file()
                    and not hidden
                    and candidate.name.lower() != "readme.md"
                    and candidate.suffix.lower() in SUPPORTED_SUFFIXES
                ):
                    found[candidate] = None
        elif path.is_file():
            if path.suffix.lower() in SUPPORTED_SUFFIXES:
                found[path] = None
            else:
                report.failed.append(
                    (str(path), f"unsupported file type {path.suffix or '(none)'}")
                )
        else:
            report.failed.append((str(path), "no such file or directory"))
    return list(found)


class Ingestor:
    def __init__(
        self,
        store: VectorStore,
        sentences: VectorStore,
        lexical: LexicalIndex,
        embedder: Embedder,
        chunk_tokens: int,
        overlap: int,
    ) -> None:
        self.store = store
        self.sentences = sentences
        self.lexical = lexical
        self.embedder = embedder
        self.chunk_tokens = chunk_tokens
        self.overlap = overlap

    def ingest(
        self,
        paths: Sequence[Path],
        *,
        prune: bool = False,
        groups: Iterable[str] = (),
        progress: Progress | None = None,
    ) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        group_tuple = tuple(sorted({g.strip() for g in groups if g.strip()}))
        files = discover(paths, report)
        existing: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for chunk_id, meta in self.store.metadata_by_id().items():
            existing[str(meta.get("doc_id"))][chunk_id] = meta

        for index, path in enumerate(files):
            if progress:
                progress(path.name, index, len(files))
            try:
                self._ingest_file(path, group_tuple, existing, report)
            except DocumentError as exc:
                report.failed.append((exc.path, exc.reason))
            except OSError as exc:
                report.failed.append((str(path), f"cannot read: {exc.strerror or exc}"))
        if progress:
            progress("", len(files), len(files))

        if prune:
            for doc_id, chunks in existing.items():
                meta = next(iter(chunks.values()))
                if not Path(str(meta.get("path", doc_id))).exists():
                    self.store.delete(list(chunks))
                    report.removed.append(doc_id)
                    report.chunks_deleted += len(chunks)

        ids = list(self.store.metadata_by_id())
        self._delete_orphan_sentences(set(ids))
        report.chunks_total = len(ids)
        report.lexical_rebuilt = sync(self.lexical, ids, self.store.iter_chunks)
        report.seconds = time.perf_counter() - started
        return report

    def _ingest_file(
        self,
        path: Path,
        groups: tuple[str, ...],
        existing: dict[str, dict[str, dict[str, Any]]],
        report: IngestReport,
    ) -> None:
        doc_id = document_id(path)
        digest = content_hash(path, self.chunk_tokens, self.overlap, groups)
        old = existing.get(doc_id, {})
        if old and all(
            m.get("content_hash") == digest and m.get("n_chunks") == len(old) for m in old.values()
        ):
            report.unchanged.append(doc_id)
            return
        document = load_document(path, groups)
        chunks = chunk_document(document, self.chunk_tokens, self.overlap, digest)
        for chunk in chunks:
            chunk.metadata["path"] = str(path.resolve())
        new = [chunk for chunk in chunks if chunk.chunk_id not in old]
        # Chunks whose text is unchanged keep their vectors, but their metadata (hash,
        # positions) must be rewritten so the document reads as complete next time.
        kept = [chunk for chunk in chunks if chunk.chunk_id in old]
        if new:
            # Sentences first: a chunk in the store always has its sentences, and sentences
            # left without a chunk by a kill are swept at the end of the next run.
            sentences = sentence_records(document, new)
            listed: dict[str, list[str]] = {chunk.chunk_id: [] for chunk in new}
            for sentence in sentences:
                listed[sentence.parent.chunk_id].append(sentence.sentence_id)
            for chunk in new:
                # Retrieval fetches a chunk's sentences by these ids, not by a filter.
                chunk.metadata["sentence_ids"] = ",".join(listed[chunk.chunk_id])
            sentence_vectors = self.embedder.embed_passages([s.embedding_text() for s in sentences])
            self.sentences.upsert([s.as_record() for s in sentences], sentence_vectors)
            vectors = self.embedder.embed_passages([c.indexed_text() for c in new])
            self.store.upsert(new, vectors)
        if kept:
            self._rewrite_metadata(kept, old)
        stale = sorted(set(old) - {chunk.chunk_id for chunk in chunks})
        if stale:
            self.store.delete(stale)
            self.sentences.delete_where({"parent": {"$in": stale}})
        report.chunks_written += len(new)
        report.chunks_deleted += len(stale)
        (report.updated if old else report.added).append(doc_id)

    def _rewrite_metadata(self, kept: list[Chunk], old: dict[str, dict[str, Any]]) -> None:
        """New metadata (hash, positions, access groups) for chunks whose text is unchanged,
        and the same groups for their sentences. Chroma merges metadata on update, so a
        group the document no longer has must be removed explicitly (set to None)."""
        updated = []
        for chunk in kept:
            removed = {
                k: None
                for k in old[chunk.chunk_id]
                if k.startswith("group:") and k not in chunk.metadata
            }
            updated.append(replace(chunk, metadata={**chunk.metadata, **removed}))
        self.store.update_metadata(updated)
        by_id = {chunk.chunk_id: chunk for chunk in kept}
        sentences = []
        for record, _ in self.sentences.get_where({"parent": {"$in": list(by_id)}}):
            parent = by_id[str(record.metadata["parent"])].metadata
            meta: dict[str, Any] = {k: None for k in record.metadata if k.startswith("group:")}
            meta.update(
                {
                    k: v
                    for k, v in parent.items()
                    if k in ("groups", "content_hash") or k.startswith("group:")
                }
            )
            sentences.append(replace(record, metadata=meta))
        if sentences:
            self.sentences.update_metadata(sentences)

    def _delete_orphan_sentences(self, chunk_ids: set[str]) -> None:
        orphans = [
            sentence_id
            for sentence_id, meta in self.sentences.metadata_by_id().items()
            if meta.get("parent") not in chunk_ids
        ]
        if orphans:
            log.info("removing %d sentences whose chunk is gone", len(orphans))
            self.sentences.delete(orphans)
