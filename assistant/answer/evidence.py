"""What a question asks for, in terms that can be checked against a passage: content words
(stemmed), numbers and names. The extractive backend and the citation checker share it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from assistant.store.lexical import tokenize

# Function words and question words of the three answer languages; they say nothing about
# whether a passage holds the answer.
_STOPWORDS = frozenset(
    """
    a an the of in on at to for from by with and or not no is are was were be been being do
    does did what which who whom whose when where why how much many this that these those
    it its as about into than then there their they them he she we you i me my our your can
    could should would will shall may might has have had any some all per according tell
    please list name describe explain give och eller i på av till för från med om att en
    ett den det de där som vad vilken vilket vilka hur när varför vem vems är var varit
    vara blir blev har hade ska skall kan kunde inte sig sin sina sitt man mycket många
    enligt finns fanns dokumentet strategin rapporten beskriv förklara berätta nämn ja tai
    sekä on ovat oli olivat ei se ne tämä tuo nämä mikä mitä mitkä missä mistä mihin millä
    minkä kuinka paljonko montako milloin miksi kuka ketkä kenen onko miten millainen kerro
    selitä mukaan raportin raportissa raportti asiakirjan vuonna
    """.split()
)
_NUMBER = re.compile(r"\d+(?:[ .,:–-]\d+)*")
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b([A-ZÅÄÖ][\w-]{2,}|[A-ZÅÄÖ]{2,})")


def normalise_number(text: str) -> str:
    """'1 000' == '1000', '2,2' == '2.2', '2015–1096' == '2015-1096'."""
    return re.sub(r"(?<=\d)[ ](?=\d{3}\b)", "", text).replace(",", ".").replace("–", "-")


def numbers(text: str) -> set[str]:
    return {normalise_number(match.group(0)) for match in _NUMBER.finditer(text)}


def content_terms(text: str, languages: Iterable[str]) -> set[str]:
    words = [w for w in re.findall(r"\w+", text.lower()) if w not in _STOPWORDS and len(w) > 1]
    return set(tokenize(" ".join(words), languages)) | {
        w[:_PREFIX] for w in words if len(w) > _PREFIX
    }


# Finnish consonant gradation defeats Snowball ("liikevaihto" / "liikevaihdon" stem apart);
# a 6-letter prefix, the classic truncation stemmer for Finnish, still matches them.
_PREFIX = 6


def word_variants(text: str, languages: Iterable[str]) -> list[frozenset[str]]:
    """One set per content word: the word, its stems and its prefix."""
    languages = list(languages)
    words = [w for w in re.findall(r"\w+", text.lower()) if w not in _STOPWORDS and len(w) > 1]
    return [frozenset(content_terms(word, languages)) for word in dict.fromkeys(words)]


def names(text: str) -> set[str]:
    """Capitalised words and acronyms that are not sentence-initial: likely proper names."""
    return {
        m.group(1) for m in _NAME.finditer(text.strip()) if m.group(1).lower() not in _STOPWORDS
    }


def name_found(name: str, text_lower: str) -> bool:
    """Finnish and Swedish inflect names (Lahti -> Lahden, Stockholm -> Stockholms): match a
    stem of the name rather than the whole word."""
    stem = name.lower()[: max(4, len(name) - 2)] if len(name) > 4 else name.lower()
    return stem in text_lower


@dataclass(frozen=True)
class QuestionFacts:
    terms: frozenset[str]
    words: tuple[frozenset[str], ...]
    numbers: frozenset[str]
    names: frozenset[str]

    @classmethod
    def of(cls, question: str, languages: Iterable[str]) -> QuestionFacts:
        languages = list(languages)
        return cls(
            terms=frozenset(content_terms(question, languages)),
            words=tuple(word_variants(question, languages)),
            numbers=frozenset(numbers(question)),
            names=frozenset(names(question)),
        )

    def coverage(self, text: str, languages: Iterable[str]) -> float:
        """Share of the question's content words found (in any variant) in the text."""
        if not self.words:
            return 0.0
        found = content_terms(text, languages)
        return sum(1 for variants in self.words if variants & found) / len(self.words)

    def missing_specifics(self, text: str) -> list[str]:
        """Numbers of the question (years, amounts, codes) that the text does not contain."""
        lower = text.lower()
        text_numbers = numbers(text)
        missing = [n for n in self.numbers if n not in text_numbers and n not in lower]
        # Names are not checked here: they inflect and translate ("Lahti" is "Lahden" in the
        # report and "Tukholma" in a Finnish question), so a missing name is weak evidence.
        return missing


# What kind of answer a question asks for, from its question words. A sentence that cannot
# hold that kind of answer (no number for "how many", no date for "when") cannot answer it,
# however similar it is: the commonest way an unanswerable question slips through.
_ANSWER_TYPES = {
    "number": re.compile(
        r"\b(how (many|much)|hur (många|mycket|stor[at]?)|paljonko|kuinka (paljon|monta|suuri)"
        r"|montako|what (share|percentage|proportion)|hur stor andel|mikä osuus)\b",
        re.I,
    ),
    "date": re.compile(
        r"\b(when|what date|which date|när|vilket datum|vilken dag|milloin|minä päivänä"
        r"|mihin mennessä)\b",
        re.I,
    ),
    "person": re.compile(r"^\s*(who|vem|kuka|kenen)\b", re.I),
}
_DATE = re.compile(
    r"\b\d{1,2}\.\d{1,2}\.(\d{2,4})?|\b(19|20)\d{2}\b|\b\d{1,2}/\d{4}\b|"
    r"\b(januari|februari|mars|april|maj|juni|juli|augusti|september|oktober|november|december"
    r"|tammikuu|helmikuu|maaliskuu|huhtikuu|toukokuu|kesäkuu|heinäkuu|elokuu|syyskuu|lokakuu"
    r"|marraskuu|joulukuu|january|february|march|may|june|july|august|october)\w*",
    re.I,
)
_PERSON = re.compile(r"(?<!^)\b[A-ZÅÄÖ][a-zåäöé]+ (?:[A-ZÅÄÖ]\.\s)?[A-ZÅÄÖ][a-zåäöé]+\b")


def expected_answer_type(question: str) -> str | None:
    for kind, pattern in _ANSWER_TYPES.items():
        if pattern.search(question):
            return kind
    return None


def can_answer_type(sentence: str, kind: str | None) -> bool:
    if kind == "number":
        return any(ch.isdigit() for ch in sentence)
    if kind == "date":
        return _DATE.search(sentence) is not None
    if kind == "person":
        return _PERSON.search(sentence.strip()) is not None
    return True


# "What is X, and what Y?" / "Vad är X och vilka Y?" / "Mitä X ja mikä Y?": a conjunction
# followed by a question word (or ", and") starts a second question.
_SECOND_PART = re.compile(
    r",?\s+(?:and|och|samt|ja|sekä)\s+(?=(?:what|which|how|why|when|who|where|vad|vilk\w*|hur|"
    r"varför|när|vem|mi\w*|kuinka|paljonko|miksi|milloin|kuka|mitä)\b)|,\s+(?:and|och|ja)\s+",
    re.I,
)


def split_question(question: str) -> list[str]:
    """The question and, for a two-part question, its two parts (each of 3+ words)."""
    match = _SECOND_PART.search(question)
    if match is None:
        return [question]
    first, second = question[: match.start()].strip(), question[match.end() :].strip()
    if len(first.split()) < 3 or len(second.split()) < 3:
        return [question]
    return [first, second]
