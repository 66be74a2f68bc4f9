"""The chat in headless Chromium: ask, see the answer and a citation, open the cited passage,
rate the answer; document HTML stays text; the /embed view inside an iframe and as a
<gradio-app> web component on a local intranet-like page.

Screenshots go to tmp_path; with SAVE_SCREENSHOTS=1 also to docs/screenshots/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_loaders import _pdf
from test_web_api import FI_QUESTION, LAHTI, STOCKHOLM, SV_QUESTION, running_server

from assistant.core import Assistant
from assistant.settings import Settings
from assistant.web.auth import BROWSER_COOKIE, browser_caller
from assistant.web.conversations import ConversationStore
from assistant.web.feedback import FeedbackStore
from assistant.web.i18n import t
from assistant.web.server import create_app

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
XSS_DOC = "sakerhetsrutin.txt"
XSS_TEXT = (
    "Säkerhetsrutin <b>för</b> intranätet\n\n"
    "Lösenordet till intranätet byts varje kvartal <script>window.__xss = 1</script> enligt "
    "säkerhetsrutinen.\n"
    'Rutinen gäller alla anställda <img src=x onerror="window.__xss = 2"> och konsulter.\n'
)
XSS_QUESTION = "Hur ofta byts lösenordet till intranätet?"
PDF_DOC = "bibliotek.pdf"
PDF_QUOTE = "Filialen i Vallby oppnar i augusti 2026."
PDF_QUESTION = "När öppnar filialen i Vallby?"
PHONE = {"width": 390, "height": 844}
# axe-core (npm), loaded from a local node_modules: `npm install --prefix .venv axe-core@4.14.1`
AXE_PATHS = [
    Path(__file__).resolve().parents[1] / base / "node_modules" / "axe-core" / "axe.min.js"
    for base in (".venv", ".")
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is not installed (apt-get install chromium)",
    ),
]


def save(
    page: Any, tmp_path: Path, name: str, publish: bool = True, full_page: bool = True
) -> Path:
    """A screenshot (full_page=False: what the screen shows, for a drawer fixed over it)."""
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=full_page)
    if publish and os.environ.get("SAVE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, SCREENSHOTS / name)
    return shot


class Pages:
    """A local web server for the "intranet" test pages (another origin than the app)."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path, "").encode("utf-8")
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_port}"
        # The same pages from another site than the app's 127.0.0.1 (cookies are per site).
        self.other_site = f"http://localhost:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Pages:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, corpus_index: Path) -> Path:
    """The default corpus plus a document full of HTML and script and a two-page PDF."""
    data = tmp_path_factory.mktemp("browser-data")
    shutil.copytree(corpus_index / "index", data / "index")
    (data / "models").symlink_to(corpus_index / "models", target_is_directory=True)
    docs = tmp_path_factory.mktemp("browser-docs")
    (docs / XSS_DOC).write_text(XSS_TEXT, encoding="utf-8")
    _pdf(
        docs / PDF_DOC,
        [
            ["Biblioteksplan 2026", "1. Budget", "Budgeten for 2026 ar 4,2 miljoner euro."],
            ["2. Personal", "Biblioteket har 31 anstallda och en ny filial.", PDF_QUOTE],
        ],
        title="Biblioteksplan 2026",
    )
    assert Assistant(Settings(data_dir=data)).ingest([docs]).ok
    return data


@pytest.fixture(scope="module")
def pages() -> Iterator[Pages]:
    with Pages() as served:
        yield served


@pytest.fixture(scope="module")
def app_url(data_dir: Path, pages: Pages) -> Iterator[str]:
    settings = Settings(
        data_dir=data_dir,
        frame_ancestors=["'self'", pages.origin, pages.other_site],
        allowed_origins=[pages.origin],
    )
    with running_server(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    # Conditions, not sleeps, but with room for a busy two-core machine (the default is 5 s).
    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def open_page(browser: Any, url: str, locale: str, **options: Any) -> Any:
    """A new browser context (desktop size unless options say otherwise) at url."""
    options.setdefault("viewport", {"width": 1400, "height": 1000})
    page = browser.new_context(locale=locale, **options).new_page()
    page.goto(url)
    return page


def ask(scope: Any, question: str) -> Any:
    """Types a question into the chat in scope (a page or frame) and waits for a citation."""
    scope.locator("#question textarea").fill(question)
    scope.locator("#send").click()
    link = scope.locator('#chatbot a[href^="#src-"]').first
    link.wait_for(timeout=30_000)
    return link


def test_chat_answer_citation_passage_and_feedback(
    browser: Any, app_url: str, data_dir: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, f"{app_url}/", "sv-SE")
    context = page.context
    expect(page.locator("#chat-header h1")).to_have_text("Strategiassistenten")  # the browser's
    page.get_by_role("button", name=SV_QUESTION).click()  # an example question
    expect(page.locator("#question textarea")).to_have_value(SV_QUESTION)
    page.locator("#send").click()
    # An overview answer quotes several sentences of one passage: each links to it.
    link = page.locator('#chatbot a[href="#src-1-1"]').first
    link.wait_for(timeout=30_000)
    expect(page.locator("#chatbot")).to_contain_text("forskning")
    passage = page.locator("#src-1-1")
    expect(passage).not_to_have_attribute("open", "")
    link.click()
    expect(passage).to_have_attribute("open", "")
    expect(passage).to_contain_text(STOCKHOLM)
    expect(passage).to_contain_text("sida")
    expect(passage.locator("blockquote").first).to_be_visible()
    assert page.locator("#src-1-1").count() == 1  # one element per cited passage
    # The citation opened the panel without navigating; the address names the conversation.
    assert page.url.startswith(f"{app_url}/?c=") and "#" not in page.url
    page.get_by_text("Hämtade stycken").click()
    expect(page.locator("#retrieved li.cited").first).to_be_visible()
    save(page, tmp_path, "chat.png")

    page.locator('#chatbot button[aria-label="Ogilla"]').click()
    expect(page.locator("#feedback")).to_be_visible()
    page.locator("#feedback textarea").fill("Saknar svaret om etik")
    page.locator("#feedback button").filter(has_text="Skicka kommentar").click()
    expect(page.locator("#feedback-status")).to_contain_text("Tack")
    (item,) = FeedbackStore.for_settings(Settings(data_dir=data_dir)).items()
    assert (item.rating, item.comment, item.question) == (
        "down",
        "Saknar svaret om etik",
        SV_QUESTION,
    )
    context.close()


def test_conversations_survive_a_reload_and_the_library_takes_uploads(
    browser: Any, app_url: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, f"{app_url}/", "en-GB")
    context = page.context
    # The first screen says what is indexed.
    expect(page.locator("#library-list table.library")).to_contain_text("4 indexed documents")
    ask(page, FI_QUESTION)
    expect(page.locator("#conversation-list")).to_contain_text(FI_QUESTION[:30])
    page.reload()
    expect(page.locator("#chatbot")).to_contain_text(FI_QUESTION)  # reopened from ?c=
    page.get_by_role("button", name="New chat").click()
    expect(page.locator("#chatbot")).not_to_contain_text(FI_QUESTION)
    expect(page).to_have_url(f"{app_url}/")
    page.locator("#conversation-list label").filter(has_text=FI_QUESTION[:30]).click()
    expect(page.locator("#chatbot")).to_contain_text(FI_QUESTION)
    page.locator("#rename textarea, #rename input").first.fill("Lahti revenue")
    page.locator("#rename-btn").click()
    expect(page.locator("#conversation-list")).to_contain_text("Lahti revenue")

    upload = tmp_path / "kantin.txt"
    upload.write_text(
        "Kantinen Polstjärnan\n\nKantinen Polstjärnan serverar frukost klockan 7 till 9.\n",
        encoding="utf-8",
    )
    bad = tmp_path / "tom.txt"  # accepted by type, refused by the ingest
    bad.write_text("  \n\n", encoding="utf-8")
    page.locator("#upload input[type=file]").set_input_files([str(upload), str(bad)])
    report = page.locator("#library-status")
    expect(report).to_contain_text("kantin.txt", timeout=60_000)
    expect(report.locator("li.added")).to_contain_text("kantin.txt")
    expect(report.locator("li.failed")).to_contain_text("tom.txt")
    expect(page.locator("#library-list")).to_contain_text("5 indexed documents")
    save(page, tmp_path, "library.png")

    # Delete: choose the document, then the button.
    choose_document(page, "Kantin ·")
    page.locator("#delete-documents").click()
    expect(report).to_contain_text("1 documents deleted")
    expect(page.locator("#library-list")).to_contain_text("4 indexed documents")
    expect(page.locator("#library-list")).not_to_contain_text("Kantin")
    context.close()


def choose_document(page: Any, title: str) -> None:
    """Picks a document in the "ask only within" dropdown by typing its title."""
    from playwright.sync_api import expect

    field = page.locator("#doc-filter input")
    field.click()
    field.fill(title)
    page.get_by_role("option").filter(has_text=title).first.click()
    page.keyboard.press("Escape")
    expect(page.locator("#doc-filter")).to_contain_text(title)


def test_regenerate_delete_filter_counter_and_lost_connection(
    browser: Any, app_url: str, data_dir: Path
) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, f"{app_url}/", "en-GB")
    page.wait_for_function("() => window.__assistantTexts")
    # A counter near the length limit.
    page.locator("#question textarea").fill("x" * 900)
    expect(page.locator("#question-counter")).to_have_text("100 characters left")

    # Regenerate: the last answer is answered anew, in place, in the same conversation.
    ask(page, PDF_QUESTION)
    expect(page).to_have_url(re.compile(r"\?c=\w+"))
    conversation = page.url.split("?c=")[1]
    store = ConversationStore.for_settings(Settings(data_dir=data_dir))
    # Auth is off: the conversation belongs to this browser (its cookie), not to "anonymous".
    cookie = next(c["value"] for c in page.context.cookies() if c["name"] == BROWSER_COOKIE)
    owner = browser_caller(cookie)
    assert owner is not None and store.get("anonymous", conversation) is None

    def stored() -> list[dict[str, Any]]:
        found = store.get(owner.id, conversation)
        assert found is not None
        return found.exchanges

    assert len(stored()) == 1
    before = json.dumps(stored())
    page.get_by_role("button", name="Retry").click()
    page.wait_for_function(ANSWERED)
    expect(page.locator("#chatbot [data-testid='bot']")).to_have_count(1)
    deadline = time.monotonic() + 30
    while json.dumps(stored()) == before and time.monotonic() < deadline:
        page.wait_for_timeout(100)  # polling the server's store, not a fixed wait
    assert len(stored()) == 1 and json.dumps(stored()) != before

    # Delete the conversation: gone from the page, the list, the address and the server.
    page.get_by_role("button", name="Delete chat").click()
    expect(page.locator("#chatbot [data-testid='bot']")).to_have_count(0)
    expect(page).to_have_url(f"{app_url}/")
    assert store.get(owner.id, conversation) is None

    # Asking within a chosen document leaves the others out.
    choose_document(page, "Forsknings- och utvecklingsstrategi")
    ask_text(page, PDF_QUESTION)
    page.get_by_role("button", name="Retrieved passages").click()
    expect(page.locator("#retrieved li").first).to_contain_text("region-stockholm")
    expect(page.locator("#retrieved")).not_to_contain_text(PDF_DOC)

    # A lost connection is said in the interface language, and the conversation stays.
    page.context.set_offline(True)
    expect(page.locator("#offline-notice")).to_contain_text("connection to the server was lost")
    expect(page.locator("#chatbot")).to_contain_text(PDF_QUESTION)
    page.context.set_offline(False)
    expect(page.locator("#offline-notice")).to_have_count(0)
    page.context.close()


def ask_text(page: Any, question: str) -> None:
    """Asks and waits for the answer, which may be a refusal (no citation to wait for)."""
    page.locator("#question textarea").fill(question)
    page.locator("#send").click()
    page.wait_for_function(ANSWERED)


# The newest answer is complete: neither the placeholder nor the streaming cursor is left.
ANSWERED = """() => { const bots = document.querySelectorAll('#chatbot [data-testid=bot]');
  const last = bots.length ? bots[bots.length - 1].innerText : '…';
  return !last.includes('…') && !last.includes('▍'); }"""


def test_document_html_is_shown_as_text(browser: Any, app_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(locale="en-GB", viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(f"{app_url}/")
    ask(page, XSS_QUESTION).click()
    page.get_by_text("Retrieved passages").click()
    literal = "<script>window.__xss = 1</script>"
    expect(page.locator("#chatbot")).to_contain_text(literal)
    expect(page.locator("#sources details[open] blockquote")).to_contain_text(literal)
    expect(page.locator("#retrieved")).to_contain_text('<img src=x onerror="window.__xss = 2">')
    expect(page.locator("#retrieved")).to_contain_text("<b>för</b>")
    assert page.evaluate("window.__xss") is None and dialogs == []
    planted = page.evaluate(
        """() => ['#chatbot', '#sources', '#retrieved'].map((s) =>
             document.querySelector(s).querySelectorAll('script, img, b').length)"""
    )
    assert planted == [0, 0, 0]
    save(page, tmp_path, "escaped.png", publish=False)
    context.close()


def test_embed_view_in_an_iframe(browser: Any, app_url: str, pages: Pages, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    pages.pages["/intranet.html"] = f"""<!doctype html><html><head><meta charset="utf-8">
<title>Intranet</title></head><body style="font-family:sans-serif;background:#eef2f7">
<h1>Intranet</h1><p>The assistant, embedded:</p>
<iframe id="assistant" src="{app_url}/embed?theme=dark&lang=fi" title="Assistant"
 style="width:560px;height:1250px;border:1px solid #99a"></iframe></body></html>"""
    context = browser.new_context(locale="en-US", viewport={"width": 900, "height": 1400})
    page = context.new_page()
    page.goto(f"{pages.origin}/intranet.html")
    frame = page.frame_locator("#assistant")
    expect(frame.locator("#question textarea")).to_be_visible(timeout=30_000)
    expect(frame.locator("#chat-header")).to_be_hidden()  # compact: no header
    expect(frame.locator("body")).to_have_class("dark")  # ?theme=dark
    expect(frame.locator("#sources h2")).to_have_text("Lähteet")  # ?lang=fi beats en-US
    ask(frame, FI_QUESTION).click()
    passage = frame.locator("#sources details[open]")
    expect(passage).to_contain_text(LAHTI)
    expect(passage).to_contain_text("sivu")
    page.evaluate("window.scrollTo(0, 0)")
    save(page, tmp_path, "embed.png")
    context.close()


def test_embed_as_a_web_component(browser: Any, app_url: str, pages: Pages) -> None:
    from playwright.sync_api import expect

    pages.pages["/component.html"] = f"""<!doctype html><html><head><meta charset="utf-8">
<script type="module" src="{app_url}/gradio.js"></script></head>
<body><h1>Intranet</h1><gradio-app src="{app_url}/embed/"></gradio-app></body></html>"""
    context = browser.new_context(locale="en-US", viewport={"width": 1000, "height": 1200})
    page = context.new_page()
    page.goto(f"{pages.origin}/component.html")
    expect(page.locator("gradio-app #question textarea")).to_be_visible(timeout=30_000)
    ask(page, SV_QUESTION).click()
    expect(page.locator("gradio-app #sources details[open]")).to_contain_text(STOCKHOLM)
    # "Open the original" leads to the assistant's server, not to the embedding page's.
    original = page.locator("gradio-app #sources details[open] a.open-original")
    expect(original).to_have_attribute("href", re.compile("^" + re.escape(f"{app_url}/source/")))
    context.close()


def in_viewport(locator: Any, viewport: dict[str, int]) -> bool:
    box = locator.bounding_box()
    return bool(
        box
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= viewport["width"] + 1
        and box["y"] + box["height"] <= viewport["height"] + 1
    )


def test_language_send_copy_numbering_and_feedback_in_place(
    browser: Any, app_url: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(
        locale="en-US",
        viewport={"width": 1400, "height": 1000},
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = context.new_page()
    page.goto(f"{app_url}/?lang=fi")
    # ?lang beats the browser's en-US: the page's language, title and Gradio's own labels.
    expect(page.locator("html")).to_have_attribute("lang", "fi")
    expect(page).to_have_title("Strategia-avustaja")
    expect(page.locator("footer")).to_contain_text("API:n kautta")  # Gradio's "Use via API"
    send = page.locator("#send")
    expect(send).to_be_disabled()  # an empty question cannot be sent
    page.locator("#question textarea").fill("   ")
    expect(send).to_be_disabled()
    page.locator("#question textarea").press("Enter")
    expect(page.locator("#chatbot [data-testid='user']")).to_have_count(0)

    ask(page, SV_QUESTION)
    ask(page, PDF_QUESTION)
    expect(page.locator('#chatbot a[href="#src-2-1"]').first).to_be_visible()
    expect(page.locator("#chatbot button[aria-label='Tyhjennä keskustelu']")).to_have_count(1)
    # Citations read 1..n in each answer, in order of first use, each opening its passage.
    for turn in (1, 2):
        shown = page.locator(f'#chatbot a[href^="#src-{turn}-"]').all_inner_texts()
        numbers = list(dict.fromkeys(int(x.strip("[]")) for x in shown))
        assert numbers == list(range(1, len(numbers) + 1)), shown
    ids = page.evaluate("Array.from(document.querySelectorAll('#sources [id^=src-]'), e => e.id)")
    assert len(ids) == len(set(ids))

    # The message's accessible name and the copied text are plain text with numbered sources.
    answer = page.locator("#chatbot [data-testid='bot']").last
    label = answer.get_attribute("aria-label") or ""
    assert label.startswith("Vastaus: ") and "](#" not in label and "\\[" not in label
    page.locator("#chatbot .message-buttons-left").last.locator("button").first.click()
    page.wait_for_function("() => window.__assistantCopied")
    copied = page.evaluate("navigator.clipboard.readText()")
    text, _, sources = copied.partition("\n\nLähteet:\n")
    assert PDF_QUOTE in text and "](#" not in copied and "\\" not in copied
    assert sources.startswith("[1] Biblioteksplan 2026 · sivu 2: “"), copied

    # Feedback on each answer opens right below it, on screen, over the chat's area but never
    # over the question box; Escape or Cancel closes it; thanks only once a comment is sent.
    box = page.locator("#feedback")
    question = page.locator("#question textarea")
    for which, close in (("last", "Escape"), ("first", "Peruuta")):
        rated = getattr(page.locator("#chatbot .message-buttons-left"), which)
        rated.locator("button").nth(-2).click()  # copy, retry-or-not, dislike, like: dislike
        expect(box).to_be_visible()
        expect(page.locator("#feedback-title")).to_contain_text("Palaute vastauksesta")
        expect(page.locator("#feedback-status")).to_have_text("")
        page.wait_for_function(
            FEEDBACK_BELOW_ANSWER, arg=0 if which == "first" else -1, polling=100
        )
        assert not overlaps(box.bounding_box(), question.bounding_box()), which
        assert in_viewport(box.locator("textarea"), {"width": 1400, "height": 1000})
        if close == "Escape":
            box.locator("textarea").press("Escape")
        else:
            box.get_by_role("button", name=close).click()
        expect(box).to_be_hidden()
        expect(question).to_be_visible()

    first = page.locator("#chatbot .message-buttons-left").first
    first.locator("button").nth(2).click()
    expect(box).to_be_visible()
    page.wait_for_function(FEEDBACK_BELOW_ANSWER, arg=0, polling=100)
    box.locator("textarea").fill("Hyvä")
    box.locator("button").filter(has_text="Lähetä kommentti").click()
    expect(page.locator("#feedback-status")).to_contain_text("Kiitos")
    assert not overlaps(box.bounding_box(), question.bounding_box())
    assert serious_violations(page, axe_path()) == [], "the feedback box"
    save(page, tmp_path, "desktop.png")
    context.close()


# The feedback box starts just below the rated answer's buttons (the answer given by index,
# -1: the last) and ends inside the chat's area, its position settled for half a second.
FEEDBACK_BELOW_ANSWER = """(index) => {
  const rows = Array.from(document.querySelectorAll('#chatbot .message-buttons-left'));
  const rated = rows[index < 0 ? rows.length + index : index].getBoundingClientRect();
  const box = document.querySelector('#feedback').getBoundingClientRect();
  const chat = document.querySelector('#chatbot').getBoundingClientRect();
  const placed = box.top >= rated.bottom - 2 && box.top - rated.bottom < 60
    && rated.top >= chat.top && box.bottom <= chat.bottom + 1;
  const where = `${index}:${Math.round(box.top)}:${Math.round(rated.bottom)}`;
  if (!placed || window.__placed !== where) {
    window.__placed = placed ? where : null; window.__since = performance.now(); return false; }
  return performance.now() - window.__since > 500; }"""


def overlaps(a: dict[str, float] | None, b: dict[str, float] | None) -> bool:
    assert a and b
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


# Gradio's own words for its controls (its translation files): ?lang must choose them.
GRADIO_WORDS = {
    "fi": {
        "clear": "Tyhjennä keskustelu",
        "retry": "Yritä uudelleen",
        "like": "Tykkää",
        "dislike": "En tykkää",
        "drop": "Pudota tiedosto tähän",
    },
    "sv": {
        "clear": "Rensa chatten",
        "retry": "Försök igen",
        "like": "Gilla",
        "dislike": "Ogilla",
        "drop": "Släpp fil här",
    },
}


@pytest.mark.parametrize("lang", ["fi", "sv"])
def test_lang_sets_gradios_own_labels_and_error_notices(
    browser: Any, app_url: str, lang: str
) -> None:
    from playwright.sync_api import expect

    words = GRADIO_WORDS[lang]
    context = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1000})
    page = context.new_page()

    # Gradio's strings for the language arrive late (a busy server): until they are there, a
    # question cannot be sent, else its Clear and Like would stay in the browser's language.
    held: list[Any] = []
    locale_file = re.compile(rf"/assets/{lang}-[\w-]+\.js$")
    page.route(locale_file, lambda route: held.append(route))
    page.goto(f"{app_url}/?lang={lang}")  # the browser says English
    page.locator("#question textarea").fill(SV_QUESTION)
    deadline = time.monotonic() + 60
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(100)  # lets Playwright hand over the held request
    assert held, "the page never asked for Gradio's strings of the language"
    expect(page.locator("#send")).to_be_disabled()
    page.keyboard.press("Enter")  # nor by Enter
    expect(page.locator('#chatbot [data-testid="user"]')).to_have_count(0)
    for route in held:
        route.continue_()
    page.unroute(locale_file)

    def gradio_controls_speak_the_language() -> None:
        chat = page.locator("#chatbot")
        for key in ("clear", "retry", "like", "dislike"):
            button = chat.locator(f'button[aria-label="{words[key]}"]')
            expect(button).to_have_count(1)
            expect(button).to_have_attribute("title", words[key])
        copy = chat.locator(".message-buttons-left button").first
        expect(copy).to_have_attribute("aria-label", t("copy", lang))
        expect(copy).to_have_attribute("title", t("copy", lang))
        expect(page.locator("#upload")).to_contain_text(words["drop"])

    ask(page, SV_QUESTION)
    gradio_controls_speak_the_language()
    # A reload reopens the conversation (?c=): Gradio renders it anew, in the same language.
    expect(page).to_have_url(re.compile(r"\?.*c=\w+"))
    page.reload()
    expect(page.locator('#chatbot a[href^="#src-"]').first).to_be_visible()
    gradio_controls_speak_the_language()

    # An error notice: its heading, message and close button (a lone surrogate is refused).
    page.locator("#question textarea").evaluate(
        "(area) => { area.value = 'x\\ud800'; "
        "area.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    page.locator("#send").click()
    notice = page.locator('[data-testid="toast-body"]')
    expect(notice.locator('[data-testid="toast-text"]')).to_have_text(t("invalid_text", lang))
    expect(notice.locator(".toast-title")).to_have_text(t("error", lang))
    close = notice.locator('[data-testid="toast-close"]')
    expect(close).to_have_attribute("aria-label", t("close", lang))
    page.context.close()


def test_an_iframe_on_another_site_keeps_conversations_for_the_page_session_only(
    browser: Any, app_url: str, pages: Pages, data_dir: Path
) -> None:
    """docs/embedding.md: with auth off the browser cookie is SameSite=Lax, so an iframe on
    another site neither gets nor sends it."""
    from playwright.sync_api import expect

    page = open_page(browser, f"{app_url}/", "sv-SE")  # the chat itself: the browser's cookie
    page.locator("#question textarea").wait_for()
    cookie = next(c["value"] for c in page.context.cookies() if c["name"] == BROWSER_COOKIE)
    owner = browser_caller(cookie)
    assert owner is not None
    store = ConversationStore.for_settings(Settings(data_dir=data_dir))
    pages.pages["/site.html"] = f"""<!doctype html><html lang="sv"><head><meta charset="utf-8">
<title>Intranät</title></head><body><iframe id="assistant" src="{app_url}/embed/?lang=sv"
 title="Assistenten" style="width:560px;height:900px;border:0"></iframe></body></html>"""

    def ask_in_frame(origin: str) -> tuple[str, str]:
        """Asks in the embed view framed by origin's page: (conversation id, frame address)."""
        page.goto(f"{origin}/site.html")
        ask(page.frame_locator("#assistant"), SV_QUESTION)
        frame = page.frame(url=lambda u: "/embed/" in u)
        assert frame is not None
        frame.wait_for_function("() => new URLSearchParams(location.search).get('c')")
        return frame.evaluate(
            "() => [new URLSearchParams(location.search).get('c'), location.href]"
        )

    def reopened(frame_address: str) -> Any:
        """The questions the embed view shows again when opened at its address (?c=)."""
        frame = page.frame(url=lambda u: "/embed/" in u)
        assert frame is not None
        frame.goto(frame_address)
        view = page.frame_locator("#assistant")
        # Loaded: the load event names the page in Swedish (the server's default is English).
        expect(view.locator("#embed-title h1")).to_have_text(t("title", "sv"))
        return view.locator("#chatbot [data-testid='user']")

    # On the assistant's own site (127.0.0.1) the frame is this browser ...
    same_site, same_site_address = ask_in_frame(pages.origin)
    assert store.get(owner.id, same_site) is not None
    expect(reopened(same_site_address)).to_have_count(1)
    # ... on another (localhost) it is a caller of that page session alone.
    other_site, other_site_address = ask_in_frame(pages.other_site)
    assert store.get(owner.id, other_site) is None
    expect(reopened(other_site_address)).to_have_count(0)
    page.context.close()


def test_a_pdf_citation_opens_the_page_with_the_passage_highlighted(
    browser: Any, app_url: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, f"{app_url}/", "sv-SE")
    context = page.context
    ask(page, PDF_QUESTION).click()
    passage = page.locator("#sources details[open]")
    expect(passage).to_contain_text(PDF_QUOTE)
    with context.expect_page() as opened:
        passage.locator("a.open-original").click()
    original = opened.value
    image = original.locator("#page-image")
    expect(image).to_be_visible()
    original.wait_for_function("document.querySelector('#page-image').naturalWidth > 500")
    expect(original.locator("h1")).to_have_text("Biblioteksplan 2026 · sida 2")
    expect(original.locator(".note")).to_have_count(0)  # the quote was found on the page
    save(original, tmp_path, "pdf-source.png")
    context.close()


def test_phone_layout_and_narrow_embed(
    browser: Any, app_url: str, pages: Pages, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(
        locale="sv-SE", viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    page = context.new_page()
    page.goto(f"{app_url}/")
    expect(page.locator("#library-list table.library")).to_be_attached()
    # Without scrolling: the question, Send and the example questions.
    for selector in ("#question textarea", "#send", "#examples .example-q >> nth=-1"):
        expect(page.locator(selector)).to_be_visible()
        assert in_viewport(page.locator(selector), PHONE), selector
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    save(page, tmp_path, "phone.png")
    link = ask(page, SV_QUESTION)
    # A citation opens its passage in a drawer inside the screen, the chat staying as it was.
    page.wait_for_function(ANSWERED)
    # Gradio's chatbot scrolls itself to its end a moment after an answer: measured once still.
    page.wait_for_function(
        f"""() => {{ const now = JSON.stringify(({CHAT_SCROLL})());
          if (window.__scroll !== now) {{
            window.__scroll = now; window.__since = performance.now(); }}
          return performance.now() - window.__since > 1000; }}""",
        polling=100,
    )
    link.scroll_into_view_if_needed()
    before = page.evaluate(CHAT_SCROLL)
    url = page.url
    for close in ("button", "Escape", "Back"):
        link = page.locator('#chatbot a[href^="#src-"]').first
        link.click()
        drawer = page.get_by_role("dialog")
        expect(drawer).to_be_visible()
        expect(drawer).to_contain_text(STOCKHOLM)
        expect(drawer.locator("blockquote").first).to_be_visible()
        assert in_viewport(drawer, PHONE)
        back = drawer.get_by_role("button", name=t("back_to_chat", "sv"))
        assert in_viewport(back, PHONE)
        expect(back).to_be_focused()
        if close == "button":
            save(page, tmp_path, "phone-drawer.png", full_page=False)
            back.click()
        elif close == "Escape":
            page.keyboard.press("Escape")
        else:  # the phone's own Back button
            page.go_back()
        expect(page.locator("#source-drawer")).to_have_count(0)
        assert page.url == url  # not navigated away
        # Back where the reader was: the same scroll positions, the citation in sight.
        assert page.evaluate(CHAT_SCROLL) == before, close
        assert in_viewport(page.locator('#chatbot a[href^="#src-"]').first, PHONE), close
        expect(page.locator('#chatbot a[href^="#src-"]').first).to_be_focused()
        if close == "button":
            link.click()  # open again for axe-core: the drawer passes too
            expect(page.get_by_role("dialog")).to_be_visible()
            assert serious_violations(page, axe_path()) == [], "the drawer"
            page.keyboard.press("Escape")
            expect(page.locator("#source-drawer")).to_have_count(0)

    # The feedback box on a phone: below the chat in the page's flow, the question uncovered.
    page.locator("#chatbot .message-buttons-left").last.locator("button").last.click()
    box = page.locator("#feedback")
    expect(box).to_be_visible()
    expect(box.locator("textarea")).to_be_focused()
    question = page.locator("#question textarea")
    assert not overlaps(box.bounding_box(), question.bounding_box())
    save(page, tmp_path, "phone-feedback.png", full_page=False)
    box.get_by_role("button", name=t("cancel", "sv")).click()
    expect(box).to_be_hidden()
    context.close()

    pages.pages["/narrow.html"] = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Narrow</title></head><body style="margin:0">
<iframe id="assistant" src="{app_url}/embed/?lang=en" title="Assistant"
 style="width:360px;height:700px;border:0"></iframe></body></html>"""
    narrow = browser.new_context(viewport={"width": 360, "height": 700}).new_page()
    narrow.goto(f"{pages.origin}/narrow.html")
    frame = narrow.frame_locator("#assistant")
    expect(frame.locator("#send")).to_be_visible(timeout=30_000)
    inner = narrow.frame(url=lambda u: "/embed/" in u)
    assert inner is not None
    assert inner.evaluate("document.documentElement.scrollWidth") <= 360
    ask(frame, SV_QUESTION)
    narrow.context.close()


# The page's and the chat's scroll positions.
CHAT_SCROLL = """() => { const all = Array.from(document.querySelectorAll('#chatbot *'));
  const list = all.find((e) => ['auto', 'scroll'].includes(getComputedStyle(e).overflowY)
    && e.scrollHeight > e.clientHeight);
  return [Math.round(window.scrollY), list ? Math.round(list.scrollTop) : null]; }"""


def serious_violations(page: Any, axe: Path) -> list[str]:
    """axe-core's serious and critical violations on the page, once it is still."""
    # Gradio dims a component while an event updates it: contrast is measured once all is
    # at full opacity and nothing is animating.
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll('.html-container, .block'))
                   .every((e) => getComputedStyle(e).opacity === '1')
                 && document.getAnimations().every((a) => a.playState !== 'running')"""
    )
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.add_script_tag(path=str(axe))
    found: list[str] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
             .filter((v) => ['serious', 'critical'].includes(v.impact))
             .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)"""
    )
    return found


def axe_path() -> Path:
    axe = next((p for p in AXE_PATHS if p.exists()), None)
    if axe is None:
        pytest.fail("axe-core is missing: npm install --prefix .venv axe-core@4.14.1")
    return axe


@pytest.mark.parametrize("path", ["/", "/embed/", "/?theme=dark"])
def test_no_serious_accessibility_violations(browser: Any, app_url: str, path: str) -> None:
    from playwright.sync_api import expect

    axe = axe_path()
    page = open_page(browser, f"{app_url}{path}", "sv-SE")
    context = page.context
    page.locator("#question textarea").wait_for()
    # The load event has run: it names the page in Swedish (the server's default is English).
    expect(page.locator("h1").first).to_have_text(t("title", "sv"))
    assert serious_violations(page, axe) == [], "first screen"

    # An answer with its citations, the cited passage open and the retrieved passages shown.
    page.get_by_role("button", name=SV_QUESTION).click()  # an example question
    page.locator("#send").click()
    link = page.locator('#chatbot a[href="#src-1-1"]').first
    link.wait_for(timeout=30_000)
    expect(page.locator("#chatbot .message-buttons-left button").first).to_be_visible()
    link.click()
    expect(page.locator("#src-1-1")).to_have_attribute("open", "")
    page.get_by_text(t("retrieved", "sv")).click()
    expect(page.locator("#retrieved li.cited").first).to_be_visible()
    assert serious_violations(page, axe) == [], "an answer with its citations"

    # The documents view open (closed at first in the embed view).
    documents = page.locator("#documents")
    if not documents.locator("#library-list").is_visible():
        documents.locator("button.label-wrap").first.click()
    expect(page.locator("#library-list table.library")).to_be_visible()
    expect(page.locator("#doc-filter")).to_be_visible()
    assert serious_violations(page, axe) == [], "the documents view"
    context.close()


def test_a_site_that_may_not_frame_the_chat_shows_a_hint(browser: Any, app_url: str) -> None:
    from playwright.sync_api import expect

    with Pages() as elsewhere:  # another origin, not in frame_ancestors
        elsewhere.pages["/intra.html"] = f"""<!doctype html><html lang="en"><head>
<meta charset="utf-8"><title>Elsewhere</title></head><body><h1>Elsewhere</h1>
<iframe id="assistant" src="{app_url}/embed/" title="Assistant"
 style="width:500px;height:300px"></iframe></body></html>"""
        page = open_page(browser, f"{elsewhere.origin}/intra.html", "en-GB")
        frame = page.frame_locator("#assistant")
        expect(frame.locator("#frame-refused")).to_contain_text(elsewhere.origin)
        expect(
            frame.get_by_role("link", name="Open the assistant in a tab of its own")
        ).to_be_visible()
        page.context.close()
