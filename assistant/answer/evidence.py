"""What a question asks for, in terms that can be checked against a passage: content words
(stemmed), numbers and names. The extractive backend and the citation checker share it; the
language knowledge (stopwords, question words, answer-type cues) comes from assistant.text."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from assistant.ingest.cleaning import is_table_row
from assistant.store.lexical import tokenize
from assistant.text.profiles import (
    all_definition_cues,
    all_months,
    all_number_words,
    all_organisation_words,
    all_question_words,
    all_reason_cues,
    all_stopwords,
    amount_words_in,
    profile,
    profiles,
)

_NUMBER = re.compile(r"\d+(?:[ .,:–-]\d+)*")
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b([A-ZÅÄÖÜ][\w-]{2,}|[A-ZÅÄÖÜ]{2,})")
# Finnish consonant gradation defeats Snowball ("liikevaihto" / "liikevaihdon" stem apart);
# a 6-letter prefix, the classic truncation stemmer for Finnish, still matches them, and it
# does no harm to the other languages' compounds.
_PREFIX = 6


def normalise_number(text: str) -> str:
    """'1 000' == '1000', '2,2' == '2.2', '2015–1096' == '2015-1096'."""
    return re.sub(r"(?<=\d)[ ](?=\d{3}\b)", "", text).replace(",", ".").replace("–", "-")


def numbers(text: str) -> set[str]:
    return {normalise_number(match.group(0)) for match in _NUMBER.finditer(text)}


def _content_words(text: str) -> list[str]:
    stopwords = all_stopwords()
    return [w for w in re.findall(r"\w+", text.lower()) if w not in stopwords and len(w) > 1]


def content_terms(text: str, languages: Iterable[str]) -> set[str]:
    words = _content_words(text)
    return set(tokenize(" ".join(words), languages)) | {
        w[:_PREFIX] for w in words if len(w) > _PREFIX
    }


def word_variants(text: str, languages: Iterable[str]) -> list[frozenset[str]]:
    """One set per content word: the word, its stems and its prefix."""
    languages = list(languages)
    return [
        frozenset(content_terms(word, languages)) for word in dict.fromkeys(_content_words(text))
    ]


def names(text: str) -> set[str]:
    """Capitalised words and acronyms that are not sentence-initial: likely proper names. A
    month of a language that capitalises months is none ("And the March info session?" is
    answered by "Valtuustoinfo 5.3."); Swedish writes "mars", so "Mars" is the planet."""
    skipped = all_stopwords() | _capitalised_months()
    return {m.group(1) for m in _NAME.finditer(text.strip()) if m.group(1).lower() not in skipped}


@cache
def _capitalised_months() -> frozenset[str]:
    return frozenset(
        month for p in profiles().values() if not p.capitals_mark_names for month in p.months
    )


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

    def coverage(
        self, text: str, languages: Iterable[str], weights: Sequence[float] | None = None
    ) -> float:
        """Share of the question's content words found (in any variant) in the text, each
        word weighted (by rarity among the candidates, see `rarity_weights`) when given."""
        return self.coverage_of_terms(content_terms(text, languages), weights)

    def coverage_of_terms(self, found: set[str], weights: Sequence[float] | None = None) -> float:
        if not self.words:
            return 0.0
        weights = weights or [1.0] * len(self.words)
        total = sum(weights)
        hit = sum(w for variants, w in zip(self.words, weights, strict=True) if variants & found)
        return hit / total if total else 0.0

    def rarity_weights(self, candidate_terms: Sequence[set[str]]) -> list[float]:
        """IDF of each question word over the candidate sentences: a word every candidate
        shares ("Lahden", "strategi") says little about which one answers; a rare one
        ("rahoitustuottojen") says much."""
        n = len(candidate_terms)
        weights = []
        for variants in self.words:
            df = sum(1 for terms in candidate_terms if variants & terms)
            weights.append(math.log((n + 1) / (df + 0.5)))
        return [max(0.1, w) for w in weights]

    def missing_specifics(self, text: str) -> list[str]:
        """Numbers of the question (years, amounts, codes) that the text does not contain."""
        lower = text.lower()
        text_numbers = numbers(text)
        return [n for n in self.numbers if n not in text_numbers and n not in lower]

    def names_found(self, text: str) -> float:
        """Share of the question's names found in the text (1.0 when it names none). Names
        inflect and translate ("Lahti" / "Lahden" / "Tukholma"), so this is a signal for the
        answerability score, never a hard rule."""
        if not self.names:
            return 1.0
        lower = text.lower()
        return sum(1 for name in self.names if name_found(name, lower)) / len(self.names)


# The prefixes of the last vocabulary asked about, beside that vocabulary (compared by
# identity: the lexical index hands out the same frozenset until it is rebuilt).
_PREFIXES: list[tuple[frozenset[str], frozenset[str]]] = []


def _vocabulary_prefixes(vocabulary: frozenset[str]) -> frozenset[str]:
    if _PREFIXES and _PREFIXES[0][0] is vocabulary:
        return _PREFIXES[0][1]
    found = frozenset(w[:_PREFIX] for w in vocabulary if len(w) > _PREFIX)
    _PREFIXES[:] = [(vocabulary, found)]
    return found


def unknown_share(question: str, languages: Iterable[str], vocabulary: frozenset[str]) -> float:
    """Share of the question's content words that occur nowhere in the indexed documents (in
    any stemmed or truncated form). A question about "anställda" or "Tampere" in a corpus
    that never mentions them is very likely not answered by it; only meaningful when the
    question and the evidence share a language."""
    if not vocabulary:
        return 0.0
    languages = list(languages)
    words = _content_words(question)
    if not words:
        return 0.0
    unknown = sum(1 for word in words if not known_word(word, languages, vocabulary))
    return unknown / len(words)


def known_word(word: str, languages: Iterable[str], vocabulary: frozenset[str]) -> bool:
    """Whether the documents use the word in some stemmed or truncated form."""
    if set(tokenize(word, list(languages))) & vocabulary:
        return True
    lower = word.lower()
    return len(lower) > _PREFIX and lower[:_PREFIX] in _vocabulary_prefixes(vocabulary)


def has_question_word(question: str) -> bool:
    """Whether the turn has a question word of any language ("vem", "milloin", "why")."""
    return any(w in all_question_words() for w in re.findall(r"\w+", question.lower()))


def expected_answer_type(question: str, language: str | None = None) -> str | None:
    """number, date, person or overview, from the cues of the question's language profile (or
    of any profile). A sentence that cannot hold that kind of answer (no number for "how
    many", no date for "when") cannot answer it, however similar it is: the commonest way an
    unanswerable question slips through."""
    own = profile(language) if language else None
    if own is not None:
        found = own.answer_type(question)
        if found is not None:
            return found
    for other in profiles().values():
        found = other.answer_type(question)
        if found is not None:
            return found
    return None


_SECTION_NUMBER = re.compile(r"^\s*\d{1,2}(?:\.\d{1,2})+\.?\s")
_PAGE_COUNTER = re.compile(r"\b\d{1,2}/\d{1,2}\s*$")
_DATE_NUMBERS = re.compile(
    r"\b\d{1,2}\.\d{1,2}\.(\d{2,4})?|\b(19|20)\d{2}\b|\b\d{1,2}/\d{4}\b|\b\d{4}-\d{2}-\d{2}\b"
)
_PERSON = re.compile(r"(?<!^)\b[A-ZÅÄÖÜ][a-zåäöüé]+ (?:[A-ZÅÄÖÜ]\.\s)?[A-ZÅÄÖÜ][a-zåäöüé]+\b")


# A case or reference number: "LS 2015–1096", "Dnr 123/2024", "VN/1234/2025".
_REFERENCE = re.compile(
    r"\b[A-ZÅÄÖ]{1,6}\s?\d{1,5}\s?[–\-/:]\s?\d{1,6}\b|\b[A-ZÅÄÖ]{1,6}/\d{1,6}/\d{2,4}\b"
    r"|\b(?:dnr|dnro|diarienr|az)\.?:?\s*\S*\d",
    re.IGNORECASE,
)
_ABBREVIATION = re.compile(r"\b[A-ZÅÄÖ]{2,}[\w-]*")


def defines(sentence: str, question: str) -> bool:
    """Whether the sentence defines something: a defining word of any language ("Med klinisk
    forskning avses ...", "tarkoitetaan", "refers to"), or an abbreviation of the question
    spelled out before it in parentheses ("... universitetssjukvårdsenheter (USV-enheter)")."""
    lower = " " + " ".join(re.findall(r"[\w.]+", sentence.lower())) + " "
    if any(f" {cue} " in lower for cue in all_definition_cues()):
        return True
    return any(
        re.search(r"\(\s*" + re.escape(abbreviation.split("-")[0]), sentence)
        for abbreviation in _ABBREVIATION.findall(question)
    )


_CAPITALISED = re.compile(r"\b[A-ZÅÄÖÜ][\w&-]+")


def _names_other_body(sentence: str, question: str) -> bool:
    """Whether the sentence names a company or body the question does not: a capitalised
    word that does not open the sentence ("... valitsimme luovaksi toimistoksi Reaktor
    Creativen"). "Which company delivered Jämerä?" is not answered by a sentence that names
    only Jämerä."""
    asked = {w.lower()[:4] for w in re.findall(r"\w+", question) if len(w) > 2}
    body = re.sub(r"^[\s•\-–*·o]+", "", sentence)
    return any(
        match.start() > 0
        and not re.search(r"[.!?:]\s*$", body[: match.start()])
        and match.group(0).lower()[:4] not in asked
        for match in _CAPITALISED.finditer(body)
    )


# A case number holds a year ("LS 2015–1096") but dates nothing.
_CASE_NUMBER = re.compile(r"\b[A-ZÅÄÖ]{2,6}\s?\d{4}\s?[–-]\s?\d{1,6}\b")


def _has_date(sentence: str) -> bool:
    if _DATE_NUMBERS.search(_CASE_NUMBER.sub(" ", sentence)):
        return True
    lower = sentence.lower()
    return any(month in lower for month in all_months())


def _has_amount(sentence: str) -> bool:
    # "noin miljoonalla eurolla" is a sum of money without a digit.
    has_figure = any(ch.isdigit() for ch in sentence) or _has_number_word(sentence)
    return has_figure and bool(amount_words_in(sentence))


_PERCENT = re.compile(r"%|\b\w*(?:procent|prosent|percent|per cent|prozent)\w*", re.IGNORECASE)
_MONEY_FIGURE = re.compile(r"\d[\d\s.,]*\s*(?:[^\W\d_]+\.?\s*){0,1}(?:[€$£]|\w+\b)", re.UNICODE)


# Magnitudes among the amount and number words: "två miljoner individer" is a count, not
# money, and "miljoona" gives no share.
_MAGNITUDES = frozenset(
    "million millions billion thousand miljon miljoner miljard miljarder tusen miljoonaa "
    "miljoonan miljardia tuhatta tuhat mio millionen million milliarden tausend miljoona "
    "miljardi milliarde".split()
)


def _has_currency(text: str) -> bool:
    return bool(amount_words_in(text) - _MAGNITUDES)


def _without_money(sentence: str) -> str:
    """The sentence with each sum of money taken out ("0,3 milj. euroa", "5,6 M€")."""

    def drop(match: re.Match[str]) -> str:
        return " " if _has_currency(match.group(0)) else match.group(0)

    text = _MONEY_FIGURE.sub(drop, sentence)
    # A sum written with a word ("noin miljoonalla eurolla") counts no buildings either.
    words = list(re.finditer(r"[^\W\d_]+", text))
    for first, second in reversed(list(itertools.pairwise(words))):
        if (
            not text[first.end() : second.start()].strip()
            and any(first.group(0).lower().startswith(m) for m in _MAGNITUDES)
            and _has_currency(second.group(0))
        ):
            text = f"{text[: first.start()]} {text[second.end() :]}"
    return text


def gives_reason(sentence: str) -> bool:
    """Whether the sentence gives a reason with a causal word ("leudon talven vuoksi",
    "eftersom"). Only a preference among the candidates for "why": a reason may also be put
    as a purpose or a plain consequence, so its absence refuses nothing."""
    lower = " " + " ".join(re.findall(r"\w+", sentence.lower())) + " "
    return any(f" {cue} " in lower for cue in all_reason_cues())


def _has_number_word(sentence: str, *, magnitudes: bool = True) -> bool:
    """A number written as a word, alone or opening a compound ("kolmevuotinen"). Only number
    words of four letters or more open a compound, so that "sex" does not count in "sexuell".
    Without `magnitudes`, "miljoona" or "thousand" do not count (they give no share)."""
    number_words = all_number_words() if magnitudes else all_number_words() - _MAGNITUDES
    for word in re.findall(r"[^\W\d_]+", sentence.lower()):
        if word in number_words or any(
            len(n) >= 4 and len(word) > len(n) + 2 and word.startswith(n) for n in number_words
        ):
            return True
    return False


def _organisation_word(word: str) -> bool:
    """Whether a capitalised word names a body or place ("Region", "Tilakeskus"): a word of a
    profile's organisation_words, or (for words of five letters or more, so that a name like
    "Murat" is not taken for "rat") a compound ending in one."""
    lower = word.lower()
    return any(
        lower == cue or (len(cue) >= 5 and lower.endswith(cue)) for cue in all_organisation_words()
    )


def can_answer_type(sentence: str, kind: str | None, question: str = "", context: str = "") -> bool:
    """Whether the sentence can hold the kind of answer asked for. `context` is what a table
    row or key-figure tile is read with (its caption and headers, where the unit is)."""
    if kind in ("date", "reason") and context and is_table_row(sentence):
        # A row of figures does not say when or why anything happens: the year in its header
        # names a column ("När behandlades bokslutet?" is no question for an income statement).
        return False
    if kind in ("amount", "reference", "organisation"):
        sentence = f"{sentence} {context}".strip()
    if kind == "amount":
        return _has_amount(sentence)
    if kind == "reference":
        return bool(_REFERENCE.search(sentence))
    if kind == "percentage":
        # A rate or share is a per cent or a fraction ("två tredjedelar"); a sentence with
        # neither ("Kaupunginvaltuusto hyväksyi ...") does not give a turnout.
        return bool(_PERCENT.search(f"{sentence} {context}")) or _has_number_word(
            sentence, magnitudes=False
        )
    if kind == "count":
        # "How many employees" is not answered by a sum of money: not by a row of a table
        # in euros ("Henkilöstökulut -2 245 ..."), nor by the euros of a sentence.
        if context and _has_currency(context) and not _has_currency(question):
            return False
        # Nor is it answered by a per cent ("5 %:n vähentymä" counts no people).
        return can_answer_type(
            re.sub(r"\d[\d\s.,]*\s*%", " ", _without_money(sentence)), "number", question
        )
    if kind == "number":
        sentence = f"{sentence} {context}".strip()
        # "1/3" after a heading counts its pages, "5.1.1.5" numbers a section, and a date,
        # a year or a reference code ("12/2023", "10.4.2025", "LS 2017–1455") counts
        # nothing: none answers "how many".
        bare = _SECTION_NUMBER.sub("", _PAGE_COUNTER.sub("", sentence))
        bare = _DATE_NUMBERS.sub("", _REFERENCE.sub("", bare))
        # A name with a digit ("K2", "Q1", "5G") counts nothing either.
        bare = re.sub(r"\b[^\W\d_]+-?\d\w*|\b\d+[^\W\d_]{1,2}\d\w*", "", bare)
        if any(ch.isdigit() for ch in bare):
            return True
        return _has_number_word(sentence)
    if kind == "date":
        return _has_date(sentence)
    if kind == "organisation":
        return _names_other_body(sentence, question)
    if kind == "person":
        # A person's name is two capitalised words; a place or body the question itself names
        # ("Lahden Tilakeskus" for "Who is the mayor of Lahti?") is not one.
        asked = {w.lower()[:3] for w in re.findall(r"\w+", question) if len(w) > 2}
        return any(
            not ({w.lower()[:3] for w in match.group(0).split()} & asked)
            and not any(_organisation_word(w) for w in match.group(0).split())
            for match in _PERSON.finditer(sentence.strip())
        )
    return True


@cache
def _second_part_pattern() -> re.Pattern[str]:
    # "What is X, and what Y?" / "Vad är X och vilka Y?" / "Mitä X ja mikä Y?": a conjunction
    # followed by a question word (or ", and") starts a second question.
    question_words = sorted(all_question_words())
    words = "|".join(re.escape(w) for w in question_words if len(w) > 2)
    return re.compile(
        rf",?\s+(?:and|och|samt|ja|sekä|und)\s+(?=(?:{words})\b)|,\s+(?:and|och|ja|und)\s+",
        re.I,
    )


def split_question(question: str) -> list[str]:
    """The question and, for a two-part question, its two parts (each of 3+ words)."""
    match = _second_part_pattern().search(question)
    if match is None:
        return [question]
    first, second = question[: match.start()].strip(), question[match.end() :].strip()
    if len(first.split()) < 3 or len(second.split()) < 3:
        return [question]
    return [first, second]


_FIGURE_AND_NEXT = re.compile(r"\d[\d\s.,]*\s*(?:%|prosenttia|procent|percent)?\s+([^\W\d_][\w-]*)")


def counted_words(sentence: str) -> list[str]:
    """The word right after each figure of the sentence ("104 henkilötyövuotta" ->
    "henkilötyövuotta"): what that figure counts."""
    return [m.group(1) for m in _FIGURE_AND_NEXT.finditer(sentence)]


def counts_what_is_asked(
    sentence: str, question_terms: frozenset[str], question_concepts: set[str], languages: list[str]
) -> bool:
    """Whether a figure of the sentence counts what the question asks about: the word after
    it shares a stem with the question ("Montako henkilötyövuotta" / "104
    henkilötyövuotta") or names the same concept in another language ("person-years")."""
    from assistant.answer.tables import glossary_concepts

    for word in counted_words(sentence):
        if content_terms(word, languages) & question_terms:
            return True
        if question_concepts and glossary_concepts(word) & question_concepts:
            return True
    return False
