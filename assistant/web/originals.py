"""Sources you can open: a cited passage shown in its original. For a PDF the rendered page
with the quoted words highlighted (pypdfium2, offline); for other formats the page's text with
the passage marked.

`GET /source/{chunk_id}?q=<quote>` is the page the chat's "open the original" links lead to,
`GET /source/{chunk_id}/page.png?q=<quote>` the rendered PDF page. The caller (bearer token
or the chat's cookie) must be allowed to retrieve the chunk; otherwise it does not exist.
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from assistant.core import Assistant
from assistant.errors import ConfigError
from assistant.schema import Chunk
from assistant.web.auth import Caller, SignInBlockedError, TokenAuth
from assistant.web.i18n import choose_language, t
from assistant.web.paths import app_root

RENDER_SCALE = 2.0
MAX_QUOTE_CHARS = 2000
# A hyphen at a line end joins the word's halves: "mil-\nlion" is "million".
_WORD = re.compile(r"\w+(?:-[ \t]*\r?\n\s*\w+)*")
_BREAK = re.compile(r"-[ \t]*\r?\n\s*")


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def find_quote(text: str, quote: str) -> Span | None:
    """Where quote stands in text (a PDF page's own text, with its line breaks and split
    words): the longest run of the quote's words found in a row, when it holds at least half
    of them (and three). Compared case-insensitively, word by word, so punctuation, spacing
    and hyphenation may differ."""
    words = [
        (m.start(), m.end(), _BREAK.sub("", m.group()).casefold()) for m in _WORD.finditer(text)
    ]
    wanted = [_BREAK.sub("", w).casefold() for w in _WORD.findall(quote)]
    if not words or not wanted:
        return None
    best, best_end = 0, 0
    previous = [0] * (len(wanted) + 1)
    for i, (_, _, word) in enumerate(words, 1):
        current = [0] * (len(wanted) + 1)
        for j, want in enumerate(wanted, 1):
            if word == want:
                current[j] = previous[j - 1] + 1
                if current[j] > best:
                    best, best_end = current[j], i
        previous = current
    if best < max(min(3, len(wanted)), (len(wanted) + 1) // 2):
        return None
    return Span(words[best_end - best][0], words[best_end - 1][1])


def _pdfium() -> Any:
    try:
        import pypdfium2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(
            "rendering PDF pages needs pypdfium2: pip install 'strategy-assistant[pdfview]'"
        ) from exc
    return pypdfium2


def render_pdf_page(
    path: Path, page_number: int, quote: str, *, image: bool = True
) -> tuple[bytes, bool]:
    """The page as PNG with the quote's text boxes highlighted, and whether it was found
    (image=False: only whether it was found, nothing rendered)."""
    from PIL import Image, ImageDraw

    pdf = _pdfium().PdfDocument(str(path))
    try:
        if not 1 <= page_number <= len(pdf):
            raise HTTPException(404, "no such page")
        page = pdf[page_number - 1]
        textpage = page.get_textpage()
        span = find_quote(textpage.get_text_range(), quote) if quote else None
        if not image:
            return b"", span is not None
        _, height = page.get_size()
        picture = page.render(scale=RENDER_SCALE).to_pil().convert("RGBA")
        if span is not None:
            overlay = Image.new("RGBA", picture.size, (0, 0, 0, 0))
            draw = ImageDraw.Draw(overlay)
            for i in range(textpage.count_rects(span.start, span.end - span.start)):
                left, bottom, right, top = textpage.get_rect(i)
                box = [
                    left * RENDER_SCALE - 2,
                    (height - top) * RENDER_SCALE - 2,
                    right * RENDER_SCALE + 2,
                    (height - bottom) * RENDER_SCALE + 2,
                ]
                draw.rectangle(box, fill=(255, 221, 0, 110), outline=(180, 83, 9, 255), width=2)
            picture = Image.alpha_composite(picture, overlay)
        out = io.BytesIO()
        picture.convert("RGB").save(out, format="PNG")
        return out.getvalue(), span is not None
    finally:
        pdf.close()


def _mark(text: str, quote: str) -> tuple[str, bool]:
    """text as HTML with the quote in <mark> when it is found."""
    span = find_quote(text, quote) if quote else None
    if span is None:
        return html.escape(text), False
    return (
        html.escape(text[: span.start])
        + f'<mark id="quote">{html.escape(text[span.start : span.end])}</mark>'
        + html.escape(text[span.end :]),
        True,
    )


_PAGE_CSS = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem;
  color: #111827; background: #fff; line-height: 1.5; }
a { color: #1d4ed8; } a:focus-visible { outline: 3px solid #1d4ed8; outline-offset: 2px; }
header { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: baseline; }
h1 { font-size: 1.3rem; margin: .5rem 0; }
.note { background: #fffbeb; border-left: 4px solid #b45309; padding: .5rem .8rem; }
img { max-width: 100%; height: auto; border: 1px solid #d1d5db; }
blockquote { border-left: 3px solid #b45309; margin: .5rem 0; padding-left: .8rem; }
.text { white-space: pre-wrap; border: 1px solid #d1d5db; padding: 1rem; }
mark { background: #fde68a; color: #111827; }
"""


class Originals:
    def __init__(self, assistant: Assistant, auth: TokenAuth) -> None:
        self.assistant = assistant
        self.auth = auth

    def caller(self, request: Request) -> Caller:
        try:
            found = self.auth.caller_for_request(request, cookie=True)
        except SignInBlockedError as exc:
            raise HTTPException(429, str(exc)) from exc
        if found is None:
            raise HTTPException(401, "sign in first", {"WWW-Authenticate": "Bearer"})
        return found

    def chunk(self, chunk_id: str, caller: Caller) -> Chunk:
        """The chunk, if the caller may retrieve it; a 404 for one outside its groups too."""
        found = self.assistant.store.get([chunk_id])
        if not found or not caller.filters().allows(found[0].meta):
            raise HTTPException(404, "no such passage")
        return found[0]

    def page_text(self, chunk: Chunk) -> str:
        """The text of the chunk's page as indexed: its chunks in order (overlaps and all)."""
        page = chunk.meta.page
        siblings = [
            c
            for c, _ in self.assistant.store.get_where({"doc_id": chunk.doc_id})
            if c.meta.page == page
        ]
        siblings.sort(key=lambda c: c.meta.chunk_index)
        return "\n\n".join(c.text for c in siblings) or chunk.text

    def pdf_path(self, chunk: Chunk) -> Path | None:
        path = Path(chunk.meta.path)
        if path.suffix.lower() == ".pdf" and path.is_file() and chunk.meta.page:
            return path
        return None


def originals_router(originals: Originals, ui_language: str) -> APIRouter:
    router = APIRouter(tags=["sources"])

    @router.get("/source/{chunk_id}", response_class=HTMLResponse)
    def source_page(
        request: Request,
        chunk_id: str,
        q: str = Query("", max_length=MAX_QUOTE_CHARS),
        lang: str | None = None,
    ) -> HTMLResponse:
        """A cited passage in its original: the PDF page rendered with the quote highlighted,
        or the page's text with the quote marked."""
        caller = originals.caller(request)
        chunk = originals.chunk(chunk_id, caller)
        ui = choose_language(
            ui_language, requested=lang, accept_language=request.headers.get("accept-language")
        )
        e = html.escape
        meta = chunk.meta
        title = meta.title or meta.source or chunk.doc_id
        page = meta.page
        where = f"{title} · {t('page', ui)} {page}" if page else title
        pdf = originals.pdf_path(chunk)
        if pdf is not None:
            _, found = render_pdf_page(pdf, int(page or 1), q, image=False)
            image = f"{e(app_root(request))}/source/{e(chunk_id)}/page.png?q={e(_query(q))}"
            body = f'<img src="{image}" alt="{e(where)}: {e(q)}" id="page-image">'
        else:
            marked, found = _mark(originals.page_text(chunk), q)
            body = f'<div class="text">{marked}</div>'
        note = "" if found or not q else f'<p class="note">{e(t("passage_not_found", ui))}</p>'
        quote = f"<blockquote>{e(q)}</blockquote>" if q else ""
        back = t("back_to_chat", ui)
        document = (
            f'<!doctype html><html lang="{ui}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{e(where)}</title><style>{_PAGE_CSS}</style></head><body>"
            f'<header><a href="javascript:history.length > 1 ? history.back() : window.close()"'
            f' id="back">← {e(back)}</a></header><main><h1>{e(where)}</h1>'
            f'<p class="file">{e(meta.source)}</p>{quote}{note}{body}'
            "</main></body></html>"
        )
        return HTMLResponse(document, headers={"Cache-Control": "private, no-store"})

    @router.get("/source/{chunk_id}/page.png", response_class=Response)
    def source_image(
        request: Request, chunk_id: str, q: str = Query("", max_length=MAX_QUOTE_CHARS)
    ) -> Response:
        """The PDF page of a cited passage as PNG, the quote highlighted."""
        chunk = originals.chunk(chunk_id, originals.caller(request))
        pdf = originals.pdf_path(chunk)
        if pdf is None:
            raise HTTPException(404, "the passage is not from a PDF page")
        png, _ = render_pdf_page(pdf, int(chunk.meta.page or 1), q)
        return Response(png, media_type="image/png", headers={"Cache-Control": "private"})

    return router


def _query(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
