"""Follow-up questions for backends that cannot rewrite them.

Only a turn that cannot stand alone borrows the previous topic: a fragment ("Och 2024?",
"Entä investoinnit?"), a turn that opens with a referring word or phrase ("What about its
budget?"), or a short question built around a pronoun ("When does it end?"). A short question
that names its own topic ("Milloin Jämerä-projekti päättyy?") is a new question. It borrows
only the previous user turn, truncated, so a long history can neither leak an old topic into
a new question nor make a question expensive to embed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.text.profiles import LanguageProfile, all_stopwords, profile, profiles

# What a follow-up may borrow of the previous user turn.
MAX_BORROWED_CHARS = 300
_FRAGMENT_WORDS = 3
_PRONOUN_QUESTION_WORDS = 5


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[\w'’-]+", text.lower()) if w]


def leans_on_previous(question: str, language: str) -> bool:
    """True when the question cannot stand alone."""
    words = _words(question)
    if not words:
        return True
    own = profile(language)
    candidates: list[LanguageProfile] = [own] if own else list(profiles().values())
    lower = " ".join(words)
    for p in candidates:
        if words[0] in p.referring_words:
            return True
        if any(lower.startswith(phrase + " ") or lower == phrase for phrase in p.referring_phrases):
            return True
    if len(words) <= _FRAGMENT_WORDS and not any(words[0] in p.question_words for p in candidates):
        return True
    # Only question words and function words ("Varför?", "Till när?", "And why?"): nothing
    # of its own to ask about.
    if not [w for w in words if w not in all_stopwords()]:
        return True
    if len(words) <= _PRONOUN_QUESTION_WORDS:
        return any(w in p.pronouns for p in candidates for w in words[1:])
    return any(w in p.anaphors for p in candidates for w in words[1:])


def previous_user_turn(history: Sequence[dict[str, str]]) -> str:
    for turn in reversed(history):
        if turn.get("role") == "user" and turn.get("content", "").strip():
            return str(turn["content"]).strip()[:MAX_BORROWED_CHARS]
    return ""


def standalone_question(question: str, language: str, history: Sequence[dict[str, str]]) -> str:
    """The question to search with: the previous user turn + this one for a follow-up."""
    previous = previous_user_turn(history)
    if previous and leans_on_previous(question, language):
        return f"{previous} {question}"
    return question
