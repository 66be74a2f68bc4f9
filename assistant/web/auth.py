"""Access tokens, the groups they grant, the chat's login page and the limits on callers.

Auth is off while settings.api_tokens is empty. Otherwise every caller presents a token:
the API as `Authorization: Bearer <token>`, the chat through a login page that stores it in an
HttpOnly cookie (or `?token=` on the first page load, for iframes). A token maps to access
groups, and retrieval only sees chunks without groups or sharing one with the caller.

While auth is off every browser is still a caller of its own: a chat page load gives it a random
HttpOnly cookie (`assistant_browser`) and the caller id is a digest of that value, so its
conversations are its own. Without that cookie (API clients, a browser refusing it) the chat is
a caller per page session and the API the shared anonymous caller.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.datastructures import URL, Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.retrieve import Filters
from assistant.web.i18n import choose_language, t
from assistant.web.paths import app_root, route_path

COOKIE = "assistant_token"
LOGIN_PATH = "/auth/login"
LOGOUT_PATH = "/auth/logout"
# The HTML pages of the chat; everything else Gradio serves is guarded by its auth_dependency.
CHAT_PAGES = ("/", "/embed", "/embed/")
# Names a browser while auth is off (see browser_caller): set by a chat page load, a year and
# a bit (browsers cap cookie lifetimes at 400 days), renewed by every later chat page load.
BROWSER_COOKIE = "assistant_browser"
BROWSER_COOKIE_MAX_AGE = 400 * 24 * 3600
# What secrets.token_urlsafe(24) makes (32 characters); anything else is replaced.
_BROWSER_VALUE = re.compile(r"[A-Za-z0-9_-]{32,128}")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Caller:
    """Who is asking. The id never contains the token itself (it names feedback rows and
    rate-limit buckets); groups=None means access control is off."""

    id: str
    groups: tuple[str, ...] | None

    def filters(self, doc_ids: tuple[str, ...] = (), languages: tuple[str, ...] = ()) -> Filters:
        return Filters(doc_ids=doc_ids, languages=languages, groups=self.groups)

    def is_admin(self, admin_group: str) -> bool:
        """May upload and delete documents: the admin group, or anyone while auth is off."""
        return self.groups is None or admin_group in self.groups


ANONYMOUS = Caller(id="anonymous", groups=None)


def browser_caller(value: str | None) -> Caller | None:
    """The caller of a browser while auth is off, named by a digest of its BROWSER_COOKIE
    value (never the value itself); None without a well-formed value."""
    if not value or not _BROWSER_VALUE.fullmatch(value):
        return None
    return Caller(id=f"b-{_digest(value)[:16]}", groups=None)


def session_caller(session_hash: str | None) -> Caller | None:
    """The caller of a chat page session without the browser cookie while auth is off: its
    conversations last as long as the page (never the anonymous caller's)."""
    return Caller(id=f"s-{_digest(session_hash)[:16]}", groups=None) if session_hash else None


class SignInBlockedError(Exception):
    """Too many wrong tokens came from this client address in the last minute."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed sign-ins; retry in {math.ceil(retry_after)} s")
        self.retry_after = math.ceil(retry_after)


class TokenAuth:
    def __init__(self, tokens: dict[str, list[str]], failures: RateLimiter | None = None) -> None:
        # Looked up by digest, so lookup time says nothing about how much of a token matched.
        self._by_digest = {
            _digest(token): Caller(id=f"t-{_digest(token)[:12]}", groups=tuple(groups))
            for token, groups in tokens.items()
        }
        self._by_id = {caller.id: caller for caller in self._by_digest.values()}
        self.failures = failures or RateLimiter(FAILED_SIGN_INS_PER_MINUTE)

    @property
    def enabled(self) -> bool:
        return bool(self._by_digest)

    def caller_for_token(self, token: str | None) -> Caller | None:
        """The caller a token names (no counting of failures: see sign_in)."""
        if not self.enabled:
            return ANONYMOUS
        return self._by_digest.get(_digest(token)) if token else None

    def sign_in(self, token: str | None, client: Any) -> Caller | None:
        """caller_for_token, refused for a client address with too many recent wrong
        tokens (SignInBlockedError); a wrong token counts as one failure of that address."""
        if not self.enabled:
            return ANONYMOUS
        key = client_key(client)
        retry = self.failures.blocked(key)
        if retry is not None:
            raise SignInBlockedError(retry)
        caller = self.caller_for_token(token)
        if caller is None and token:
            self.failures.hit(key)
        return caller

    def caller_for_user(self, user_id: str | None) -> Caller | None:
        """The caller behind a Gradio username (which is what gradio_user returned)."""
        if not self.enabled:
            return ANONYMOUS
        return self._by_id.get(user_id or "")

    def caller_for_chat(
        self, user_id: str | None, cookies: Mapping[str, str], session_hash: str | None
    ) -> Caller | None:
        """The caller of a chat event: the signed-in token's (its Gradio username); with
        auth off the browser's (its cookie), else one for the page session alone."""
        if self.enabled:
            return self._by_id.get(user_id or "")
        return browser_caller(cookies.get(BROWSER_COOKIE)) or session_caller(session_hash)

    @staticmethod
    def bearer(headers: Headers) -> str | None:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return value.strip() or None

    def caller_for_request(self, request: Request, *, cookie: bool) -> Caller | None:
        """The caller of a request (bearer header, else the token cookie when allowed); raises
        SignInBlockedError for an address with too many wrong tokens. With auth off: the
        browser's caller when the request carries its cookie (whatever `cookie` says), else
        the anonymous caller."""
        if not self.enabled:
            return browser_caller(request.cookies.get(BROWSER_COOKIE)) or ANONYMOUS
        token = self.bearer(request.headers) or (request.cookies.get(COOKIE) if cookie else None)
        return self.sign_in(token, request.client)

    def gradio_user(self, request: Request) -> str | None:
        """Gradio's auth_dependency: the caller id, or None to answer 401."""
        try:
            caller = self.caller_for_request(request, cookie=True)
        except SignInBlockedError:
            return None
        return caller.id if caller else None


class RateLimiter:
    """A sliding one-minute window per key (caller id, or client address when auth is off)."""

    def __init__(
        self, per_minute: int, *, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_minute = per_minute
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Counts one request; returns the seconds to wait when over the limit, else None."""
        return self._check(key, count=True)

    def blocked(self, key: str) -> float | None:
        """The seconds to wait when key is over the limit, without counting a request."""
        return self._check(key, count=False)

    def _check(self, key: str, *, count: bool) -> float | None:
        now = self._clock()
        with self._lock:
            if len(self._hits) > 10_000:  # forget idle callers so memory stays bounded
                self._hits = {
                    k: v for k, v in self._hits.items() if v and v[-1] > now - self.window
                }
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return max(0.0, hits[0] + self.window - now)
            if count:
                hits.append(now)
            return None


# Failed sign-ins (a wrong token on the login page, in ?token= or as a bearer) allowed per
# client address and minute; then every attempt from there is refused until the window moves.
FAILED_SIGN_INS_PER_MINUTE = 20


def client_key(client: Any) -> str:
    """The rate-limit key of a client address (a starlette Address or an ASGI tuple)."""
    host = getattr(client, "host", None) or (client[0] if client else None)
    return f"ip:{host or 'unknown'}"


class ServerBusyError(Exception):
    """Every answering slot is taken and the waiting line is full."""


class Gate:
    """At most `concurrency` questions are answered at once and `queue_size` wait; beyond
    that a request is refused at once (503) instead of piling up on two CPU cores."""

    def __init__(self, concurrency: int, queue_size: int) -> None:
        self._running = threading.BoundedSemaphore(concurrency)
        self._limit = concurrency + queue_size
        self._admitted = 0
        self._lock = threading.Lock()

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._lock:
            if self._admitted >= self._limit:
                raise ServerBusyError("the server is answering as many questions as it can")
            self._admitted += 1
        try:
            with self._running:
                yield
        finally:
            with self._lock:
                self._admitted -= 1


def rate_key(caller: Caller, client_host: str | None) -> str:
    return caller.id if caller.groups is not None else f"ip:{client_host or 'unknown'}"


def _safe_next(target: str | None, root: str = "") -> str:
    # Only same-site paths: "//host" and "/\\host" would leave the site (open redirect).
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return f"{root}/"
    return target


def _set_token_cookie(response: Response, token: str, secure: bool) -> None:
    # A cross-site intranet iframe only sends SameSite=None cookies, which browsers accept
    # only with Secure, so plain-http deployments fall back to Lax (same-site embedding).
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        secure=secure,
        samesite="none" if secure else "lax",
        path="/",
    )


def _browser_cookie_header(value: str, secure: bool) -> tuple[bytes, bytes]:
    # Lax: only same-site requests and top-level navigations carry it, so another site can
    # neither use nor (over https with Secure) read a browser's conversations through it.
    response = Response()
    response.set_cookie(
        BROWSER_COOKIE,
        value,
        max_age=BROWSER_COOKIE_MAX_AGE,
        httponly=True,
        secure=secure,
        samesite="lax",
        path="/",
    )
    header = next(h for h in response.raw_headers if h[0] == b"set-cookie")
    return header[0], header[1]


class ChatLoginMiddleware:
    """Sends a browser without a valid token on a chat page to the login page, and turns a
    `?token=` on a chat page into the cookie (then drops it from the address bar). With auth
    off, gives a chat page load the browser cookie (a new value when it has none)."""

    def __init__(self, app: ASGIApp, auth: TokenAuth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or route_path(scope) not in CHAT_PAGES
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if not self.auth.enabled:
            await self.app(scope, receive, _with_browser_cookie(request, send))
            return
        token = request.query_params.get("token")
        response: Response
        try:
            if token is not None:
                target = _without_query(request.url, "token")
                if self.auth.sign_in(token, request.client):
                    response = RedirectResponse(target, status_code=303)
                    _set_token_cookie(response, token, request.url.scheme == "https")
                else:
                    response = _login_redirect(target, failed=True, root=app_root(scope))
            elif self.auth.caller_for_request(request, cookie=True):
                await self.app(scope, receive, send)
                return
            else:
                response = _login_redirect(
                    _without_query(request.url), failed=False, root=app_root(scope)
                )
        except SignInBlockedError as exc:
            response = _blocked(exc)
        await response(scope, receive, send)


def _with_browser_cookie(request: Request, send: Send) -> Send:
    """send, with the browser cookie added to the response: the same value when the browser
    has a valid one (which renews its lifetime), else a new one."""
    value = request.cookies.get(BROWSER_COOKIE)
    if browser_caller(value) is None:
        value = secrets.token_urlsafe(24)
    header = _browser_cookie_header(value or "", request.url.scheme == "https")

    async def send_with_cookie(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), header]}
        await send(message)

    return send_with_cookie


def _blocked(exc: SignInBlockedError) -> Response:
    return PlainTextResponse(
        str(exc), status_code=429, headers={"Retry-After": str(exc.retry_after)}
    )


def _without_query(url: URL, *names: str) -> str:
    """The path and query of url without the named query parameters."""
    query = urlencode(
        [(k, v) for k, v in parse_qsl(url.query, keep_blank_values=True) if k not in names]
    )
    return url.path + (f"?{query}" if query else "")


def _login_redirect(next_path: str, *, failed: bool, root: str) -> RedirectResponse:
    query = {"next": next_path, **({"failed": "1"} if failed else {})}
    return RedirectResponse(f"{root}{LOGIN_PATH}?{urlencode(query)}", status_code=303)


def _login_page(lang: str, next_path: str, failed: bool) -> str:
    esc = html.escape
    error = f'<p class="error" role="alert">{esc(t("login_invalid", lang))}</p>' if failed else ""
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(t("title", lang))} – {esc(t("login_title", lang))}</title>
<style>
body{{font-family:system-ui,sans-serif;display:flex;justify-content:center;padding-top:10vh;
background:#f6f7f9;color:#1f2937}}
form{{background:#fff;padding:2rem;border-radius:.75rem;box-shadow:0 1px 4px #0002;
min-width:18rem}}
input{{width:100%;padding:.5rem;margin:.5rem 0 1rem;box-sizing:border-box}}
button{{padding:.5rem 1.25rem}} .error{{color:#b91c1c}}
</style></head>
<body><form method="post" action="login">
<h1>{esc(t("title", lang))}</h1>{error}
<label for="token">{esc(t("login_token", lang))}</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<input type="hidden" name="next" value="{esc(next_path)}">
<button type="submit">{esc(t("login_submit", lang))}</button>
</form></body></html>"""


def login_router(auth: TokenAuth, ui_language: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def language(request: Request) -> str:
        return choose_language(
            ui_language,
            requested=request.query_params.get("lang"),
            accept_language=request.headers.get("accept-language"),
        )

    @router.get(LOGIN_PATH)
    def login_form(request: Request, next: str = "/", failed: bool = False) -> HTMLResponse:
        page = _login_page(language(request), _safe_next(next, app_root(request)), failed)
        return HTMLResponse(page)

    @router.post(LOGIN_PATH)
    def login(request: Request, token: str = Form(...), next: str = Form("/")) -> Response:
        target = _safe_next(next, app_root(request))
        try:
            caller = auth.sign_in(token, request.client) if auth.enabled else None
        except SignInBlockedError as exc:
            return _blocked(exc)
        if caller is None:
            page = _login_page(language(request), target, True)
            return HTMLResponse(page, status_code=401)
        response = RedirectResponse(target, status_code=303)
        _set_token_cookie(response, token, request.url.scheme == "https")
        return response

    @router.get(LOGOUT_PATH)
    def logout() -> Response:
        # Relative: the login page beside this one, under whatever prefix the app has.
        response = RedirectResponse("login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return router
