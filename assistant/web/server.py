"""One FastAPI app: the chat at /, the compact embed view at /embed/, the API, health probes
and OpenAPI docs at /docs. `create_app` builds it; `run` serves it with uvicorn."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.core import Assistant
from assistant.settings import Settings
from assistant.web.api import Gate, Readiness, api_router, error_response, install_error_handlers
from assistant.web.auth import ChatLoginMiddleware, RateLimiter, TokenAuth, login_router
from assistant.web.chat import CSS, JS, create_chat
from assistant.web.feedback import FeedbackStore

# Request bodies are limited on the API; the chat's own traffic is small and Gradio-managed.
LIMITED_PREFIXES = ("/api/", "/v1/")


class _BodyTooLarge(Exception):
    pass


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
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await too_large(scope, receive, send)


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
    app.include_router(api_router(assistant, auth, limiter, gate, readiness))
    app.include_router(login_router(auth, settings.ui_language))

    @app.get("/embed", include_in_schema=False)
    def embed_redirect(request: Request) -> RedirectResponse:
        query = request.url.query
        return RedirectResponse("/embed/" + (f"?{query}" if query else ""), status_code=307)

    # Added last = outermost: security headers on every response, also on 413 and redirects.
    app.add_middleware(ChatLoginMiddleware, auth=auth)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Present even with no origins, so Gradio does not add its own, looser CORS headers.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.allowed_origins,
        allow_credentials="*" not in settings.allowed_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
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
