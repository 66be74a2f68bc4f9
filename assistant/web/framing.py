"""Who may show the chat in a frame (CSP frame-ancestors, from settings), and a hint instead of
a broken frame for a page that may not.

A browser that refuses to render a frame for want of frame-ancestors shows an empty error page
inside the embedding page. When the request is for a frame and its Referer names an origin the
setting does not allow, the server answers with a short page that may be framed: it says so and
links to the chat in a tab of its own. It carries no data.

"For a frame" is read from Sec-Fetch-Dest. A request without it (Safari before 16.4, a proxy
that strips Fetch Metadata) cannot say, so the embed view's own address decides: an HTML request
for /embed/ is what a frame loads, and a page that may not frame the chat gets the hint there
too. A link to /embed/ from such a page then shows the hint, whose link opens the chat.
"""

from __future__ import annotations

import fnmatch
import html
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.web.i18n import choose_language, t
from assistant.web.paths import route_path

FRAME_DESTINATIONS = {"iframe", "frame", "embed", "object"}


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def frame_allowed(parent: str, own: str, ancestors: list[str]) -> bool:
    """Whether a page of origin parent may frame this server (origin own) under ancestors,
    read as CSP source expressions: 'self', '*', an origin or a host pattern with '*'."""
    for source in ancestors:
        if source == "*" or (source == "'self'" and parent == own):
            return True
        if source.startswith("'"):
            continue
        pattern = source if "://" in source else f"*://{source}"
        if fnmatch.fnmatchcase(parent, pattern.rstrip("/")):
            return True
    return False


def _embed_page(request: Request) -> bool:
    """An HTML request for the embed view (/embed or /embed/, under the app's root)."""
    wants_html = "text/html" in request.headers.get("accept", "")
    return wants_html and route_path(request.scope).rstrip("/") == "/embed"


class FramingMiddleware:
    """Sends frame-ancestors and nosniff on every response; answers a refused frame with the
    hint page."""

    def __init__(self, app: ASGIApp, frame_ancestors: list[str], ui_language: str) -> None:
        self.app = app
        self.ancestors = frame_ancestors
        self.ui_language = ui_language
        policy = "frame-ancestors " + (" ".join(frame_ancestors) or "'none'")
        self.headers = [
            (b"content-security-policy", policy.encode("latin-1")),
            (b"x-content-type-options", b"nosniff"),
        ]

    def refused_parent(self, request: Request) -> str | None:
        destination = request.headers.get("sec-fetch-dest")
        if destination is None:
            if not _embed_page(request):
                return None
        elif destination not in FRAME_DESTINATIONS:
            return None
        parent = _origin(request.headers.get("referer", ""))
        own = f"{request.url.scheme}://{request.url.netloc}"
        if parent is None or frame_allowed(parent, own, self.ancestors):
            return None
        return parent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD"):
            request = Request(scope)
            parent = self.refused_parent(request)
            if parent is not None:
                await self.hint(request, parent)(scope, receive, send)
                return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)

    def hint(self, request: Request, parent: str) -> HTMLResponse:
        lang = choose_language(
            self.ui_language,
            requested=request.query_params.get("lang"),
            accept_language=request.headers.get("accept-language"),
        )
        e = html.escape
        body = (
            f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            f"<title>{e(t('title', lang))}</title></head>"
            '<body style="font-family:system-ui,sans-serif;padding:1rem;color:#111827">'
            f'<h1 style="font-size:1.2rem">{e(t("title", lang))}</h1>'
            f'<p id="frame-refused">{e(t("frame_refused", lang, origin=parent))}</p>'
            f'<p><a href="{e(str(request.url))}" target="_blank" rel="noopener" '
            f'style="color:#1d4ed8">{e(t("open_in_tab", lang))}</a></p></body></html>'
        )
        # This page, and only this one, may be shown in any frame: it holds no data.
        return HTMLResponse(
            body,
            status_code=403,
            headers={
                "Content-Security-Policy": "frame-ancestors *",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
            },
        )
