"""Conversations kept per caller on the server: the HTTP API (conversation_id on /api/ask,
/api/conversations), privacy between tokens and, with auth off, between browsers (their
cookie), survival across a restart, and the chat's conversation list and regenerate through
gradio_client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client
from test_web_api import FI_QUESTION, LAHTI, SV_QUESTION, running_server, sse_events

from assistant.core import Assistant
from assistant.schema import Answer
from assistant.settings import Settings
from assistant.web.auth import BROWSER_COOKIE, browser_caller
from assistant.web.conversations import ConversationStore
from assistant.web.server import create_app

TOKENS = {"tok-anna": ["staff"], "tok-bo": ["staff"]}
ANNA = {"Authorization": "Bearer tok-anna"}
BO = {"Authorization": "Bearer tok-bo"}


@pytest.fixture(scope="module")
def web_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("conversations"), api_tokens=TOKENS)


@pytest.fixture(scope="module")
def base(corpus_assistant: Assistant, web_settings: Settings) -> Iterator[str]:
    with running_server(create_app(web_settings, corpus_assistant)) as url:
        yield url


def ask(base: str, headers: dict[str, str], **body: Any) -> httpx.Response:
    return httpx.post(f"{base}/api/ask", json=body, headers=headers, timeout=60)


def test_the_server_supplies_the_history_of_a_conversation(
    base: str, corpus_assistant: Assistant, web_settings: Settings
) -> None:
    first = ask(base, ANNA, question=FI_QUESTION)
    assert first.status_code == 200
    conversation = first.json()["conversation_id"]
    # Answerable only with the turn before (its row, the year before), as in test_web_api.py.
    follow_up = ask(base, ANNA, question="Och förra året?", conversation_id=conversation)
    assert follow_up.json()["conversation_id"] == conversation
    answer = Answer.model_validate(follow_up.json())
    assert not answer.refused and {c.doc for c in answer.citations} == {LAHTI}

    listed = httpx.get(f"{base}/api/conversations", headers=ANNA).json()["conversations"]
    assert (listed[0]["id"], listed[0]["exchanges"]) == (conversation, 2)
    assert listed[0]["title"] == FI_QUESTION
    stored = httpx.get(f"{base}/api/conversations/{conversation}", headers=ANNA).json()
    assert [e["question"] for e in stored["exchanges"]] == [FI_QUESTION, "Och förra året?"]
    assert stored["exchanges"][1]["answer"]["answer"] == answer.answer

    # Kept across a restart: a new server process on the same data dir has it.
    with running_server(create_app(web_settings, corpus_assistant)) as again:
        reread = httpx.get(f"{again}/api/conversations/{conversation}", headers=ANNA)
        assert reread.status_code == 200 and len(reread.json()["exchanges"]) == 2


def test_conversations_are_private_to_their_owner(base: str) -> None:
    conversation = ask(base, ANNA, question=SV_QUESTION).json()["conversation_id"]
    assert httpx.get(f"{base}/api/conversations/{conversation}", headers=BO).status_code == 404
    ids = [
        c["id"] for c in httpx.get(f"{base}/api/conversations", headers=BO).json()["conversations"]
    ]
    assert conversation not in ids
    stolen = ask(base, BO, question="Och sedan?", conversation_id=conversation)
    assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "not_found"
    for method in ("PATCH", "DELETE"):
        response = httpx.request(
            method, f"{base}/api/conversations/{conversation}", headers=BO, json={"title": "x"}
        )
        assert response.status_code == 404
    assert httpx.get(f"{base}/api/conversations/{conversation}", headers=ANNA).status_code == 200


def test_rename_delete_and_bad_requests(base: str) -> None:
    conversation = ask(base, ANNA, question=SV_QUESTION).json()["conversation_id"]
    renamed = httpx.patch(
        f"{base}/api/conversations/{conversation}", headers=ANNA, json={"title": "Forskning"}
    )
    assert renamed.json()["title"] == "Forskning"
    got = httpx.get(f"{base}/api/conversations/{conversation}", headers=ANNA).json()
    assert got["title"] == "Forskning"
    both = ask(
        base,
        ANNA,
        question="Och sedan?",
        conversation_id=conversation,
        history=[{"role": "user", "content": "x"}],
    )
    assert both.status_code == 422
    assert httpx.delete(f"{base}/api/conversations/{conversation}", headers=ANNA).status_code == 200
    assert httpx.get(f"{base}/api/conversations/{conversation}", headers=ANNA).status_code == 404


def test_the_stream_names_its_conversation(base: str) -> None:
    with httpx.stream(
        "POST", f"{base}/api/ask/stream", json={"question": FI_QUESTION}, headers=ANNA, timeout=60
    ) as response:
        events = sse_events(response)
    final = json.loads(events[-1][1])
    assert events[-1][0] == "answer" and final["conversation_id"]
    stored = httpx.get(f"{base}/api/conversations/{final['conversation_id']}", headers=ANNA)
    assert stored.json()["exchanges"][0]["answer"]["answer"] == final["answer"]


def test_store_replaces_the_last_answer(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    conversation = store.create("me", "  Vad   gäller? ")
    first = Answer(question="Vad gäller?", answer="Ett [1]", language="sv", refused=False)
    second = Answer(question="Vad gäller?", answer="Två [1]", language="sv", refused=False)
    assert store.append("me", conversation, "Vad gäller?", first)
    assert not store.append("you", conversation, "Vad gäller?", first)
    assert store.replace_last("me", conversation, second)
    found = store.get("me", conversation)
    assert found is not None and found.title == "Vad gäller?"
    assert [e["answer"]["answer"] for e in found.exchanges] == ["Två [1]"]
    assert store.get("you", conversation) is None and not store.delete("you", conversation)


def test_chat_keeps_conversations_and_regenerates(base: str) -> None:
    options: dict[str, Any] = {"verbose": False, "analytics_enabled": False}
    chat = Client(f"{base}/", headers=ANNA, download_files=False, **options)
    *_, conversation, conversations = chat.predict(FI_QUESTION, api_name="/ask")
    assert conversation and conversation in json.dumps(conversations)
    *_, same, _ = chat.predict("Och hur finansieras den?", api_name="/ask")
    assert same == conversation
    chatbot, *_ = chat.predict("", api_name="/regenerate")
    assert len(chatbot) == 4
    stored = httpx.get(f"{base}/api/conversations/{conversation}", headers=ANNA).json()
    assert len(stored["exchanges"]) == 2
    # The same caller's API list shows what was asked in the chat.
    listed = httpx.get(f"{base}/api/conversations", headers=ANNA).json()["conversations"]
    assert conversation in [c["id"] for c in listed]


# Auth off: every browser its own caller ---------------------------------------------------------
OPTIONS: dict[str, Any] = {"verbose": False, "analytics_enabled": False, "download_files": False}


@pytest.fixture(scope="module")
def open_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("conversations-open"))


@pytest.fixture(scope="module")
def open_base(corpus_assistant: Assistant, open_settings: Settings) -> Iterator[str]:
    with running_server(create_app(open_settings, corpus_assistant)) as url:
        yield url


@contextmanager
def browser(base: str) -> Iterator[httpx.Client]:
    """A browser's cookie jar after it loaded the chat page."""
    with httpx.Client(base_url=base, timeout=60) as jar:
        assert jar.get("/").status_code == 200
        yield jar


def chat_of(base: str, jar: httpx.Client) -> Client:
    """The chat's gradio_client session of the browser holding jar's cookie."""
    cookie = f"{BROWSER_COOKIE}={jar.cookies[BROWSER_COOKIE]}"
    return Client(f"{base}/", headers={"Cookie": cookie}, **OPTIONS)


def listed(client: httpx.Client) -> list[str]:
    response = client.get("/api/conversations")
    assert response.status_code == 200
    return [c["id"] for c in response.json()["conversations"]]


def test_a_chat_page_gives_each_browser_a_cookie_of_its_own(open_base: str, base: str) -> None:
    first = httpx.get(f"{open_base}/")
    cookie = first.headers["set-cookie"]
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert cookie.startswith(f"{BROWSER_COOKIE}=")
    assert {"httponly", "samesite=lax", "path=/"} <= attributes
    assert "secure" not in attributes  # plain http; over https it is Secure
    assert any(a.startswith("max-age=") and int(a[8:]) > 300 * 24 * 3600 for a in attributes)
    value = first.cookies[BROWSER_COOKIE]
    assert len(value) == 32 and value != httpx.get(f"{open_base}/").cookies[BROWSER_COOKIE]
    # A browser keeps its value on every chat page; a forged short one is replaced.
    for path in ("/", "/embed/"):
        again = httpx.get(f"{open_base}{path}", cookies={BROWSER_COOKIE: value})
        assert again.status_code == 200 and again.cookies[BROWSER_COOKIE] == value
    forged = httpx.get(f"{open_base}/", cookies={BROWSER_COOKIE: "x"})
    assert forged.cookies[BROWSER_COOKIE] != "x"
    # The caller id is a digest of the value, never the value.
    caller = browser_caller(value)
    assert caller is not None and caller.id.startswith("b-") and value not in caller.id
    # Only chat pages set it, and with auth on nothing does.
    assert BROWSER_COOKIE not in httpx.get(f"{open_base}/healthz").headers.get("set-cookie", "")
    assert BROWSER_COOKIE not in httpx.get(f"{base}/").headers.get("set-cookie", "")


def test_the_embedding_guide_describes_the_browser_cookie_as_sent(open_base: str) -> None:
    """docs/embedding.md names the cookie with the attributes the server sends, and its limit
    (proven in the browser: test_browser.py, the iframe on another site)."""
    guide = (Path(__file__).resolve().parents[1] / "docs" / "embedding.md").read_text("utf-8")
    name, _, rest = httpx.get(f"{open_base}/").headers["set-cookie"].partition("=")
    sent = {part.strip().partition("=")[0].lower(): part.strip() for part in rest.split(";")[1:]}
    same_site = sent["samesite"].partition("=")[2]
    assert name == BROWSER_COOKIE and f"`{name}`" in guide
    assert "httponly" in sent and "HttpOnly" in guide
    assert same_site.lower() == "lax" and f"SameSite={same_site.capitalize()}" in guide
    section = " ".join(guide[guide.index(f"`{name}`") :].split())  # as read, not as wrapped
    assert "iframe on another site" in section and "only for the session" in section


def test_without_auth_each_browser_has_its_own_conversations(open_base: str) -> None:
    with (
        browser(open_base) as anna,
        browser(open_base) as bo,
        httpx.Client(base_url=open_base, timeout=60) as no_cookie,
    ):
        *_, anna_conversation, choices = chat_of(open_base, anna).predict(
            SV_QUESTION, api_name="/ask"
        )
        assert anna_conversation in json.dumps(choices)
        *_, bo_conversation, choices = chat_of(open_base, bo).predict(FI_QUESTION, api_name="/ask")
        # Bo's chat lists only Bo's conversation, and so does the API with each cookie.
        assert bo_conversation in json.dumps(choices)
        assert anna_conversation not in json.dumps(choices)
        assert listed(anna) == [anna_conversation] and listed(bo) == [bo_conversation]
        # Bo cannot open, continue, rename or delete Anna's conversation.
        assert bo.get(f"/api/conversations/{anna_conversation}").status_code == 404
        path = f"/api/conversations/{anna_conversation}"
        assert bo.patch(path, json={"title": "mine"}).status_code == 404
        assert bo.delete(path).status_code == 404
        follow_up = {"question": "Och sedan?", "conversation_id": anna_conversation}
        stolen = bo.post("/api/ask", json=follow_up)
        assert stolen.status_code == 404
        kept = anna.get(path).json()
        assert kept["title"] == SV_QUESTION and len(kept["exchanges"]) == 1
        # The owner can.
        assert anna.patch(path, json={"title": "Forskning"}).status_code == 200
        assert anna.delete(path).status_code == 200 and listed(anna) == []
        # An API call with the cookie is that browser; one without is the anonymous caller,
        # which sees none of the browsers' conversations (and they none of its).
        asked = bo.post("/api/ask", json={"question": SV_QUESTION})
        assert asked.json()["conversation_id"] in listed(bo)
        anonymous = no_cookie.post("/api/ask", json={"question": SV_QUESTION})
        assert listed(no_cookie) == [anonymous.json()["conversation_id"]]
        assert anonymous.json()["conversation_id"] not in listed(bo)
        # A chat client without the cookie has conversations of its page session alone.
        *_, session_conversation, _ = Client(f"{open_base}/", **OPTIONS).predict(
            SV_QUESTION, api_name="/ask"
        )
        assert session_conversation not in listed(no_cookie) + listed(anna) + listed(bo)
