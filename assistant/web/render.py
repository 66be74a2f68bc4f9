"""Markdown and HTML for the chat: answers with linked citations, the sources panel, the
retrieved passages and notices.

Everything a document supplies (text, titles, file names) is escaped before it reaches the
browser: in chat messages as Markdown escapes, in the panels as HTML entities, so a document
containing <script> or HTML shows it as text.
"""

from __future__ import annotations

import html
import re
import time
from typing import Any
from urllib.parse import urlencode

from assistant.schema import Answer, Citation
from assistant.web.documents import DocumentInfo, ReindexProgress, ReindexSummary, UploadResult
from assistant.web.i18n import t

Turns = list[dict[str, Any]]  # [{"question": str, "answer": Answer.model_dump()}]

_INLINE = re.compile(r"([\\`*_\[\]<>&|~$])")
_LINE_START = re.compile(r"^([#>+=-])", re.M)
_ORDERED = re.compile(r"^(\d+)([.)])", re.M)
_MARKER = re.compile(r"\[(\d{1,3})\]")


def escape_md(text: str) -> str:
    """Text shown literally by a Markdown renderer: no HTML, links, emphasis or lists."""
    text = re.sub(r"^[ \t]+", "", text, flags=re.M)  # indentation would start a code block
    text = _LINE_START.sub(r"\\\1", _INLINE.sub(r"\\\1", text))
    return _ORDERED.sub(r"\1\\\2", text)


def link_title(text: str) -> str:
    """Text safe inside a Markdown link title ("..."): one line (a blank line would end the
    paragraph and let a file name break out into the chat), no quote or backslash."""
    return " ".join(text.split()).replace('"', "'").replace("\\", "/")


def _page(page: int | None, lang: str) -> str:
    return f" · {t('page', lang)} {page}" if page is not None else ""


def display_numbers(answer: Answer) -> dict[int, int]:
    """Citation numbers as the reader sees them: 1..n in the order the answer first cites
    them, without gaps or repeats. Answer.citations number the retrieved passages ([2] and
    [5] when the second and fifth were quoted); the API keeps those, the chat shows these."""
    cited = {c.n for c in answer.citations}
    order = [int(m) for m in _MARKER.findall(answer.answer) if int(m) in cited]
    order += [c.n for c in answer.citations]
    return {n: shown for shown, n in enumerate(dict.fromkeys(order), 1)}


def answer_markdown(answer: Answer, turn: int, lang: str) -> str:
    """The answer with each valid [n] as a link to its passage in the sources panel."""
    cited = {c.n: c for c in answer.citations}
    shown = display_numbers(answer)
    # Markers become placeholders first, so escaping sees line starts where they really are.
    text = escape_md(_MARKER.sub(lambda m: f"\x00{m.group(1)}\x00", answer.answer))

    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        citation = cited.get(n)
        if citation is None:
            return f"\\[{n}\\]"
        hint = link_title(f"{citation.doc}{_page(citation.page, lang)}")
        return f'[\\[{shown[n]}\\]](#src-{turn}-{shown[n]} "{hint}")'

    text = re.sub("\x00(\\d+)\x00", link, text)
    if answer.unsupported_sentences:
        unsupported = " ".join(escape_md(s) for s in answer.unsupported_sentences)
        text += f"\n\n*{escape_md(t('unsupported', lang))}* {unsupported}"
    return text


def chat_messages(turns: Turns, lang: str) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    for number, turn in enumerate(turns, 1):
        answer = Answer.model_validate(turn["answer"])
        messages.append({"role": "user", "content": escape_md(turn["question"])})
        messages.append({"role": "assistant", "content": answer_markdown(answer, number, lang)})
    return messages


def _turn_sources(answer: Answer, number: int, lang: str, root: str) -> str:
    e = html.escape
    items = []
    # One element per cited passage, holding every quote taken from it: an overview quotes
    # several sentences of one passage, and element ids must stay unique.
    shown = display_numbers(answer)
    by_number: dict[int, list[Citation]] = {}
    for c in sorted(answer.citations, key=lambda c: shown[c.n]):
        by_number.setdefault(shown[c.n], []).append(c)
    for n, group in by_number.items():
        c = group[0]
        title = c.title or c.doc
        quotes = "".join(
            f"<blockquote>{e(q)}</blockquote>" for q in dict.fromkeys(x.quote for x in group)
        )
        # The original at its page, the (first) quote highlighted: assistant/web/originals.py
        query = urlencode({"q": group[0].quote[:1000], "lang": lang})
        original = (
            f'<a class="open-original" href="{e(root)}/source/{e(c.chunk_id)}?{e(query)}" '
            f'target="_blank" rel="noopener">{e(t("open_original", lang))}'
            f"{e(_page(c.page, lang))}</a>"
        )
        items.append(
            f'<details class="source" id="src-{number}-{n}"><summary>'
            f'<span class="cite-n">[{n}]</span> <span class="src-title">{e(title)}</span>'
            f"{e(_page(c.page, lang))}</summary>"
            f'<div class="meta">{e(t("file", lang))}: <span class="src-file">{e(c.doc)}</span>'
            f"</div>{quotes}<p>{original}</p></details>"
        )
    question = answer.question if len(answer.question) <= 90 else answer.question[:87] + "…"
    heading = f"{t('sources_for', lang, n=number)}: {question}"
    body = "".join(items) or "<p>—</p>"
    return f'<section class="turn" data-turn="{number}"><h3>{e(heading)}</h3>{body}</section>'


def sources_html(turns: Turns, lang: str, root: str = "") -> str:
    """Cited passages of every answer, newest first; older answers folded away. root: the
    app's root path ("" or "/prefix"), which the links to the originals start with."""
    e = html.escape
    if not turns:
        body = f'<p class="empty">{e(t("sources_empty", lang))}</p>'
    else:
        sections = [
            _turn_sources(Answer.model_validate(turn["answer"]), number, lang, root)
            for number, turn in reversed(list(enumerate(turns, 1)))
        ]
        body = sections[0]
        if len(sections) > 1:
            body += f"<details class='earlier'><summary>{e(t('earlier', lang))}</summary>"
            body += "".join(sections[1:]) + "</details>"
    return f'<div class="sources-panel"><h2>{e(t("sources", lang))}</h2>{body}</div>'


def retrieved_html(turns: Turns, lang: str) -> str:
    """Every passage retrieved for the latest answer, cited ones marked."""
    e = html.escape
    if not turns:
        return f'<div class="retrieved"><p class="empty">{e(t("retrieved_empty", lang))}</p></div>'
    answer = Answer.model_validate(turns[-1]["answer"])
    shown = display_numbers(answer)
    cited = {c.chunk_id: shown[c.n] for c in answer.citations}
    items = []
    for p in answer.retrieved:
        # The list's own numbers are retrieval ranks; the answer's [n] is named beside it.
        mark = f" · {t('cited', lang)} [{cited[p.chunk_id]}]" if p.chunk_id in cited else ""
        meta = (
            f"{p.title or p.doc} · {t('file', lang)}: {p.doc}{_page(p.page, lang)}"
            f" · {t('score', lang)} {p.score:.4f}{mark}"
        )
        css = "passage cited" if p.chunk_id in cited else "passage"
        items.append(
            f'<li class="{css}"><div class="meta">{e(meta)}</div>'
            f'<div class="text">{e(p.text)}</div></li>'
        )
    return f'<div class="retrieved"><ol>{"".join(items)}</ol></div>'


def notice_html(turns: Turns, lang: str) -> str:
    if not turns or not turns[-1]["answer"]["refused"]:
        return ""
    text = html.escape(t("refusal_notice", lang))
    return f'<div class="refusal-notice" role="status">⚠ {text}</div>'


def library_notice(text: str, *, error: bool = False) -> str:
    role = "alert" if error else "status"
    return f'<p class="library-notice" role="{role}">{html.escape(text)}</p>'


def upload_report(results: list[UploadResult], lang: str) -> str:
    """One line per uploaded file: added, or the reason it was refused."""
    e = html.escape
    items = []
    for r in results:
        if r.error:
            items.append(f'<li class="failed">✗ {e(r.file)}: {e(r.error)}</li>')
        else:
            items.append(f'<li class="added">✓ {e(r.file)} · {e(t("upload_ok", lang))}</li>')
    return f'<ul class="upload-report" role="status">{"".join(items)}</ul>'


def reindex_progress(progress: ReindexProgress | None, lang: str) -> str:
    """The re-index's status line: started, then "n of m files" with the next file's name."""
    e = html.escape
    if progress is None or progress.total == 0:
        text = t("reindex_started", lang)
        return f'<p class="reindex-progress" role="status">{e(text)}</p>'
    text = t("reindex_progress", lang, done=progress.done, total=progress.total)
    name = f" · {e(progress.file)}" if progress.file else ""
    bar = f'<progress max="{progress.total}" value="{progress.done}" aria-hidden="true"></progress>'
    return f'<p class="reindex-progress" role="status">{e(text)}{name}</p>{bar}'


def reindex_report(summary: ReindexSummary, lang: str) -> str:
    """Counts, then one line per document that failed, with the reason."""
    e = html.escape
    counts = t(
        "reindex_done",
        lang,
        total=summary.total,
        updated=len(summary.updated),
        unchanged=len(summary.unchanged),
        failed=len(summary.failed),
    )
    failures = "".join(
        f'<li class="failed">✗ {e(f.file)}: {e(f.error)}</li>' for f in summary.failed
    )
    listed = f'<ul class="reindex-failures">{failures}</ul>' if failures else ""
    return f'<div class="reindex-report" role="status"><p>{e(counts)}</p>{listed}</div>'


def library_html(documents: list[DocumentInfo], lang: str) -> str:
    """The indexed documents the caller may see: title, language, pages, date, groups."""
    e = html.escape
    if not documents:
        return f'<p class="empty">{e(t("library_empty", lang))}</p>'
    rows = []
    for d in documents:
        date = time.strftime("%Y-%m-%d", time.localtime(d.modified)) if d.modified else "–"
        rows.append(
            f'<tr><td class="doc-title">{e(d.title)}</td><td>{e(d.language)}</td>'
            f"<td>{d.pages or '–'}</td><td>{e(date)}</td>"
            f"<td>{e(', '.join(d.groups) or t('public', lang))}</td></tr>"
        )
    head = "".join(
        f'<th scope="col">{e(t(key, lang))}</th>'
        for key in ("col_title", "col_language", "col_pages", "col_date", "col_groups")
    )
    caption = e(t("library_caption", lang, n=len(documents)))
    return (
        f'<table class="library"><caption>{caption}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
