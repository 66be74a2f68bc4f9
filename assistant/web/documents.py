"""The documents library: what is indexed (as each caller may see it), uploads into the
running server, re-indexing and deletion. `Library` is shared by the HTTP routes below and the
chat.

Uploads are saved under `<data dir>/library/` and ingested at once through the same
Assistant the server answers with, so a new document is answerable without a restart.
Only callers in the admin group (settings.admin_group; everyone while auth is off) may
upload or delete; the upload route is also checked before its body is read
(assistant/web/guards.py).
"""

from __future__ import annotations

import json
import queue
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict

from assistant.core import Assistant
from assistant.errors import AssistantError
from assistant.ingest.loaders import SUPPORTED_SUFFIXES
from assistant.retrieve import Filters
from assistant.settings import Settings
from assistant.store.records import ChunkMeta
from assistant.web.auth import Caller

LIBRARY_DIR = "library"
_UNSAFE = re.compile(r"[^\w.\- ]+")


class DocumentInfo(BaseModel):
    """One indexed document as GET /api/documents lists it."""

    id: str  # the path the index knows it by: what filters and DELETE take
    title: str
    language: str
    pages: int | None
    chunks: int
    groups: list[str]  # empty: everyone may retrieve it
    modified: float | None  # the file's modification time, when the file is here

    def label(self) -> str:
        pages = f" · {self.pages} p." if self.pages else ""
        return f"{self.title} · {self.language}{pages}"


class UploadResult(BaseModel):
    """One uploaded file: its document id when indexed, or why it was refused."""

    file: str
    id: str | None = None
    error: str | None = None


class ReindexProgress(BaseModel):
    """Before each file of a re-index: done of total files, the next one's name."""

    file: str
    done: int
    total: int


class ReindexFailure(BaseModel):
    file: str
    error: str


class ReindexSummary(BaseModel):
    """A re-index's outcome per document: written again, unchanged (its file, groups and the
    chunk settings are as indexed), or failed with the reason."""

    total: int
    updated: list[str]
    unchanged: list[str]
    failed: list[ReindexFailure]
    seconds: float


class ReindexRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] | None = None  # document ids; none: every indexed document


class DocumentList(BaseModel):
    documents: list[DocumentInfo]


class UploadResults(BaseModel):
    documents: list[UploadResult]


def safe_name(name: str) -> str | None:
    """A file name that stays inside the library folder, or None when nothing is left."""
    base = _UNSAFE.sub("_", Path(name.replace("\\", "/")).name).strip(" .")
    return base or None


class Library:
    def __init__(self, assistant: Assistant, settings: Settings) -> None:
        self.assistant = assistant
        self.folder = Path(settings.data_dir) / LIBRARY_DIR
        self.id_root = (
            settings.documents_root or Path(settings.data_dir).resolve().parent
        ).resolve()
        self.max_bytes = int(settings.max_upload_mb * 1_000_000)
        # One library change at a time in this process (ingest also takes the index lock).
        self._lock = threading.Lock()

    def documents(self, caller: Caller | None) -> list[DocumentInfo]:
        """Indexed documents the caller's groups may see (caller=None: all), by title."""
        visible = caller.filters() if caller else Filters()
        first: dict[str, ChunkMeta] = {}
        chunks: dict[str, int] = {}
        pages: dict[str, int | None] = {}
        for meta in self.assistant.store.metadata_by_id().values():
            if not visible.allows(meta):
                continue
            first.setdefault(meta.doc_id, meta)
            chunks[meta.doc_id] = chunks.get(meta.doc_id, 0) + 1
            pages.setdefault(meta.doc_id, None)
            if meta.page is not None:
                pages[meta.doc_id] = max(pages[meta.doc_id] or 0, meta.page)
        documents = [
            DocumentInfo(
                id=doc_id,
                title=meta.title or doc_id,
                language=meta.language,
                pages=pages[doc_id],
                chunks=chunks[doc_id],
                groups=list(meta.groups),
                modified=self._modified(doc_id),
            )
            for doc_id, meta in first.items()
        ]
        return sorted(documents, key=lambda d: (d.title.lower(), d.id))

    def _modified(self, doc_id: str) -> float | None:
        path = self.id_root / doc_id
        try:
            return path.stat().st_mtime
        except OSError:
            return None

    def add(self, files: list[tuple[str, bytes]], groups: list[str]) -> list[UploadResult]:
        """Saves and ingests each file; a file that fails is reported and removed again."""
        results: list[UploadResult] = []
        with self._lock:
            for name, data in files:
                results.append(self._add_one(name, data, groups))
        return results

    def _add_one(self, name: str, data: bytes, groups: list[str]) -> UploadResult:
        clean = safe_name(name)
        if clean is None:
            return UploadResult(file=name, error="the file has no usable name")
        if Path(clean).suffix.lower() not in SUPPORTED_SUFFIXES:
            kinds = ", ".join(SUPPORTED_SUFFIXES)
            return UploadResult(file=name, error=f"unsupported file type; use one of {kinds}")
        if len(data) > self.max_bytes:
            return UploadResult(file=name, error=f"the file is larger than {self.max_bytes} bytes")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / clean
        existed = path.exists()
        path.write_bytes(data)
        report = self.assistant.ingest([path], groups=groups)
        if report.failed:
            if not existed:
                path.unlink(missing_ok=True)
            return UploadResult(file=name, error="; ".join(reason for _, reason in report.failed))
        doc_ids = report.added + report.updated + report.unchanged
        return UploadResult(file=name, id=doc_ids[0] if doc_ids else None)

    def files(self, doc_ids: list[str] | None) -> tuple[dict[str, Path], list[str]]:
        """The files of the named documents (None: all), by document id, and the ids that
        name no indexed document."""
        found: dict[str, Path] = {}
        for meta in self.assistant.store.metadata_by_id().values():
            doc_id = meta.doc_id
            if doc_ids is None or doc_id in doc_ids:
                found.setdefault(doc_id, Path(meta.path) if meta.path else self.id_root / doc_id)
        unknown = [d for d in dict.fromkeys(doc_ids or []) if d not in found]
        return found, unknown

    def reindex(self, doc_ids: list[str] | None) -> Iterator[ReindexProgress | ReindexSummary]:
        """Re-indexes the named documents (None: all) through the same ingest as an upload,
        keeping each one's access groups: progress before each file, then the summary."""
        events: queue.Queue[ReindexProgress | ReindexSummary | BaseException] = queue.Queue()

        def work() -> None:
            try:
                events.put(self._reindex(doc_ids, events.put))
            except BaseException as exc:  # handed to the reader, raised there
                events.put(exc)

        threading.Thread(target=work, name="reindex", daemon=True).start()
        while True:
            event = events.get()
            if isinstance(event, BaseException):
                raise event
            yield event
            if isinstance(event, ReindexSummary):
                return

    def _reindex(
        self, doc_ids: list[str] | None, report_progress: Callable[[ReindexProgress], None]
    ) -> ReindexSummary:
        def progress(name: str, done: int, total: int) -> None:
            report_progress(ReindexProgress(file=name, done=done, total=total))

        with self._lock:
            files, unknown = self.files(doc_ids)
            failed = [ReindexFailure(file=d, error="no such document") for d in unknown]
            if not files:  # an empty ingest would read the default corpus folder
                return ReindexSummary(
                    total=len(unknown), updated=[], unchanged=[], failed=failed, seconds=0.0
                )
            report = self.assistant.ingest(list(files.values()), progress=progress)
        by_path = {str(path): doc_id for doc_id, path in files.items()}
        failed += [
            ReindexFailure(file=by_path.get(path, path), error=reason)
            for path, reason in report.failed
        ]
        return ReindexSummary(
            total=len(files) + len(unknown),
            updated=report.added + report.updated,
            unchanged=report.unchanged,
            failed=failed,
            seconds=round(report.seconds, 2),
        )

    def delete(self, doc_id: str) -> bool:
        """Removes a document from the index, whatever its groups (the caller is an admin),
        and its file when it was uploaded here; False when there is no such document."""
        from assistant.ingest.lock import lock_path, writer_lock
        from assistant.store.lexical import sync

        if doc_id not in {d.id for d in self.documents(None)}:
            return False
        s = self.assistant.settings
        store, sentences = self.assistant.store, self.assistant.sentences
        with self._lock, writer_lock(lock_path(s.index_dir, s.collection)):
            store.follow_writes()
            ids = [i for i, m in store.metadata_by_id().items() if m.doc_id == doc_id]
            if ids:
                store.delete(ids)
                sentences.delete_where({"parent": {"$in": ids}})
            remaining = list(store.metadata_by_id())
            sync(self.assistant.lexical, remaining, store.iter_chunks)
        path = (self.id_root / doc_id).resolve()
        if path.parent == self.folder.resolve():
            path.unlink(missing_ok=True)
        return True


def documents_router(library: Library, caller: Any, admin_group: str) -> APIRouter:
    """GET/POST /api/documents and DELETE /api/documents/{id}; caller is the API's
    dependency that authenticates and rate-limits."""
    router = APIRouter(tags=["documents"])

    def admin(who: Caller = Depends(caller)) -> Caller:
        if not who.is_admin(admin_group):
            raise HTTPException(403, f"only members of the group {admin_group!r} may do this")
        return who

    @router.get("/api/documents")
    def list_documents(who: Caller = Depends(caller)) -> DocumentList:
        """Indexed documents the caller may see: id, title, language, pages, chunks,
        access groups and the file's modification time."""
        return DocumentList(documents=library.documents(who))

    @router.post("/api/documents")
    def upload(
        files: list[UploadFile] = File(...),
        groups: str = Form(""),
        who: Caller = Depends(admin),
    ) -> UploadResults:
        """Upload documents (multipart, field `files`, admin group only); each is indexed at
        once. `groups` (comma-separated) restricts who may retrieve them. Per-file results:
        `{"file", "id"}` or `{"file", "error"}`."""
        wanted = [g.strip() for g in groups.split(",") if g.strip()]
        loaded = [(f.filename or "", f.file.read(library.max_bytes + 1)) for f in files]
        results = library.add(loaded, wanted)
        return UploadResults(documents=results)

    @router.post(
        "/api/documents/reindex",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    def reindex(
        body: ReindexRequest | None = None, who: Caller = Depends(admin)
    ) -> StreamingResponse:
        """Re-index documents (admin group only): `{"ids": [...]}`, or every indexed document
        without ids. Server-sent events: `progress` (`{file, done, total}`) before each file,
        then `summary` (`{total, updated, unchanged, failed: [{file, error}], seconds}`)."""
        ids = body.ids if body else None

        def events() -> Iterator[str]:
            try:
                for event in library.reindex(ids):
                    kind = "summary" if isinstance(event, ReindexSummary) else "progress"
                    yield f"event: {kind}\ndata: {event.model_dump_json()}\n\n"
            except AssistantError as exc:  # the stream has begun: an event, not a status
                error = json.dumps({"code": "reindex_failed", "message": str(exc)})
                yield f"event: error\ndata: {error}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @router.delete("/api/documents/{doc_id:path}")
    def delete(doc_id: str, who: Caller = Depends(admin)) -> dict[str, str]:
        """Remove a document from the index (admin group only)."""
        if not library.delete(doc_id):
            raise HTTPException(404, "no such document")
        return {"deleted": doc_id}

    return router
