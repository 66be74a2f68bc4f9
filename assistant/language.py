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
QUESTION_LANGUAGES = ("sv", "fi", "en")
# Question words settle very short questions where statistics alone are unreliable.
_MARKERS = {
    "sv": re.compile(r"\b(vad|vilk(en|et|a)|hur|när|varför|vem|finns|ska|och|är|för)\b", re.I),
    "fi": re.compile(
        r"\b(mikä|mitä|mit[kn]ä|kuinka|paljonko|milloin|miksi|kuka|onko|ja|on)\b"
        r"|\w+(ssa|ssä|sta|stä|lla|llä|ko|kö)\b",
        re.I,
    ),
    "en": re.compile(r"\b(what|which|how|when|why|who|does|is|the|of|and)\b", re.I),
}


_QUESTION_WORDS = {
    "sv": {
        "vad",
        "vilken",
        "vilket",
        "vilka",
        "hur",
        "när",
        "varför",
        "vem",
        "vems",
        "var",
        "finns",
        "ska",
        "kan",
        "har",
        "beskriv",
        "förklara",
        "berätta",
        "nämn",
    },
    "fi": {
        "mikä",
        "mitä",
        "mitkä",
        "millä",
        "missä",
        "mistä",
        "mihin",
        "minkä",
        "kuinka",
        "paljonko",
        "montako",
        "milloin",
        "miksi",
        "kuka",
        "ketkä",
        "keitä",
        "kenen",
        "onko",
        "miten",
        "millainen",
        "millaisia",
        "kerro",
        "selitä",
        "mille",
    },
    "en": {
        "what",
        "which",
        "how",
        "when",
        "why",
        "who",
        "whom",
        "whose",
        "where",
        "does",
        "do",
        "did",
        "is",
        "are",
        "was",
        "were",
        "can",
        "could",
        "should",
        "describe",
        "explain",
        "tell",
        "list",
        "name",
    },
}


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
    """sv, fi or en (the languages the assistant answers in); English when unsure."""
    # A question word at the start decides: names and quoted terms from a document in another
    # language ("Vad säger rapporten om Lahden Tilakeskus?") must not outvote it.
    first = re.sub(r"\W", "", question.split()[0].lower()) if question.split() else ""
    for code, words in _QUESTION_WORDS.items():
        if first in words:
            return code
    scores = {code: len(pattern.findall(question)) for code, pattern in _MARKERS.items()}
    if len(question.split()) <= 3 and max(scores.values()) > 0:
        return max(scores, key=lambda code: scores[code])
    detected = detect_language(question, QUESTION_LANGUAGES)
    return detected if detected in QUESTION_LANGUAGES else "en"
