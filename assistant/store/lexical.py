"""BM25 over the same chunks as the vector store, with Snowball stemming per language.

The index is a derived copy, never a source of truth. Each process holds one in memory and
keeps a copy on disk (under its data_dir) only to start quickly. It follows the store thus:

* Every write to a Chroma collection stores a fresh random ``generation`` in the collection's
  metadata (assistant.store.chroma). The index remembers the generation it was built from.
* Before the first search, and then at most every ``check_seconds`` (5 s), the index reads
  the store's generation: one small request. When it moved, the index is rebuilt from the
  store, in a background thread: searches keep using the previous index until the new one
  replaces it in one assignment. Only a process with no usable index at all waits.
* Every ``verify_seconds`` (5 min) the ids themselves are compared (a fingerprint: count and
  hash of the sorted ids), which also catches a writer killed between a write and its
  generation update, or a writer that does not update the generation.
* A missing, unreadable or inconsistent copy on disk is rebuilt from the store.

Processes sharing a data_dir share the copy on disk (a file lock serialises writers and
readers); processes on other hosts each rebuild their own, from the same Chroma collection,
so they all end up with the same index and give the same answers.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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
_META_KEYS = ("doc_id", "language", "groups")


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


@runtime_checkable
class LexicalSource(Protocol):
    """What the index needs from the vector store it follows (ChromaStore provides it)."""

    def generation(self) -> str: ...

    def all_ids(self) -> list[str]: ...

    def iter_chunks(self, batch: int = 2000) -> Iterator[Chunk]: ...


@dataclass(frozen=True)
class _State:
    """One immutable version of the index: a refresh builds a new one and swaps it in, so a
    concurrent search never sees ids of one version with scores of another."""

    ids: list[str] = field(default_factory=list)
    meta: list[dict[str, Any]] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    fingerprint: str = ""
    generation: str = ""
    bm25: Any = None
    loaded: bool = False  # built or loaded; False means "nothing usable yet"


class LexicalIndex:
    def __init__(
        self,
        directory: Path,
        source: LexicalSource | None = None,
        *,
        check_seconds: float = 5.0,
        verify_seconds: float = 300.0,
    ) -> None:
        self.directory = Path(directory)
        self.source = source
        self.check_seconds = check_seconds
        self.verify_seconds = verify_seconds
        self._state = _State()
        self._refresh_lock = threading.Lock()
        self._checked_at: float | None = None
        self._verified_at = time.monotonic()
        self.last_error: str | None = None
        self.rebuilds = 0
        # The vocabulary of one index version, kept beside that version (not by its id(),
        # which a later version may reuse).
        self._vocabulary: tuple[_State, frozenset[str]] | None = None

    # The current version, read-only ------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        return self._state.ids

    @property
    def meta(self) -> list[dict[str, Any]]:
        return self._state.meta

    @property
    def languages(self) -> list[str]:
        return self._state.languages

    @property
    def fingerprint(self) -> str:
        return self._state.fingerprint

    @property
    def generation(self) -> str:
        return self._state.generation

    # Building and persistence -------------------------------------------------------------
    def build(self, chunks: Iterable[Chunk], generation: str = "") -> None:
        import bm25s

        ids, meta, corpus = [], [], []
        for chunk in chunks:
            language = str(chunk.metadata.get("language", "und"))
            ids.append(chunk.chunk_id)
            meta.append({k: _intern(chunk.metadata.get(k)) for k in _META_KEYS})
            corpus.append(tokenize(chunk.indexed_text(), [language]))
        bm25 = None
        if ids:
            bm25 = bm25s.BM25()
            bm25.index(corpus, show_progress=False)
        self._state = _State(
            ids=ids,
            meta=meta,
            languages=sorted({str(m["language"]) for m in meta}),
            fingerprint=fingerprint(ids),
            generation=generation,
            bm25=bm25,
            loaded=True,
        )
        self.rebuilds += 1

    @contextlib.contextmanager
    def _file_lock(self, exclusive: bool) -> Iterator[None]:
        """Processes sharing a data_dir share the copy on disk: one writes at a time, and
        nobody reads while it is being swapped."""
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.directory.with_name(self.directory.name + ".lock")
        with lock_path.open("a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def save(self) -> None:
        state = self._state
        unique = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp = self.directory.with_name(f"{self.directory.name}.tmp-{unique}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            if state.bm25 is not None:
                state.bm25.save(str(tmp / "bm25"), show_progress=False)
            document = {
                "version": _FORMAT_VERSION,
                "fingerprint": state.fingerprint,
                "generation": state.generation,
                "ids": state.ids,
                "meta": state.meta,
                "languages": state.languages,
            }
            (tmp / "state.json").write_text(json.dumps(document), encoding="utf-8")
            with self._file_lock(exclusive=True):
                # Swap directories so a reader never sees half an index; a kill between the
                # two renames leaves no index, which the next start rebuilds.
                old = self.directory.with_name(f"{self.directory.name}.old-{unique}")
                if self.directory.exists():
                    self.directory.rename(old)
                tmp.rename(self.directory)
                shutil.rmtree(old, ignore_errors=True)
                self._remove_leftovers()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _remove_leftovers(self) -> None:
        """Temporary directories of processes killed while saving (their pid is in the name)."""
        for path in self.directory.parent.glob(f"{self.directory.name}.*-*-*"):
            pid = path.name.rsplit("-", 2)[-2]
            if path.is_dir() and pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)

    def load(self) -> bool:
        """Load from disk; False when missing or unreadable (the caller rebuilds)."""
        state = self._read_disk()
        if state is None:
            return False
        self._state = state
        return True

    def _read_disk(self) -> _State | None:
        import bm25s

        try:
            with self._file_lock(exclusive=False):
                if not (self.directory / "state.json").exists():
                    return None
                document = json.loads((self.directory / "state.json").read_text("utf-8"))
                if document.get("version") != _FORMAT_VERSION:
                    return None
                ids = [str(i) for i in document["ids"]]
                meta = [{k: _intern(m.get(k)) for k in _META_KEYS} for m in document["meta"]]
                if len(meta) != len(ids):
                    raise ValueError("the metadata list and the id list differ in length")
                if fingerprint(ids) != document["fingerprint"]:
                    raise ValueError("the id list does not match its fingerprint")
                bm25 = None
                if ids:
                    bm25 = bm25s.BM25.load(str(self.directory / "bm25"), show_progress=False)
                    if int(bm25.scores["num_docs"]) != len(ids):
                        raise ValueError("document count differs from the id list")
        except Exception as exc:  # corrupt files fail in many ways (json, numpy, pickle...)
            log.warning(
                "lexical index at %s is unusable (%s: %s); it will be rebuilt",
                self.directory,
                type(exc).__name__,
                exc,
            )
            return None
        return _State(
            ids=ids,
            meta=meta,
            languages=[str(x) for x in document.get("languages", [])],
            fingerprint=str(document["fingerprint"]),
            generation=str(document.get("generation", "")),
            bm25=bm25,
            loaded=True,
        )

    # Following the store ------------------------------------------------------------------
    def refresh(self, *, verify: bool = False) -> bool:
        """Bring the index up to date with the source now; True when it was rebuilt.
        Raises BackendUnavailableError when the store cannot be reached."""
        if self.source is None:
            return False
        with self._refresh_lock:
            return self._refresh(verify)

    def _refresh(self, verify: bool) -> bool:
        assert self.source is not None
        first_check = self._checked_at is None
        self._checked_at = time.monotonic()
        verify = verify or self._checked_at - self._verified_at >= self.verify_seconds
        # Read the generation before the ids and the chunks: a write that lands while we
        # read is then newer than what we record, and the next check picks it up.
        generation = self.source.generation()
        # A collection never written by this version has no generation: compare the ids once.
        verify = verify or (first_check and not generation)
        state = self._state
        if not state.loaded and self.load():
            state = self._state
        if state.loaded and state.generation == generation and not verify:
            self.last_error = None
            return False
        ids = self.source.all_ids()
        self._verified_at = time.monotonic()
        wanted = fingerprint(ids)
        same_content = state.loaded and state.fingerprint == wanted
        # Without a generation (a collection written by an older version) the fingerprint is
        # all we have. With one, a changed generation and the same ids can still mean changed
        # metadata (access groups), so the index is rebuilt unless only verifying.
        if same_content and (not generation or state.generation == generation):
            self._state = replace(state, generation=generation)
            self.last_error = None
            return False
        # Another process sharing this data_dir may have rebuilt it already.
        on_disk = self._read_disk()
        if (
            on_disk is not None
            and generation
            and on_disk.generation == generation
            and on_disk.fingerprint == wanted
        ):
            self._state = on_disk
            self.last_error = None
            return False
        started = time.perf_counter()
        self.build(self.source.iter_chunks(), generation)
        self.save()
        self.last_error = None
        log.info(
            "lexical index %s rebuilt from the store: %d chunks in %.1f s",
            self.directory.name,
            len(self.ids),
            time.perf_counter() - started,
        )
        return True

    def _maybe_refresh(self) -> None:
        if self.source is None:
            return
        if self._checked_at is None or not self._state.loaded:
            # Nothing checked yet: wait, so the first answers of a process are current.
            self.refresh()
            return
        if time.monotonic() - self._checked_at < self.check_seconds:
            return
        if not self._refresh_lock.acquire(blocking=False):
            return  # a refresh is running; keep searching the current version
        self._checked_at = time.monotonic()
        threading.Thread(
            target=self._refresh_in_background, name="lexical-refresh", daemon=True
        ).start()

    def _refresh_in_background(self) -> None:
        try:
            self._refresh(verify=False)
        except Exception as exc:  # the store is down: keep the current version, retry later
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("lexical index refresh failed (%s); will retry", self.last_error)
        finally:
            self._refresh_lock.release()

    # Search -------------------------------------------------------------------------------
    def vocabulary(self) -> frozenset[str]:
        """Every token (word and stem) of the current index: the answer step asks whether a
        question's words occur anywhere in the documents at all."""
        self._maybe_refresh()
        state = self._state
        if state.bm25 is None:
            return frozenset()
        cached = self._vocabulary
        if cached is None or cached[0] is not state:
            cached = (state, frozenset(state.bm25.vocab_dict))
            self._vocabulary = cached
        return cached[1]

    def search(
        self,
        question: str,
        k: int,
        question_language: str,
        allowed: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[tuple[str, float]]:
        self._maybe_refresh()
        state = self._state
        if state.bm25 is None or not state.ids or k <= 0:
            return []
        tokens = tokenize(question, [question_language, *state.languages])
        token_ids = state.bm25.get_tokens_ids(tokens)
        if not token_ids:
            return []
        scores = np.asarray(state.bm25.get_scores(token_ids), dtype=np.float32)
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
                (state.ids[i], float(scores[i]))
                for i in top
                if allowed is None or allowed(state.meta[i])
            ][:k]
            if len(hits) >= k or width == len(matching):
                return hits
            width *= 4


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _intern(value: Any) -> Any:
    # Chunks of one document repeat doc_id, language and groups: share the strings.
    return sys.intern(value) if isinstance(value, str) else value


def sync(
    index: LexicalIndex, store_ids: Sequence[str], load_chunks: Callable[[], Iterable[Chunk]]
) -> bool:
    """Make the index match the store; returns True when it had to rebuild.

    With a source attached (the normal case) the index follows the store's generation;
    without one, the fingerprint of the given ids decides."""
    if index.source is not None:
        return index.refresh()
    wanted = fingerprint(store_ids)
    if index.fingerprint == wanted or (index.load() and index.fingerprint == wanted):
        return False
    index.build(load_chunks())
    index.save()
    return True
