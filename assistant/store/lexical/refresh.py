"""Keeping the lexical index in step with the vector store it copies.

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

Processes on other hosts each rebuild their own index from the same Chroma collection, so
they all end up with the same index and give the same answers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from assistant.schema import Chunk
from assistant.store.lexical import cache
from assistant.store.lexical.bm25 import fingerprint

if TYPE_CHECKING:
    from assistant.store.lexical.index import LexicalIndex

# The name the module had before it became a package, so logging configs still match.
log = logging.getLogger("assistant.store.lexical")


@runtime_checkable
class LexicalSource(Protocol):
    """What the index needs from the vector store it follows (ChromaStore provides it)."""

    def generation(self) -> str: ...

    def all_ids(self) -> list[str]: ...

    def iter_chunks(self, batch: int = 2000) -> Iterator[Chunk]: ...


class StoreFollower:
    """When one LexicalIndex looks at its source again, and what it does when the source
    moved. The index keeps the settings (source, check_seconds, verify_seconds) and the
    outcome (last_error); this keeps the clock and the lock."""

    def __init__(self, index: LexicalIndex) -> None:
        self.index = index
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._verified_at = time.monotonic()

    def refresh(self, verify: bool) -> bool:
        if self.index.source is None:
            return False
        with self._lock:
            return self._refresh(verify)

    def _refresh(self, verify: bool) -> bool:
        index, source = self.index, self.index.source
        assert source is not None
        first_check = self._checked_at is None
        self._checked_at = time.monotonic()
        verify = verify or self._checked_at - self._verified_at >= index.verify_seconds
        # Read the generation before the ids and the chunks: a write that lands while we
        # read is then newer than what we record, and the next check picks it up.
        generation = source.generation()
        # A collection never written by this version has no generation: compare the ids once.
        verify = verify or (first_check and not generation)
        current = index.current
        if not current.loaded and index.load():
            current = index.current
        if current.loaded and current.generation == generation and not verify:
            index.last_error = None
            return False
        ids = source.all_ids()
        self._verified_at = time.monotonic()
        wanted = fingerprint(ids)
        same_content = current.loaded and current.fingerprint == wanted
        # Without a generation (a collection written by an older version) the fingerprint is
        # all we have. With one, a changed generation and the same ids can still mean changed
        # metadata (access groups), so the index is rebuilt unless only verifying.
        if same_content and (not generation or current.generation == generation):
            index.current = replace(current, generation=generation)
            index.last_error = None
            return False
        # Another process sharing this data_dir may have rebuilt it already.
        on_disk = cache.read(index.directory)
        if (
            on_disk is not None
            and generation
            and on_disk.generation == generation
            and on_disk.fingerprint == wanted
        ):
            index.current = on_disk
            index.last_error = None
            return False
        started = time.perf_counter()
        index.build(source.iter_chunks(), generation)
        index.save()
        index.last_error = None
        log.info(
            "lexical index %s rebuilt from the store: %d chunks in %.1f s",
            index.directory.name,
            len(index.ids),
            time.perf_counter() - started,
        )
        return True

    def refresh_if_due(self) -> None:
        """Called before every search."""
        if self.index.source is None:
            return
        if self._checked_at is None or not self.index.current.loaded:
            # Nothing checked yet: wait, so the first answers of a process are current.
            self.index.refresh()
            return
        if time.monotonic() - self._checked_at < self.index.check_seconds:
            return
        if not self._lock.acquire(blocking=False):
            return  # a refresh is running; keep searching the current version
        self._checked_at = time.monotonic()
        threading.Thread(
            target=self._refresh_in_background, name="lexical-refresh", daemon=True
        ).start()

    def _refresh_in_background(self) -> None:
        try:
            self._refresh(verify=False)
        except Exception as exc:  # the store is down: keep the current version, retry later
            self.index.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("lexical index refresh failed (%s); will retry", self.index.last_error)
        finally:
            self._lock.release()
