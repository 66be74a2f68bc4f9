"""Consistency of the chunk and sentence collections: what `assistant index check` reports
and what every ingest repairs at its end.

* A chunk lists its sentence ids (``sentence_ids``); each must exist. A chunk missing some is
  damage: retrieval would rank it without its sentences and the extractive answer would lack
  them. Every ingest writes them again (Ingestor._repair).
* A sentence whose chunk is gone is an orphan. It may be deleted when its writer is this
  lock's (the lock is held, so that run is over), or when it is older than a grace period:
  a writer using another data directory (another host on the same Chroma server) may still be
  about to write its chunk.
* A document whose chunks disagree on the content hash or the chunk count was left halfway
  by a killed run; re-ingesting its file completes it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from assistant.store.base import VectorStore
from assistant.store.records import ChunkMeta, SentenceMeta

# Longer than any one file's sentences-then-chunks write, with a wide margin.
ORPHAN_GRACE_SECONDS = 900


@dataclass
class Damage:
    chunks: int = 0
    sentences: int = 0
    # chunk id -> its listed sentence ids that do not exist
    missing: dict[str, list[str]] = field(default_factory=dict)
    # sentences without a chunk that may be deleted now
    orphans: list[str] = field(default_factory=list)
    # sentences without a chunk, written by another writer within the grace period
    recent_orphans: int = 0
    # doc id -> its file's path, for documents with mixed hashes or missing chunks
    incomplete: dict[str, str] = field(default_factory=dict)
    repaired: int = 0
    documents_repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.orphans or self.incomplete)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "chunks": self.chunks,
            "sentences": self.sentences,
            "chunks_missing_sentences": len(self.missing),
            "missing_sentences": sum(len(v) for v in self.missing.values()),
            "orphan_sentences": len(self.orphans),
            "recent_orphans_of_another_writer": self.recent_orphans,
            "incomplete_documents": sorted(self.incomplete),
            "sentences_repaired": self.repaired,
            "documents_repaired": self.documents_repaired,
        }


def inspect(
    store: VectorStore[ChunkMeta],
    sentences: VectorStore[SentenceMeta],
    writer: str,
    grace_seconds: float = ORPHAN_GRACE_SECONDS,
) -> Damage:
    chunks = store.metadata_by_id()
    records = sentences.metadata_by_id()
    damage = Damage(chunks=len(chunks), sentences=len(records))
    for chunk_id, meta in chunks.items():
        listed = meta.sentence_ids
        if listed is None:
            continue  # written before chunks listed their sentences: nothing to compare
        absent = [s for s in listed if s not in records]
        if absent:
            damage.missing[chunk_id] = absent
    now = time.time()
    for sentence_id, sentence in records.items():
        if sentence.parent in chunks:
            continue
        mine = sentence.writer in (None, writer)
        old = now - sentence.written_at > grace_seconds
        if mine or old:
            damage.orphans.append(sentence_id)
        else:
            damage.recent_orphans += 1
    per_doc: dict[str, list[ChunkMeta]] = defaultdict(list)
    for meta in chunks.values():
        per_doc[meta.doc_id].append(meta)
    for doc_id, metas in per_doc.items():
        hashes = {m.content_hash for m in metas}
        counts = {m.n_chunks for m in metas}
        if len(hashes) > 1 or counts != {len(metas)}:
            damage.incomplete[doc_id] = metas[0].path
    return damage
