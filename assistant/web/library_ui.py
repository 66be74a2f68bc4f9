"""The chat's library controls for the admin group: upload by drag and drop, re-index (the
chosen documents, or all) with progress and a per-file summary, and delete. The controls are
shown to admins only, and every handler checks the caller again (the page is not trusted).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from assistant.ingest.loaders import SUPPORTED_SUFFIXES
from assistant.web.auth import Caller
from assistant.web.documents import Library, ReindexSummary
from assistant.web.i18n import t
from assistant.web.render import library_notice, reindex_progress, reindex_report, upload_report

# The filter's choices and the library list for a caller: (caller, lang, selected) -> updates.
DocumentChoices = Callable[..., tuple[Any, str]]


@dataclass
class LibraryAdmin:
    box: gr.Column
    localised: list[tuple[Any, dict[str, str]]]


def library_admin(
    *,
    library: Library,
    admin_group: str,
    doc_filter: gr.Dropdown,
    library_list: gr.HTML,
    library_status: gr.HTML,
    lang_state: gr.State,
    document_choices: DocumentChoices,
    caller_of: Callable[[gr.Request], Caller],
    ui_error: Callable[..., gr.Error],
    initial: str,
) -> LibraryAdmin:
    """Builds the admin controls where it is called (hidden until the load event shows them
    to an admin) and wires their events."""
    with gr.Column(visible=False, elem_id="library-admin") as box:
        upload = gr.File(
            label=t("upload_label", initial),
            file_count="multiple",
            file_types=list(SUPPORTED_SUFFIXES),
            elem_id="upload",
        )
        with gr.Row():
            reindex = gr.Button(t("reindex", initial), size="sm", elem_id="reindex")
            delete = gr.Button(
                t("delete_documents", initial), size="sm", elem_id="delete-documents"
            )

    def admin_of(request: gr.Request, lang: str) -> Caller:
        caller = caller_of(request)
        if not caller.is_admin(admin_group):
            raise ui_error("not_admin", lang)
        return caller

    def add_documents(
        paths: list[str] | None, selected: list[str] | None, lang: str, request: gr.Request
    ) -> tuple[Any, ...]:
        caller = admin_of(request, lang)
        files = []
        for path in paths or []:
            source = Path(path)
            # Gradio's copy is not kept: the library holds its own.
            files.append((source.name, source.read_bytes()))
            source.unlink(missing_ok=True)
        results = library.add(files, [])
        return *document_choices(caller, lang, selected), upload_report(results, lang), None

    upload.upload(
        add_documents,
        inputs=[upload, doc_filter, lang_state],
        outputs=[doc_filter, library_list, library_status, upload],
        api_visibility="private",
        show_progress="full",
    )

    def reindex_documents(
        selected: list[str] | None, lang: str, request: gr.Request
    ) -> Iterator[tuple[Any, ...]]:
        """Progress (n of m files) while the ingest runs, then the summary per file."""
        caller = admin_of(request, lang)
        skip = gr.skip()
        yield skip, skip, reindex_progress(None, lang)
        for event in library.reindex(list(selected) if selected else None):
            if isinstance(event, ReindexSummary):
                yield *document_choices(caller, lang, selected), reindex_report(event, lang)
            else:
                yield skip, skip, reindex_progress(event, lang)

    reindex.click(
        reindex_documents,
        inputs=[doc_filter, lang_state],
        outputs=[doc_filter, library_list, library_status],
        api_visibility="private",
        show_progress="hidden",  # the status line itself says how far it is
    )

    def delete_documents(
        selected: list[str] | None, lang: str, request: gr.Request
    ) -> tuple[Any, ...]:
        caller = admin_of(request, lang)
        deleted = [d for d in selected or [] if library.delete(d)]
        status = library_notice(t("documents_deleted", lang, n=len(deleted)))
        return *document_choices(caller, lang, []), status

    delete.click(
        delete_documents,
        inputs=[doc_filter, lang_state],
        outputs=[doc_filter, library_list, library_status],
        api_visibility="private",
    )
    localised: list[tuple[Any, dict[str, str]]] = [
        (upload, {"label": "upload_label"}),
        (reindex, {"value": "reindex"}),
        (delete, {"value": "delete_documents"}),
    ]
    return LibraryAdmin(box=box, localised=localised)
