"""The app served under a path prefix, as a reverse proxy or a parent ASGI app puts it
(`assistant serve --root-path /assistant`, or a Mount): every link, redirect and fetch it
writes stays under the prefix. A real server on 127.0.0.1, the app mounted at /assistant in a
parent Starlette app (the same scope as uvicorn's root_path behind a proxy that strips it).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from test_browser import (  # noqa: F401  (fixtures)
    ANSWERED,
    CHROMIUM,
    PDF_QUESTION,
    PDF_QUOTE,
    browser,
    data_dir,
    open_page,
    pages,
)
from test_web_api import running_server

from assistant.settings import Settings
from assistant.web.server import create_app

PREFIX = "/assistant"


@pytest.fixture(scope="module")
def prefixed(data_dir: Path) -> Iterator[str]:  # noqa: F811
    """The base URL of the app, mounted under PREFIX."""
    app = create_app(Settings(data_dir=data_dir))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # A Mount does not run its app's lifespan: the parent runs it (model warm-up, Gradio).
        async with app.router.lifespan_context(app):
            yield

    parent = Starlette(routes=[Mount(PREFIX, app=app)], lifespan=lifespan)
    with running_server(parent, ready_path=f"{PREFIX}/readyz") as url:  # type: ignore[arg-type]
        yield url + PREFIX


def test_redirects_and_links_of_the_server_stay_under_the_prefix(prefixed: str) -> None:
    embed = httpx.get(f"{prefixed}/embed?lang=sv")
    assert embed.status_code == 307
    assert embed.headers["location"] == f"{PREFIX}/embed/?lang=sv"
    docs = httpx.get(f"{prefixed}/docs")
    assert docs.status_code == 200 and f'href="{PREFIX}/openapi.json"' in docs.text
    assert httpx.get(f"{prefixed}/openapi.json").status_code == 200
    assert httpx.get(f"{prefixed}/").status_code == 200  # the chat
    # Unknown API routes keep the documented error shape, allowed methods read within the app.
    wrong = httpx.get(f"{prefixed}/api/ask")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    answer = httpx.post(f"{prefixed}/api/ask", json={"question": PDF_QUESTION}, timeout=60)
    assert answer.status_code == 200 and answer.json()["citations"]


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")
def test_a_citation_opens_its_original_through_the_prefix(browser: Any, prefixed: str) -> None:  # noqa: F811
    from playwright.sync_api import expect

    page = open_page(browser, f"{prefixed}/?lang=sv", "sv-SE")
    context = page.context
    page.locator("#question textarea").fill(PDF_QUESTION)
    page.locator("#send").click()
    page.locator('#chatbot a[href^="#src-"]').first.click()
    page.wait_for_function(ANSWERED)
    passage = page.locator("#sources details[open]")
    expect(passage).to_contain_text(PDF_QUOTE)
    link = passage.locator("a.open-original")
    expect(link).to_have_attribute("href", re.compile("^" + re.escape(f"{PREFIX}/source/")))
    origin = prefixed.removesuffix(PREFIX)
    response = context.request.get(origin + str(link.get_attribute("href")))
    assert response.status == 200 and PDF_QUOTE in response.text()
    with context.expect_page() as opened:
        link.click()
    original = opened.value
    expect(original).to_have_url(re.compile("^" + re.escape(f"{prefixed}/source/")))
    image = original.locator("#page-image")
    expect(image).to_have_attribute("src", re.compile("^" + re.escape(f"{PREFIX}/source/")))
    original.wait_for_function("document.querySelector('#page-image').naturalWidth > 500")
    context.close()
