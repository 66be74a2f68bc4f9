"""Machine-checked citations.

Every [n] in an answer must name a retrieved passage, and the quote shown for it must be a
verbatim span of that passage that supports the sentence: the quoted text itself when the
answer quotes, otherwise the passage sentence that shares the most content words and all the
numbers of the answer sentence. Citations that fail are dropped; sentences left without one
are reported; an answer left without any valid citation becomes a refusal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.answer.base import Passage
from assistant.answer.evidence import content_terms, numbers
from assistant.ingest.chunking import sentence_spans
from assistant.schema import Citation

_LEADING_MARKERS = re.compile(r"^\s*((?:\[\d{1,3}\]\s*)+)(?=\S)")
_MARKER = re.compile(r"\[(\d{1,3})\]")
_QUOTED = re.compile(r"[“\"«]([^”\"»]{8,}?)[”\"»]")
_SEGMENT = re.compile(r"[^\[\]]*?(?:\s*\[\d{1,3}\])+|[^\[\]]+$", re.S)


@dataclass
class CheckedAnswer:
    text: str
    citations: list[Citation] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _best_support(claim: str, passage: Passage, languages: list[str]) -> str | None:
    """The passage sentence that supports the claim, or None."""
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


def check_citations(answer: str, passages: list[Passage], language: str) -> CheckedAnswer:
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
    for match in _SEGMENT.finditer(answer):
        segment = match.group(0)
        claim = _squash(_MARKER.sub("", segment))
        if not claim or len(claim) < 3:
            continue
        valid = False
        for marker in _MARKER.finditer(segment):
            n = int(marker.group(1))
            passage = by_number.get(n)
            if passage is None:
                checked.dropped.append(f"[{n}] names no retrieved passage")
                continue
            languages = [language, str(passage.meta.get("language", ""))]
            quote = _verbatim_quote(claim, passage) or _best_support(claim, passage, languages)
            if quote is None:
                checked.dropped.append(f"[{n}] does not support: {claim[:80]}")
                continue
            valid = True
            if (n, quote) not in seen:
                seen.add((n, quote))
                checked.citations.append(
                    Citation(
                        n=n,
                        doc=passage.source,
                        title=passage.title,
                        page=passage.page,
                        quote=quote,
                        chunk_id=passage.scored.chunk_id,
                        score=round(passage.scored.score, 4),
                    )
                )
        if not valid and _MARKER.search(segment) is None and checked.citations:
            # Trailing text after the last citation (a closing remark) is not a claim.
            continue
        if not valid:
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
