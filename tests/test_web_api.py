"""The HTTP API against a real server on 127.0.0.1 (uvicorn in a thread): httpx for /api and
the health probes, the openai SDK for /v1, and access control with two groups."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from assistant.core import Assistant
from assistant.schema import Answer
from assistant.settings import Settings
from assistant.web.api import MODEL_ID
from assistant.web.auth import Gate, RateLimiter, ServerBusyError
from assistant.web.framing import frame_allowed
from assistant.web.server import create_app

STOCKHOLM = "region-stockholm-fou-strategi.txt"
LAHTI = "lahti-konsernihallinto-seurantaraportti-q1-2025.txt"
SV_QUESTION = "Vilka principer gäller för forskningen i Region Stockholm?"
FI_QUESTION = "Mikä on Lahden Tilakeskuksen liikevaihdon ennuste vuodelle 2025?"


# A real server in a background thread ---------------------------------------------------
def wait_for(base: str, path: str = "/readyz", timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + path, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base}{path} did not answer 200 within {timeout} s")


@contextmanager
def running_server(app: FastAPI, ready_path: str = "/readyz") -> Iterator[str]:
    """Serves app with uvicorn on a free 127.0.0.1 port; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # Chat clients keep event streams open: do not wait long for them on shutdown. Logs go
    # to pytest's capture (log_config=None), shown when a test fails.
    config = uvicorn.Config(app, log_config=None, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(base, ready_path)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def sse_events(response: httpx.Response) -> list[tuple[str, str]]:
    """(event, data) pairs of a server-sent-events response."""
    events: list[tuple[str, str]] = []
    event, data = "message", []
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            events.append((event, "\n".join(data)))
            event, data = "message", []
    return events


@pytest.fixture(scope="module")
def web_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # Web-layer settings only (feedback, limits); the assistant keeps the corpus index.
    return Settings(data_dir=tmp_path_factory.mktemp("web-api"), max_body_bytes=16_000)


@pytest.fixture(scope="module")
def base(corpus_assistant: Assistant, web_settings: Settings) -> Iterator[str]:
    with running_server(create_app(web_settings, corpus_assistant)) as url:
        yield url


# Health, docs, headers --------------------------------------------------------------------
def test_health_and_readiness(base: str) -> None:
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{base}/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["chunks"] > 50


def test_openapi_docs_list_the_api(base: str) -> None:
    docs = httpx.get(f"{base}/docs")
    assert docs.status_code == 200 and "/api/ask/stream" in docs.text
    paths = httpx.get(f"{base}/openapi.json").json()["paths"]
    for path in ("/api/ask", "/api/ask/stream", "/v1/chat/completions", "/v1/models", "/readyz"):
        assert path in paths


def test_frame_ancestors_and_cors_are_closed_by_default(base: str) -> None:
    page = httpx.get(f"{base}/")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == "frame-ancestors 'self'"
    assert page.headers["x-content-type-options"] == "nosniff"
    preflight = httpx.options(
        f"{base}/api/ask",
        headers={
            "Origin": "https://elsewhere.example",
            "Access-Control-Request-Method": "POST",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_a_page_that_may_not_frame_the_chat_gets_a_hint_not_a_broken_frame(base: str) -> None:
    framed = {"Sec-Fetch-Dest": "iframe", "Accept-Language": "fi"}
    refused = httpx.get(
        f"{base}/embed/", headers={**framed, "Referer": "https://elsewhere.example/intra.html"}
    )
    assert refused.status_code == 403
    assert refused.headers["content-security-policy"] == "frame-ancestors *"
    assert "https://elsewhere.example" in refused.text and "ei saa näyttää" in refused.text
    assert "<gradio" not in refused.text and "config" not in refused.text
    own = httpx.get(f"{base}/embed/", headers={**framed, "Referer": f"{base}/page.html"})
    assert own.status_code == 200  # 'self' may frame it
    assert own.headers["content-security-policy"] == "frame-ancestors 'self'"
    # Not for a frame (a link, a fetch): the page itself.
    link = {"Sec-Fetch-Dest": "document", "Referer": "https://x.example/", "Accept": HTML}
    assert httpx.get(f"{base}/embed/", headers=link).status_code == 200


HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_the_hint_does_not_need_sec_fetch_dest(base: str) -> None:
    """Safari before 16.4 and proxies that strip Fetch Metadata send no Sec-Fetch-Dest: an HTML
    request for the embed view from a page that may not frame it gets the hint all the same."""
    old = {"Accept": HTML, "Accept-Language": "sv", "Referer": "https://elsewhere.example/a"}
    for path in ("/embed/", "/embed/?lang=sv&theme=dark", "/embed"):
        refused = httpx.get(f"{base}{path}", headers=old)
        assert refused.status_code == 403, path
        assert refused.headers["content-security-policy"] == "frame-ancestors *"
        assert 'id="frame-refused"' in refused.text and "https://elsewhere.example" in refused.text
        assert "<gradio" not in refused.text
    # Allowed parents, no parent, the full chat and the embed view's own requests: as before.
    assert httpx.get(f"{base}/embed/", headers={**old, "Referer": f"{base}/"}).status_code == 200
    assert httpx.get(f"{base}/embed/", headers={"Accept": HTML}).status_code == 200
    assert httpx.get(f"{base}/", headers=old).status_code == 200
    config = httpx.get(f"{base}/embed/config", headers={**old, "Accept": "*/*"})
    assert config.status_code == 200


@pytest.mark.parametrize(
    ("parent", "ancestors", "allowed"),
    [
        ("https://app.example", ["'self'"], True),
        ("https://intra.example", ["'self'"], False),
        ("https://intra.example", ["'self'", "https://intra.example"], True),
        ("https://a.intra.example", ["https://*.intra.example"], True),
        ("http://a.intra.example", ["https://*.intra.example"], False),
        ("https://a.intra.example", ["*.intra.example"], True),
        ("https://x.example", ["*"], True),
        ("https://x.example", ["'none'"], False),
    ],
)
def test_frame_ancestors_are_read_as_csp_sources(
    parent: str, ancestors: list[str], allowed: bool
) -> None:
    assert frame_allowed(parent, "https://app.example", ancestors) is allowed


# /api/ask and /api/ask/stream ---------------------------------------------------------------
def test_ask_returns_answer_json_with_citations(base: str) -> None:
    response = httpx.post(f"{base}/api/ask", json={"question": SV_QUESTION}, timeout=60)
    assert response.status_code == 200
    answer = Answer.model_validate(response.json())
    assert not answer.refused and answer.language == "sv"
    assert answer.citations and {c.doc for c in answer.citations} == {STOCKHOLM}
    retrieved = {p.chunk_id: p.text for p in answer.retrieved}
    for citation in answer.citations:
        assert " ".join(citation.quote.split()) in " ".join(retrieved[citation.chunk_id].split())


def test_follow_up_uses_the_history(base: str) -> None:
    history = [
        {"role": "user", "content": FI_QUESTION},
        {"role": "assistant", "content": "Ennuste on 112,9 milj. euroa [1]"},
    ]
    # Answerable only with the history: the fragment names a column, the row is in the turn
    # before.
    body = {"question": "Och förra året?", "history": history}
    answer = Answer.model_validate(httpx.post(f"{base}/api/ask", json=body, timeout=60).json())
    assert not answer.refused
    assert {c.doc for c in answer.citations} == {LAHTI}
    assert "Liikevaihto, TP 2024: 75 754" in answer.answer


def test_filters_narrow_to_documents(base: str) -> None:
    body = {"question": SV_QUESTION, "filters": {"doc_ids": ["no-such-document"]}}
    answer = Answer.model_validate(httpx.post(f"{base}/api/ask", json=body, timeout=60).json())
    assert answer.refused and answer.retrieved == []


def test_stream_sends_deltas_then_the_answer(base: str) -> None:
    with httpx.stream(
        "POST", f"{base}/api/ask/stream", json={"question": FI_QUESTION}, timeout=60
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    kinds = [event for event, _ in events]
    assert kinds[-1] == "answer" and set(kinds[:-1]) == {"delta"} and len(kinds) >= 2
    text = "".join(json.loads(data)["text"] for event, data in events if event == "delta")
    answer = Answer.model_validate_json(events[-1][1])
    assert text.strip() and not answer.refused
    assert {c.doc for c in answer.citations} == {LAHTI}


@pytest.mark.parametrize("route", ["/api/ask", "/api/ask/stream"])
def test_bad_questions_are_422_json(base: str, route: str) -> None:
    for question in ("", "x" * 1500):
        response = httpx.post(f"{base}{route}", json={"question": question})
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "invalid_question" and error["message"]


def test_malformed_requests_are_json_errors(base: str) -> None:
    not_json = httpx.post(
        f"{base}/api/ask", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422 and not_json.json()["error"]["code"] == "invalid_request"
    # Access groups come from the token, never from the request.
    groups = httpx.post(
        f"{base}/api/ask", json={"question": SV_QUESTION, "filters": {"groups": ["hr"]}}
    )
    assert groups.status_code == 422 and "groups" in groups.json()["error"]["message"]
    missing = httpx.get(f"{base}/api/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_large_bodies_are_413(base: str) -> None:
    big = {"question": "x" * 20_000}
    declared = httpx.post(f"{base}/api/ask", json=big)
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "body_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"question": "'
        for _ in range(20):
            yield b"y" * 1000
        yield b'"}'

    streamed = httpx.post(
        f"{base}/v1/chat/completions",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "body_too_large"


# OpenAI-compatible -------------------------------------------------------------------------
def test_openai_sdk_lists_the_model_and_answers(base: str) -> None:
    client = OpenAI(base_url=f"{base}/v1", api_key="not-needed", max_retries=0)
    assert [m.id for m in client.models.list()] == [MODEL_ID]
    completion = client.chat.completions.create(
        model=MODEL_ID,
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": SV_QUESTION},
        ],
    )
    content = completion.choices[0].message.content or ""
    assert completion.choices[0].finish_reason == "stop"
    assert "[1]" in content and "\n\nSources:\n[1] " in content and STOCKHOLM in content
    citations = (completion.model_extra or {})["citations"]
    assert citations and {c["doc"] for c in citations} == {STOCKHOLM}
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_openai_sdk_streams_with_citations_in_the_last_chunk(base: str) -> None:
    client = OpenAI(base_url=f"{base}/v1", api_key="not-needed", max_retries=0)
    stream = client.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": FI_QUESTION}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finished = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(finished) == 1
    citations = (finished[0].model_extra or {})["citations"]
    assert citations and {c["doc"] for c in citations} == {LAHTI}
    assert "\n\nSources:\n[1] " in text
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_openai_errors_reach_the_sdk(base: str) -> None:
    import openai

    client = OpenAI(base_url=f"{base}/v1", api_key="not-needed", max_retries=0)
    with pytest.raises(openai.UnprocessableEntityError, match="empty"):
        client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": ""}])


# Limits --------------------------------------------------------------------------------------
def test_rate_limit_is_429_json(corpus_assistant: Assistant, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rate_limit_per_minute=3)
    with running_server(create_app(settings, corpus_assistant)) as url:
        statuses = [httpx.get(f"{url}/v1/models").status_code for _ in range(4)]
        limited = httpx.get(f"{url}/v1/models")
    assert statuses == [200, 200, 200, 429]
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1


def test_rate_limiter_window_slides() -> None:
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert limiter.hit("a") is None and limiter.hit("a") is None
    now[0] = 20.0
    assert limiter.hit("a") == pytest.approx(40.0)  # the first hit leaves the window at 60 s
    assert limiter.hit("b") is None  # buckets are per caller
    now[0] = 60.5
    assert limiter.hit("a") is None


def test_gate_admits_concurrency_plus_queue_then_refuses() -> None:
    gate = Gate(concurrency=1, queue_size=1)
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.slot():
            entered.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert entered.wait(10)

    def wait() -> None:
        with gate.slot():
            pass

    waiter = threading.Thread(target=wait)
    waiter.start()  # admitted to the queue, blocked on the running slot
    time.sleep(0.2)
    with pytest.raises(ServerBusyError), gate.slot():
        pass
    release.set()
    holder.join(10)
    waiter.join(10)


def test_readyz_is_503_on_an_empty_index(fresh_data_dir: Path) -> None:
    settings = Settings(data_dir=fresh_data_dir)
    with running_server(create_app(settings), ready_path="/healthz") as url:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the model is loaded
            ready = httpx.get(f"{url}/readyz")
            if "loading" not in ready.text:
                break
            time.sleep(0.2)
        asked = httpx.post(f"{url}/api/ask", json={"question": SV_QUESTION}, timeout=60)
    assert ready.status_code == 503
    assert ready.json()["error"] == {"code": "not_ready", "message": "the index is empty"}
    assert asked.status_code == 503 and asked.json()["error"]["code"] == "index_empty"


# Access control: two groups, two documents -----------------------------------------------------
FINANCE_DOC = "budget-nordljus.txt"
HR_DOC = "semester-polaris.txt"
PUBLIC_DOC = "oppettider.txt"
TOKENS = {"tok-finance": ["finance"], "tok-hr": ["hr"], "tok-both": ["finance", "hr"]}
VISIBLE = {
    "tok-finance": {FINANCE_DOC, PUBLIC_DOC},
    "tok-hr": {HR_DOC, PUBLIC_DOC},
    "tok-both": {FINANCE_DOC, HR_DOC, PUBLIC_DOC},
}
FINANCE_QUESTION = "Hur stor är budgeten för projekt Nordljus år 2026?"
HR_QUESTION = "Hur lång är semesterperioden för avdelningen Polaris?"


@pytest.fixture(scope="module")
def group_index(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    data = tmp_path_factory.mktemp("groups")
    (data / "models").symlink_to(models_dir, target_is_directory=True)
    docs = tmp_path_factory.mktemp("group-docs")
    texts = {
        FINANCE_DOC: "Budgeten för projekt Nordljus är 4,2 miljoner kronor år 2026. "
        "Finansavdelningen följer upp budgeten för Nordljus varje månad.",
        HR_DOC: "Semesterperioden för avdelningen Polaris är fyra veckor mellan juni och "
        "augusti. HR-avdelningen godkänner semesteransökningar för Polaris.",
        PUBLIC_DOC: "Kontoret har öppet klockan 8–17 på vardagar. Receptionen svarar på "
        "frågor om besök.",
    }
    assistant = Assistant(Settings(data_dir=data))
    for name, groups in ((FINANCE_DOC, ["finance"]), (HR_DOC, ["hr"]), (PUBLIC_DOC, [])):
        (docs / name).write_text(texts[name], encoding="utf-8")
        assert assistant.ingest([docs / name], groups=groups).ok
    return data


@pytest.fixture(scope="module")
def auth_base(group_index: Path) -> Iterator[str]:
    settings = Settings(data_dir=group_index, api_tokens=TOKENS)
    with running_server(create_app(settings)) as url:
        yield url


def _docs_seen(answer: Answer) -> set[str]:
    return {c.doc for c in answer.citations} | {p.doc for p in answer.retrieved}


def test_every_api_route_needs_a_valid_token(auth_base: str) -> None:
    calls = [
        ("POST", "/api/ask", {"question": FINANCE_QUESTION}),
        ("POST", "/api/ask/stream", {"question": FINANCE_QUESTION}),
        ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hej"}]}),
        ("GET", "/v1/models", None),
    ]
    for method, path, body in calls:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "tok-hr"}):
            response = httpx.request(method, auth_base + path, json=body, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{auth_base}/healthz").status_code == 200


def test_retrieval_only_sees_the_callers_groups(auth_base: str) -> None:
    for token, visible in VISIBLE.items():
        for question in (FINANCE_QUESTION, HR_QUESTION):
            response = httpx.post(
                f"{auth_base}/api/ask",
                json={"question": question},
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
            assert response.status_code == 200
            answer = Answer.model_validate(response.json())
            assert _docs_seen(answer) <= visible, (token, question)
            own = FINANCE_DOC if question == FINANCE_QUESTION else HR_DOC
            if own in visible:
                assert own in {c.doc for c in answer.citations}, (token, question)


def test_stream_and_openai_routes_filter_by_group_too(auth_base: str) -> None:
    with httpx.stream(
        "POST",
        f"{auth_base}/api/ask/stream",
        json={"question": FINANCE_QUESTION},
        headers={"Authorization": "Bearer tok-hr"},
        timeout=60,
    ) as response:
        events = sse_events(response)
    assert _docs_seen(Answer.model_validate_json(events[-1][1])) <= VISIBLE["tok-hr"]

    client = OpenAI(base_url=f"{auth_base}/v1", api_key="tok-hr", max_retries=0)
    question: list[ChatCompletionMessageParam] = [{"role": "user", "content": FINANCE_QUESTION}]
    reply = client.chat.completions.create(model=MODEL_ID, messages=question)
    chunks = client.chat.completions.create(model=MODEL_ID, messages=question, stream=True)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    for text in (reply.choices[0].message.content or "", streamed):
        assert FINANCE_DOC not in text and "4,2 miljoner" not in text
    answered = OpenAI(base_url=f"{auth_base}/v1", api_key="tok-finance", max_retries=0)
    completion = answered.chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": FINANCE_QUESTION}]
    )
    assert FINANCE_DOC in {c["doc"] for c in (completion.model_extra or {})["citations"]}


def test_the_chat_needs_a_login(auth_base: str) -> None:
    page = httpx.get(f"{auth_base}/")
    assert page.status_code == 303 and page.headers["location"] == "/auth/login?next=%2F"
    assert httpx.get(f"{auth_base}/config").status_code == 401  # Gradio's own routes too
    form = httpx.get(f"{auth_base}/auth/login?next=/embed/")
    assert form.status_code == 200 and 'type="password"' in form.text
    wrong = httpx.post(f"{auth_base}/auth/login", data={"token": "nope", "next": "/"})
    assert wrong.status_code == 401
    # A valid token sets an HttpOnly cookie; "next" cannot send the browser off-site.
    login = httpx.post(f"{auth_base}/auth/login", data={"token": "tok-hr", "next": "//evil.test"})
    assert login.status_code == 303 and login.headers["location"] == "/"
    assert "assistant_token=tok-hr" in login.headers["set-cookie"]
    assert "httponly" in login.headers["set-cookie"].lower()
    signed_in = httpx.get(f"{auth_base}/", headers={"Cookie": "assistant_token=tok-hr"})
    assert signed_in.status_code == 200 and "<gradio-app" in signed_in.text.lower()
    # ?token= on a chat page (for iframes) becomes the cookie and leaves the address bar.
    via_query = httpx.get(f"{auth_base}/embed/?token=tok-hr&theme=dark")
    assert via_query.status_code == 303
    assert via_query.headers["location"] == "/embed/?theme=dark"
    assert "assistant_token=tok-hr" in via_query.headers["set-cookie"]


def test_gradio_client_chat_sees_only_its_groups(auth_base: str) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    options = {"verbose": False, "analytics_enabled": False, "download_files": False}
    with pytest.raises(AuthenticationError):
        Client(f"{auth_base}/", **options)  # type: ignore[arg-type]
    client = Client(
        f"{auth_base}/",
        headers={"Authorization": "Bearer tok-hr"},
        **options,  # type: ignore[arg-type]
    )
    _, sources, retrieved, _, _, *_ = client.predict(FINANCE_QUESTION, api_name="/ask")
    assert FINANCE_DOC not in sources + retrieved and "Nordljus är 4,2" not in retrieved
    _, sources, _, _, _, *_ = client.predict(HR_QUESTION, api_name="/ask")
    assert HR_DOC in sources and FINANCE_DOC not in sources
