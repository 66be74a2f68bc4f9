"""What of a conversation reaches the answerer, in one place for the chat, the HTTP API, the
OpenAI-compatible route and stored conversations.

The question itself is limited (ASSISTANT_MAX_QUESTION_CHARS); without a cap here a client
could send any amount of text as "history" and have it embedded with every question. Only
the newest `max_history_turns` turns are passed, each cut to `max_history_chars`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from assistant.settings import Settings

Turn = dict[str, str]
_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(value: Any) -> bool:
    """True when a string anywhere in value holds a UTF-16 surrogate on its own (JSON can
    carry "\\ud800"; such text cannot be encoded, embedded or stored)."""
    if isinstance(value, str):
        return bool(_SURROGATE.search(value))
    if isinstance(value, Mapping):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_lone_surrogate(v) for v in value)
    return False


def cap_history(turns: Iterable[Mapping[str, Any]], settings: Settings) -> list[Turn]:
    """The newest max_history_turns non-empty turns, each at most max_history_chars long."""
    kept = [
        {"role": str(t.get("role", "user")), "content": str(t.get("content") or "")} for t in turns
    ]
    kept = [t for t in kept if t["content"]]
    limit = settings.max_history_turns
    kept = kept[-limit:] if limit else []
    chars = settings.max_history_chars
    return [{**t, "content": t["content"][:chars]} for t in kept]


def exchanges_to_history(exchanges: Sequence[Mapping[str, Any]]) -> list[Turn]:
    """Stored exchanges ({"question", "answer": Answer JSON}) as user/assistant turns."""
    history: list[Turn] = []
    for exchange in exchanges:
        history.append({"role": "user", "content": str(exchange["question"])})
        history.append({"role": "assistant", "content": str(exchange["answer"]["answer"])})
    return history
