"""Which files an ingest reads, and which access groups a folder gives them.

Folders are walked by hand rather than with Path.rglob so that what it would skip silently
is reported with a reason: a symbolic link leading back into its own folder (a loop), a
folder that cannot be read, a broken link.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from assistant.ingest.loaders import SUPPORTED_SUFFIXES

GROUPS_FILE = ".assistant-groups"

Failed = list[tuple[str, str]]


def _wanted(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES and path.name.lower() != "readme.md"


def discover(paths: Sequence[Path], failed: Failed) -> list[tuple[Path, Path]]:
    """(file, the folder or file it was found under) for every supported file; explicit bad
    paths, loops and unreadable folders go to failed. A file reached twice (through a link)
    is read once."""
    found: dict[Path, tuple[Path, Path]] = {}

    def add(path: Path, root: Path) -> None:
        found.setdefault(path.resolve(), (path, root))

    for path in paths:
        path = Path(path)
        if path.is_dir():
            _walk(path, path, (), failed, add)
        elif path.is_file():
            if path.suffix.lower() in SUPPORTED_SUFFIXES:
                add(path, path.parent)
            else:
                failed.append((str(path), f"unsupported file type {path.suffix or '(none)'}"))
        elif path.is_symlink():
            failed.append((str(path), "broken symbolic link (its target does not exist)"))
        else:
            failed.append((str(path), "no such file or directory"))
    return list(found.values())


def _walk(
    folder: Path,
    root: Path,
    ancestors: tuple[tuple[int, int], ...],
    failed: Failed,
    add: Callable[[Path, Path], None],
) -> None:
    try:
        info = folder.stat()
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        failed.append((str(folder), f"cannot read folder: {exc.strerror or exc}"))
        return
    key = (info.st_dev, info.st_ino)
    if key in ancestors:
        failed.append(
            (str(folder), "symbolic link loop (the link leads back to a folder above it)")
        )
        return
    ancestors = (*ancestors, key)
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
            is_file = entry.is_file(follow_symlinks=True)
        except OSError as exc:
            failed.append((str(path), f"cannot read: {exc.strerror or exc}"))
            continue
        if is_dir:
            _walk(path, root, ancestors, failed, add)
        elif is_file:
            if _wanted(path):
                add(path, root)
        elif entry.is_symlink() and _wanted(path):
            failed.append((str(path), "broken symbolic link (its target does not exist)"))


def read_groups_file(path: Path) -> tuple[str, ...]:
    """Group names separated by commas or lines; '#' starts a comment. Empty: public."""
    names: set[str] = set()
    for line in path.read_text("utf-8").splitlines():
        line = line.split("#", 1)[0]
        names.update(name.strip() for name in line.split(",") if name.strip())
    return tuple(sorted(names))


def groups_for(
    path: Path, root: Path, cache: dict[Path, tuple[str, ...] | None]
) -> tuple[str, ...] | None:
    """The groups of the nearest .assistant-groups file in the file's folder or a folder
    above it, up to the folder named on the command line; None when there is none."""
    root = root.resolve()
    folder = path.parent.resolve()
    walked: list[Path] = []
    result: tuple[str, ...] | None = None
    while True:
        if folder in cache:
            result = cache[folder]
            break
        walked.append(folder)
        candidate = folder / GROUPS_FILE
        if candidate.is_file():
            result = read_groups_file(candidate)
            break
        if folder == root or folder.parent == folder or root not in folder.parents:
            break
        folder = folder.parent
    for seen in walked:
        cache[seen] = result
    return result
