"""The documents view in Chromium with auth on: only the admin group sees the library's
controls; an admin re-indexes and sees the progress (n of m files), then the summary with the
file that failed."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_browser import CHROMIUM, browser, open_page, save  # noqa: F401  (fixtures)
from test_web_api import running_server

from assistant.core import Assistant
from assistant.settings import Settings
from assistant.web.server import create_app

TOKENS = {"tok-admin": ["admin"], "tok-staff": ["staff"]}
NOTICE = "Anslagstavlan\n\nKaffeautomaten på plan tre lagas på måndag.\n"
GONE = "Gammal rutin\n\nDen gamla rutinen för nycklar gällde till 2024.\n"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed"),
]


@pytest.fixture(scope="module")
def admin_site(
    tmp_path_factory: pytest.TempPathFactory, corpus_index: Path
) -> Iterator[tuple[str, Path]]:
    """The default corpus and two documents of a folder of our own; the base URL and that
    folder."""
    data = tmp_path_factory.mktemp("admin-data")
    shutil.copytree(corpus_index / "index", data / "index")
    (data / "models").symlink_to(corpus_index / "models", target_is_directory=True)
    docs = tmp_path_factory.mktemp("admin-docs")
    (docs / "anslag.txt").write_text(NOTICE, encoding="utf-8")
    (docs / "gammal.txt").write_text(GONE, encoding="utf-8")
    settings = Settings(data_dir=data, api_tokens=TOKENS)
    assert Assistant(settings).ingest([docs]).ok
    with running_server(create_app(settings), ready_path="/healthz") as url:
        yield url, docs


def test_only_admins_reindex_and_see_progress_then_the_summary(
    browser: Any,  # noqa: F811
    admin_site: tuple[str, Path],
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    url, docs = admin_site
    staff = open_page(browser, f"{url}/?token=tok-staff&lang=en", "en-GB")
    expect(staff.locator("#library-list table.library")).to_contain_text("4 indexed documents")
    expect(staff.locator("#reindex")).to_be_hidden()
    expect(staff.locator("#upload")).to_be_hidden()
    staff.context.close()

    page = open_page(browser, f"{url}/?token=tok-admin&lang=en", "en-GB")
    button = page.get_by_role("button", name="Re-index the selected documents (none selected: all)")
    expect(button).to_be_visible()
    # One document changed on disk (written again), one gone (a failure with its reason).
    (docs / "anslag.txt").write_text(NOTICE + "Automaten byts ut i maj.\n", encoding="utf-8")
    (docs / "gammal.txt").unlink()
    # Every wording the status takes, as it changes (the progress may pass quickly).
    page.evaluate(
        """() => { window.__statuses = [];
          const status = document.querySelector('#library-status');
          new MutationObserver(() => window.__statuses.push(status.innerText.trim()))
            .observe(status, {subtree: true, childList: true, characterData: true}); }"""
    )
    button.click()
    status = page.locator("#library-status")
    expect(status).to_contain_text("Re-index done: 4 documents", timeout=120_000)
    expect(status).to_contain_text("1 written again, 2 unchanged, 1 failed")
    expect(status.locator("li.failed")).to_contain_text("gammal.txt: no such file or directory")
    seen = page.evaluate("window.__statuses")
    assert any(re.search(r"Re-indexing: [0-3] of 3 files done", s) for s in seen), seen
    save(page, tmp_path, "reindex.png")
    page.context.close()
