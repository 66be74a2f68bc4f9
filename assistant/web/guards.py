"""ASGI guards in front of every route, the Gradio ones included: body limits checked before
anything reads a body, uploads refused before they are read when the caller may not upload,
Gradio session hashes bound to the caller, and access-log lines without tokens or session
hashes.

Gradio keeps a chat's State under the `session_hash` the browser chose. A second caller that
sends the same hash would otherwise see the first caller's conversation, so every hash is
replaced by an HMAC of (caller, hash) before Gradio sees it: a caller only ever reaches sessions
derived from its own token (with auth off: its own browser cookie), whatever hash it sends.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.web.auth import Caller, SignInBlockedError, TokenAuth
from assistant.web.paths import route_path

GRADIO = "/gradio_api/"
# Gradio routes the chat does not use. /run and /api answer outside the queue (and its
# concurrency limit); /call answers "simple API" events to anyone who knows their id;
# /stream serves media streams by event id. None of them is bound to a session.
_BLOCKED = ("call/", "run/", "api/", "stream/", "process_recording", "vibe-", "dev/")
# Gradio POST routes whose JSON body names a session.
_SESSION_BODIES = ("queue/join", "cancel", "reset", "component_server")
_REDACTED = "REDACTED"
_SECRET_PARAMS = {"token", "session_hash", "upload_id"}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The documented error shape, {"error": {"code", "message"}}."""
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def is_upload(scope: Scope) -> bool:
    """Requests that carry a document: Gradio's upload route and POST /api/documents."""
    path = route_path(scope)
    return scope["method"] == "POST" and (
        path.endswith(GRADIO + "upload") or path.rstrip("/") == "/api/documents"
    )


class BodyLimitMiddleware:
    """413 for a body over the limit, declared (Content-Length, answered before anything is
    read) or actually sent (counted as it streams in), on every route. Uploads have their
    own, larger limit."""

    def __init__(self, app: ASGIApp, max_bytes: int, upload_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_bytes if is_upload(scope) else self.max_bytes
        too_large = error_response(
            413, "body_too_large", f"the request body is larger than {limit} bytes"
        )
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > limit:
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
                if received > limit:
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


class UploadGuardMiddleware:
    """Uploads are refused before their body is read unless the caller may manage
    documents (401 without a valid token, 403 outside the admin group)."""

    def __init__(self, app: ASGIApp, auth: TokenAuth, admin_group: str) -> None:
        self.app = app
        self.auth = auth
        self.admin_group = admin_group

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_upload(scope):
            await self.app(scope, receive, send)
            return
        try:
            caller = self.auth.caller_for_request(Request(scope), cookie=_is_gradio(scope))
        except SignInBlockedError as exc:
            response = error_response(429, "rate_limited", str(exc))
            await response(scope, receive, send)
            return
        if caller is None:
            response = error_response(
                401, "unauthorized", "a valid token is required", {"WWW-Authenticate": "Bearer"}
            )
        elif not caller.is_admin(self.admin_group):
            response = error_response(403, "forbidden", "only administrators may upload")
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


def _is_gradio(scope: Scope) -> bool:
    return GRADIO in scope["path"]


class SessionBindingMiddleware:
    """Binds Gradio session hashes to the caller (see the module docstring) and closes the
    Gradio routes that answer by event id alone."""

    def __init__(self, app: ASGIApp, auth: TokenAuth, secret: bytes | None = None) -> None:
        self.app = app
        self.auth = auth
        self.secret = secret or os.urandom(32)

    def bind(self, caller: Caller, session_hash: str) -> str:
        message = f"{caller.id}\x1f{session_hash}".encode("utf-8", "surrogatepass")
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:32]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_gradio(scope):
            await self.app(scope, receive, send)
            return
        prefix, _, rest = scope["path"].partition(GRADIO)
        if rest.startswith(_BLOCKED):
            await error_response(404, "not_found", "no such route")(scope, receive, send)
            return
        try:
            # With auth off: the browser's caller, or anonymous for a client without its cookie.
            caller = self.auth.caller_for_request(Request(scope), cookie=True)
        except SignInBlockedError:
            caller = None
        if caller is None:
            # Gradio leaves some routes (the heartbeat) open; none serves a stranger.
            response = error_response(401, "unauthorized", "a valid token is required")
            await response(scope, receive, send)
            return

        def bind(value: str) -> str:
            return self.bind(caller, value)

        scope = dict(scope)
        if rest.startswith("heartbeat/"):
            path = f"{prefix}{GRADIO}heartbeat/{bind(rest.removeprefix('heartbeat/'))}"
            scope["path"], scope["raw_path"] = path, path.encode("utf-8")
        query = scope.get("query_string", b"").decode("latin-1")
        if "session_hash" in query:
            pairs = parse_qsl(query, keep_blank_values=True)
            rebound = [(k, bind(v) if k == "session_hash" else v) for k, v in pairs]
            scope["query_string"] = urlencode(rebound).encode("latin-1")
        if scope["method"] == "POST" and rest.rstrip("/") in _SESSION_BODIES:
            receive = await _rewritten_json(scope, receive, bind)
        await self.app(scope, receive, send)


async def _rewritten_json(scope: Scope, receive: Receive, bind: Callable[[str], str]) -> Receive:
    """Reads the (size-limited) JSON body and returns a receive that replays it with its
    session_hash bound; a body that is not JSON is replayed unchanged for Gradio to refuse."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return receive
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("session_hash"), str):
        data["session_hash"] = bind(data["session_hash"])
        body = json.dumps(data).encode("utf-8")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        scope["headers"] = [*headers, (b"content-length", str(len(body)).encode())]
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


# Access logs -------------------------------------------------------------------------------
_HEARTBEAT = re.compile(r"(/heartbeat/)[^/?]+")


def redact_path(path: str) -> str:
    """A request line without secrets: token, session_hash and upload_id values and the
    session hash in heartbeat paths are replaced."""
    path, mark, query = path.partition("?")
    path = _HEARTBEAT.sub(rf"\1{_REDACTED}", path)
    if not mark:
        return path
    pairs = parse_qsl(query, keep_blank_values=True)
    clean = [(k, _REDACTED if k in _SECRET_PARAMS else v) for k, v in pairs]
    return f"{path}?{urlencode(clean)}"


class AccessLogRedaction(logging.Filter):
    """For uvicorn's access logger, whose arguments are (client, method, path, http, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


def install_access_log_redaction() -> None:
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogRedaction) for f in logger.filters):
        logger.addFilter(AccessLogRedaction())
