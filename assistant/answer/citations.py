"""Machine-checked citations.

Every [n] in an answer must name a retrieved passage, and the quote shown for it is a verbatim
span of that passage that supports the claim:

* a quoted span ("…") of the claim found verbatim in the passage (the extractive backend
  quotes this way);
* for generated text, given the embedder: the evidence line (a sentence or a table row of the
  passage) that the claim restates. A claim passes when every number, date and capitalised
  name in it occurs in its supporting lines (number formats normalised: "77 501" == "77501",
  "1,3" == "1.3") and its meaning matches them by multilingual similarity, so a Swedish
  sentence citing a Finnish table row passes and a wrong figure fails;
* without the embedder, the passage sentence sharing the most content words and all numbers
  (the older, monolingual rule).

Citations that fail are dropped; claims left without one are reported; an answer left without
any valid citation becomes a refusal.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

import numpy as np

from assistant.answer.base import Passage
from assistant.answer.evidence import content_terms, numbers
from assistant.ingest.chunking import sentence_spans
from assistant.ingest.cleaning import is_table_row
from assistant.ingest.sentences import table_header
from assistant.schema import Citation, SentenceRecord

if TYPE_CHECKING:
    from embeddings.base import Embedder

_LEADING_MARKERS = re.compile(r"^\s*((?:\[\d{1,3}\]\s*)+)(?=\S)")
_MARKER = re.compile(r"\[(\d{1,3})\]")
_QUOTED = re.compile(r"[“\"«]([^”\"»]{8,}?)[”\"»]")
_SEGMENT = re.compile(r"[^\[\]]*?(?:\s*\[\d{1,3}\])+|[^\[\]]+$", re.S)
_CLAIM_END = re.compile(r"(?<=[.!?])\s+(?=[A-ZÅÄÖÜ0-9“\"])")

# Measured with multilingual-e5-small (dev split, reference answers against their evidence
# line, stored line vectors): 10th percentile 0.84, 97% at or above 0.82; claims about another
# subject score 0.77-0.82 against a line. Cosine is a coarse gate only: it cannot see that
# "Lahti will hire 104 teachers" contradicts "Lahti cuts 104 person-years" (0.84-0.88), so
# numbers, dates and names are checked exactly, and the line is shown as the quote.
MIN_SIMILARITY = 0.82


@dataclass
class CheckedAnswer:
    text: str
    citations: list[Citation] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EvidenceLine:
    """One sentence or table row of a passage, verbatim, with the table's caption and column
    headers for a row (a row alone cannot be read)."""

    passage: Passage
    text: str
    context: str = ""
    start: int = 0

    def embedding_text(self) -> str:
        return f"{self.context}: {self.text}" if self.context else self.text

    def facts_text(self) -> str:
        return f"{self.context} {self.text} {self.passage.title}"


def evidence_lines(
    passages: Sequence[Passage], sentences: Sequence[tuple[SentenceRecord, np.ndarray]] = ()
) -> tuple[list[EvidenceLine], list[np.ndarray | None]]:
    """The lines of the passages in passage order, with their stored vectors when the
    sentence index has them (None otherwise: the caller embeds those)."""
    by_chunk: dict[str, list[tuple[SentenceRecord, np.ndarray]]] = {}
    for record, vector in sentences:
        by_chunk.setdefault(record.meta.parent, []).append((record, vector))
    lines: list[EvidenceLine] = []
    vectors: list[np.ndarray | None] = []
    for passage in passages:
        found: list[tuple[str, str, int, np.ndarray | None]] = []
        stored = by_chunk.get(passage.scored.chunk_id)
        if stored:
            for record, stored_vector in sorted(stored, key=lambda r: r[0].meta.start):
                context = record.meta.context
                start = record.meta.start
                found.append((record.text.strip(), context, start, stored_vector))
        else:
            for start, end in sentence_spans(passage.text):
                text = passage.text[start:end].strip()
                if len(text.split()) < 3 and not is_table_row(text):
                    continue
                context = table_header(passage.text, start) if is_table_row(text) else ""
                found.append((text, context, start, None))
        previous: EvidenceLine | None = None
        rows_seen: list[str] = []
        for text, context, start, line_vector in found:
            if not text:
                continue
            row = is_table_row(text)
            if (
                row
                and previous is not None
                and previous.context
                and is_table_row(previous.text)
                and (not context or any(r in _squash(context) for r in rows_seen))
            ):
                # The header found above a row may be missing or hold the rows before it
                # (PDF tables): the rows of one block share the block's header.
                context = previous.context
            line = EvidenceLine(passage, text, context if row else "", start)
            lines.append(line)
            vectors.append(line_vector)
            previous = line
            if row:
                rows_seen.append(_squash(text))
    return lines, vectors


# --- exact facts: numbers, dates, names ------------------------------------------------------

_NUMBER_RUN = re.compile(r"\d+(?:[ \u00a0\u202f.,]\d+)*")
_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_NAME = re.compile(r"\b([A-ZÅÄÖÜ][\w-]*[a-zåäöü][\w-]*|[A-ZÅÄÖÜ]{2,})\b")
# Capitalised in English but not names a document would contain.
_NOT_NAMES = frozenset(
    """
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday i
    """.split()
)


def _number(text: str) -> str | None:
    try:
        value = Decimal(text).normalize()
    except InvalidOperation:
        return None
    return format(value, "f")


def _readings(run: str) -> list[list[str]]:
    """Every way to read a run of digit groups: a space, dot or comma before exactly three
    digits may separate thousands, a dot or comma may be a decimal point, a space may separate
    two numbers ("75 754 77 501" is two table cells). Each reading is a list of numbers."""
    date = _DATE.match(run)
    if date:
        day, month, year = (int(g) for g in date.groups())
        return [[f"{year:04d}-{month:02d}-{day:02d}"]]
    groups = re.split(r"[ \u00a0\u202f.,]", run)
    seps = re.findall(r"[ \u00a0\u202f.,]", run)
    if len(groups) > 7:  # a long row of cells: read them one by one
        return [[n for g in groups if (n := _number(g))]]
    readings: list[list[str]] = []
    for roles in itertools.product("tdb", repeat=len(seps)):
        numbers_read: list[str] = []
        current, decimal = groups[0], False
        valid = True
        for sep, role, group in zip(seps, roles, groups[1:], strict=True):
            if role == "t" and len(group) == 3 and not decimal:
                current += group
            elif role == "d" and sep in ".," and not decimal:
                current += "." + group
                decimal = True
            elif role == "b" and sep not in ".,":
                numbers_read.append(current)
                current, decimal = group, False
            else:
                valid = False
                break
        if valid:
            numbers_read.append(current)
            readings.append([n for v in numbers_read if (n := _number(v))])
    return readings


def _all_numbers(run: str) -> set[str]:
    """Every number any reading of the run contains: each stretch of groups joined by
    thousands separators, with or without a decimal part (linear in a long table row)."""
    date = _DATE.match(run)
    if date:
        return set(_readings(run)[0])
    groups = re.split(r"[ \u00a0\u202f.,]", run)
    seps = re.findall(r"[ \u00a0\u202f.,]", run)
    found: set[str] = set()
    for i, group in enumerate(groups):
        current = group
        found.add(current)
        for j in range(i + 1, len(groups)):
            if seps[j - 1] in ".,":
                found.add(f"{current}.{groups[j]}")
            if len(groups[j]) != 3:
                break
            current += groups[j]
            found.add(current)
    return {n for value in found if (n := _number(value))}


def fact_keys(text: str) -> set[str]:
    """Every number (in every reading) and date of a text, normalised; a date also adds its
    day, month and year, which a claim may write out ("1 January 2025")."""
    keys: set[str] = set()
    for match in _NUMBER_RUN.finditer(text):
        for value in _all_numbers(match.group(0).rstrip(".,")):
            keys.add(value)
            if len(value) == 10 and value[4] == "-":
                year, month, day = value.split("-")
                keys.update({str(int(year)), str(int(month)), str(int(day))})
    return keys


def missing_facts(claim: str, evidence: str) -> list[str]:
    """Numbers, dates and names of the claim that the evidence does not contain."""
    keys = fact_keys(evidence)
    missing: list[str] = []
    for match in _NUMBER_RUN.finditer(claim):
        run = match.group(0).rstrip(".,")
        if not any(set(reading) <= keys for reading in _readings(run)):
            missing.append(run)
    evidence_lower = evidence.lower()
    for name in claim_names(claim):
        if not _name_found(name, evidence_lower):
            missing.append(name)
    return missing


def claim_names(claim: str) -> list[str]:
    """Capitalised words and acronyms that do not start a sentence: names."""
    found: list[str] = []
    for match in _NAME.finditer(claim):
        before = claim[: match.start()].rstrip()
        if not before or before[-1] in '.!?:;"“«(-–•*':
            continue
        if match.group(1).lower() not in _NOT_NAMES:
            found.append(match.group(1))
    return found


def _name_found(name: str, text_lower: str) -> bool:
    """Finnish and Swedish inflect names (Lahti -> Lahden, Stockholm -> Stockholms): match a
    stem of the name rather than the whole word."""
    lower = name.lower()
    stem = lower[: max(3, len(lower) - 2)] if len(lower) > 4 else lower
    return re.search(rf"(?<!\w){re.escape(stem)}", text_lower) is not None


# --- the check --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Support:
    lines: list[EvidenceLine]
    similarity: float
    problem: str = ""


class GeneratedTextChecker:
    """Checks claims of generated text against evidence lines: exact facts, and meaning by the
    embedder's cosine between the claim and each line (both embedded as passages)."""

    def __init__(self, embedder: Embedder, min_similarity: float = MIN_SIMILARITY) -> None:
        self.embedder = embedder
        self.min_similarity = min_similarity

    def line_vectors(
        self, lines: Sequence[EvidenceLine], stored: Sequence[np.ndarray | None]
    ) -> np.ndarray:
        missing = [i for i, v in enumerate(stored) if v is None]
        fresh = self.embedder.embed([lines[i].embedding_text() for i in missing], "passage")
        out: list[np.ndarray] = []
        fresh_iter = iter(fresh)
        for vector in stored:
            out.append(next(fresh_iter) if vector is None else np.asarray(vector, np.float32))
        if not out:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        matrix = np.vstack(out)
        return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)

    def support(
        self, claims: Sequence[str], lines: Sequence[EvidenceLine], vectors: np.ndarray
    ) -> list[Support]:
        """For each claim, the lines that support it (best first) or the problem."""
        if not claims:
            return []
        if not lines:
            return [Support([], 0.0, "no evidence lines") for _ in claims]
        similarity = self.embedder.embed(list(claims), "passage") @ vectors.T
        results: list[Support] = []
        for claim, row in zip(claims, similarity, strict=True):
            order = np.argsort(-row)
            best = float(row[order[0]])
            close = [lines[i] for i in order if row[i] >= self.min_similarity]
            if not close:
                results.append(Support([], best, f"meaning differs (similarity {best:.2f})"))
                continue
            missing = missing_facts(claim, " ".join(line.facts_text() for line in close))
            if missing:
                results.append(Support([], best, f"not in the evidence: {', '.join(missing)}"))
                continue
            # The closest line, plus further close lines for facts it lacks (two figures
            # from two table rows), greedily.
            # Start from the closest line holding the most of the claim's facts: every row of
            # a table is close in meaning, only one holds the figure.
            first = min(close, key=lambda line: len(missing_facts(claim, line.facts_text())))
            chosen = [first]
            lacking = missing_facts(claim, first.facts_text())
            for line in close:
                if line is first:
                    continue
                if not lacking:
                    break
                text = " ".join(c.facts_text() for c in [*chosen, line])
                still = missing_facts(claim, text)
                if len(still) < len(lacking):
                    chosen.append(line)
                    lacking = still
            results.append(Support(chosen, best))
        return results


def split_claims(text: str) -> list[str]:
    return [c.strip() for c in _CLAIM_END.split(text) if len(c.strip()) >= 3]


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _best_support(claim: str, passage: Passage, languages: list[str]) -> str | None:
    """The passage sentence that supports the claim, or None (word overlap; no embedder)."""
    claim_terms = content_terms(claim, languages)
    claim_numbers = numbers(claim)
    best, best_overlap = None, 0.0
    for start, end in sentence_spans(passage.text):
        sentence = passage.text[start:end].strip()
        if claim_numbers and not claim_numbers <= numbers(sentence):
            continue
        terms = content_terms(sentence, languages)
        overlap = len(claim_terms & terms) / max(1, len(claim_terms))
        if overlap > best_overlap:
            best, best_overlap = sentence, overlap
    if best is not None and (best_overlap >= 0.3 or (claim_numbers and best_overlap > 0)):
        return best
    return None


def _citation(passage: Passage, quote: str) -> Citation:
    return Citation(
        n=passage.n,
        doc=passage.source,
        title=passage.title,
        page=passage.page,
        quote=quote,
        chunk_id=passage.scored.chunk_id,
        score=round(passage.scored.score, 4),
    )


def check_citations(
    answer: str,
    passages: list[Passage],
    language: str,
    *,
    embedder: Embedder | None = None,
    sentences: Sequence[tuple[SentenceRecord, np.ndarray]] = (),
) -> CheckedAnswer:
    """Check every [n] of the answer. With the embedder, claims that do not quote are checked
    as generated text (exact facts + multilingual similarity against the evidence lines of the
    cited passages, from the stored sentence records when given)."""
    # Small models often put the marker first ("[1] The budget is ..."): move leading markers
    # to the end of the first sentence, where the checker expects them.
    leading = _LEADING_MARKERS.match(answer)
    if leading:
        rest = answer[leading.end() :]
        cut = re.search(r"(?<=[.!?])(\s|$)", rest)
        end = cut.start() if cut else len(rest)
        answer = f"{rest[:end]} {leading.group(1).strip()}{rest[end:]}"
    by_number = {p.n: p for p in passages}
    checked = CheckedAnswer(text=answer)
    seen: set[tuple[int, str]] = set()
    checker = GeneratedTextChecker(embedder) if embedder is not None else None
    lines_cache: dict[int, tuple[list[EvidenceLine], np.ndarray]] = {}

    def add(passage: Passage, quote: str) -> None:
        if (passage.n, quote) not in seen:
            seen.add((passage.n, quote))
            checked.citations.append(_citation(passage, quote))

    for match in _SEGMENT.finditer(answer):
        segment = match.group(0)
        claim = _squash(_MARKER.sub("", segment))
        if not claim or len(claim) < 3:
            continue
        cited: list[Passage] = []
        for marker in _MARKER.finditer(segment):
            n = int(marker.group(1))
            passage = by_number.get(n)
            if passage is None:
                checked.dropped.append(f"[{n}] names no retrieved passage")
            elif passage not in cited:
                cited.append(passage)
        valid: set[int] = set()
        unquoted: list[Passage] = []
        for passage in cited:
            quote = _verbatim_quote(claim, passage)
            if quote is not None:
                valid.add(passage.n)
                add(passage, quote)
            else:
                unquoted.append(passage)
        if unquoted and checker is not None and not valid:
            for passage in unquoted:
                if passage.n not in lines_cache:
                    lines, stored = evidence_lines([passage], sentences)
                    lines_cache[passage.n] = (lines, checker.line_vectors(lines, stored))
            lines = [line for p in unquoted for line in lines_cache[p.n][0]]
            vectors = np.vstack([lines_cache[p.n][1] for p in unquoted])
            claims = split_claims(claim) or [claim]
            failed: list[str] = []
            for part, support in zip(claims, checker.support(claims, lines, vectors), strict=True):
                if not support.lines:
                    failed.append(part)
                    checked.dropped.append(
                        f"{''.join(f'[{p.n}]' for p in unquoted)} does not support "
                        f"{part[:80]!r}: {support.problem}"
                    )
                    continue
                for line in support.lines:
                    valid.add(line.passage.n)
                    add(line.passage, line.text)
            checked.unsupported.extend(failed)
            continue
        elif unquoted:
            for passage in unquoted:
                languages = [language, passage.meta.language]
                quote = _best_support(claim, passage, languages)
                if quote is None:
                    checked.dropped.append(f"[{passage.n}] does not support: {claim[:80]}")
                    continue
                valid.add(passage.n)
                add(passage, quote)
        if not valid and not cited and checked.citations:
            # Trailing text after the last citation (a closing remark) is not a claim.
            continue
        if not valid and claim not in checked.unsupported:
            checked.unsupported.append(claim)
    # Remove markers that failed the check, so the text never shows an unchecked number.
    valid_numbers = {c.n for c in checked.citations}
    checked.text = _MARKER.sub(
        lambda m: m.group(0) if int(m.group(1)) in valid_numbers else "", answer
    ).strip()
    return checked


def _verbatim_quote(claim: str, passage: Passage) -> str | None:
    haystack = _squash(passage.text)
    for quoted in _QUOTED.findall(claim):
        needle = _squash(quoted)
        index = haystack.find(needle)
        if index >= 0:
            return haystack[index : index + len(needle)]
    return None
