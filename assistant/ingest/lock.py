"""One writer at a time: an exclusive file lock in the data directory around every write
(ingest, index repair).

Readers never take it: questions keep being answered from whatever the store holds. The
lock is an ``flock`` on ``<data_dir>/index/<collection>.write.lock``, so the kernel releases
it when its holder dies, even by ``kill -9``: a lock file left behind never blocks anybody.
The holder writes who it is into the file, so a waiting ingest can say whom it waits for.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from assistant.errors import AssistantError


class WriterBusyError(AssistantError):
    """Another ingest holds the write lock and the caller asked not to wait."""


def lock_path(index_dir: Path, collection: str) -> Path:
    return Path(index_dir) / f"{collection}.write.lock"


def writer_id(path: Path) -> str:
    """Who writes under this lock (host and lock file): stored on sentence records, so the
    orphan sweep can tell records of a dead run of this lock (safe to delete once the lock
    is ours) from those of a writer elsewhere (deleted only after a grace period)."""
    where = f"{socket.gethostname()}\x1f{Path(path).resolve()}"
    return hashlib.sha256(where.encode()).hexdigest()[:16]


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text("utf-8") or "{}")
    except (OSError, ValueError):
        return "holder unknown"
    started = time.strftime("%H:%M:%S", time.localtime(float(info.get("started", 0))))
    return f"pid {info.get('pid')} on {info.get('host')}, started {started}"


@contextlib.contextmanager
def writer_lock(
    path: Path, *, wait: bool = True, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the write lock for the block. Raises WriterBusyError when it is taken and
    wait is False; otherwise tells on_wait whom it waits for and blocks until it is free."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(path)
            if not wait:
                raise WriterBusyError(
                    f"another ingest is writing to this index ({holder}; lock {path}). "
                    f"Try again when it has finished, or leave out --no-wait to wait for it."
                ) from None
            if on_wait is not None:
                on_wait(f"another ingest is writing to this index ({holder}); waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            handle.truncate()
            info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
            handle.write(json.dumps(info))
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
