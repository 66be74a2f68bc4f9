"""The Gradio chat through gradio_client against a real server, the feedback export, and the
escaping and language choice behind the UI."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from markdown_it import MarkdownIt
from test_web_api import FI_QUESTION, LAHTI, STOCKHOLM, SV_QUESTION, running_server
from typer.testing import CliRunner

from assistant.core import Assistant
from assistant.errors import AssistantError, BackendUnavailableError, EmptyIndexError, QuestionError
from assistant.prompting import phrase
from assistant.schema import Answer, Citation
from assistant.settings import Settings
from assistant.web.chat import chat_error, create_chat
from assistant.web.feedback import FeedbackStore, eval_line
from assistant.web.i18n import choose_language, parse_accept_language
from assistant.web.render import answer_markdown, escape_md, sources_html
from assistant.web.server import create_app

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
MARS = "What is the capital of Mars?"


@pytest.fixture(scope="module")
def chat_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("web-chat"))


@pytest.fixture(scope="module")
def base(corpus_assistant: Assistant, chat_settings: Settings) -> Iterator[str]:
    with running_server(create_app(chat_settings, corpus_assistant)) as url:
        yield url


def connect(base: str) -> Client:
    """A new chat session (gradio_client keeps one session, and its State, per Client)."""
    return Client(f"{base}/", verbose=False, analytics_enabled=False, download_files=False)


def messages(chatbot: list[dict[str, Any]]) -> list[tuple[str, str]]:
    def text(content: Any) -> str:
        if isinstance(content, list):
            return "".join(str(part.get("text", "")) for part in content)
        return str(content)

    return [(m["role"], text(m["content"])) for m in chatbot]


# gradio_client against the running chat -----------------------------------------------------
def test_chat_streams_an_answer_with_linked_citations(base: str) -> None:
    job = connect(base).submit(SV_QUESTION, api_name="/ask")
    chatbot, sources, retrieved, notice, question, *_ = job.result(timeout=60)
    updates = job.outputs()
    assert len(updates) >= 2  # a placeholder first, then the checked answer
    assert messages(updates[0][0])[-1] == ("assistant", "…")
    (user_role, asked), (bot_role, answer) = messages(chatbot)
    assert (user_role, asked, bot_role) == ("user", SV_QUESTION, "assistant")
    assert "[\\[1\\]](#src-1-1 " in answer  # a Markdown link to the passage
    assert 'id="src-1-1"' in sources and STOCKHOLM in sources
    assert 'class="passage cited"' in retrieved
    assert notice == "" and question == ""


def test_follow_up_questions_keep_the_conversation(base: str) -> None:
    client = connect(base)
    client.predict(FI_QUESTION, api_name="/ask")
    chatbot, sources, _, _, _, *_ = client.predict("Och förra året?", api_name="/ask")
    assert [role for role, _ in messages(chatbot)] == ["user", "assistant"] * 2
    newest, _, earlier = sources.partition("<details class='earlier'>")
    assert 'data-turn="2"' in newest and LAHTI in newest and 'id="src-2-1"' in newest
    assert 'data-turn="1"' in earlier


def test_a_refusal_shows_a_notice(base: str) -> None:
    chatbot, _, _, notice, *_ = connect(base).predict(MARS, api_name="/ask")
    assert messages(chatbot)[-1] == ("assistant", escape_md(phrase("refusal", "en")))
    assert 'class="refusal-notice"' in notice and "do not answer" in notice


def test_bad_questions_are_reported_in_the_interface_language(base: str) -> None:
    client = connect(base)
    with pytest.raises(AppError, match="Type a question first") as empty:
        client.predict("   ", api_name="/ask")
    with pytest.raises(AppError, match="at most 1000 characters") as long:
        client.predict("x" * 1200, api_name="/ask")
    # Staff see no setting names or commands.
    for error in (empty, long):
        assert "ASSISTANT_" not in str(error.value) and "assistant ingest" not in str(error.value)


def test_embed_view_has_no_header(base: str) -> None:
    redirect = httpx.get(f"{base}/embed?theme=dark&lang=fi")
    assert redirect.status_code == 307
    assert redirect.headers["location"] == "/embed/?theme=dark&lang=fi"
    assert httpx.get(f"{base}/embed/?theme=dark&lang=fi").status_code == 200

    def elem_ids(path: str) -> set[str]:
        config = httpx.get(f"{base}{path}/config").json()
        return {
            c["props"]["elem_id"]
            for c in config["components"]
            if c["props"].get("elem_id") and c["props"].get("visible") is not False
        }

    # The embed view's only title is a visually hidden h1 (a page needs one for screen readers).
    assert "chat-header" in elem_ids("") and "embed-title" not in elem_ids("")
    assert "chat-header" not in elem_ids("/embed") and "embed-title" in elem_ids("/embed")


def test_the_queue_follows_the_settings(corpus_assistant: Assistant, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, concurrency=3, queue_size=7)
    demo = create_chat(corpus_assistant, settings, embed=False)
    assert demo._queue.default_concurrency_limit == 3
    assert demo._queue.max_size == 7


# Feedback ------------------------------------------------------------------------------------
def test_feedback_is_stored_and_exported_as_eval_items(
    base: str, chat_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant.cli import app
    from evals.dataset import EvalItem, validate_items

    client = connect(base)
    client.predict(SV_QUESTION, api_name="/ask")
    client.predict(FI_QUESTION, api_name="/ask")
    assert "Thank you" in client.predict(1, "up", "", api_name="/feedback")
    client.predict(2, "up", "", api_name="/feedback")
    client.predict(2, "down", "wrong year", api_name="/feedback")  # updates the same row
    with pytest.raises(AppError, match="no answer with that number"):
        client.predict(3, "up", "", api_name="/feedback")
    refused = connect(base)
    refused.predict(MARS, api_name="/ask")
    refused.predict(1, "up", "correct to refuse", api_name="/feedback")

    out = tmp_path / "feedback.jsonl"
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(chat_settings.data_dir))
    result = CliRunner().invoke(app, ["feedback", "export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 3 feedback items" in result.output

    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    by_question = {line["question"]: line for line in lines}
    assert set(by_question) == {SV_QUESTION, FI_QUESTION, MARS}
    sv, fi, mars = by_question[SV_QUESTION], by_question[FI_QUESTION], by_question[MARS]
    assert (sv["feedback"], sv["kind"], sv["doc"], sv["question_lang"]) == (
        "up",
        "fact",
        STOCKHOLM,
        "sv",
    )
    assert (fi["feedback"], fi["comment"], fi["doc"]) == ("down", "wrong year", LAHTI)
    assert (mars["kind"], mars["doc"], mars["evidence"]) == ("unanswerable", "none", "")
    for line in lines:
        assert line["must_include"] == [] and line["answer"]
    # The eval suite reads them: schema valid, evidence verbatim in the cited document.
    items = [EvalItem.model_validate(line) for line in lines]

    def document_text(doc: str) -> str | None:
        path = CORPUS / doc
        return path.read_text(encoding="utf-8") if path.is_file() else None

    assert validate_items(items, document_text) == []


def test_feedback_store_keeps_one_row_per_answer(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "data" / "feedback.sqlite3")
    assert store.items() == [] and not store.path.exists()  # reading creates nothing
    answer = Answer(answer="Svar [1]", language="sv", refused=False, question="Fråga?")
    first = store.record(session="s", turn=1, caller="t-1", rating="up", answer=answer)
    store.record(session="s", turn=1, caller="t-1", rating="down", answer=answer, comment="nej")
    store.record(session="s", turn=1, caller="t-1", rating="down", answer=answer)
    (item,) = store.items()
    assert (item.id, item.rating, item.comment) == (first, "down", "nej")
    assert eval_line(item)["kind"] == "unanswerable"  # no citation to build evidence from


# Escaping --------------------------------------------------------------------------------------
HOSTILE = (
    "<script>alert(1)</script> <img src=x onerror=alert(2)> [link](javascript:alert(3))\n"
    "# heading\n- item\n2024. year\n    indented `code` *em* _em_ &lt;b&gt; | a | b |"
)


def test_escaped_text_renders_as_plain_text_in_markdown() -> None:
    rendered = MarkdownIt("commonmark").enable("table").render(escape_md(HOSTILE))
    for tag in ("<script", "<img", "<a ", "<h1", "<li", "<ol", "<code", "<em", "<table", "<pre"):
        assert tag not in rendered, tag
    shown = html.unescape(rendered.replace("<p>", "").replace("</p>", "")).split()
    assert shown == HOSTILE.split()


def test_answer_links_only_valid_citations() -> None:
    citation = Citation(n=1, doc="a.txt", title="A", page=4, quote="q", chunk_id="c1", score=0.5)
    answer = Answer(
        answer="Först <b>fet</b> [1] och [7].", language="sv", refused=False, citations=[citation]
    )
    text = answer_markdown(answer, turn=3, lang="sv")
    assert '[\\[1\\]](#src-3-1 "a.txt · sida 4")' in text
    assert "\\[7\\]" in text and "#src-3-7" not in text
    assert "\\<b\\>fet\\</b\\>" in text


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (QuestionError("the question is empty"), "Skriv en fråga först."),
        (
            QuestionError("1200 characters; the limit is 1000 (ASSISTANT_MAX_QUESTION_CHARS)"),
            "1000",
        ),
        (EmptyIndexError("nothing is indexed yet: run 'assistant ingest' first"), "administratör"),
        (BackendUnavailableError("no server at ASSISTANT_LLM_BASE_URL"), "svarar inte"),
        (AssistantError("ConfigError in ASSISTANT_BACKEND"), "ett fel"),
    ],
)
def test_chat_errors_are_in_the_interface_language_without_settings(
    error: AssistantError, expected: str
) -> None:
    message = chat_error(error, "sv", 1000).message
    assert expected in message and "ASSISTANT_" not in message and "ingest" not in message


def test_citations_are_shown_numbered_1_to_n_without_gaps_or_repeats() -> None:
    def cite(n: int, quote: str, chunk: str) -> Citation:
        return Citation(
            n=n, doc=f"d{n}.txt", title="", page=None, quote=quote, chunk_id=chunk, score=1.0
        )

    # Passages 5 and 3 were quoted (5 twice, as two quotes of one passage).
    citations = [cite(3, "tre", "c3"), cite(5, "fem", "c5"), cite(5, "fem igen", "c5")]
    answer = Answer(
        answer="Fem [5]. Tre [3]. Fem igen [5].",
        language="sv",
        refused=False,
        citations=citations,
    )
    text = answer_markdown(answer, turn=2, lang="sv")
    assert re.findall(r"\(#src-2-(\d+) ", text) == ["1", "2", "1"]
    assert re.findall(r"\\\[(\d+)\\\]\]", text) == ["1", "2", "1"]
    panel = sources_html([{"question": "q", "answer": answer.model_dump()}] * 2, "sv")
    assert re.findall(r'id="src-2-(\d+)"', panel) == ["1", "2"]
    first = panel.index('id="src-2-1"')
    assert panel.index("fem igen") > first and panel.index("fem") < panel.index('id="src-2-2"')


def test_sources_panel_escapes_document_fields() -> None:
    citation = Citation(
        n=1,
        doc='<img src=x onerror="alert(1)">.txt',
        title="<b>Titel</b>",
        page=2,
        quote="<script>alert(2)</script>",
        chunk_id="c1",
        score=0.5,
    )
    answer = Answer(answer="x [1]", language="fi", refused=False, citations=[citation])
    panel = sources_html([{"question": "<i>q</i>", "answer": answer.model_dump()}], "fi")
    for raw in ("<img", "<b>", "<script", "<i>"):
        assert raw not in panel
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in panel and "sivu 2" in panel


# Interface language ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("setting", "requested", "header", "expected"),
    [
        ("auto", None, "fi-FI,fi;q=0.9,en;q=0.8", "fi"),
        ("auto", None, "de-DE,de;q=0.9,sv;q=0.5,en;q=0.4", "sv"),
        ("auto", None, "fi;q=0,sv-SE", "sv"),
        ("auto", None, "de-DE", "en"),
        ("auto", None, None, "en"),
        ("sv", None, "fi-FI", "sv"),
        ("sv", "fi", "en-GB", "fi"),
        ("auto", "xx", "sv", "sv"),
    ],
)
def test_interface_language(
    setting: str, requested: str | None, header: str | None, expected: str
) -> None:
    assert choose_language(setting, requested=requested, accept_language=header) == expected


def test_accept_language_is_ranked_by_quality() -> None:
    assert parse_accept_language("en;q=0.5, sv, fi;q=0.8, *;q=0.1") == ["sv", "fi", "en"]
