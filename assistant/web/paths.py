"""The app's own root: where it is served when a reverse proxy or a parent ASGI app puts it
under a path prefix (`assistant serve --root-path /assistant`, or a Mount).

ASGI gives the prefix as `root_path` and keeps it in `path`. Inside the Gradio mounts the
`root_path` grows by the mount's own path ("/assistant/embed"), so the outermost middleware
records the app's root once, under its own scope key, for every link and redirect the app
writes, and for the middlewares that decide by the path within the app.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

ROOT_KEY = "assistant.root"


class AppRootMiddleware:
    """Records the app's root (the root_path where the app starts) in the scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope[ROOT_KEY] = str(scope.get("root_path", "")).rstrip("/")
        await self.app(scope, receive, send)


def app_root(source: Any) -> str:
    """The app's root ("" or "/prefix") of a scope, or of anything with a scope: a Starlette
    request, or a Gradio request (which wraps one)."""
    scope = source if isinstance(source, MutableMapping) else _scope_of(source)
    if scope is None:
        return ""
    return str(scope.get(ROOT_KEY, str(scope.get("root_path", "")).rstrip("/")))


def _scope_of(source: Any) -> MutableMapping[str, Any] | None:
    # A Gradio request turns unknown attributes into JSON copies (bytes fail): its own
    # `request` attribute, the Starlette request, is read instead.
    inner = vars(source).get("request") if hasattr(source, "__dict__") else None
    for candidate in (inner, source):
        if isinstance(candidate, HTTPConnection):
            return candidate.scope
    return None


def route_path(scope: Scope) -> str:
    """The request's path within the app: "/api/documents" whatever the prefix."""
    path = str(scope["path"])
    root = app_root(scope)
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :] or "/"
    return path
