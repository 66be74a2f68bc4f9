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
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.core import Assistant
from assistant.settings import Settings
from assistant.web.api import api_router, error_response, install_error_handlers
from assistant.web.auth import ChatLoginMiddleware, Gate, RateLimiter, TokenAuth, login_router
from assistant.web.chat import CSS, JS, create_chat
from assistant.web.feedback import FeedbackStore

GRADIO_JS = Path(gr.__file__).parent / "templates" / "frontend" / "gradio.js"
# Request bodies are limited on the API; the chat's own traffic is small and Gradio-managed.
LIMITED_PREFIXES = ("/api/", "/v1/")


class BodyLimitMiddleware:
    """413 for API requests whose body exceeds max_bytes, declared or actually sent."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(LIMITED_PREFIXES):
            await self.app(scope, receive, send)
            return
        too_large = error_response(
            413, "body_too_large", f"the request body is larger than {self.max_bytes} bytes"
        )
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await too_large(scope, receive, send)
            return
        received = 0
        started = rejected = False

        async def counting_receive() -> Message:
            nonlocal received, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Answer now; the app sees a disconnect and whatever it sends is dropped.
                    rejected = True
                    if not started:
                        await too_large(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if rejected:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counting_receive, guarded_send)


class SecurityHeadersMiddleware:
    """Who may frame the pages (CSP frame-ancestors, from settings) and no MIME sniffing."""

    def __init__(self, app: ASGIApp, frame_ancestors: list[str]) -> None:
        self.app = app
        policy = "frame-ancestors " + (" ".join(frame_ancestors) or "'none'")
        self.headers = [
            (b"content-security-policy", policy.encode("latin-1")),
            (b"x-content-type-options", b"nosniff"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


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
  `{question, history?, filters?}` and return the Answer JSON.
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
        docs_url="/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    gate = Gate(settings.concurrency, settings.queue_size)
    app.include_router(api_router(assistant, auth, limiter, gate))

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
        return RedirectResponse("/embed/" + (f"?{query}" if query else ""), status_code=307)

    @app.get("/gradio.js", include_in_schema=False)
    def gradio_js() -> FileResponse:
        # The <gradio-app> web component's loader, served here so that an intranet page
        # needs no CDN; it imports ./assets/..., which the chat mounted at / serves.
        return FileResponse(GRADIO_JS, media_type="text/javascript")

    # Middleware added last runs first: ChatLogin is innermost, security headers outermost.
    app.add_middleware(ChatLoginMiddleware, auth=auth)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Present even with no origins, so Gradio does not add its own, looser CORS headers.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.allowed_origins,
        allow_credentials="*" not in settings.allowed_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],  # the Gradio client sends headers of its own
    )
    app.add_middleware(SecurityHeadersMiddleware, frame_ancestors=settings.frame_ancestors)

    for path, embed in (("/embed", True), ("/", False)):
        gr.mount_gradio_app(
            app,
            create_chat(assistant, settings, embed, auth=auth, limiter=limiter, feedback=feedback),
            path=path,
            server_name=settings.host,
            server_port=settings.port,
            auth_dependency=auth.gradio_user if auth.enabled else None,
            footer_links=[] if embed else ["api"],
            run_history=False,
            ssr_mode=False,
            mcp_server=False,
            enable_monitoring=False,
            pwa=False,
            css=CSS,
            js=JS,
        )
    return app


def run(settings: Settings) -> None:
    import uvicorn

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
