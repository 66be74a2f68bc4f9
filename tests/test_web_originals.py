"""Sources you can open: /source/{chunk_id} shows a cited PDF page rendered with the quote
highlighted and a text document's page with the quote marked, only to callers whose groups
may retrieve the passage."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from test_loaders import _pdf
from test_web_api import running_server
from test_web_documents import data_and_docs

from assistant.core import Assistant
from assistant.schema import Answer
from assistant.settings import Settings
from assistant.web.originals import find_quote
from assistant.web.server import create_app

TOKENS = {"tok-staff": ["staff"], "tok-hr": ["hr"]}
STAFF = {"Authorization": "Bearer tok-staff"}
HR = {"Authorization": "Bearer tok-hr"}
QUESTION = "När öppnar filialen i Vallby?"
QUOTE = "Filialen i Vallby oppnar i augusti 2026."
NOTE = (
    "Kantinen Polstjärnan\n\n"
    "Kantinen Polstjärnan serverar frukost klockan sju till nio varje vardag.\n"
)


def test_a_quote_is_found_across_line_breaks_hyphens_and_case() -> None:
    page = "2. Personal\r\nBiblioteket har 31 an-\r\nställda och öppnar\r\nen FILIAL i Vallby.\r\n"
    span = find_quote(page, "Biblioteket har 31 anställda och öppnar en filial i Vallby.")
    assert span is not None
    assert page[span.start : span.end].startswith("Biblioteket") and page[
        span.end - 6 :
    ].startswith("Vallby")
    assert find_quote(page, "Budgeten är fyra miljoner euro för året.") is None


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[str]:
    data, docs = data_and_docs(tmp_path_factory, models_dir, "originals")
    _pdf(
        docs / "bibliotek.pdf",
        [
            ["Biblioteksplan 2026", "1. Budget", "Budgeten for 2026 ar 4,2 miljoner euro."],
            ["2. Personal", "Biblioteket har 31 anstallda.", QUOTE],
        ],
        title="Biblioteksplan 2026",
    )
    (docs / "kantin.txt").write_text(NOTE, encoding="utf-8")
    settings = Settings(data_dir=data, api_tokens=TOKENS)
    assistant = Assistant(settings)
    assert assistant.ingest([docs], groups=["staff"]).ok
    with running_server(create_app(settings, assistant)) as url:
        yield url


def chunk_of(base: str, question: str, doc: str) -> str:
    """The id of the first passage of doc retrieved for question (whatever the answerer
    makes of it: the route shows any passage the caller may retrieve)."""
    response = httpx.post(f"{base}/api/ask", json={"question": question}, headers=STAFF, timeout=60)
    answer = Answer.model_validate(response.json())
    return next(p.chunk_id for p in answer.retrieved if p.doc == doc)


def highlighted(png: bytes) -> int:
    """Pixels of the highlight's yellow (on white paper: red high, blue well below it)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(1 for r, g, b in image.getdata() if r > 240 and g > 200 and r - b > 60)


def test_a_pdf_citation_opens_the_rendered_page_with_the_quote_highlighted(base: str) -> None:
    chunk_id, quote = chunk_of(base, QUESTION, "bibliotek.pdf"), QUOTE
    page = httpx.get(f"{base}/source/{chunk_id}", params={"q": quote, "lang": "sv"}, headers=STAFF)
    assert page.status_code == 200 and '<html lang="sv">' in page.text
    assert "Biblioteksplan 2026 · sida 2" in page.text and "hittades inte" not in page.text
    image = re.search(r'<img src="([^"]+)"', page.text)
    assert image is not None
    png = httpx.get(base + image.group(1).replace("&amp;", "&"), headers=STAFF)
    assert png.headers["content-type"] == "image/png"
    assert highlighted(png.content) > 2000
    plain = httpx.get(f"{base}/source/{chunk_id}/page.png", headers=STAFF)
    assert plain.status_code == 200 and highlighted(plain.content) == 0


def test_a_text_citation_shows_its_page_with_the_quote_marked(base: str) -> None:
    chunk_id = chunk_of(base, "När serverar Polstjärnan frukost?", "kantin.txt")
    quote = "Kantinen Polstjärnan serverar frukost klockan sju till nio varje vardag."
    page = httpx.get(f"{base}/source/{chunk_id}", params={"q": quote}, headers=STAFF)
    assert page.status_code == 200
    assert re.search(r'<mark id="quote">[^<]*frukost', page.text)
    missing = httpx.get(
        f"{base}/source/{chunk_id}", params={"q": "helt annat ord här"}, headers=STAFF
    )
    assert "<mark" not in missing.text and "not found" in missing.text


def test_sources_are_only_for_callers_who_may_retrieve_them(base: str) -> None:
    chunk_id = chunk_of(base, QUESTION, "bibliotek.pdf")
    assert httpx.get(f"{base}/source/{chunk_id}").status_code == 401
    assert httpx.get(f"{base}/source/{chunk_id}", headers=HR).status_code == 404
    assert httpx.get(f"{base}/source/{chunk_id}/page.png", headers=HR).status_code == 404
    assert httpx.get(f"{base}/source/nosuchchunk", headers=STAFF).status_code == 404
