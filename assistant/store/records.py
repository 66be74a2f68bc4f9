"""Typed metadata of the two kinds of stored records, and their one encoding for the store.

A chunk (ChunkMeta) and a sentence inside it (SentenceMeta) carry typed fields everywhere in
the application; only here are they turned into what Chroma accepts (flat str/int/float/bool
values, no None, no lists) and read back. Records written by earlier versions read the same:
every field they lack has a default, keys this code does not know are ignored.

Encoding, fixed so existing indexes keep working without a re-ingest:
- groups: ``groups`` is the sorted names joined by "," (a "," or "%" inside a name is written
  %2C / %25, so any name survives; names without them read as before) and, for each group,
  a boolean key ``group:<name>`` that the access filter matches on (Chroma cannot filter on
  a list or a substring). "" means public.
- sentence_ids: joined by "," (ids are hex); absent in chunks written before chunks listed
  their sentences, read as None.
- page, writer: absent when None.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

StoreValue = str | int | float | bool
Where = dict[str, Any]

_GROUP_PREFIX = "group:"


def group_key(group: str) -> str:
    """The boolean metadata key that marks a record as visible to a group."""
    return f"{_GROUP_PREFIX}{group}"


def _encode_groups(groups: Iterable[str]) -> str:
    return ",".join(g.replace("%", "%25").replace(",", "%2C") for g in groups)


def _decode_groups(value: Any) -> tuple[str, ...]:
    parts = [p for p in str(value or "").split(",") if p]
    return tuple(p.replace("%2C", ",").replace("%25", "%") for p in parts)


def _int(value: Any, default: int = 0) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _page(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _str(value: Any, default: str = "") -> str:
    return default if value is None else str(value)


def _with_groups(
    values: dict[str, StoreValue | None],
    groups: tuple[str, ...],
    replacing: Visible | None,
) -> dict[str, Any]:
    encoded: dict[str, Any] = {k: v for k, v in values.items() if v is not None}
    encoded["groups"] = _encode_groups(groups)
    for group in groups:
        encoded[group_key(group)] = True
    if replacing is not None:
        # Chroma merges metadata on update: a group the record no longer has is removed
        # explicitly (None deletes the key).
        for group in replacing.groups:
            if group not in groups:
                encoded[group_key(group)] = None
    return encoded


class Visible(Protocol):
    """What the access filter reads of a record (ChunkMeta, SentenceMeta, LexicalMeta)."""

    @property
    def doc_id(self) -> str: ...

    @property
    def language(self) -> str: ...

    @property
    def groups(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class ChunkMeta:
    doc_id: str
    # File name, and the resolved path of the file ("" in records from before it was kept).
    source: str = ""
    path: str = ""
    title: str = ""
    # The last heading at or before the chunk's start.
    section: str = ""
    language: str = "und"
    page: int | None = None
    # Offsets of the chunk in its page's cleaned text, and its size in tokens.
    char_start: int = 0
    char_end: int = 0
    tokens: int = 0
    chunk_index: int = 0
    n_chunks: int = 0
    # Of the whole document (file bytes, chunking settings, pipeline version, groups, title).
    content_hash: str = ""
    groups: tuple[str, ...] = ()
    # The chunk's sentence records; None in chunks written before chunks listed them.
    sentence_ids: tuple[str, ...] | None = None

    def to_store(self, replacing: ChunkMeta | None = None) -> dict[str, Any]:
        """Flat values for the store; replacing: the metadata an update overwrites."""
        values: dict[str, StoreValue | None] = {
            "doc_id": self.doc_id,
            "source": self.source,
            "title": self.title,
            "section": self.section,
            "language": self.language,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "tokens": self.tokens,
            "content_hash": self.content_hash,
            "page": self.page,
            "chunk_index": self.chunk_index,
            "n_chunks": self.n_chunks,
            "path": self.path or None,
            "sentence_ids": None if self.sentence_ids is None else ",".join(self.sentence_ids),
        }
        return _with_groups(values, self.groups, replacing)

    @classmethod
    def from_store(cls, raw: Mapping[str, Any] | None) -> ChunkMeta:
        raw = raw or {}
        listed = raw.get("sentence_ids")
        return cls(
            doc_id=_str(raw.get("doc_id")),
            source=_str(raw.get("source")),
            path=_str(raw.get("path")),
            title=_str(raw.get("title")),
            section=_str(raw.get("section")),
            language=_str(raw.get("language"), "und"),
            page=_page(raw.get("page")),
            char_start=_int(raw.get("char_start")),
            char_end=_int(raw.get("char_end")),
            tokens=_int(raw.get("tokens")),
            chunk_index=_int(raw.get("chunk_index")),
            n_chunks=_int(raw.get("n_chunks")),
            content_hash=_str(raw.get("content_hash")),
            groups=_decode_groups(raw.get("groups")),
            sentence_ids=None if listed is None else tuple(s for s in str(listed).split(",") if s),
        )


@dataclass(frozen=True)
class SentenceMeta:
    doc_id: str
    # The chunk the sentence belongs to, and its offsets in that chunk's text.
    parent: str
    start: int = 0
    end: int = 0
    # Caption and column headers of a table row, or the heading above key-figure tiles.
    context: str = ""
    source: str = ""
    language: str = "und"
    page: int | None = None
    content_hash: str = ""
    groups: tuple[str, ...] = ()
    # Which ingest wrote it and when (unix seconds): the orphan sweep of another writer
    # leaves it alone for a while (assistant.ingest.check). None/0 in older records.
    writer: str | None = None
    written_at: int = 0

    @classmethod
    def of_chunk(
        cls, chunk: ChunkMeta, parent: str, start: int, end: int, context: str
    ) -> SentenceMeta:
        """A sentence inherits its chunk's document, language, page, hash and groups."""
        return cls(
            doc_id=chunk.doc_id,
            parent=parent,
            start=start,
            end=end,
            context=context,
            source=chunk.source,
            language=chunk.language,
            page=chunk.page,
            content_hash=chunk.content_hash,
            groups=chunk.groups,
        )

    def to_store(self, replacing: SentenceMeta | None = None) -> dict[str, Any]:
        values: dict[str, StoreValue | None] = {
            "doc_id": self.doc_id,
            "language": self.language,
            "content_hash": self.content_hash,
            "page": self.page,
            "source": self.source,
            "parent": self.parent,
            "start": self.start,
            "end": self.end,
            "context": self.context,
            "writer": self.writer,
            "written_at": self.written_at or None,
        }
        return _with_groups(values, self.groups, replacing)

    @classmethod
    def from_store(cls, raw: Mapping[str, Any] | None) -> SentenceMeta:
        raw = raw or {}
        return cls(
            doc_id=_str(raw.get("doc_id")),
            parent=_str(raw.get("parent")),
            start=_int(raw.get("start")),
            end=_int(raw.get("end")),
            context=_str(raw.get("context")),
            source=_str(raw.get("source")),
            language=_str(raw.get("language"), "und"),
            page=_page(raw.get("page")),
            content_hash=_str(raw.get("content_hash")),
            groups=_decode_groups(raw.get("groups")),
            writer=None if raw.get("writer") is None else str(raw.get("writer")),
            written_at=_int(raw.get("written_at")),
        )


@dataclass(frozen=True)
class LexicalMeta:
    """What the lexical index keeps of a chunk to filter its hits."""

    doc_id: str
    language: str
    groups: tuple[str, ...]


Meta = TypeVar("Meta", ChunkMeta, SentenceMeta)


def visible_where(groups: Iterable[str]) -> Where:
    """Store filter: public records and those of any of the groups."""
    visible: list[Where] = [{"groups": ""}]
    visible += [{group_key(g): True} for g in groups]
    return visible[0] if len(visible) == 1 else {"$or": visible}
