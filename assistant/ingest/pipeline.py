"""Incremental, crash-safe ingestion into the vector store and the lexical index.

Chroma is the single source of truth: every chunk carries its document's content hash, so
the diff against the files needs no separate manifest that could drift. For a changed file the
new chunks are written before the stale ones are deleted; a run killed in between leaves a
document with mixed hashes, which the next run sees as changed and repairs.

One writer at a time: every run holds the collection's write lock (assistant.ingest.lock),
so the orphan sweep at its end can never see the half-written records of another run of this
data directory. A chunk's sentences are written before the chunk, so a kill leaves at worst
sentences without a chunk (swept) and never a chunk without its sentences; should that
happen anyway (records deleted by hand, an older version), every run checks each chunk's
listed sentence ids and writes the missing ones again (assistant.ingest.check).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from assistant.errors import DocumentError
from assistant.ingest.check import Damage, inspect
from assistant.ingest.discovery import discover, groups_for
from assistant.ingest.documents import (
    chunk_document,
    content_hash,
    document_id,
    load_document,
    sentence_records,
)
from assistant.ingest.loaders import Limits
from assistant.ingest.lock import writer_id, writer_lock
from assistant.ingest.sentences import Sentence, sentences_of
from assistant.schema import Chunk
from assistant.store.base import VectorStore
from assistant.store.lexical import LexicalIndex, sync
from assistant.store.records import ChunkMeta, SentenceMeta
from embeddings.base import Embedder

if TYPE_CHECKING:
    from assistant.core import Assistant

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")
Existing = dict[str, dict[str, ChunkMeta]]


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    # (doc id, old groups, new groups) for every document whose access groups changed.
    groups_changed: list[tuple[str, str, str]] = field(default_factory=list)
    chunks_written: int = 0
    chunks_deleted: int = 0
    chunks_total: int = 0
    # Found at the end of the run and repaired (see assistant.ingest.check).
    sentences_repaired: int = 0
    orphans_removed: int = 0
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
            "groups_changed": [
                {"doc_id": d, "old": old, "new": new} for d, old, new in self.groups_changed
            ],
            "chunks_written": self.chunks_written,
            "chunks_deleted": self.chunks_deleted,
            "chunks_total": self.chunks_total,
            "sentences_repaired": self.sentences_repaired,
            "orphans_removed": self.orphans_removed,
            "lexical_rebuilt": self.lexical_rebuilt,
            "seconds": round(self.seconds, 2),
        }


# Texts (chunks and sentences) gathered from files before they are embedded and written.
BATCH_TEXTS = 512


@dataclass
class _Plan:
    """What ingesting one changed file will write."""

    doc_id: str
    old: dict[str, ChunkMeta]
    chunks: list[Chunk]
    new: list[Chunk]
    kept: list[Chunk]
    sentences: list[Sentence]
    old_groups: tuple[str, ...] | None
    groups: tuple[str, ...]

    @property
    def texts(self) -> int:
        return len(self.new) + len(self.sentences)

    @property
    def stale(self) -> set[str]:
        return set(self.old) - {chunk.chunk_id for chunk in self.chunks}


class Parts(NamedTuple):
    store: VectorStore[ChunkMeta]
    sentences: VectorStore[SentenceMeta]
    lexical: LexicalIndex
    embedder: Embedder


class Ingestor:
    store: VectorStore[ChunkMeta]
    sentences: VectorStore[SentenceMeta]
    lexical: LexicalIndex
    embedder: Embedder

    def __init__(
        self,
        parts: Callable[[], Parts],
        chunk_tokens: int,
        overlap: int,
        *,
        limits: Limits | None = None,
        lock: Path | None = None,
        id_root: Path | None = None,
    ) -> None:
        """parts opens the stores, the lexical index and the embedder: called once the write
        lock is held, because two processes opening a new embedded store at once race to
        create its tables."""
        self._parts = parts
        self._opened = False
        self.chunk_tokens = chunk_tokens
        self.overlap = overlap
        self.limits = limits or Limits()
        self.lock = lock
        self.writer = writer_id(lock) if lock is not None else "unlocked"
        # Document ids are paths relative to this folder (absolute outside it).
        self.id_root = (id_root or Path.cwd()).resolve()

    @classmethod
    def for_assistant(cls, assistant: Assistant) -> Ingestor:
        from assistant.ingest.lock import lock_path

        s = assistant.settings

        def parts() -> Parts:
            return Parts(
                assistant.store, assistant.sentences, assistant.lexical, assistant.embedder
            )

        return cls(
            parts,
            s.chunk_tokens,
            s.chunk_overlap,
            limits=Limits.from_settings(s),
            lock=lock_path(s.index_dir, s.collection),
            # The folder that holds the data dir: ids move with the index, not with the
            # working directory of whoever runs the ingest.
            id_root=s.documents_root or Path(s.data_dir).resolve().parent,
        )

    def _open(self) -> None:
        if not self._opened:
            self.store, self.sentences, self.lexical, self.embedder = self._parts()
            self._opened = True

    @contextlib.contextmanager
    def _writing(self, wait: bool, on_wait: Callable[[str], None] | None) -> Iterator[None]:
        if self.lock is None:
            self._open()
            yield
            return
        with writer_lock(self.lock, wait=wait, on_wait=on_wait):
            self._open()
            # A store opened before the lock was ours may hold a view from before the
            # previous writer's changes (embedded Chroma): look again before writing.
            self.store.follow_writes()
            self.sentences.follow_writes()
            yield

    def ingest(
        self,
        paths: Sequence[Path],
        *,
        prune: bool = False,
        groups: Iterable[str] | None = None,
        progress: Progress | None = None,
        wait: bool = True,
        on_wait: Callable[[str], None] | None = None,
    ) -> IngestReport:
        """Ingest files and folders. groups=None keeps each document's access groups (or
        takes them from a .assistant-groups file beside it); a sequence sets them, () makes
        the documents public."""
        started = time.perf_counter()
        with self._writing(wait, on_wait):
            report = self._ingest(paths, prune, groups, progress)
        report.seconds = time.perf_counter() - started
        return report

    def _ingest(
        self,
        paths: Sequence[Path],
        prune: bool,
        groups: Iterable[str] | None,
        progress: Progress | None,
    ) -> IngestReport:
        report = IngestReport()
        explicit = None if groups is None else _normalise_groups(groups)
        files = discover(paths, report.failed)
        existing: Existing = defaultdict(dict)
        by_path: dict[str, str] = {}
        for chunk_id, meta in self.store.metadata_by_id().items():
            existing[meta.doc_id][chunk_id] = meta
            if meta.path:
                by_path[meta.path] = meta.doc_id

        group_files: dict[Path, tuple[str, ...] | None] = {}
        pending: list[_Plan] = []
        for index, (path, root) in enumerate(files):
            if progress:
                progress(path.name, index, len(files))
            try:
                chosen = explicit
                if chosen is None:
                    chosen = groups_for(path, root, group_files)
                plan = self._plan_file(path, chosen, existing, by_path, report)
            except DocumentError as exc:
                report.failed.append((exc.path, exc.reason))
                continue
            except OSError as exc:
                report.failed.append((str(path), f"cannot read: {exc.strerror or exc}"))
                continue
            if plan is not None:
                pending.append(plan)
            # Embedding and writing in batches that span files: small files alone would
            # make small embedding batches and many store round trips.
            if sum(p.texts for p in pending) >= BATCH_TEXTS:
                self._commit(pending, report)
                pending = []
        self._commit(pending, report)
        if progress:
            progress("", len(files), len(files))

        if prune:
            for doc_id, chunks in existing.items():
                meta = next(iter(chunks.values()))
                if not Path(meta.path or doc_id).exists():
                    self.store.delete(list(chunks))
                    report.removed.append(doc_id)
                    report.chunks_deleted += len(chunks)

        damage = self._repair(inspect(self.store, self.sentences, self.writer))
        report.sentences_repaired = damage.repaired
        report.orphans_removed = len(damage.orphans)
        ids = list(self.store.metadata_by_id())
        report.chunks_total = len(ids)
        report.lexical_rebuilt = sync(self.lexical, ids, self.store.iter_chunks)
        return report

    # Files: planned one by one, written in batches ----------------------------------------
    def _ingest_file(
        self,
        path: Path,
        groups: tuple[str, ...] | None,
        existing: Existing,
        by_path: dict[str, str],
        report: IngestReport,
    ) -> None:
        plan = self._plan_file(path, groups, existing, by_path, report)
        if plan is not None:
            self._commit([plan], report)

    def _plan_file(
        self,
        path: Path,
        groups: tuple[str, ...] | None,
        existing: Existing,
        by_path: dict[str, str],
        report: IngestReport,
    ) -> _Plan | None:
        """Load and chunk one file and decide what to write (nothing is written yet); None
        when it is unchanged."""
        size = path.stat().st_size
        if size > self.limits.max_file_bytes:
            raise DocumentError(str(path), self.limits.file_too_large(size))
        doc_id = document_id(path, self.id_root)
        old = existing.get(doc_id, {})
        # The same file indexed under another id (ids were relative to the working directory
        # before): its chunks become stale and the document is written under its new id.
        moved_from = by_path.get(str(path.resolve()))
        moved = not old and moved_from is not None and moved_from != doc_id
        if moved:
            old = existing.pop(str(moved_from), {})
        old_groups = _stored_groups(old)
        if groups is None:
            groups = old_groups or ()
        digest = content_hash(path, self.chunk_tokens, self.overlap, groups)
        if (
            old
            and not moved
            and all(m.content_hash == digest and m.n_chunks == len(old) for m in old.values())
        ):
            report.unchanged.append(doc_id)
            return None
        document = load_document(path, groups, doc_id=doc_id, limits=self.limits)
        chunks = chunk_document(document, self.chunk_tokens, self.overlap, digest)
        if not any(_LETTER_OR_DIGIT.search(chunk.text) for chunk in chunks):
            raise DocumentError(
                str(path),
                "no text left after cleaning (no letter or digit: only invisible characters, "
                "spaces or punctuation)",
            )
        resolved = str(path.resolve())
        chunks = [replace(chunk, meta=replace(chunk.meta, path=resolved)) for chunk in chunks]
        new = [chunk for chunk in chunks if chunk.chunk_id not in old]
        # Chunks whose text is unchanged keep their vectors, but their metadata (hash,
        # positions) must be rewritten so the document reads as complete next time.
        kept = [
            replace(chunk, meta=replace(chunk.meta, sentence_ids=old[chunk.chunk_id].sentence_ids))
            for chunk in chunks
            if chunk.chunk_id in old
        ]
        sentences = sentence_records(document, new) if new else []
        listed: dict[str, list[str]] = {chunk.chunk_id: [] for chunk in new}
        for sentence in sentences:
            listed[sentence.parent.chunk_id].append(sentence.sentence_id)
        # Retrieval fetches a chunk's sentences by these ids, not by a filter.
        new = [
            replace(chunk, meta=replace(chunk.meta, sentence_ids=tuple(listed[chunk.chunk_id])))
            for chunk in new
        ]
        return _Plan(doc_id, old, chunks, new, kept, sentences, old_groups, groups)

    def _commit(self, plans: list[_Plan], report: IngestReport) -> None:
        """Write planned files: the sentences of all of them first, then their chunks, then
        the stale records. A chunk in the store therefore always has its sentences, and
        sentences left without a chunk by a kill are swept at the end of the next run."""
        if not plans:
            return
        sentences = [s for plan in plans for s in plan.sentences]
        new = [c for plan in plans for c in plan.new]
        if sentences:
            self._write_sentences(sentences)
        if new:
            self.store.upsert(new, self.embedder.embed_passages([c.indexed_text() for c in new]))
        for plan in plans:
            if plan.kept:
                self._rewrite_metadata(plan.kept, plan.old)
        stale = sorted({i for plan in plans for i in plan.stale})
        if stale:
            self.store.delete(stale)
            self.sentences.delete_where({"parent": {"$in": stale}})
        for plan in plans:
            report.chunks_written += len(plan.new)
            report.chunks_deleted += len(plan.stale)
            (report.updated if plan.old else report.added).append(plan.doc_id)
            if plan.old and tuple(plan.old_groups or ()) != plan.groups:
                report.groups_changed.append(
                    (plan.doc_id, ",".join(plan.old_groups or ()), ",".join(plan.groups))
                )

    def _write_sentences(self, sentences: Sequence[Sentence]) -> None:
        records = []
        written_at = int(time.time())
        for sentence in sentences:
            record = sentence.as_record()
            # Who wrote it and when: the orphan sweep of another writer leaves it alone
            # until its own run has had time to write the chunk (assistant.ingest.check).
            meta = replace(record.meta, writer=self.writer, written_at=written_at)
            records.append(replace(record, meta=meta))
        vectors = self.embedder.embed_passages([s.embedding_text() for s in sentences])
        self.sentences.upsert(records, vectors)

    def _rewrite_metadata(self, kept: list[Chunk], old: dict[str, ChunkMeta]) -> None:
        """New metadata (hash, positions, access groups) for chunks whose text is unchanged,
        and the same hash and groups for their sentences (a group the document no longer has
        is removed: the store is told what the update replaces)."""
        self.store.update_metadata(kept, replacing=old)
        by_id = {chunk.chunk_id: chunk for chunk in kept}
        sentences = []
        replacing: dict[str, SentenceMeta] = {}
        for record, _ in self.sentences.get_where({"parent": {"$in": list(by_id)}}):
            parent = by_id[record.meta.parent].meta
            meta = replace(record.meta, groups=parent.groups, content_hash=parent.content_hash)
            sentences.append(replace(record, meta=meta))
            replacing[record.chunk_id] = record.meta
        if sentences:
            self.sentences.update_metadata(sentences, replacing=replacing)

    # Consistency ----------------------------------------------------------------------------
    def check(
        self,
        *,
        repair: bool = False,
        wait: bool = True,
        on_wait: Callable[[str], None] | None = None,
    ) -> Damage:
        """What `assistant index check` reports; with repair, also fixes it. Holds the write
        lock either way: records of a run in progress are not damage."""
        with self._writing(wait, on_wait):
            damage = inspect(self.store, self.sentences, self.writer)
            if repair:
                damage = self._repair(damage)
                if damage.repaired or damage.orphans:
                    ids = list(self.store.metadata_by_id())
                    sync(self.lexical, ids, self.store.iter_chunks)
        return damage

    def _repair(self, damage: Damage) -> Damage:
        """Delete the orphans that may go, write the missing sentences of every damaged
        chunk again (from its file when unchanged, else from the chunk's own text), and
        re-ingest documents left incomplete whose files are still there."""
        if damage.orphans:
            log.info("removing %d sentences whose chunk is gone", len(damage.orphans))
            self.sentences.delete(damage.orphans)
        if damage.missing:
            chunks = self.store.get(sorted(damage.missing))
            sentences: list[Sentence] = []
            for chunk in chunks:
                page_text = self._page_text(chunk) or chunk.text
                sentences.extend(sentences_of(chunk, page_text))
            log.warning(
                "%d chunks had lost sentence records; writing %d sentences again",
                len(chunks),
                len(sentences),
            )
            if sentences:
                self._write_sentences(sentences)
            listed: dict[str, list[str]] = {chunk.chunk_id: [] for chunk in chunks}
            for sentence in sentences:
                listed[sentence.parent.chunk_id].append(sentence.sentence_id)
            self.store.update_metadata(
                [
                    replace(c, meta=replace(c.meta, sentence_ids=tuple(listed[c.chunk_id])))
                    for c in chunks
                ]
            )
            damage.repaired = sum(len(v) for v in damage.missing.values())
        for doc_id, path in damage.incomplete.items():
            if path and Path(path).is_file():
                report = IngestReport()
                existing: Existing = defaultdict(dict)
                for chunk_id, meta in self.store.metadata_by_id().items():
                    if meta.doc_id == doc_id:
                        existing[doc_id][chunk_id] = meta
                try:
                    self._ingest_file(Path(path), None, existing, {}, report)
                    damage.documents_repaired.append(doc_id)
                except (DocumentError, OSError) as exc:
                    log.warning("could not repair %s: %s", doc_id, exc)
        return damage

    def _page_text(self, chunk: Chunk) -> str | None:
        """The cleaned page a chunk came from, when its file is still the one indexed (table
        rows take their headers from the page)."""
        meta = chunk.meta
        path = Path(meta.path)
        if not meta.path or not path.is_file():
            return None
        try:
            groups = _normalise_groups(meta.groups)
            digest = content_hash(path, self.chunk_tokens, self.overlap, groups)
            if digest != meta.content_hash:
                return None
            document = load_document(path, groups, doc_id=chunk.doc_id, limits=self.limits)
        except (DocumentError, OSError):
            return None
        pages = {page.number: page.text for page in document.pages}
        return pages.get(meta.page)


def _normalise_groups(groups: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({g.strip() for g in groups if g.strip()}))


def _stored_groups(chunks: dict[str, ChunkMeta]) -> tuple[str, ...] | None:
    """The groups a document has in the store (None for a document not indexed yet)."""
    if not chunks:
        return None
    return _normalise_groups(next(iter(chunks.values())).groups)
