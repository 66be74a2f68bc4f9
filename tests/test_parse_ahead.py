"""Files are loaded and chunked by one worker thread ahead of the embedding: in order, at
most about one batch ahead, errors raised in the caller, nothing left running."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from assistant.ingest.pipeline import _ahead

FILES = [(Path(f"{i}"), Path(".")) for i in range(40)]


def test_results_come_in_order_and_the_worker_stays_within_its_budget() -> None:
    started: list[int] = []

    def work(path: Path, root: Path) -> int:
        started.append(int(path.name))
        return int(path.name)

    taken = []
    for value in _ahead(work, FILES, size=lambda _: 3, budget=10):
        taken.append(value)
        # Results waiting for the caller hold < budget texts before the worker starts
        # another file: at most 4 of size 3, and the one it may be working on.
        assert len(started) - len(taken) <= 5
    assert taken == list(range(40)) == started


def test_an_error_reaches_the_caller_and_closing_early_stops_the_worker() -> None:
    def work(path: Path, root: Path) -> int:
        if path.name == "3":
            raise ValueError("broken file")
        return int(path.name)

    taken = []
    with pytest.raises(ValueError, match="broken file"):
        for value in _ahead(work, FILES, size=lambda _: 1, budget=100):
            taken.append(value)
    assert taken == [0, 1, 2]

    started: list[int] = []

    def count(path: Path, root: Path) -> int:
        started.append(int(path.name))
        return int(path.name)

    planned = _ahead(count, FILES, size=lambda _: 1, budget=5)
    assert next(planned) == 0
    planned.close()
    assert len(started) <= 7  # the one taken, five waiting, one in progress
    assert not [t for t in threading.enumerate() if t.name == "ingest-parse"]
