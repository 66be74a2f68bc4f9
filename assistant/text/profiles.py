"""Loading and querying language profiles (data files beside this module)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from typing import Any

from assistant.errors import ConfigError

# "organisation" asks which company or body ("which company won the tender"). "reference" (a
# case or reference number) before "number", and "amount" (money) before
# "number": "how much does it cost" asks for a sum of money. "percentage" (a rate or share)
# and "count" ("how many": no sum of money answers it) are narrower kinds of "number".
# "reason" ("why") is said in words: a row of figures never gives one.
# "definition" ("how is X
# defined") is checked last: it only favours defining sentences, it excludes none.
ANSWER_TYPES = (
    "reference",
    "amount",
    "reason",
    "percentage",
    "count",
    "number",
    "date",
    "person",
    "organisation",
    "overview",
    "definition",
)


@dataclass(frozen=True)
class LanguageProfile:
    code: str
    name: str
    stemmer_name: str | None
    question_words: frozenset[str]
    markers: frozenset[str]
    referring_words: frozenset[str]
    stopwords: frozenset[str]
    months: tuple[str, ...]
    answer_type_patterns: dict[str, tuple[re.Pattern[str], ...]] = field(hash=False)
    marker_suffixes: tuple[str, ...] = ()
    # Pronouns that make a short question lean on the previous one ("When does it end?").
    pronouns: frozenset[str] = frozenset()
    # Plural possessives and demonstratives ("niiden", "deras", "their") point back at
    # the turn before in a question of any length.
    anaphors: frozenset[str] = frozenset()
    # Openings that ask about the previous topic ("what about", "hur är det med").
    referring_phrases: tuple[str, ...] = ()
    # Words naming a table column's concept (forecast, budget, ...): they let a question in
    # one language find a column labelled in another ("forecast" -> "Ennuste 2025").
    table_terms: dict[str, frozenset[str]] = field(default_factory=dict, hash=False)
    # Domain concepts (revenue / liikevaihto / omsättning): words of every language that name
    # the same thing, so a question and a sentence in different languages share terms.
    glossary: dict[str, frozenset[str]] = field(default_factory=dict, hash=False)
    # General public-sector vocabulary (strategy, procurement, city board ...) in the same
    # form: it only lets a sentence match a question in another language by what both name,
    # and unlike the glossary it is never a reason to refuse (it is too broad for that).
    lexicon: dict[str, frozenset[str]] = field(default_factory=dict, hash=False)
    # Whether a capitalised word inside a sentence is a name (Swedish, Finnish). English
    # capitalises the words of titles ("the Market Court") and German every noun.
    capitals_mark_names: bool = False
    # Abbreviations whose period ends no sentence ("z. B.", "t.ex."), lower-case.
    abbreviations: frozenset[str] = frozenset()
    # Words by which a sentence points back at the one before it ("detta", "this", "tämä"):
    # such a sentence continues its predecessor, so an answer quotes the two together.
    continuation_words: frozenset[str] = frozenset()
    # Currency and magnitude words that make a figure a sum of money ("milj. euroa", "kr").
    amount_words: frozenset[str] = frozenset()
    # Numbers and shares written as words ("två tredjedelar", "puolet"): they answer "how many".
    number_words: frozenset[str] = frozenset()
    # Words by which a document defines a term ("avses", "tarkoitetaan", "refers to"): a
    # sentence with one of them answers "how is X defined / what does X mean".
    definition_cues: tuple[str, ...] = ()
    # Words that make two capitalised words a body or a place, not a person's name ("Region
    # Stockholm", "Karolinska Institutet", "Lahden Tilakeskus"); also matched as word endings.
    organisation_words: frozenset[str] = frozenset()
    # Words by which a sentence gives a reason ("vuoksi", "eftersom", "because").
    reason_cues: tuple[str, ...] = ()

    @cached_property
    def stem(self) -> Callable[[list[str]], list[str]] | None:
        return _snowball(self.stemmer_name) if self.stemmer_name else None

    def answer_type(self, question: str) -> str | None:
        """One of ANSWER_TYPES when the question's wording asks for one."""
        for kind in ANSWER_TYPES:
            if any(p.search(question) for p in self.answer_type_patterns.get(kind, ())):
                return kind
        return None

    def marker_count(self, words: Iterable[str]) -> int:
        count = 0
        for word in words:
            if (
                word in self.markers
                or word in self.question_words
                or (len(word) > 4 and any(word.endswith(s) for s in self.marker_suffixes))
            ):
                count += 1
        return count


@cache
def _snowball(name: str) -> Callable[[list[str]], list[str]]:
    import Stemmer

    return Stemmer.Stemmer(name).stemWords  # type: ignore[no-any-return]


def _parse(data: dict[str, Any], source: str) -> LanguageProfile:
    def words(key: str) -> frozenset[str]:
        return frozenset(str(w).lower() for w in data.get(key) or ())

    def concepts(key: str) -> dict[str, frozenset[str]]:
        return {
            str(concept): frozenset(str(w).lower() for w in terms)
            for concept, terms in (data.get(key) or {}).items()
        }

    try:
        patterns = {
            kind: tuple(re.compile(p, re.I) for p in data.get("answer_types", {}).get(kind, ()))
            for kind in ANSWER_TYPES
        }
        return LanguageProfile(
            code=str(data["code"]),
            name=str(data["name"]),
            stemmer_name=data.get("stemmer"),
            question_words=words("question_words"),
            markers=words("markers"),
            referring_words=words("referring_words"),
            stopwords=words("stopwords"),
            months=tuple(str(m).lower() for m in data.get("months") or ()),
            answer_type_patterns=patterns,
            marker_suffixes=tuple(data.get("marker_suffixes") or ()),
            pronouns=words("pronouns"),
            anaphors=words("anaphors"),
            referring_phrases=tuple(str(p).lower() for p in data.get("referring_phrases") or ()),
            table_terms=concepts("table_terms"),
            glossary=concepts("glossary"),
            lexicon=concepts("lexicon"),
            capitals_mark_names=bool(data.get("capitals_mark_names", False)),
            abbreviations=words("abbreviations"),
            continuation_words=words("continuation_words"),
            amount_words=words("amount_words"),
            number_words=words("number_words"),
            definition_cues=tuple(str(c).lower() for c in data.get("definition_cues") or ()),
            organisation_words=words("organisation_words"),
            reason_cues=tuple(str(c).lower() for c in data.get("reason_cues") or ()),
        )
    except (KeyError, re.error, TypeError, ValueError) as exc:
        raise ConfigError(f"language profile {source} is invalid: {exc}") from exc


@cache
def profiles() -> dict[str, LanguageProfile]:
    import yaml

    found: dict[str, LanguageProfile] = {}
    folder = resources.files("assistant.text").joinpath("profiles")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            loaded = _parse(yaml.safe_load(entry.read_text(encoding="utf-8")), entry.name)
            found[loaded.code] = loaded
    return found


def known_languages() -> tuple[str, ...]:
    return tuple(profiles())


def profile(code: str) -> LanguageProfile | None:
    return profiles().get(code)


@cache
def all_stopwords() -> frozenset[str]:
    """Function words of every profile: they never decide whether a passage answers."""
    return frozenset().union(*(p.stopwords | p.question_words for p in profiles().values()))


@cache
def all_amount_words() -> frozenset[str]:
    return frozenset().union(*(p.amount_words for p in profiles().values()))


def amount_words_in(text: str) -> set[str]:
    """The currency and magnitude words (and symbols) of any profile that the text holds."""
    return set(re.findall(r"[^\W\d_]+|[€$£%]", text.lower())) & all_amount_words()


@cache
def all_question_words() -> frozenset[str]:
    return frozenset().union(*(p.question_words for p in profiles().values()))


@cache
def all_number_words() -> frozenset[str]:
    return frozenset().union(*(p.number_words for p in profiles().values()))


@cache
def all_reason_cues() -> tuple[str, ...]:
    return tuple(sorted({c for p in profiles().values() for c in p.reason_cues}))


@cache
def all_organisation_words() -> frozenset[str]:
    return frozenset().union(*(p.organisation_words for p in profiles().values()))


@cache
def all_definition_cues() -> tuple[str, ...]:
    return tuple(sorted({c for p in profiles().values() for c in p.definition_cues}))


@cache
def all_months() -> tuple[str, ...]:
    return tuple(m for p in profiles().values() for m in p.months)


def continuation_words(languages: Iterable[str]) -> frozenset[str]:
    """The continuation words of the given languages' profiles (unknown codes are skipped)."""
    known = profiles()
    found: set[str] = set()
    for code in languages:
        if code in known:
            found |= known[code].continuation_words
    return frozenset(found)
