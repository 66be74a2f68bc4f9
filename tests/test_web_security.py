"""The web layer's defences against callers, on a real server on 127.0.0.1: Gradio sessions
bound to their token, body limits on every route before auth, uploads refused before they
are read, limits on feedback, failed sign-ins and history, no secrets in access logs, and
errors in the documented shape."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from markdown_it import MarkdownIt
from test_web_api import (
    FINANCE_DOC,
    FINANCE_QUESTION,
    HR_QUESTION,
    SV_QUESTION,
    TOKENS,
    group_index,  # noqa: F401  (a fixture)
    running_server,
)

from assistant.core import Assistant
from assistant.schema import Answer, Citation
from assistant.settings import Settings
from assistant.web.guards import redact_path
from assistant.web.render import answer_markdown
from assistant.web.server import create_app

ADMIN_TOKENS = {**TOKENS, "tok-admin": ["admin"]}
OPTIONS: dict[str, Any] = {"verbose": False, "analytics_enabled": False, "download_files": False}


def client(base: str, token: str) -> Client:
    return Client(f"{base}/", headers={"Authorization": f"Bearer {token}"}, **OPTIONS)


@pytest.fixture(scope="module")
def secure_base(group_index: Path) -> Iterator[str]:  # noqa: F811
    settings = Settings(data_dir=group_index, api_tokens=ADMIN_TOKENS, max_upload_mb=1)
    with running_server(create_app(settings)) as url:
        yield url


def raw_request(base: str, head: str, body: bytes = b"") -> str:
    """Sends a hand-made request (headers may promise a body that never comes) and returns
    the status line and headers of the answer."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    return answer.decode("latin-1")


# Sessions ------------------------------------------------------------------------------------
def test_a_second_token_with_the_first_ones_session_hash_gets_nothing_of_it(
    secure_base: str,
) -> None:
    finance = client(secure_base, "tok-finance")
    chatbot, sources, _, _, _, *_ = finance.predict(FINANCE_QUESTION, api_name="/ask")
    assert FINANCE_DOC in sources
    hr = client(secure_base, "tok-hr")
    hr.session_hash = finance.session_hash  # reuse the other caller's session
    chatbot, sources, retrieved, _, _, *_ = hr.predict(HR_QUESTION, api_name="/ask")
    assert len(chatbot) == 2, chatbot  # its own question and answer only
    seen = json.dumps(chatbot, ensure_ascii=False) + sources + retrieved
    assert FINANCE_DOC not in seen and "Nordljus" not in seen
    # The owner still has its conversation.
    chatbot, _, _, _, _, *_ = finance.predict("Och vem följer upp den?", api_name="/ask")
    assert len(chatbot) == 4


def test_gradio_routes_outside_sessions_are_closed(secure_base: str) -> None:
    headers = {"Authorization": "Bearer tok-hr"}
    for method, path in (
        ("GET", "/gradio_api/call/ask/0123456789abcdef"),
        ("POST", "/gradio_api/call/ask"),
        ("POST", "/gradio_api/run/ask"),
        ("POST", "/embed/gradio_api/api/ask"),
    ):
        response = httpx.request(method, secure_base + path, headers=headers, json={"data": []})
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"


# Body limits before auth ----------------------------------------------------------------------
def test_oversized_gradio_bodies_are_413_before_anything_is_read(secure_base: str) -> None:
    # No token and a promised 100 MB that is never sent: refused from the headers alone.
    head = (
        "POST /gradio_api/queue/join HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000000"
    )
    assert raw_request(secure_base, head).startswith("HTTP/1.1 413")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(200):
            yield b"x" * 1000

    # Without a token the body is not read at all; with one it is counted as it arrives.
    url = f"{secure_base}/gradio_api/queue/join"
    assert httpx.post(url, content=chunks()).status_code == 401
    streamed = httpx.post(url, content=chunks(), headers={"Authorization": "Bearer tok-hr"})
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "body_too_large"


def test_uploads_are_refused_before_they_are_read(secure_base: str) -> None:
    # The promised body is never sent: an answer proves nothing waited for it.
    for token, size, status in (
        (None, 500_000, "401"),
        ("tok-hr", 500_000, "403"),
        ("tok-admin", 50_000_000, "413"),  # over max_upload_mb
    ):
        auth = f"\r\nAuthorization: Bearer {token}" if token else ""
        for path in ("/gradio_api/upload", "/api/documents"):
            head = (
                f"POST {path} HTTP/1.1\r\nHost: x{auth}\r\n"
                f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {size}"
            )
            assert raw_request(secure_base, head).startswith(f"HTTP/1.1 {status}"), (path, token)


# Feedback and sign-in limits -------------------------------------------------------------------
def test_feedback_comments_are_limited(secure_base: str) -> None:
    chat = client(secure_base, "tok-hr")
    chat.predict(HR_QUESTION, api_name="/ask")
    assert chat.predict(1, "up", "bra", api_name="/feedback")
    with pytest.raises(AppError, match="2000"):
        chat.predict(1, "down", "x" * 5000, api_name="/feedback")


def test_feedback_is_rate_limited(corpus_assistant: Assistant, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rate_limit_per_minute=2)
    with running_server(create_app(settings, corpus_assistant)) as url:
        chat = Client(f"{url}/", **OPTIONS)
        chat.predict(SV_QUESTION, api_name="/ask")
        chat.predict(1, "up", "", api_name="/feedback")
        chat.predict(1, "down", "", api_name="/feedback")
        with pytest.raises(AppError):
            chat.predict(1, "up", "", api_name="/feedback")


def test_failed_sign_ins_are_rate_limited(group_index: Path) -> None:  # noqa: F811
    settings = Settings(data_dir=group_index, api_tokens=TOKENS)
    with running_server(create_app(settings), ready_path="/healthz") as url:
        for attempt in range(20):
            wrong = httpx.post(f"{url}/auth/login", data={"token": f"guess-{attempt}"})
            assert wrong.status_code == 401
        assert httpx.post(f"{url}/auth/login", data={"token": "guess"}).status_code == 429
        # Every way in is closed for this address, a right token included, for a while.
        right = httpx.post(f"{url}/auth/login", data={"token": "tok-hr"})
        assert right.status_code == 429 and int(right.headers["retry-after"]) >= 1
        api = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer tok-hr"})
        assert api.status_code == 429 and api.json()["error"]["code"] == "rate_limited"
        assert httpx.get(f"{url}/?token=tok-hr").status_code == 429


# History -------------------------------------------------------------------------------------
def test_history_is_capped_before_it_reaches_the_answerer(
    corpus_assistant: Assistant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[dict[str, str]]] = []
    ask, stream = corpus_assistant.ask, corpus_assistant.stream

    def recording_ask(question: str, history: Any = (), **kwargs: Any) -> Answer:
        seen.append(list(history))
        return ask(question, history, **kwargs)

    def recording_stream(question: str, history: Any = (), **kwargs: Any) -> Any:
        seen.append(list(history))
        return stream(question, history, **kwargs)

    monkeypatch.setattr(corpus_assistant, "ask", recording_ask)
    monkeypatch.setattr(corpus_assistant, "stream", recording_stream)
    settings = Settings(data_dir=tmp_path, max_body_bytes=200_000)
    huge = [{"role": "user", "content": "lång fråga " * 6000}] + [
        {"role": "user" if i % 2 else "assistant", "content": f"tur {i}"} for i in range(20)
    ]
    with running_server(create_app(settings, corpus_assistant)) as url:
        for path, body in (
            ("/api/ask", {"question": SV_QUESTION, "history": huge}),
            ("/api/ask/stream", {"question": SV_QUESTION, "history": huge}),
            ("/v1/chat/completions", {"messages": [*huge, {"role": "user", "content": "Hej?"}]}),
        ):
            assert httpx.post(url + path, json=body, timeout=60).status_code == 200, path
        chat = Client(f"{url}/", **OPTIONS)
        for _ in range(4):
            chat.predict(SV_QUESTION, api_name="/ask")
    assert len(seen) == 7
    for history in seen:
        assert len(history) <= settings.max_history_turns
        assert all(len(turn["content"]) <= settings.max_history_chars for turn in history)
    assert seen[0][-1]["content"] == "tur 19"  # the newest turns are the ones kept


# Logs ----------------------------------------------------------------------------------------
def test_tokens_and_session_hashes_are_absent_from_access_logs(
    secure_base: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    httpx.get(f"{secure_base}/?token=tok-finance&theme=dark")
    headers = {"Authorization": "Bearer tok-hr"}
    for path in (
        "/gradio_api/heartbeat/sess-4711-secret",
        "/gradio_api/queue/data?session_hash=sess-4712-secret",
    ):
        # Event streams: the status line is enough, then the stream is dropped.
        with httpx.stream("GET", secure_base + path, headers=headers, timeout=10) as response:
            assert response.status_code in (200, 404)
        assert httpx.get(secure_base + path).status_code == 401  # no token, no stream
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert len(lines) >= 5, lines
    text = "\n".join(lines)
    assert "tok-finance" not in text and "sess-47" not in text
    assert "theme=dark" in text and "token=REDACTED" in text


def test_redact_path() -> None:
    assert redact_path("/x?token=abc&a=1") == "/x?token=REDACTED&a=1"
    assert redact_path("/gradio_api/heartbeat/abc") == "/gradio_api/heartbeat/REDACTED"
    assert redact_path("/plain") == "/plain"


# Shapes of errors and text ---------------------------------------------------------------------
def test_file_names_cannot_break_out_of_citation_links() -> None:
    evil = 'evil\n\n# Heading "x" \\ [link](http://e.test)\n\nmore.txt'
    citation = Citation(n=1, doc=evil, title="t", page=2, quote="q", chunk_id="c", score=1.0)
    answer = Answer(
        question="q", answer="Svar [1].", language="sv", refused=False, citations=[citation]
    )
    rendered = MarkdownIt().render(answer_markdown(answer, 1, "sv"))
    assert rendered.count("<a ") == 1 and "<h1" not in rendered and 'href="http' not in rendered
    assert rendered.count("<p>") == 1


def test_lone_surrogates_are_400(secure_base: str) -> None:
    headers = {"Authorization": "Bearer tok-hr", "content-type": "application/json"}
    bodies = (
        '{"question": "Hur \\ud800 l\\u00e5ng?"}',
        '{"question": "Hej?", "history": [{"role": "user", "content": "\\udc00"}]}',
    )
    for body in bodies:
        response = httpx.post(f"{secure_base}/api/ask", content=body, headers=headers)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "bad_request"
    chat = httpx.post(
        f"{secure_base}/v1/chat/completions",
        content='{"messages": [{"role": "user", "content": "\\ud83d"}]}',
        headers=headers,
    )
    assert chat.status_code == 400


def test_docs_work_offline(secure_base: str) -> None:
    docs = httpx.get(f"{secure_base}/docs")
    assert docs.status_code == 200
    assert "/api/ask" in docs.text and "/v1/chat/completions" in docs.text
    assert "<script" not in docs.text and "cdn" not in docs.text.lower()
    assert "https://" not in docs.text and "http://" not in docs.text


def test_unknown_routes_and_methods_use_the_error_shape(secure_base: str) -> None:
    headers = {"Authorization": "Bearer tok-hr"}
    for method, path, status in (
        ("GET", "/api/ask", 405),
        ("DELETE", "/api/ask", 405),
        ("PUT", "/v1/chat/completions", 405),
        ("PUT", "/api/nothing", 404),
        ("DELETE", "/v1/nothing", 404),
    ):
        response = httpx.request(method, secure_base + path, headers=headers)
        assert response.status_code == status, (method, path, response.text)
        error = response.json()["error"]
        assert error["code"] == ("method_not_allowed" if status == 405 else "not_found")
    assert httpx.get(f"{secure_base}/api/ask").headers["allow"] == "POST"
