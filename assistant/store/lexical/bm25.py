"""Tokens, and one version of the BM25 index: built from chunks, searched, fingerprinted.

Nothing here touches the disk or the store; cache.py keeps a version on disk and
refresh.py decides when to build a new one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from assistant.schema import Chunk
from assistant.store.records import LexicalMeta

_WORD = re.compile(r"\w+", re.UNICODE)
_STEMMER_NAMES = {
    "sv": "swedish",
    "fi": "finnish",
    "en": "english",
    "de": "german",
    "da": "danish",
    "nb": "norwegian",
    "no": "norwegian",
    "fr": "french",
    "es": "spanish",
    "nl": "dutch",
    "it": "italian",
    "pt": "portuguese",
    "et": "estonian",
    "ru": "russian",
}


@cache
def _stemmer(language: str) -> Callable[[list[str]], list[str]] | None:
    name = _STEMMER_NAMES.get(language)
    if name is None:
        return None
    import Stemmer

    return Stemmer.Stemmer(name).stemWords  # type: ignore[no-any-return]


def tokenize(text: str, languages: Iterable[str]) -> list[str]:
    """Lower-cased words, stemmed for each given language (the union, for questions whose
    language differs from the document's)."""
    words = _WORD.findall(text.lower())
    tokens = list(words)
    for language in dict.fromkeys(languages):
        stem = _stemmer(language)
        if stem is not None:
            tokens.extend(s for s, w in zip(stem(words), words, strict=True) if s != w)
    return tokens


def fingerprint(ids: Iterable[str]) -> str:
    digest = hashlib.sha256()
    count = 0
    for chunk_id in sorted(ids):
        digest.update(chunk_id.encode())
        count += 1
    return f"{count}:{digest.hexdigest()[:24]}"


class SharedMeta:
    """Chunks of one document repeat doc_id, language and groups: one LexicalMeta each."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, tuple[str, ...]], LexicalMeta] = {}

    def __call__(self, doc_id: str, language: str, groups: Iterable[str]) -> LexicalMeta:
        key = (str(doc_id), str(language), tuple(str(g) for g in groups))
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = LexicalMeta(*key)
        return found


@dataclass(frozen=True)
class IndexVersion:
    """One immutable version of the index: a refresh builds a new one and swaps it in, so a
    concurrent search never sees ids of one version with scores of another."""

    ids: list[str] = field(default_factory=list)
    # What an access filter may ask about each chunk; the rest stays in the store.
    meta: list[LexicalMeta] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    fingerprint: str = ""
    generation: str = ""
    bm25: Any = None
    loaded: bool = False  # built or loaded; False means "nothing usable yet"


def build_version(chunks: Iterable[Chunk], generation: str = "") -> IndexVersion:
    import bm25s

    ids: list[str] = []
    meta: list[LexicalMeta] = []
    corpus = []
    shared = SharedMeta()
    for chunk in chunks:
        ids.append(chunk.chunk_id)
        meta.append(shared(chunk.meta.doc_id, chunk.meta.language, chunk.meta.groups))
        corpus.append(tokenize(chunk.indexed_text(), [chunk.meta.language]))
    bm25 = None
    if ids:
        bm25 = bm25s.BM25()
        bm25.index(corpus, show_progress=False)
    return IndexVersion(
        ids=ids,
        meta=meta,
        languages=sorted({m.language for m in meta}),
        fingerprint=fingerprint(ids),
        generation=generation,
        bm25=bm25,
        loaded=True,
    )


def search_version(
    version: IndexVersion,
    question: str,
    k: int,
    question_language: str,
    allowed: Callable[[LexicalMeta], bool] | None = None,
) -> list[tuple[str, float]]:
    if version.bm25 is None or not version.ids or k <= 0:
        return []
    tokens = tokenize(question, [question_language, *version.languages])
    token_ids = version.bm25.get_tokens_ids(tokens)
    if not token_ids:
        return []
    scores = np.asarray(version.bm25.get_scores(token_ids), dtype=np.float32)
    matching = np.flatnonzero(scores > 0)
    if not len(matching):
        return []
    # Access filters are checked on the best candidates only, widening the window when
    # too many are filtered out: a mask over every chunk costs ~50 ms at 100k chunks.
    width = k if allowed is None else max(4 * k, 64)
    while True:
        width = min(width, len(matching))
        if width < len(matching):
            top = matching[np.argpartition(-scores[matching], width - 1)[:width]]
        else:
            top = matching
        top = top[np.argsort(-scores[top], kind="stable")]
        hits = [
            (version.ids[i], float(scores[i]))
            for i in top
            if allowed is None or allowed(version.meta[i])
        ][:k]
        if len(hits) >= k or width == len(matching):
            return hits
        width *= 4
