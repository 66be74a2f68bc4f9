"""BM25 over the same chunks as the vector store, with Snowball stemming per language.

The index is a derived copy: it is rebuilt from the vector store whenever their fingerprints
(chunk count and a hash of the sorted ids) differ, and when its files are missing or corrupt.
So a killed ingest, a second process that ingested, or a deleted index all heal themselves.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from assistant.schema import Chunk

log = logging.getLogger(__name__)

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
_FORMAT_VERSION = 1


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


class LexicalIndex:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.ids: list[str] = []
        self.meta: list[dict[str, Any]] = []
        self.languages: list[str] = []
        self.fingerprint = ""
        self._bm25: Any = None

    # Building and persistence -------------------------------------------------------------
    def build(self, chunks: Iterable[Chunk]) -> None:
        import bm25s

        ids, meta, corpus = [], [], []
        for chunk in chunks:
            language = str(chunk.metadata.get("language", "und"))
            ids.append(chunk.chunk_id)
            meta.append({k: chunk.metadata.get(k) for k in ("doc_id", "language", "groups")})
            corpus.append(tokenize(chunk.indexed_text(), [language]))
        self.ids, self.meta = ids, meta
        self.languages = sorted({str(m["language"]) for m in meta})
        self.fingerprint = fingerprint(ids)
        if ids:
            self._bm25 = bm25s.BM25()
            self._bm25.index(corpus, show_progress=False)
        else:
            self._bm25 = None

    def save(self) -> None:
        tmp = self.directory.with_name(self.directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self._bm25 is not None:
            self._bm25.save(str(tmp / "bm25"), show_progress=False)
        state = {
            "version": _FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "ids": self.ids,
            "meta": self.meta,
            "languages": self.languages,
        }
        (tmp / "state.json").write_text(json.dumps(state), encoding="utf-8")
        # Swap directories so a reader never sees half an index.
        old = self.directory.with_name(self.directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.directory.exists():
            self.directory.rename(old)
        tmp.rename(self.directory)
        shutil.rmtree(old, ignore_errors=True)

    def load(self) -> bool:
        """Load from disk; False when missing or unreadable (the caller rebuilds)."""
        import bm25s

        if not (self.directory / "state.json").exists():
            return False
        try:
            state = json.loads((self.directory / "state.json").read_text(encoding="utf-8"))
            if state.get("version") != _FORMAT_VERSION:
                return False
            ids = list(state["ids"])
            bm25 = None
            if ids:
                bm25 = bm25s.BM25.load(str(self.directory / "bm25"), show_progress=False)
                if int(bm25.scores["num_docs"]) != len(ids):
                    raise ValueError("document count differs from the id list")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "lexical index at %s is unusable (%s); it will be rebuilt", self.directory, exc
            )
            return False
        self.ids, self.meta = ids, list(state["meta"])
        self.languages = list(state.get("languages", []))
        self.fingerprint = str(state["fingerprint"])
        self._bm25 = bm25
        return True

    # Search -------------------------------------------------------------------------------
    def search(
        self,
        question: str,
        k: int,
        question_language: str,
        allowed: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[tuple[str, float]]:
        if self._bm25 is None or not self.ids:
            return []
        tokens = tokenize(question, [question_language, *self.languages])
        scores = np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)
        if allowed is not None:
            mask = np.fromiter((allowed(m) for m in self.meta), dtype=bool, count=len(self.meta))
            scores = np.where(mask, scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]


def sync(
    index: LexicalIndex, store_ids: Sequence[str], load_chunks: Callable[[], Iterable[Chunk]]
) -> bool:
    """Make the index match the store; returns True when it had to rebuild."""
    wanted = fingerprint(store_ids)
    if index.fingerprint == wanted or (index.load() and index.fingerprint == wanted):
        return False
    index.build(load_chunks())
    index.save()
    return True
