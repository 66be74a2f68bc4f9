"""The staff chat (Gradio Blocks): the layout and its event handlers. Rendering lives in
assistant/web/render.py, the page's CSS and JavaScript in assistant/web/static/.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable, Iterator
from importlib.resources import files
from typing import Any

import gradio as gr

from assistant.core import Assistant
from assistant.errors import (
    AssistantError,
    BackendUnavailableError,
    EmptyIndexError,
    QuestionError,
)
from assistant.schema import Answer
from assistant.settings import Settings
from assistant.web.auth import Caller, RateLimiter, TokenAuth, rate_key
from assistant.web.conversations import ConversationStore
from assistant.web.documents import Library
from assistant.web.feedback import FeedbackStore
from assistant.web.feedback_ui import feedback_panel, ratings
from assistant.web.history import cap_history, exchanges_to_history, has_lone_surrogate
from assistant.web.i18n import EXAMPLES, choose_language, client_texts, t
from assistant.web.library_ui import library_admin
from assistant.web.paths import app_root
from assistant.web.render import (
    Turns,
    chat_messages,
    escape_md,
    library_html,
    notice_html,
    retrieved_html,
    sources_html,
)

logger = logging.getLogger(__name__)
UPLOAD_CACHE_SECONDS = 3600
_STATIC = files("assistant.web") / "static"
CSS = (_STATIC / "chat.css").read_text("utf-8")
# Citation links in answers point at "#src-<turn>-<n>"; the script opens (and scrolls to) the
# passage in the sources panel instead of navigating. ?theme=dark|light sets the colours.
JS = (_STATIC / "chat.js").read_text("utf-8")


def ui_error(key: str, lang: str, **values: object) -> gr.Error:
    """An error notice in the interface language, its heading too (Gradio's is "Error"; its
    6.x frontend ignores the title sent, so static/chat.js renames the heading as well)."""
    return gr.Error(t(key, lang, **values), title=t("error", lang))


def chat_error(exc: AssistantError, lang: str, max_chars: int) -> gr.Error:
    """An answering error for staff: in the interface language, without setting names or
    commands (the server log has the details)."""
    if isinstance(exc, QuestionError):
        empty = "empty" in str(exc)
        return ui_error("question_empty" if empty else "question_too_long", lang, n=max_chars)
    if isinstance(exc, EmptyIndexError):
        return ui_error("index_empty", lang)
    if isinstance(exc, BackendUnavailableError):
        return ui_error("backend_unavailable", lang)
    logger.warning("answering failed in the chat: %s", exc)
    return ui_error("answer_failed", lang)


# The Blocks --------------------------------------------------------------------------------
def create_chat(
    assistant: Assistant,
    settings: Settings,
    embed: bool,
    *,
    auth: TokenAuth | None = None,
    limiter: RateLimiter | None = None,
    feedback: FeedbackStore | None = None,
    library: Library | None = None,
    conversations: ConversationStore | None = None,
) -> gr.Blocks:
    """The chat UI; embed=True is the compact view for iframes (no header, no conversation
    list, one column)."""
    auth = auth or TokenAuth(settings.api_tokens)
    limiter = limiter or RateLimiter(settings.rate_limit_per_minute)
    store = feedback or FeedbackStore.for_settings(settings)
    library = library or Library(assistant, settings)
    chats = conversations or ConversationStore.for_settings(settings)
    # Ratings have a bucket of their own, so that rating answers never costs questions.
    feedback_limiter = RateLimiter(settings.rate_limit_per_minute)
    initial = choose_language(settings.ui_language)

    def caller_of(request: gr.Request) -> Caller:
        # With auth off each browser is its own caller (its cookie; see auth.browser_caller).
        try:
            cookies = dict(request.cookies)
        except AttributeError:  # a request made without a browser behind it
            cookies = {}
        caller = auth.caller_for_chat(request.username, cookies, request.session_hash)
        if caller is None:  # Gradio's auth_dependency normally stops this earlier
            raise ui_error("not_signed_in", initial)
        return caller

    def header(lang: str) -> str:
        e = html.escape
        return f"<h1>{e(t('title', lang))}</h1><p>{e(t('subtitle', lang))}</p>"

    def conversation_choices(caller: Caller, selected: str | None, **extra: Any) -> Any:
        choices = [(c.title, c.id) for c in chats.list(caller.id)]
        return gr.update(choices=choices, value=selected, **extra)

    def document_choices(
        caller: Caller, lang: str, selected: list[str] | None = None, **extra: Any
    ) -> tuple[Any, str]:
        """The filter's choices and the library list for the caller."""
        documents = library.documents(caller)
        ids = {d.id for d in documents}
        choices = gr.update(
            choices=[(d.label(), d.id) for d in documents],
            value=[i for i in selected or [] if i in ids],
            **extra,
        )
        return choices, library_html(documents, lang)

    def panels(turns: Turns, lang: str, request: gr.Request) -> tuple[Any, ...]:
        """chatbot, sources, retrieved, notice for a conversation's exchanges (links to the
        originals under the app's root, whatever prefix it is served under)."""
        return (
            chat_messages(turns, lang),
            sources_html(turns, lang, app_root(request)),
            retrieved_html(turns, lang),
            notice_html(turns, lang),
        )

    # Uploaded files left in Gradio's cache (an upload is copied into the library at once)
    # are deleted after an hour, checked every hour.
    cache = (UPLOAD_CACHE_SECONDS, UPLOAD_CACHE_SECONDS)
    with gr.Blocks(title=t("title", initial), analytics_enabled=False, delete_cache=cache) as demo:
        lang_state = gr.State(initial)
        turns_state = gr.State([])
        # The open conversation, for API clients that do not send the page's copy back.
        conv_state = gr.State("")
        # The embed view has no visible header, but a page needs its h1 (for screen readers).
        title = gr.HTML(
            header(initial) if not embed else f"<h1>{html.escape(t('title', initial))}</h1>",
            elem_id="chat-header" if not embed else "embed-title",
        )
        # The interface language and the strings the page's script shows (static/chat.js).
        texts_box = gr.Textbox(json.dumps(client_texts(initial)), visible=False)
        with gr.Column() if embed else gr.Row(equal_height=False):
            with gr.Column(
                scale=1, min_width=200, visible=not embed, elem_id="conversations-panel"
            ):
                new_chat = gr.Button(t("new_chat", initial), elem_id="new-chat")
                conv_list = gr.Radio(
                    [], label=t("conversations", initial), elem_id="conversation-list"
                )
                rename_box = gr.Textbox(
                    label=t("rename_label", initial), elem_id="rename", max_lines=1
                )
                with gr.Row():
                    rename_btn = gr.Button(t("rename", initial), size="sm", elem_id="rename-btn")
                    delete_conv = gr.Button(
                        t("delete_conversation", initial), size="sm", elem_id="delete-conversation"
                    )
            with gr.Column(scale=3, min_width=320):
                # Kept in the page (not in server State) so the address bar can carry it.
                conv_id = gr.Textbox("", visible=False, elem_id="conversation-id")
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
                fb = feedback_panel(
                    chatbot=chatbot,
                    turns_state=turns_state,
                    lang_state=lang_state,
                    store=store,
                    limiter=feedback_limiter,
                    caller_of=caller_of,
                    ui_error=ui_error,
                    initial=initial,
                )
                feedback_box, fb_rating = fb.box, fb.rating
                notice = gr.HTML("", elem_id="refusal-notice")
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        label=t("question_label", initial),
                        placeholder=t("question_placeholder", initial),
                        elem_id="question",
                        scale=5,
                        max_lines=6,
                        max_length=settings.max_question_chars,
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
            with gr.Column(scale=2, min_width=280):
                sources = gr.HTML(sources_html([], initial), elem_id="sources")
                with gr.Accordion(t("retrieved", initial), open=False) as retrieved_box:
                    retrieved = gr.HTML(retrieved_html([], initial), elem_id="retrieved")
                with gr.Accordion(
                    t("documents", initial), open=not embed, elem_id="documents"
                ) as documents_box:
                    library_list = gr.HTML("", elem_id="library-list")
                    # Any id is accepted (the caller's groups still bound what is retrieved),
                    # so API clients need not load the page's choices first.
                    doc_filter = gr.Dropdown(
                        [],
                        value=[],
                        multiselect=True,
                        allow_custom_value=True,
                        label=t("ask_within", initial),
                        elem_id="doc-filter",
                    )
                    # Rendered below the admin controls, which write to it.
                    library_status = gr.HTML("", elem_id="library-status", render=False)
                    admin = library_admin(
                        library=library,
                        admin_group=settings.admin_group,
                        doc_filter=doc_filter,
                        library_list=library_list,
                        library_status=library_status,
                        lang_state=lang_state,
                        document_choices=document_choices,
                        caller_of=caller_of,
                        ui_error=ui_error,
                        initial=initial,
                    )
                    admin_box = admin.box
                    library_status.render()

        # Texts that follow the page's language: (component, {property: string key}).
        localised: list[tuple[Any, dict[str, str]]] = [
            (chatbot, {"label": "chat_label", **({"placeholder": "subtitle"} if embed else {})}),
            (question, {"label": "question_label", "placeholder": "question_placeholder"}),
            (send, {"value": "send"}),
            (retrieved_box, {"label": "retrieved"}),
            *fb.localised,
            (new_chat, {"value": "new_chat"}),
            (rename_box, {"label": "rename_label"}),
            (rename_btn, {"value": "rename"}),
            (delete_conv, {"value": "delete_conversation"}),
            (documents_box, {"label": "documents"}),
            *admin.localised,
        ]
        conversation_outputs = [
            chatbot,
            sources,
            retrieved,
            notice,
            turns_state,
            conv_id,
            conv_state,
        ]
        # Keeps ?c=<conversation> in the address bar, so a reload reopens the conversation.
        remember = "(c) => { const u = new URL(window.location.href); if (c) "
        remember += "u.searchParams.set('c', c); else u.searchParams.delete('c'); "
        remember += "window.history.replaceState(null, '', u); }"

        def language_of(request: gr.Request) -> tuple[str, str]:
            """The page's interface language and the strings its script shows."""
            lang = choose_language(
                settings.ui_language,
                requested=request.query_params.get("lang"),
                accept_language=request.headers.get("accept-language"),
            )
            return lang, json.dumps(client_texts(lang))

        def on_load(lang: str, request: gr.Request) -> dict[Any, Any]:
            caller = caller_of(request)
            texts: dict[Any, dict[str, Any]] = {
                component: {prop: t(key, lang) for prop, key in keys.items()}
                for component, keys in localised
            }
            # ?c=<id> reopens a conversation of this caller (a reload keeps the chat).
            opened = chats.get(caller.id, request.query_params.get("c") or "")
            turns = opened.exchanges if opened else []
            current = opened.id if opened else ""
            values = (*panels(turns, lang, request), turns, current, current)
            updates = {
                c: gr.update(**texts.get(c, {}), value=v)
                for c, v in zip(conversation_outputs[:4], values, strict=False)
            }
            return {
                **{component: gr.update(**props) for component, props in texts.items()},
                **dict(zip(conversation_outputs, values, strict=True)),
                **updates,
                title: header(lang) if not embed else f"<h1>{html.escape(t('title', lang))}</h1>",
                examples_title: f"**{t('examples', lang)}**",
                fb_rating: gr.update(label=t("feedback_rating", lang), choices=ratings(lang)),
                conv_list: conversation_choices(
                    caller, opened.id if opened else None, label=t("conversations", lang)
                ),
                **dict(
                    zip(
                        (doc_filter, library_list),
                        document_choices(caller, lang, label=t("ask_within", lang)),
                        strict=True,
                    )
                ),
                admin_box: gr.update(visible=caller.is_admin(settings.admin_group)),
            }

        fixed = [title, examples_title, fb_rating, conv_list, admin_box, doc_filter, library_list]
        # Gradio words its own controls (Clear, Like, the drop zone) once, when they render, in
        # its locale of that moment: the page switches that locale (static/chat.js, awaited)
        # before the chat and the library are filled in.
        demo.load(language_of, outputs=[lang_state, texts_box], api_visibility="private").then(
            None,
            inputs=[texts_box],
            js="async (s) => { window.__assistantTexts = s; "
            "if (window.assistantApply) await window.assistantApply(); }",
        ).then(
            on_load,
            inputs=[lang_state],
            outputs=fixed + conversation_outputs + [c for c, _ in localised],
            api_visibility="private",
        )

        def answer_turn(
            text: str,
            turns: Turns,
            lang: str,
            doc_ids: list[str] | None,
            caller: Caller,
            client: str | None,
        ) -> Iterator[tuple[Any, Answer | None]]:
            """Streams one answer: yields (partial chatbot messages, None), then (final
            messages, the Answer)."""
            if limiter.hit(rate_key(caller, client)) is not None:
                raise ui_error("rate_limited", lang)
            if has_lone_surrogate(text):
                raise ui_error("invalid_text", lang)
            try:
                text = assistant.validate_question(text)
            except AssistantError as exc:
                raise chat_error(exc, lang, settings.max_question_chars) from exc
            history = cap_history(exchanges_to_history(turns), settings)
            messages = [*chat_messages(turns, lang), {"role": "user", "content": escape_md(text)}]
            yield [*messages, {"role": "assistant", "content": "…"}], None
            filters = caller.filters(tuple(doc_ids or ()))
            draft = ""
            try:
                for item in assistant.stream(text, history, filters=filters):
                    if isinstance(item, Answer):
                        yield messages, item
                        return
                    draft += item
                    yield (
                        [*messages, {"role": "assistant", "content": escape_md(draft) + " ▍"}],
                        None,
                    )
            except AssistantError as exc:
                raise chat_error(exc, lang, settings.max_question_chars) from exc
            raise ui_error("answer_failed", lang)

        def responder(again: bool) -> Callable[..., Iterator[tuple[Any, ...]]]:
            """The handler of Send (again=False) and of the chatbot's retry button
            (again=True: the last question answered anew, in place of its old answer)."""

            def respond(
                text: str,
                turns: Turns,
                lang: str,
                current: str | None,
                doc_ids: list[str] | None,
                kept: str,
                request: gr.Request,
            ) -> Iterator[tuple[Any, ...]]:
                """A question answered into the open conversation (a new one when none is
                open)."""
                caller = caller_of(request)
                client = request.client.host if request.client else None
                skip = gr.skip()
                current = current or kept
                if again:
                    if not turns:
                        return
                    text, turns = turns[-1]["question"], turns[:-1]
                for messages, answer in answer_turn(text, turns, lang, doc_ids, caller, client):
                    if answer is None:
                        yield messages, skip, skip, "", skip, skip, skip, skip, skip
                        continue
                    owned = current and chats.get(caller.id, current)
                    conversation = current if owned else None
                    if again and conversation:
                        chats.replace_last(caller.id, conversation, answer)
                    else:
                        conversation = conversation or chats.create(caller.id, answer.question)
                        chats.append(caller.id, conversation, answer.question, answer)
                    turns = [*turns, {"question": answer.question, "answer": answer.model_dump()}]
                    yield (
                        *panels(turns, lang, request),
                        turns,
                        "",
                        conversation,
                        conversation,
                        conversation_choices(caller, conversation),
                    )

            return respond

        answering: dict[str, Any] = {
            "inputs": [question, turns_state, lang_state, conv_id, doc_filter, conv_state],
            "outputs": [
                *[chatbot, sources, retrieved, notice, turns_state, question],
                *[conv_id, conv_state, conv_list],
            ],
            "show_progress": "minimal",
        }
        gr.on([send.click, question.submit], responder(False), api_name="ask", **answering).then(
            None, inputs=[conv_id], js=remember
        )
        # The chatbot's retry button.
        chatbot.retry(responder(True), api_name="regenerate", **answering).then(
            None, inputs=[conv_id], js=remember
        )

        def open_conversation(
            selected: str | None, lang: str, request: gr.Request
        ) -> tuple[Any, ...]:
            found = chats.get(caller_of(request).id, selected or "")
            turns = found.exchanges if found else []
            current = found.id if found else ""
            return (
                *panels(turns, lang, request),
                turns,
                current,
                current,
                gr.update(visible=False),
            )

        conv_list.input(
            open_conversation,
            inputs=[conv_list, lang_state],
            outputs=[*conversation_outputs, feedback_box],
            api_visibility="private",
        ).then(None, inputs=[conv_id], js=remember)

        def reset(lang: str, request: gr.Request) -> tuple[Any, ...]:
            caller = caller_of(request)
            return (
                *panels([], lang, request),
                [],
                "",
                "",
                gr.update(visible=False),
                conversation_choices(caller, None),
            )

        for trigger in (new_chat.click, chatbot.clear):  # the trash icon too: a new chat
            trigger(
                reset,
                inputs=[lang_state],
                outputs=[*conversation_outputs, feedback_box, conv_list],
                api_visibility="private",
            ).then(None, inputs=[conv_id], js=remember)

        def rename(current: str | None, name: str, request: gr.Request) -> tuple[Any, ...]:
            caller = caller_of(request)
            if current and name.strip():
                chats.rename(caller.id, current, name)
            return conversation_choices(caller, current or None), ""

        rename_btn.click(
            rename,
            inputs=[conv_state, rename_box],
            outputs=[conv_list, rename_box],
            api_visibility="private",
        )

        def delete_conversation(
            current: str | None, lang: str, request: gr.Request
        ) -> tuple[Any, ...]:
            if current:
                chats.delete(caller_of(request).id, current)
            return reset(lang, request)

        delete_conv.click(
            delete_conversation,
            inputs=[conv_state, lang_state],
            outputs=[*conversation_outputs, feedback_box, conv_list],
            api_visibility="private",
        ).then(None, inputs=[conv_id], js=remember)

    demo.queue(default_concurrency_limit=settings.concurrency, max_size=settings.queue_size)
    return demo
