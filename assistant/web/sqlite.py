"""The small SQLite files the web layer keeps in the data dir (feedback, conversations): one
base that opens a connection per use, creates the schema on first use and serialises the
writers of this process."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import ClassVar, Self

from assistant.settings import Settings


class SqliteStore:
    FILENAME: ClassVar[str]
    SCHEMA: ClassVar[tuple[str, ...]]

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings) -> Self:
        return cls(Path(settings.data_dir) / cls.FILENAME)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection in a transaction (committed when the block ends without an error).
        The directory and tables are created on first use, not on import."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, closing(sqlite3.connect(self.path, timeout=10)) as db, db:
            db.execute("PRAGMA foreign_keys = ON")
            for statement in self.SCHEMA:
                db.execute(statement)
            yield db
