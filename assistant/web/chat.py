"""The staff chat (Gradio Blocks): streaming answers, clickable citations that open the quoted
passage in a sources panel, retrieved passages, thumbs up/down with a comment.

Everything a document supplies (text, titles, file names) is escaped before it reaches the
browser: in chat messages as Markdown escapes, in the panels as HTML entities, so a document
containing <script> or HTML shows it as text.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

import gradio as gr

from assistant.core import Assistant
from assistant.errors import AssistantError
from assistant.schema import Answer, Citation
from assistant.settings import Settings
from assistant.web.auth import Caller, RateLimiter, TokenAuth, rate_key
from assistant.web.feedback import MAX_COMMENT_CHARS, FeedbackStore
from assistant.web.history import cap_history, exchanges_to_history, has_lone_surrogate
from assistant.web.i18n import EXAMPLES, choose_language, t

Turns = list[dict[str, Any]]  # [{"question": str, "answer": Answer.model_dump()}]
UPLOAD_CACHE_SECONDS = 3600

_INLINE = re.compile(r"([\\`*_\[\]<>&|~$])")
_LINE_START = re.compile(r"^([#>+=-])", re.M)
_ORDERED = re.compile(r"^(\d+)([.)])", re.M)
_MARKER = re.compile(r"\[(\d{1,3})\]")

CSS = """
#refusal-notice .refusal-notice { background: var(--color-yellow-50, #fffbeb);
  border-left: 4px solid #f59e0b; padding: .6rem .8rem; border-radius: 4px; color: #78350f; }
.sources-panel h3 { margin: 0 0 .5rem; }
.sources-panel .turn h4 { margin: .75rem 0 .25rem; font-size: .95em; }
.sources-panel details.source { border: 1px solid var(--border-color-primary);
  border-radius: 6px; padding: .3rem .6rem; margin: .3rem 0; }
.sources-panel details.source.highlight { outline: 2px solid var(--color-accent); }
.sources-panel .meta, .retrieved .meta { font-size: .85em; opacity: .8; }
.sources-panel blockquote, .retrieved .text { white-space: pre-wrap; margin: .4rem 0; }
.sources-panel blockquote { border-left: 3px solid var(--color-accent); padding-left: .6rem; }
.retrieved li { margin-bottom: .6rem; }
#examples { flex-wrap: wrap; gap: .4rem; }
#examples .example-q { flex: 0 1 auto !important; min-width: 0 !important; width: auto !important;
  font-weight: normal; text-align: left; }
"""

# Citation links in answers point at "#src-<turn>-<n>"; this opens (and scrolls to) the
# passage in the sources panel instead of navigating. ?theme=dark|light sets the colours.
JS = """
() => {
  const open = (id) => {
    const el = document.getElementById(id);
    if (!el) return;
    for (let p = el; p; p = p.parentElement) { if (p.tagName === 'DETAILS') p.open = true; }
    document.querySelectorAll('details.source.highlight')
      .forEach((e) => e.classList.remove('highlight'));
    el.classList.add('highlight');
    el.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
  };
  document.addEventListener('click', (event) => {
    const link = event.target.closest && event.target.closest('a[href^="#src-"]');
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    open(link.getAttribute('href').slice(1));
  }, true);
  const theme = new URLSearchParams(window.location.search).get('theme');
  if (theme === 'dark') document.body.classList.add('dark');
  if (theme === 'light') document.body.classList.remove('dark');
}
"""


# Rendering -------------------------------------------------------------------------------
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


def answer_markdown(answer: Answer, turn: int, lang: str) -> str:
    """The answer with each valid [n] as a link to its passage in the sources panel."""
    cited = {c.n: c for c in answer.citations}
    # Markers become placeholders first, so escaping sees line starts where they really are.
    text = escape_md(_MARKER.sub(lambda m: f"\x00{m.group(1)}\x00", answer.answer))

    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        citation = cited.get(n)
        if citation is None:
            return f"\\[{n}\\]"
        hint = link_title(f"{citation.doc}{_page(citation.page, lang)}")
        return f'[\\[{n}\\]](#src-{turn}-{n} "{hint}")'

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


def _turn_sources(answer: Answer, number: int, lang: str) -> str:
    e = html.escape
    items = []
    # One element per cited passage, holding every quote taken from it: an overview quotes
    # several sentences of one passage, and element ids must stay unique.
    by_number: dict[int, list[Citation]] = {}
    for c in answer.citations:
        by_number.setdefault(c.n, []).append(c)
    for n, group in by_number.items():
        c = group[0]
        title = c.title or c.doc
        quotes = "".join(
            f"<blockquote>{e(q)}</blockquote>" for q in dict.fromkeys(x.quote for x in group)
        )
        items.append(
            f'<details class="source" id="src-{number}-{n}"><summary>'
            f'<span class="cite-n">[{n}]</span> <span class="src-title">{e(title)}</span>'
            f"{e(_page(c.page, lang))}</summary>"
            f'<div class="meta">{e(t("file", lang))}: <span class="src-file">{e(c.doc)}</span>'
            f"</div>{quotes}</details>"
        )
    question = answer.question if len(answer.question) <= 90 else answer.question[:87] + "…"
    heading = f"{t('sources_for', lang, n=number)}: {question}"
    body = "".join(items) or "<p>—</p>"
    return f'<section class="turn" data-turn="{number}"><h4>{e(heading)}</h4>{body}</section>'


def sources_html(turns: Turns, lang: str) -> str:
    """Cited passages of every answer, newest first; older answers folded away."""
    e = html.escape
    if not turns:
        body = f'<p class="empty">{e(t("sources_empty", lang))}</p>'
    else:
        sections = [
            _turn_sources(Answer.model_validate(turn["answer"]), number, lang)
            for number, turn in reversed(list(enumerate(turns, 1)))
        ]
        body = sections[0]
        if len(sections) > 1:
            body += f"<details class='earlier'><summary>{e(t('earlier', lang))}</summary>"
            body += "".join(sections[1:]) + "</details>"
    return f'<div class="sources-panel"><h3>{e(t("sources", lang))}</h3>{body}</div>'


def retrieved_html(turns: Turns, lang: str) -> str:
    """Every passage retrieved for the latest answer, cited ones marked."""
    e = html.escape
    if not turns:
        return f'<div class="retrieved"><p class="empty">{e(t("retrieved_empty", lang))}</p></div>'
    answer = Answer.model_validate(turns[-1]["answer"])
    cited = {c.chunk_id for c in answer.citations}
    items = []
    for p in answer.retrieved:
        mark = f" · {t('cited', lang)}" if p.chunk_id in cited else ""
        meta = (
            f"[{p.n}] {p.title or p.doc} · {t('file', lang)}: {p.doc}{_page(p.page, lang)}"
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


# The Blocks --------------------------------------------------------------------------------
def create_chat(
    assistant: Assistant,
    settings: Settings,
    embed: bool,
    *,
    auth: TokenAuth | None = None,
    limiter: RateLimiter | None = None,
    feedback: FeedbackStore | None = None,
) -> gr.Blocks:
    """The chat UI; embed=True is the compact view for iframes (no header, one column)."""
    auth = auth or TokenAuth(settings.api_tokens)
    limiter = limiter or RateLimiter(settings.rate_limit_per_minute)
    store = feedback or FeedbackStore.for_settings(settings)
    # Ratings have a bucket of their own, so that rating answers never costs questions.
    feedback_limiter = RateLimiter(settings.rate_limit_per_minute)
    initial = choose_language(settings.ui_language)

    def caller_of(request: gr.Request) -> Caller:
        caller = auth.caller_for_user(request.username)
        if caller is None:  # Gradio's auth_dependency normally stops this earlier
            raise gr.Error("not signed in")
        return caller

    def ratings(lang: str) -> list[tuple[str, str]]:
        return [(t("rating_up", lang), "up"), (t("rating_down", lang), "down")]

    def header(lang: str) -> str:
        e = html.escape
        return f"<h1>{e(t('title', lang))}</h1><p>{e(t('subtitle', lang))}</p>"

    # Uploaded files left in Gradio's cache (an upload is copied into the library at once)
    # are deleted after an hour, checked every hour.
    cache = (UPLOAD_CACHE_SECONDS, UPLOAD_CACHE_SECONDS)
    with gr.Blocks(title=t("title", initial), analytics_enabled=False, delete_cache=cache) as demo:
        lang_state = gr.State(initial)
        turns_state = gr.State([])
        title = gr.HTML(header(initial), visible=not embed, elem_id="chat-header")
        with gr.Column() if embed else gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                chatbot = gr.Chatbot(
                    label=t("chat_label", initial),
                    elem_id="chatbot",
                    height=380 if embed else 520,
                    placeholder=t("subtitle", initial) if embed else None,
                    sanitize_html=True,
                    allow_tags=False,
                    latex_delimiters=[],
                    buttons=["copy"],
                    feedback_options=("Like", "Dislike"),
                )
                notice = gr.HTML("", elem_id="refusal-notice")
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        label=t("question_label", initial),
                        placeholder=t("question_placeholder", initial),
                        elem_id="question",
                        scale=5,
                        max_lines=6,
                        autofocus=not embed,
                    )
                    send = gr.Button(t("send", initial), variant="primary", elem_id="send")
                examples_title = gr.Markdown(f"**{t('examples', initial)}**")
                with gr.Row(elem_id="examples"):
                    for example in EXAMPLES:
                        # Filled in the browser: no round trip, and the box keeps its labels.
                        gr.Button(example, size="sm", elem_classes="example-q").click(
                            None, js=f"() => {json.dumps(example)}", outputs=[question]
                        )
                with gr.Column(visible=False, elem_id="feedback") as feedback_box:
                    fb_title = gr.Markdown("")
                    with gr.Row():
                        fb_turn = gr.Number(label=t("feedback_answer", initial), precision=0)
                        fb_rating = gr.Radio(ratings(initial), label=t("feedback_rating", initial))
                    fb_comment = gr.Textbox(label=t("feedback_comment", initial), lines=2)
                    fb_send = gr.Button(t("feedback_send", initial), size="sm")
                    fb_status = gr.Markdown("", elem_id="feedback-status")
            with gr.Column(scale=2, min_width=280):
                sources = gr.HTML(sources_html([], initial), elem_id="sources")
                with gr.Accordion(t("retrieved", initial), open=False) as retrieved_box:
                    retrieved = gr.HTML(retrieved_html([], initial), elem_id="retrieved")

        # Texts that follow the page's language: (component, {property: string key}).
        localised: list[tuple[Any, dict[str, str]]] = [
            (chatbot, {"label": "chat_label", **({"placeholder": "subtitle"} if embed else {})}),
            (question, {"label": "question_label", "placeholder": "question_placeholder"}),
            (send, {"value": "send"}),
            (retrieved_box, {"label": "retrieved"}),
            (fb_turn, {"label": "feedback_answer"}),
            (fb_comment, {"label": "feedback_comment"}),
            (fb_send, {"value": "feedback_send"}),
        ]

        def on_load(request: gr.Request) -> dict[Any, Any]:
            lang = choose_language(
                settings.ui_language,
                requested=request.query_params.get("lang"),
                accept_language=request.headers.get("accept-language"),
            )
            texts: dict[Any, dict[str, Any]] = {
                component: {prop: t(key, lang) for prop, key in keys.items()}
                for component, keys in localised
            }
            return {
                lang_state: lang,
                title: header(lang),
                examples_title: f"**{t('examples', lang)}**",
                sources: sources_html([], lang),
                retrieved: retrieved_html([], lang),
                fb_rating: gr.update(label=t("feedback_rating", lang), choices=ratings(lang)),
                **{component: gr.update(**props) for component, props in texts.items()},
            }

        fixed = [lang_state, title, examples_title, sources, retrieved, fb_rating]
        demo.load(on_load, outputs=fixed + [c for c, _ in localised], api_visibility="private")

        def ask(
            text: str, turns: Turns, lang: str, request: gr.Request
        ) -> Iterator[tuple[Any, ...]]:
            caller = caller_of(request)
            client = request.client.host if request.client else None
            if limiter.hit(rate_key(caller, client)) is not None:
                raise gr.Error(t("rate_limited", lang))
            if has_lone_surrogate(text):
                raise gr.Error(t("invalid_text", lang))
            try:
                text = assistant.validate_question(text)
            except AssistantError as exc:
                raise gr.Error(str(exc)) from exc
            history = cap_history(exchanges_to_history(turns), settings)
            messages = [*chat_messages(turns, lang), {"role": "user", "content": escape_md(text)}]
            skip = gr.skip()
            yield [*messages, {"role": "assistant", "content": "…"}], skip, skip, "", skip, ""
            answer: Answer | None = None
            draft = ""
            try:
                for item in assistant.stream(text, history, filters=caller.filters()):
                    if isinstance(item, Answer):
                        answer = item
                    else:
                        draft += item
                        partial = {"role": "assistant", "content": escape_md(draft) + " ▍"}
                        yield [*messages, partial], skip, skip, skip, skip, skip
            except AssistantError as exc:
                raise gr.Error(str(exc)) from exc
            if answer is None:
                raise gr.Error("the assistant returned no answer")
            turns = [*turns, {"question": text, "answer": answer.model_dump()}]
            yield (
                chat_messages(turns, lang),
                sources_html(turns, lang),
                retrieved_html(turns, lang),
                notice_html(turns, lang),
                turns,
                "",
            )

        gr.on(
            [send.click, question.submit],
            ask,
            inputs=[question, turns_state, lang_state],
            outputs=[chatbot, sources, retrieved, notice, turns_state, question],
            api_name="ask",
            show_progress="minimal",
        )

        def reset(lang: str) -> tuple[Any, ...]:
            return (
                [],
                sources_html([], lang),
                retrieved_html([], lang),
                "",
                [],
                gr.update(visible=False),
            )

        chatbot.clear(  # the chatbot's trash button starts a new conversation
            reset,
            inputs=[lang_state],
            outputs=[chatbot, sources, retrieved, notice, turns_state, feedback_box],
            api_visibility="private",
        )

        def save(
            number: int, rating: str, comment: str | None, turns: Turns, request: gr.Request
        ) -> None:
            client = request.client.host if request.client else None
            if feedback_limiter.hit(rate_key(caller_of(request), client)) is not None:
                raise gr.Error(t("rate_limited", "en"))
            store.record(
                session=request.session_hash or "unknown",
                turn=number,
                caller=caller_of(request).id,
                rating="up" if rating == "up" else "down",
                answer=Answer.model_validate(turns[number - 1]["answer"]),
                comment=comment,
            )

        def on_like(
            turns: Turns, lang: str, like: gr.LikeData, request: gr.Request
        ) -> tuple[Any, ...]:
            index = like.index[0] if isinstance(like.index, (list, tuple)) else like.index
            number = int(index) // 2 + 1
            if like.liked not in (True, False) or not 1 <= number <= len(turns):
                return (gr.skip(),) * 6
            rating = "up" if like.liked else "down"
            save(number, rating, None, turns, request)
            title = f"**{t('feedback_title', lang, n=number)}**"
            return gr.update(visible=True), title, number, rating, "", t("feedback_thanks", lang)

        chatbot.like(
            on_like,
            inputs=[turns_state, lang_state],
            outputs=[feedback_box, fb_title, fb_turn, fb_rating, fb_comment, fb_status],
            api_visibility="private",
        )

        def send_feedback(
            number: float | None,
            rating: str | None,
            comment: str | None,
            turns: Turns,
            lang: str,
            request: gr.Request,
        ) -> str:
            turn = int(number or 0)
            if not 1 <= turn <= len(turns) or rating not in ("up", "down"):
                raise gr.Error(t("feedback_unknown", lang))
            if len(comment or "") > MAX_COMMENT_CHARS or has_lone_surrogate(comment):
                raise gr.Error(t("feedback_too_long", lang, n=MAX_COMMENT_CHARS))
            save(turn, rating, (comment or "").strip(), turns, request)
            return t("feedback_thanks", lang)

        fb_send.click(
            send_feedback,
            inputs=[fb_turn, fb_rating, fb_comment, turns_state, lang_state],
            outputs=[fb_status],
            api_name="feedback",
        )

    demo.queue(default_concurrency_limit=settings.concurrency, max_size=settings.queue_size)
    return demo
