"""The chat's feedback box: a thumb on an answer stores the rating at once and opens a box for
an optional comment, right below the rated answer (static/chat.js scrolls that answer to the
chat's lower edge; the box sits in the page's flow there, so it never covers the question).
Send stores the comment and only then says thanks; Cancel (or Escape) closes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from assistant.schema import Answer
from assistant.web.auth import Caller, RateLimiter, rate_key
from assistant.web.feedback import MAX_COMMENT_CHARS, FeedbackStore
from assistant.web.history import has_lone_surrogate
from assistant.web.i18n import t
from assistant.web.render import Turns


def ratings(lang: str) -> list[tuple[str, str]]:
    return [(t("rating_up", lang), "up"), (t("rating_down", lang), "down")]


@dataclass
class FeedbackPanel:
    box: gr.Column
    rating: gr.Radio
    # (component, {property: string key}) for the texts that follow the page's language.
    localised: list[tuple[Any, dict[str, str]]]


def feedback_panel(
    *,
    chatbot: gr.Chatbot,
    turns_state: gr.State,
    lang_state: gr.State,
    store: FeedbackStore,
    limiter: RateLimiter,
    caller_of: Callable[[gr.Request], Caller],
    ui_error: Callable[..., gr.Error],
    initial: str,
) -> FeedbackPanel:
    """Builds the box where it is called (inside the chat's Blocks) and wires its events."""
    with gr.Column(visible=False, elem_id="feedback") as box:
        title = gr.Markdown("", elem_id="feedback-title")
        turn = gr.Number(visible=False, precision=0)
        rating = gr.Radio(ratings(initial), label=t("feedback_rating", initial))
        comment = gr.Textbox(
            label=t("feedback_comment", initial), lines=2, max_length=MAX_COMMENT_CHARS
        )
        with gr.Row():
            send = gr.Button(t("feedback_send", initial), size="sm", elem_id="feedback-send")
            cancel = gr.Button(t("cancel", initial), size="sm", elem_id="feedback-cancel")
        status = gr.Markdown("", elem_id="feedback-status")

    def save(
        number: int,
        rating: str,
        comment: str | None,
        turns: Turns,
        lang: str,
        request: gr.Request,
    ) -> None:
        caller = caller_of(request)
        client = request.client.host if request.client else None
        if limiter.hit(rate_key(caller, client)) is not None:
            raise ui_error("rate_limited", lang)
        store.record(
            session=request.session_hash or "unknown",
            turn=number,
            caller=caller.id,
            rating="up" if rating == "up" else "down",
            answer=Answer.model_validate(turns[number - 1]["answer"]),
            comment=comment,
        )

    def on_like(turns: Turns, lang: str, like: gr.LikeData, request: gr.Request) -> tuple[Any, ...]:
        index = like.index[0] if isinstance(like.index, (list, tuple)) else like.index
        number = int(index) // 2 + 1
        if like.liked not in (True, False) or not 1 <= number <= len(turns):
            return (gr.skip(),) * 6
        chosen = "up" if like.liked else "down"
        save(number, chosen, None, turns, lang, request)
        heading = f"**{t('feedback_title', lang, n=number)}**"
        # The status is emptied: "thanks" is for a sent comment, not for opening the box.
        return gr.update(visible=True), heading, number, chosen, "", ""

    chatbot.like(
        on_like,
        inputs=[turns_state, lang_state],
        outputs=[box, title, turn, rating, comment, status],
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
        chosen = int(number or 0)
        if not 1 <= chosen <= len(turns) or rating not in ("up", "down"):
            raise ui_error("feedback_unknown", lang)
        if len(comment or "") > MAX_COMMENT_CHARS or has_lone_surrogate(comment):
            raise ui_error("feedback_too_long", lang, n=MAX_COMMENT_CHARS)
        save(chosen, rating, (comment or "").strip(), turns, lang, request)
        return t("feedback_thanks", lang)

    send.click(
        send_feedback,
        inputs=[turn, rating, comment, turns_state, lang_state],
        outputs=[status],
        api_name="feedback",
    )
    # Closing needs no server state: the rating is already stored.
    cancel.click(
        lambda: (gr.update(visible=False), ""),
        outputs=[box, status],
        api_visibility="private",
    ).then(None, js="() => window.assistantFeedbackClosed && window.assistantFeedbackClosed()")
    localised: list[tuple[Any, dict[str, str]]] = [
        (comment, {"label": "feedback_comment"}),
        (send, {"value": "feedback_send"}),
        (cancel, {"value": "cancel"}),
    ]
    return FeedbackPanel(box=box, rating=rating, localised=localised)
