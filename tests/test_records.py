"""Chunk and sentence metadata: the one encoding for the store, read back, and records of
the previous code read as they were meant."""

from __future__ import annotations

from dataclasses import replace

import pytest

from assistant.retrieve import Filters
from assistant.store.records import ChunkMeta, SentenceMeta, group_key

FLAT = (str, int, float, bool)

CHUNK = ChunkMeta(
    doc_id="docs/budget 2026.md",
    source="budget 2026.md",
    path="/srv/docs/budget 2026.md",
    title="Budget 2026",
    section="2. Staff",
    language="sv",
    page=3,
    char_start=120,
    char_end=840,
    tokens=178,
    chunk_index=4,
    n_chunks=9,
    content_hash="ab" * 32,
    groups=("ekonomi, budget", "hälsa", "r&d 100%", "100%2C"),
    sentence_ids=("s1", "s2", "s3"),
)


def _flat(encoded: dict[str, object]) -> None:
    assert all(isinstance(v, FLAT) for v in encoded.values()), encoded


def test_chunk_metadata_round_trip() -> None:
    encoded = CHUNK.to_store()
    _flat(encoded)
    assert ChunkMeta.from_store(encoded) == CHUNK
    # What the store filters on: the marker key of each group, "" for none.
    assert all(encoded[group_key(g)] is True for g in CHUNK.groups)
    public = replace(CHUNK, groups=(), page=None, sentence_ids=None, path="")
    encoded = public.to_store()
    _flat(encoded)
    assert encoded["groups"] == "" and not any(k.startswith("group:") for k in encoded)
    assert "page" not in encoded and "sentence_ids" not in encoded and "path" not in encoded
    assert ChunkMeta.from_store(encoded) == public
    # A chunk whose sentences were all too short lists none: not the same as "not listed".
    none_listed = replace(CHUNK, sentence_ids=())
    assert ChunkMeta.from_store(none_listed.to_store()).sentence_ids == ()


def test_sentence_metadata_round_trip() -> None:
    meta = SentenceMeta.of_chunk(CHUNK, "chunk-1", 10, 52, "Lahden Tilakeskus 1 000 euroa")
    assert (meta.doc_id, meta.page, meta.groups) == (CHUNK.doc_id, 3, CHUNK.groups)
    written = replace(meta, writer="host:42:abc", written_at=1_767_000_000)
    for record in (meta, written):
        encoded = record.to_store()
        _flat(encoded)
        assert SentenceMeta.from_store(encoded) == record
    assert "writer" not in meta.to_store() and "written_at" not in meta.to_store()


def test_records_written_by_the_previous_code_read_as_before() -> None:
    """Flat dicts exactly as the code before the typed model wrote them (comma-joined groups,
    no path or sentence ids in older chunks): read without a re-ingest, and written again
    with the same keys and values."""
    old_chunk = {
        "doc_id": "corpus/plan.txt",
        "source": "plan.txt",
        "title": "Plan",
        "section": "",
        "language": "sv",
        "char_start": 0,
        "char_end": 400,
        "tokens": 90,
        "content_hash": "h",
        "groups": "finance,hr",
        "group:finance": True,
        "group:hr": True,
        "page": 2,
        "chunk_index": 0,
        "n_chunks": 1,
        "path": "/data/corpus/plan.txt",
        "sentence_ids": "a1,b2",
    }
    meta = ChunkMeta.from_store(old_chunk)
    assert meta.groups == ("finance", "hr") and meta.sentence_ids == ("a1", "b2")
    assert meta.page == 2 and meta.path == "/data/corpus/plan.txt"
    assert meta.to_store() == old_chunk
    # Older still: no path, no sentence ids, public.
    oldest = {k: v for k, v in old_chunk.items() if k not in ("path", "sentence_ids")}
    oldest = {**{k: v for k, v in oldest.items() if not k.startswith("group:")}, "groups": ""}
    meta = ChunkMeta.from_store(oldest)
    assert (meta.path, meta.sentence_ids, meta.groups) == ("", None, ())
    assert meta.to_store() == oldest
    old_sentence = {
        "doc_id": "corpus/plan.txt",
        "language": "sv",
        "groups": "hr",
        "group:hr": True,
        "content_hash": "h",
        "page": 2,
        "source": "plan.txt",
        "parent": "c1",
        "start": 0,
        "end": 40,
        "context": "",
        "writer": "host:1:x",
        "written_at": 1_700_000_000,
    }
    sentence = SentenceMeta.from_store(old_sentence)
    assert sentence.parent == "c1" and sentence.groups == ("hr",) and sentence.writer
    assert sentence.to_store() == old_sentence
    # Before sentences named their writer; unknown keys are ignored.
    bare = {k: v for k, v in old_sentence.items() if k not in ("writer", "written_at")}
    sentence = SentenceMeta.from_store({**bare, "someday": "x"})
    assert (sentence.writer, sentence.written_at) == (None, 0)


@pytest.mark.parametrize("raw", [None, {}, {"page": "3", "char_start": None, "groups": None}])
def test_missing_or_odd_values_take_the_defaults(raw: dict[str, object] | None) -> None:
    meta = ChunkMeta.from_store(raw)
    assert (meta.doc_id, meta.page, meta.char_start, meta.groups) == ("", None, 0, ())
    assert meta.sentence_ids is None and meta.language == "und"


def test_an_update_removes_the_groups_a_record_no_longer_has() -> None:
    before = replace(CHUNK, groups=("hr", "ekonomi, budget"))
    after = replace(CHUNK, groups=("ekonomi, budget",))
    encoded = after.to_store(replacing=before)
    # Chroma merges an update into the stored metadata: None deletes the key.
    assert encoded[group_key("hr")] is None and encoded[group_key("ekonomi, budget")] is True
    assert ChunkMeta.from_store({k: v for k, v in encoded.items() if v is not None}) == after


def test_access_filter_reads_the_groups_as_a_tuple() -> None:
    comma = replace(CHUNK, groups=("ekonomi, budget",))
    assert Filters(groups=("ekonomi, budget",)).allows(comma)
    # Before, the comma-joined string was split: "budget" alone matched this document.
    assert not Filters(groups=("budget",)).allows(comma)
    assert not Filters(groups=("ekonomi",)).allows(comma)
    where = Filters(groups=("hälsa",)).where()
    assert where == {"$or": [{"groups": ""}, {"group:hälsa": True}]}
