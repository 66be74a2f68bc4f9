"""The copy of the index on disk, kept only so a process starts quickly.

Layout: ``<directory>/state.json`` (ids, metadata, languages, fingerprint, generation) and
``<directory>/bm25`` (bm25s' own files), beside a ``<directory>.lock`` file. Processes
sharing a data_dir share the copy: a file lock serialises writers and readers, and a save
swaps whole directories. A copy that is missing, of another format or inconsistent with
itself reads as None, and the caller rebuilds from the store.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from assistant.store.lexical.bm25 import IndexVersion, SharedMeta, fingerprint

# The name the module had before it became a package, so logging configs still match.
log = logging.getLogger("assistant.store.lexical")

# 2: groups saved as a list (1 held them comma-joined; such a cache is rebuilt once).
_FORMAT_VERSION = 2


@contextlib.contextmanager
def _file_lock(directory: Path, exclusive: bool) -> Iterator[None]:
    """Processes sharing a data_dir share the copy on disk: one writes at a time, and
    nobody reads while it is being swapped."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    lock_path = directory.with_name(directory.name + ".lock")
    with lock_path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def save(directory: Path, version: IndexVersion) -> None:
    unique = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = directory.with_name(f"{directory.name}.tmp-{unique}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if version.bm25 is not None:
            version.bm25.save(str(tmp / "bm25"), show_progress=False)
        document = {
            "version": _FORMAT_VERSION,
            "fingerprint": version.fingerprint,
            "generation": version.generation,
            "ids": version.ids,
            "meta": [[m.doc_id, m.language, list(m.groups)] for m in version.meta],
            "languages": version.languages,
        }
        (tmp / "state.json").write_text(json.dumps(document), encoding="utf-8")
        with _file_lock(directory, exclusive=True):
            # Swap directories so a reader never sees half an index; a kill between the
            # two renames leaves no index, which the next start rebuilds.
            old = directory.with_name(f"{directory.name}.old-{unique}")
            if directory.exists():
                directory.rename(old)
            tmp.rename(directory)
            shutil.rmtree(old, ignore_errors=True)
            _remove_leftovers(directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_leftovers(directory: Path) -> None:
    """Temporary directories of processes killed while saving (their pid is in the name)."""
    for path in directory.parent.glob(f"{directory.name}.*-*-*"):
        pid = path.name.rsplit("-", 2)[-2]
        if path.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read(directory: Path) -> IndexVersion | None:
    """The version saved in directory; None when missing or unusable (logged)."""
    import bm25s

    try:
        with _file_lock(directory, exclusive=False):
            if not (directory / "state.json").exists():
                return None
            document = json.loads((directory / "state.json").read_text("utf-8"))
            if document.get("version") != _FORMAT_VERSION:
                return None
            ids = [str(i) for i in document["ids"]]
            shared = SharedMeta()
            meta = [
                shared(doc_id, language, groups) for doc_id, language, groups in document["meta"]
            ]
            if len(meta) != len(ids):
                raise ValueError("the metadata list and the id list differ in length")
            if fingerprint(ids) != document["fingerprint"]:
                raise ValueError("the id list does not match its fingerprint")
            bm25 = None
            if ids:
                bm25 = bm25s.BM25.load(str(directory / "bm25"), show_progress=False)
                if int(bm25.scores["num_docs"]) != len(ids):
                    raise ValueError("document count differs from the id list")
    except Exception as exc:  # corrupt files fail in many ways (json, numpy, pickle...)
        log.warning(
            "lexical index at %s is unusable (%s: %s); it will be rebuilt",
            directory,
            type(exc).__name__,
            exc,
        )
        return None
    return IndexVersion(
        ids=ids,
        meta=meta,
        languages=[str(x) for x in document.get("languages", [])],
        fingerprint=str(document["fingerprint"]),
        generation=str(document.get("generation", "")),
        bm25=bm25,
        loaded=True,
    )
