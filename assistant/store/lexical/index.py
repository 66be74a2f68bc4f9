"""The lexical index a process holds: its current version, searched, saved and followed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from assistant.schema import Chunk
from assistant.store.lexical import cache
from assistant.store.lexical.bm25 import IndexVersion, build_version, fingerprint, search_version
from assistant.store.lexical.refresh import LexicalSource, StoreFollower
from assistant.store.records import LexicalMeta


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
        # Replaced in one assignment, never changed in place: see IndexVersion.
        self.current = IndexVersion()
        self.last_error: str | None = None
        self.rebuilds = 0
        self._follower = StoreFollower(self)
        # The vocabulary of one index version, kept beside that version (not by its id(),
        # which a later version may reuse).
        self._vocabulary: tuple[IndexVersion, frozenset[str]] | None = None

    # The current version, read-only ------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        return self.current.ids

    @property
    def meta(self) -> list[LexicalMeta]:
        return self.current.meta

    @property
    def languages(self) -> list[str]:
        return self.current.languages

    @property
    def fingerprint(self) -> str:
        return self.current.fingerprint

    @property
    def generation(self) -> str:
        return self.current.generation

    # Building and persistence -------------------------------------------------------------
    def build(self, chunks: Iterable[Chunk], generation: str = "") -> None:
        self.current = build_version(chunks, generation)
        self.rebuilds += 1

    def save(self) -> None:
        cache.save(self.directory, self.current)

    def load(self) -> bool:
        """Load from disk; False when missing or unreadable (the caller rebuilds)."""
        version = cache.read(self.directory)
        if version is None:
            return False
        self.current = version
        return True

    # Following the store ------------------------------------------------------------------
    def refresh(self, *, verify: bool = False) -> bool:
        """Bring the index up to date with the source now; True when it was rebuilt.
        Raises BackendUnavailableError when the store cannot be reached."""
        return self._follower.refresh(verify)

    # Search -------------------------------------------------------------------------------
    def vocabulary(self) -> frozenset[str]:
        """Every token (word and stem) of the current index: the answer step asks whether a
        question's words occur anywhere in the documents at all."""
        self._follower.refresh_if_due()
        current = self.current
        if current.bm25 is None:
            return frozenset()
        cached = self._vocabulary
        if cached is None or cached[0] is not current:
            cached = (current, frozenset(current.bm25.vocab_dict))
            self._vocabulary = cached
        return cached[1]

    def search(
        self,
        question: str,
        k: int,
        question_language: str,
        allowed: Callable[[LexicalMeta], bool] | None = None,
    ) -> list[tuple[str, float]]:
        self._follower.refresh_if_due()
        return search_version(self.current, question, k, question_language, allowed)


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
