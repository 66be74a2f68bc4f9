"""One FastAPI app: the chat at /, the compact embed view at /embed/, the API, health probes
and OpenAPI docs at /docs. `create_app` builds it; `run` serves it with uvicorn."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

from assistant.core import Assistant
from assistant.settings import Settings
from assistant.web.api import (
    api_router,
    caller_dependency,
    fallback_router,
    install_error_handlers,
)
from assistant.web.auth import ChatLoginMiddleware, Gate, RateLimiter, TokenAuth, login_router
from assistant.web.chat import CSS, JS, create_chat
from assistant.web.conversations import ConversationStore, conversations_router
from assistant.web.docs import docs_html
from assistant.web.documents import Library, documents_router
from assistant.web.feedback import FeedbackStore
from assistant.web.framing import FramingMiddleware
from assistant.web.guards import (
    BodyLimitMiddleware,
    SessionBindingMiddleware,
    UploadGuardMiddleware,
    install_access_log_redaction,
)
from assistant.web.i18n import gradio_translations
from assistant.web.originals import Originals, originals_router
from assistant.web.paths import AppRootMiddleware, app_root

GRADIO_JS = Path(gr.__file__).parent / "templates" / "frontend" / "gradio.js"


class Readiness:
    """/readyz: the model has been loaded (by warm_up at start-up), the index has chunks and
    a real search of it works now (a store that can count but not search is not ready)."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.model_loaded = False
        self.error: str | None = None
        self.probe: Any = None

    def warm_up(self) -> None:
        try:
            self.probe = self.assistant.embedder.embed_query("warm-up")
            _ = self.assistant.backend, self.assistant.lexical
            self.assistant.store.count()
            self.model_loaded = True
        except Exception as exc:  # reported by /readyz rather than crashing the server
            self.error = f"{type(exc).__name__}: {exc}"

    def check(self) -> tuple[bool, dict[str, Any]]:
        if self.error:
            return False, {"code": "not_ready", "message": self.error}
        if not self.model_loaded:
            return False, {"code": "not_ready", "message": "the model is still loading"}
        try:
            chunks = self.assistant.store.count()
            if chunks:
                self.assistant.store.query(self.probe, 1)
        except Exception as exc:
            return False, {"code": "backend_unavailable", "message": str(exc)}
        if chunks == 0:
            return False, {"code": "not_ready", "message": "the index is empty"}
        return True, {"status": "ready", "chunks": chunks, "backend": self.assistant.backend.name}


DESCRIPTION = """Answers with checked citations from the indexed documents.

* `POST /api/ask` and `POST /api/ask/stream` (server-sent events) take
  `{question, history?, filters?, conversation_id?}` and return the Answer JSON with the
  `conversation_id` it was kept in; `/api/conversations` lists and opens the caller's own.
* `/api/documents` lists the indexed documents; members of the admin group upload (multipart),
  re-index (`/api/documents/reindex`, server-sent progress) and delete them.
* `POST /v1/chat/completions` and `GET /v1/models` follow the OpenAI chat API; citations are
  in the extra top-level field `citations` and as a "Sources:" list at the end of the text.
* When tokens are configured, send `Authorization: Bearer <token>`; the token's access groups
  decide which documents can be retrieved.
* Errors are `{"error": {"code", "message"}}`.
"""


def create_app(settings: Settings, assistant: Assistant | None = None) -> FastAPI:
    assistant = assistant or Assistant(settings)
    auth = TokenAuth(settings.api_tokens)
    limiter = RateLimiter(settings.rate_limit_per_minute)
    readiness = Readiness(assistant)
    feedback = FeedbackStore.for_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Load the model in the background: /healthz answers at once, /readyz when loaded.
        threading.Thread(target=readiness.warm_up, name="warm-up", daemon=True).start()
        yield

    app = FastAPI(
        title="Strategy assistant",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI would load from a CDN: see assistant/web/docs.py
        redoc_url=None,
    )
    install_error_handlers(app)
    install_access_log_redaction()
    gate = Gate(settings.concurrency, settings.queue_size)
    caller = caller_dependency(auth, limiter)
    conversations = ConversationStore.for_settings(settings)
    app.include_router(api_router(assistant, caller, gate, settings, conversations))
    app.include_router(conversations_router(conversations, caller))
    library = Library(assistant, settings)
    app.include_router(documents_router(library, caller, settings.admin_group))
    app.include_router(originals_router(Originals(assistant, auth), settings.ui_language))

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(docs_html(app.openapi(), app_root(request)))

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "Not ready"}})
    def readyz() -> JSONResponse:
        """The model is loaded and the index holds chunks (503 otherwise)."""
        ok, body = readiness.check()
        return JSONResponse(body if ok else {"error": body}, status_code=200 if ok else 503)

    app.include_router(login_router(auth, settings.ui_language))

    @app.get("/embed", include_in_schema=False)
    def embed_redirect(request: Request) -> RedirectResponse:
        query = request.url.query
        target = f"{app_root(request)}/embed/" + (f"?{query}" if query else "")
        return RedirectResponse(target, status_code=307)

    @app.get("/gradio.js", include_in_schema=False)
    def gradio_js() -> FileResponse:
        # The <gradio-app> web component's loader, served here so that an intranet page
        # needs no CDN; it imports ./assets/..., which the chat mounted at / serves.
        return FileResponse(GRADIO_JS, media_type="text/javascript")

    app.include_router(fallback_router())

    # Middleware added last runs first: ChatLogin is innermost, security headers outermost;
    # body limits and the upload check come before anything reads a body or checks a token.
    app.add_middleware(ChatLoginMiddleware, auth=auth)
    app.add_middleware(SessionBindingMiddleware, auth=auth)
    app.add_middleware(UploadGuardMiddleware, auth=auth, admin_group=settings.admin_group)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        upload_bytes=int(settings.max_upload_mb * 1_000_000),
    )
    # Present even with no origins, so Gradio does not add its own, looser CORS headers.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.allowed_origins,
        allow_credentials="*" not in settings.allowed_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],  # the Gradio client sends headers of its own
    )
    app.add_middleware(
        FramingMiddleware,
        frame_ancestors=settings.frame_ancestors,
        ui_language=settings.ui_language,
    )
    # Outermost: the app's root path, for every link and redirect written below it.
    app.add_middleware(AppRootMiddleware)

    for path, embed in (("/embed", True), ("/", False)):
        gr.mount_gradio_app(
            app,
            create_chat(
                assistant,
                settings,
                embed,
                auth=auth,
                limiter=limiter,
                feedback=feedback,
                library=library,
                conversations=conversations,
            ),
            path=path,
            server_name=settings.host,
            server_port=settings.port,
            auth_dependency=auth.gradio_user if auth.enabled else None,
            footer_links=[] if embed else ["api"],
            run_history=False,
            ssr_mode=False,
            mcp_server=False,
            max_file_size=int(settings.max_upload_mb * 1_000_000),
            enable_monitoring=False,
            pwa=False,
            css=CSS,
            js=JS,
            i18n=gr.I18n(**gradio_translations()),
        )
    return app


def run(settings: Settings) -> None:
    import uvicorn

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        root_path=settings.root_path,
        log_level="info",
    )
