"""Language detection with lingua, restricted to languages an organisation's documents are
likely to be in: fewer candidates make it faster and more accurate on short questions."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

_CODES = {
    "SWEDISH": "sv",
    "FINNISH": "fi",
    "ENGLISH": "en",
    "GERMAN": "de",
    "FRENCH": "fr",
    "SPANISH": "es",
    "DANISH": "da",
    "BOKMAL": "nb",
    "NYNORSK": "nn",
    "DUTCH": "nl",
    "ESTONIAN": "et",
    "RUSSIAN": "ru",
    "ITALIAN": "it",
    "PORTUGUESE": "pt",
    "POLISH": "pl",
}


def question_languages() -> tuple[str, ...]:
    """The languages answers can be given in: those with a profile in assistant/text."""
    from assistant.text import known_languages

    return known_languages()


@cache
def _detector(codes: tuple[str, ...]) -> Any:
    from lingua import Language, LanguageDetectorBuilder

    wanted = [getattr(Language, name) for name, code in _CODES.items() if code in codes]
    return LanguageDetectorBuilder.from_languages(*wanted).build()


def detect_language(text: str, candidates: tuple[str, ...] | None = None) -> str:
    """ISO 639-1 code of the text's language, or "und" when it cannot be told."""
    sample = text[:4000].strip()
    if not sample:
        return "und"
    codes = candidates or tuple(_CODES.values())
    language = _detector(codes).detect_language_of(sample)
    if language is None:
        return "und"
    return _CODES.get(language.name, "und")


def detect_question_language(question: str) -> str:
    """The question's language among those with a profile; English when unsure."""
    from assistant.text import profiles

    candidates = question_languages()
    words = [w for w in (re.sub(r"\W", "", t.lower()) for t in question.split()) if w]
    if not words:
        return "en"
    # A question word at the start decides: names and quoted terms from a document in another
    # language ("Vad säger rapporten om Lahden Tilakeskus?") must not outvote it.
    opening = [code for code, p in profiles().items() if words[0] in p.question_words]
    if len(opening) == 1:
        return opening[0]
    if len(words) <= 3 or opening:
        scores = {code: p.marker_count(words) for code, p in profiles().items()}
        if opening:
            scores = {code: scores[code] for code in opening}
        best = max(scores.values())
        leaders = [code for code, score in scores.items() if score == best]
        if best > 0 and len(leaders) == 1:
            return leaders[0]
        if opening and len(words) <= 3:
            candidates = tuple(opening)
    detected = detect_language(question, candidates)
    return detected if detected in candidates else "en"
