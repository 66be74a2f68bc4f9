"""HTTP API: /api/ask (JSON and server-sent events), an OpenAI-compatible /v1 and health.

Every route is a thin adapter over Assistant.ask/stream. Errors are JSON
{"error": {"code", "message"}} with the HTTP status saying what went wrong.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.core import Assistant
from assistant.errors import (
    AssistantError,
    BackendUnavailableError,
    ConfigError,
    EmptyIndexError,
    QuestionError,
)
from assistant.schema import Answer
from assistant.settings import Settings
from assistant.web.auth import (
    Caller,
    Gate,
    RateLimiter,
    ServerBusyError,
    SignInBlockedError,
    TokenAuth,
    rate_key,
)
from assistant.web.conversations import ConversationStore
from assistant.web.guards import error_response
from assistant.web.history import cap_history, exchanges_to_history, has_lone_surrogate
from assistant.web.paths import route_path

logger = logging.getLogger(__name__)

MODEL_ID = "strategy-assistant"
SOURCES_HEADING = "Sources:"

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


# Errors raised while answering, most specific first: (type, HTTP status, code).
_ERRORS: tuple[tuple[type[Exception], int, str], ...] = (
    (QuestionError, 422, "invalid_question"),
    (EmptyIndexError, 503, "index_empty"),
    (BackendUnavailableError, 503, "backend_unavailable"),
    (ServerBusyError, 503, "busy"),
    (ConfigError, 500, "config_error"),
    (AssistantError, 500, "assistant_error"),
)


def error_json(exc: Exception) -> tuple[int, dict[str, Any]]:
    """Status and body for an error raised while answering (also sent inside streams)."""
    for kind, status, code in _ERRORS:
        if isinstance(exc, kind):
            return status, {"error": {"code": code, "message": str(exc)}}
    # Anything else is a bug: its details go to the server log, not to the client.
    logger.error("unexpected error while answering", exc_info=exc)
    return 500, {"error": {"code": "internal_error", "message": "internal error"}}


def install_error_handlers(app: FastAPI) -> None:
    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _STATUS_CODES.get(exc.status_code, "error")
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, code, str(exc.detail), headers)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        if any(e.get("type") == "lone_surrogate" for e in exc.errors()):
            return error_response(400, "bad_request", "the text holds a lone UTF-16 surrogate")
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
            for e in exc.errors()
        )
        return error_response(422, "invalid_request", problems or "invalid request")

    async def answering_error(request: Request, exc: Exception) -> JSONResponse:
        status, body = error_json(exc)
        return JSONResponse(body, status_code=status)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(AssistantError, answering_error)
    app.add_exception_handler(ServerBusyError, answering_error)
    app.add_exception_handler(Exception, answering_error)  # a bug: still JSON, logged


# Request bodies --------------------------------------------------------------------------
class _TextBody(BaseModel):
    """A request body whose strings must be encodable: a lone surrogate is a 400, not an
    error deep inside the embedder."""

    @model_validator(mode="before")
    @classmethod
    def _encodable(cls, data: Any) -> Any:
        if has_lone_surrogate(data):
            raise PydanticCustomError("lone_surrogate", "the text holds a lone UTF-16 surrogate")
        return data


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: str


class FiltersIn(BaseModel):
    """Narrowing a question to documents or languages. Access groups come from the token."""

    model_config = ConfigDict(extra="forbid")
    doc_ids: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)


class AskRequest(_TextBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"question": "What does the Lahti report say about AI pilots?"}]
        },
    )
    question: str
    history: list[Turn] = Field(default_factory=list)
    filters: FiltersIn | None = None
    # Continue a stored conversation: the server supplies its history.
    conversation_id: str | None = None


class AskResponse(Answer):
    conversation_id: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatCompletionRequest(_TextBody):
    """The fields of the OpenAI chat API that matter here; sampling options are accepted and
    ignored (answers are grounded in the documents, not sampled)."""

    model_config = ConfigDict(extra="allow")
    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None


def _sse(data: Any, event: str | None = None) -> str:
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {json.dumps(data, ensure_ascii=False)}\n\n"


def sources_text(answer: Answer) -> str:
    """The "Sources:" list appended to OpenAI-style answers, one line per citation."""
    if not answer.citations:
        return ""
    lines = []
    for c in answer.citations:
        where = c.doc if c.title in ("", c.doc) else f"{c.title} ({c.doc})"
        page = f", page {c.page}" if c.page is not None else ""
        lines.append(f"[{c.n}] {where}{page}: “{c.quote}”")
    return f"\n\n{SOURCES_HEADING}\n" + "\n".join(lines)


def _strip_sources(text: str) -> str:
    # Clients send our earlier answers back as history; the sources list is not conversation.
    return text.split(f"\n\n{SOURCES_HEADING}\n", 1)[0]


def _question_and_history(request: ChatCompletionRequest) -> tuple[str, list[dict[str, str]]]:
    turns = [m for m in request.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise HTTPException(422, "the last message must come from the user")
    history = [{"role": m.role, "content": _strip_sources(m.text())} for m in turns[:-1]]
    return turns[-1].text(), history


def caller_dependency(auth: TokenAuth, limiter: RateLimiter) -> Callable[[Request], Caller]:
    """The API's FastAPI dependency: the bearer token's caller (401 without one), counted
    against the rate limit (429)."""

    def caller(request: Request) -> Caller:
        try:
            found = auth.caller_for_request(request, cookie=False)
        except SignInBlockedError as exc:
            raise HTTPException(429, str(exc), {"Retry-After": str(exc.retry_after)}) from exc
        if found is None:
            raise HTTPException(
                401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"}
            )
        retry = limiter.hit(rate_key(found, request.client.host if request.client else None))
        if retry is not None:
            raise HTTPException(
                429,
                f"at most {limiter.per_minute} requests a minute; retry in {math.ceil(retry)} s",
                {"Retry-After": str(math.ceil(retry))},
            )
        return found

    return caller


def api_router(
    assistant: Assistant,
    caller: Callable[[Request], Caller],
    gate: Gate,
    settings: Settings,
    conversations: ConversationStore,
) -> APIRouter:
    router = APIRouter()

    def answer_stream(
        question: str, history: list[dict[str, str]], who: Caller, filters: FiltersIn | None
    ) -> Iterator[str | Answer]:
        """Assistant.stream inside a gate slot, started before the response so that a bad
        question, an empty index or a full server is an HTTP error, not a broken stream."""

        def run() -> Iterator[str | Answer]:
            with gate.slot():
                f = filters or FiltersIn()
                yield from assistant.stream(
                    question,
                    cap_history(history, settings),
                    filters=who.filters(tuple(f.doc_ids), tuple(f.languages)),
                )

        items = run()
        first = next(items)
        return itertools.chain([first], items)

    def conversation(body: AskRequest, who: Caller) -> tuple[str, list[dict[str, str]]]:
        """The conversation this question belongs to (a new one unless the body names one)
        and the history that goes with it: stored on the server, or sent by the client."""
        if body.conversation_id is None:
            sent = [t.model_dump() for t in body.history]
            return conversations.create(who.id, body.question), sent
        if body.history:
            raise HTTPException(422, "send either history or conversation_id, not both")
        found = conversations.get(who.id, body.conversation_id)
        if found is None:
            raise HTTPException(404, "no such conversation")
        return found.id, exchanges_to_history(found.exchanges)

    @router.post("/api/ask", response_model=AskResponse, tags=["ask"])
    def ask(body: AskRequest, who: Caller = Depends(caller)) -> AskResponse:
        """Answer one question in one JSON response. With `conversation_id` the server
        supplies the history of that conversation; without one a new conversation starts.
        The answer is kept in it, and its id comes back as `conversation_id`."""
        f = body.filters or FiltersIn()
        conversation_id, history = conversation(body, who)
        with gate.slot():
            answer = assistant.ask(
                body.question,
                cap_history(history, settings),
                filters=who.filters(tuple(f.doc_ids), tuple(f.languages)),
            )
        conversations.append(who.id, conversation_id, answer.question, answer)
        return AskResponse(**answer.model_dump(), conversation_id=conversation_id)

    @router.post(
        "/api/ask/stream",
        tags=["ask"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    def ask_stream(body: AskRequest, who: Caller = Depends(caller)) -> StreamingResponse:
        """Server-sent events: `event: delta` with `{"text": ...}` as the answer is written,
        then `event: answer` with the checked Answer JSON and `conversation_id` (its text may
        differ from the deltas: unsupported citations are dropped), or `event: error` with
        the error JSON. History and conversations as for /api/ask."""
        conversation_id, history = conversation(body, who)
        items = answer_stream(body.question, history, who, body.filters)

        def events() -> Iterator[str]:
            try:
                for item in items:
                    if isinstance(item, Answer):
                        conversations.append(who.id, conversation_id, item.question, item)
                        data = {**item.model_dump(), "conversation_id": conversation_id}
                        yield _sse(data, "answer")
                    else:
                        yield _sse({"text": item}, "delta")
            except Exception as exc:
                yield _sse(error_json(exc)[1], "error")

        return StreamingResponse(events(), media_type="text/event-stream", headers=_NO_BUFFER)

    @router.get("/v1/models", tags=["openai"])
    def models(who: Caller = Depends(caller)) -> dict[str, Any]:
        """The one model this server offers (for OpenAI-compatible clients)."""
        return {
            "object": "list",
            "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "local"}],
        }

    @router.post("/v1/chat/completions", tags=["openai"], response_model=None)
    def chat_completions(
        body: ChatCompletionRequest, who: Caller = Depends(caller)
    ) -> dict[str, Any] | StreamingResponse:
        """OpenAI-compatible chat. The last user message is the question and earlier
        user/assistant messages the history (system messages are ignored). The reply text
        ends with a "Sources:" list; the structured citations are in the extra top-level
        field `citations` (in the final chunk when streaming)."""
        question, history = _question_and_history(body)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if not body.stream:
            with gate.slot():
                answer = assistant.ask(
                    question, cap_history(history, settings), filters=who.filters()
                )
            content = answer.answer + sources_text(answer)
            return {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": MODEL_ID,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": _usage(body, content),
                "citations": [c.model_dump() for c in answer.citations],
            }

        items = answer_stream(question, history, who, None)
        include_usage = bool((body.stream_options or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return _sse(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": MODEL_ID,
                    "choices": [choice],
                    **extra,
                }
            )

        def events() -> Iterator[str]:
            streamed: list[str] = []
            yield chunk({"role": "assistant", "content": ""})
            try:
                for item in items:
                    if isinstance(item, str):
                        streamed.append(item)
                        yield chunk({"content": item})
                        continue
                    draft = "".join(streamed)
                    # The checked answer replaces a draft the client has already shown.
                    tail = "" if item.answer == draft else f"\n\n{item.answer}"
                    tail += sources_text(item)
                    yield chunk(
                        {"content": tail},
                        "stop",
                        citations=[c.model_dump() for c in item.citations],
                    )
                    if include_usage:
                        yield _sse(
                            {
                                "id": completion_id,
                                "object": "chat.completion.chunk",
                                "created": created,
                                "model": MODEL_ID,
                                "choices": [],
                                "usage": _usage(body, draft + tail),
                            }
                        )
            except Exception as exc:
                yield _sse(error_json(exc)[1])
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers=_NO_BUFFER)

    return router


METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def fallback_router() -> APIRouter:
    """Unknown API paths and methods in the documented error shape. Included last: without
    it they would fall through to the chat mounted at "/" and get Gradio's own errors."""
    router = APIRouter(include_in_schema=False)

    @router.api_route("/api/{rest:path}", methods=METHODS)
    @router.api_route("/v1/{rest:path}", methods=METHODS)
    def not_found(request: Request, rest: str) -> JSONResponse:
        # Read from the OpenAPI schema: every documented route is there, and nothing else.
        path = route_path(request.scope)  # within the app, whatever prefix it is served under
        allowed = sorted(
            method.upper()
            for template, operations in request.app.openapi()["paths"].items()
            if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", ".+", re.escape(template)), path)
            for method in operations
        )
        if allowed:
            return error_response(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed here; use {', '.join(allowed)}",
                {"Allow": ", ".join(allowed)},
            )
        return error_response(404, "not_found", "no such API route")

    return router


_NO_BUFFER = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _usage(body: ChatCompletionRequest, content: str) -> dict[str, int]:
    from assistant.tokens import count_tokens

    prompt = sum(count_tokens(m.text()) for m in body.messages)
    completion = count_tokens(content)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
