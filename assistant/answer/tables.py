"""Reading one row of a table extracted from a PDF: its label, its cells and the column each
cell belongs to, so a table question is answered with the cell, its row label and column
header ("Liikevaihto, Ennuste 2025: 77 501 (1 000 euroa)") instead of a row of bare numbers.

PDF text loses the cell borders: "Liikevaihto 75 754 77 501 77 501 77 501 0" holds five
numbers written with space as the thousands separator. The row is split into exactly as many
numbers as the table has columns; a group of three digits can continue the number before it,
anything else starts a new one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from assistant.answer.evidence import content_terms, known_word, names, numbers
from assistant.ingest.cleaning import CELL
from assistant.text.profiles import profiles

_YEAR = re.compile(r"^(19|20)\d{2}$")
# Units written above financial tables ("1 000 euroa", "tkr", "Mkr", "milj. euroa").
_UNIT = re.compile(
    r"((?:1\s?000|1000|tuhatta|milj\.?|miljoonaa|tusen|miljoner)\s+)?"
    r"(euroa|eur|€|kronor|kr|sek|tkr|mkr|mnkr|msek|tsek|mn|tuhatta euroa)\b",
    re.I,
)


@dataclass(frozen=True)
class Row:
    label: str
    cells: tuple[str, ...]


@dataclass(frozen=True)
class Header:
    caption: str
    unit: str
    columns: tuple[str, ...]


def _segmentations(tokens: list[str], count: int) -> list[list[str]]:
    """Ways to join number tokens into exactly `count` numbers (a 3-digit token may continue
    the number before it; a signed token always starts one)."""
    results: list[list[str]] = []

    def walk(index: int, current: list[str]) -> None:
        if len(results) > 8 or len(current) > count:
            return
        if index == len(tokens):
            if len(current) == count:
                results.append(list(current))
            return
        token = tokens[index]
        can_continue = (
            current
            and re.fullmatch(r"\d{3}", token)
            and re.fullmatch(r"[-−–]?\d[\d ]*", current[-1])
        )
        if can_continue:
            current[-1] = f"{current[-1]} {token}"
            walk(index + 1, current)
            current[-1] = current[-1].rsplit(" ", 1)[0]
        current.append(token)
        walk(index + 1, current)
        current.pop()

    walk(0, [])
    return results


def split_row(text: str) -> tuple[str, list[str]]:
    """The row's label (leading words) and its number tokens."""
    words = text.split()
    first_number = next((i for i, w in enumerate(words) if CELL.match(w)), len(words))
    tail = words[first_number:]
    if not all(CELL.match(w) for w in tail):
        return text, []
    return " ".join(words[:first_number]), tail


def row_cells(text: str, columns: int | None) -> Row | None:
    label, tokens = split_row(text)
    if not tokens:
        return None
    if columns is None:
        # Without a column count, only an unambiguous split will do: no token continues.
        return Row(label, tuple(tokens))
    options = _segmentations(tokens, columns)
    if len(options) != 1:
        return None
    return Row(label, tuple(options[0]))


def parse_header(context: str) -> Header:
    """Caption, unit and column labels from the lines above a table (as stored with each row
    at ingest). Column labels end with a year ("TP 2024", "Ennuste 2025"); what follows the
    last year is the last column ("Poikkeama KS+LTA/ENN")."""
    unit_match = _UNIT.search(context)
    if unit_match:
        caption, unit, rest = (
            context[: unit_match.start()].strip(),
            unit_match.group(0).strip(),
            context[unit_match.end() :],
        )
    else:
        caption, unit, rest = "", "", context
    columns: list[str] = []
    current: list[str] = []
    for word in rest.split():
        current.append(word)
        if _YEAR.match(word):
            columns.append(" ".join(current))
            current = []
    if current:
        columns.append(" ".join(current))
    return Header(caption=caption, unit=unit, columns=tuple(columns))


@cache
def _concepts(kind: str = "table_terms") -> dict[str, frozenset[str]]:
    """Words that name the same concept in any language, merged over the profiles: column
    concepts (`table_terms`: forecast / prognos / ennuste) or domain concepts (`glossary`:
    turnover / omsättning / liikevaihto)."""
    merged: dict[str, set[str]] = {}
    for profile in profiles().values():
        for concept, words in getattr(profile, kind).items():
            merged.setdefault(concept, set()).update(words)
    return {concept: frozenset(words) for concept, words in merged.items()}


def concept_words(text: str) -> set[str]:
    """Every language's words for the column concepts named in a table header, so that a
    question asking for "prognosen" or "forecast" finds a row under "Ennuste 2025"."""
    concepts = _concepts()
    return {word for concept in _concepts_in(text) for word in concepts[concept]}


def glossary_words(text: str) -> set[str]:
    """Every language's words for the domain concepts the text names: a row labelled
    "Liiketoiminnan muut kulut" also reads as "other operating expenses" and "övriga
    rörelsekostnader", so a question in any of them finds it."""
    concepts = _concepts("glossary")
    return {word for concept in _concepts_in(text, "glossary") for word in concepts[concept]}


def lexicon_words(text: str, language: str) -> set[str]:
    """Every language's words for the general public-sector concepts the text names in its
    own language ("tarjouspyyntö" also reads as "tender" and "anbudsförfrågan"); for
    matching only. Only the text's language names them: "system" or "report" in a German
    manual is no English word."""
    concepts = _concepts("lexicon")
    return {word for concept in _lexicon_concepts(text, language) for word in concepts[concept]}


def translations(question: str, language: str) -> set[str]:
    """The words other languages use for the domain and public-sector concepts a question
    names ("bokslut" -> "tilinpäätös", "financial statements"; "stadsstyrelsen" ->
    "kaupunginhallitu"): what a word search in the documents' languages can look for."""
    words = glossary_words(question) | lexicon_words(question, language)
    own = profiles().get(language)
    if own is not None:
        for terms in [*own.lexicon.values(), *own.glossary.values()]:
            words -= terms
    return words


def unknown_names(question: str, language: str, vocabulary: frozenset[str]) -> list[str]:
    """The names of the question that no document uses in any form or language: "Hur står
    sig Region Stockholm jämfört med Västra Götalandsregionen?" is about a place the documents
    never mention, so no passage can answer it. Only where capitals mark names (English
    capitalises "the Market Court") or for places of the lexicon ("Tampere"); acronyms are
    left out, as documents spell them out ("KTH" is "Kungliga Tekniska högskolan")."""
    own = profiles().get(language)
    if own is None or not vocabulary:
        return []
    languages = list(profiles())
    unknown = []
    for name in sorted(names(question)):
        if name.isupper() or any(ch.isdigit() for ch in name):
            continue
        words = lexicon_words(name, language)
        if not (own.capitals_mark_names or words):
            continue
        if not any(known_word(w, languages, vocabulary) for w in [name, *words]):
            unknown.append(name)
    return unknown


def _lexicon_concepts(text: str, language: str) -> set[str]:
    own = profiles().get(language)
    if own is None or not own.lexicon:
        return set()
    lower = text.lower()
    words = set(re.findall(r"[\w+/.&-]+", lower))
    # A short term also names its concept at either end of a dash compound ("AI-teknologi").
    words |= {part for word in words if "-" in word for part in word.split("-")}
    return {
        concept
        for concept, terms in own.lexicon.items()
        if any((t in lower) if len(t) > 4 or " " in t else (t in words) for t in terms)
    }


def glossary_concepts(text: str, *, longest: bool = False) -> set[str]:
    """The domain concepts (glossary, any language) the text names."""
    return _concepts_in(text, "glossary", longest=longest)


def absent_concepts(question: str, evidence: str) -> set[str]:
    """The domain concepts the question asks about (glossary, any language) when the
    evidence names none of them; empty when it names one or the question names none. A
    question about tax revenue or staff numbers that retrieves only passages about something
    else is not answered by them, however similar they embed."""
    asked = _concepts_in(question, "glossary", longest=True)
    if not asked or asked & _concepts_in(evidence, "glossary"):
        return set()
    return asked


def _concepts_in(text: str, kind: str = "table_terms", *, longest: bool = False) -> set[str]:
    """Concepts the text names. With `longest`, a match inside a longer one does not count:
    a question about "other operating income" asks for other_operating_income, not also
    operating_income (a row label keeps every concept it names, so "LIIKE YLI-/ALIJÄÄMÄ" is
    both an operating result and a surplus)."""
    lower = text.lower()
    words = set(re.findall(r"[\w+/.&-]+", lower))
    # A short term is also a part of a compound with a dash ("FoU" in "FoU-strategin").
    words |= {part for word in words if "-" in word for part in word.split("-") if part}
    matches: list[tuple[int, int, str]] = []
    for concept, terms in _concepts(kind).items():
        for term in terms:
            if len(term) > 4 or " " in term:
                matches += [
                    (m.start(), m.end(), concept) for m in re.finditer(re.escape(term), lower)
                ]
            elif term in words:
                matches.append((-1, -1, concept))
    found = set()
    for start, end, concept in matches:
        inside_longer = (
            longest
            and start >= 0
            and any(
                s <= start and end <= e and (e - s) > (end - start) and c != concept
                for s, e, c in matches
            )
        )
        if not inside_longer:
            found.add(concept)
    return found


def row_match(question: str, label: str, languages: Iterable[str]) -> float:
    """How well a row label matches what the question asks about: shared domain concepts
    (any language, via the glossary), less concepts the label names that the question does
    not, plus shared words of the same language (a word of the label may also sit inside a
    compound of the question: "liike" in "liikeylijäämä")."""
    languages = list(languages)
    asked = _concepts_in(question, "glossary", longest=True)
    named = _concepts_in(label, "glossary")
    score = len(asked & named) - 0.5 * len(named - asked)
    asked_terms = content_terms(question, languages)
    score += 0.5 * len(content_terms(label, languages) & asked_terms)
    lower = question.lower()
    score += 0.25 * sum(
        1
        for word in re.findall(r"\w{4,}", label.lower())
        if word in lower and not content_terms(word, languages) & asked_terms
    )
    return score


def asks_for_column(question: str, context: str, language: str) -> bool:
    """Whether the question names a column of the table whose caption and headers are
    `context` (a year, "forecast" in any language): rows embed with their table's headers,
    which lifts every row of a financial table for any question about money, and a question
    that names none of its columns rarely wants a row."""
    header = parse_header(context)
    return pick_column(question, header, [language]) is not None or bool(
        concept_words(question) & concept_words(context)
    )


def pick_column(question: str, header: Header, languages: Iterable[str]) -> int | None:
    """The column the question asks for, or None when no single column stands out."""
    languages = list(languages)
    asked_numbers = numbers(question)
    asked_terms = content_terms(question, languages)
    asked_concepts = _concepts_in(question)
    if "previous_year" in asked_concepts and not asked_numbers:
        # "Och förra året?" / "vuotta aiemmin": the year before the table's latest one.
        years = [int(n) for label in header.columns for n in numbers(label) if _YEAR.match(n)]
        if years:
            asked_numbers = {str(max(years) - 1)}
    scores = []
    for label in header.columns:
        score = 0.0
        label_numbers = numbers(label)
        if asked_numbers & label_numbers:
            score += 1.0
        elif label_numbers and asked_numbers:
            score -= 1.0
        score += 1.5 * len(asked_concepts & _concepts_in(label))
        score += 0.5 * len(asked_terms & content_terms(label, languages))
        scores.append(score)
    if not scores:
        return None
    best = max(scores)
    if best <= 0 or scores.count(best) > 1:
        return None
    return scores.index(best)
