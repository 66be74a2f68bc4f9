"""Metrics: each a small function over one item's result, plus aggregation.

Field names follow the community's (ragas SingleTurnSample): user_input, response,
retrieved_contexts, reference."""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from evals.dataset import EvalItem, squash


def normalise_answer_text(text: str) -> str:
    """Case, whitespace, number formats: '1 000' -> '1000', '2,2' -> '2.2', dashes -> '-'."""
    text = squash(text).replace("\u2212", "-").replace("–", "-").replace("—", "-")
    text = re.sub(r"(?<=\d)[ \u00a0](?=\d{3}\b)", "", text)
    text = re.sub(r"(?<=\d),(?=\d)", ".", text)
    return text


def includes(response: str, required: str, alternatives: Sequence[str] = ()) -> bool:
    haystack = normalise_answer_text(response)
    return any(normalise_answer_text(option) in haystack for option in (required, *alternatives))


@dataclass(frozen=True)
class AccuracyResult:
    correct: bool
    reason: str


def answer_accuracy(item: EvalItem, response: str, refused: bool) -> AccuracyResult:
    if not item.answerable:
        return AccuracyResult(
            refused, "refused as expected" if refused else "answered an unanswerable question"
        )
    if refused:
        return AccuracyResult(False, "refused an answerable question")
    missing = [
        m for m in item.must_include if not includes(response, m, item.alternatives.get(m, []))
    ]
    found = len(item.must_include) - len(missing)
    if found < item.required_count:
        if item.min_include is not None:
            return AccuracyResult(
                False,
                f"{found} of {len(item.must_include)} facts, needs {item.min_include}; "
                f"missing {missing}",
            )
        return AccuracyResult(False, f"missing {missing}")
    if missing:
        return AccuracyResult(True, f"{found} of {len(item.must_include)} facts present")
    return AccuracyResult(True, "all required facts present")


def evidence_rank(item: EvalItem, retrieved_contexts: Sequence[str]) -> int | None:
    """1-based rank of the first retrieved chunk holding the evidence (or, when the evidence
    straddles a chunk boundary, all must_include facts), None when absent."""
    if not item.answerable:
        return None
    evidence = squash(item.evidence)
    for rank, context in enumerate(retrieved_contexts, 1):
        text = squash(context)
        if evidence and evidence in text:
            return rank
        if _contains_facts(item, context) and _overlap(evidence, text) >= 0.6:
            return rank
    return None


def _overlap(evidence: str, text: str) -> float:
    words = evidence.split()
    return sum(w in text for w in words) / max(1, len(words))


def _contains_facts(item: EvalItem, text: str) -> bool:
    found = sum(includes(text, m, item.alternatives.get(m, [])) for m in item.must_include)
    return bool(item.must_include) and found >= item.required_count


def citation_precision(item: EvalItem, cited_texts: Sequence[str]) -> float | None:
    """Share of cited chunks that hold the evidence or one of the required facts."""
    if not cited_texts or not item.answerable:
        return None
    good = 0
    for text in cited_texts:
        if (item.evidence and squash(item.evidence) in squash(text)) or any(
            includes(text, m, item.alternatives.get(m, [])) for m in item.must_include
        ):
            good += 1
    return good / len(cited_texts)


def reciprocal_rank(rank: int | None) -> float:
    return 0.0 if rank is None else 1.0 / rank


def percentile(values: Iterable[float], q: float) -> float:
    data = sorted(values)
    if not data:
        return 0.0
    if len(data) == 1:
        return data[0]
    return float(statistics.quantiles(data, n=100, method="inclusive")[int(q) - 1])


def mean(values: Iterable[float]) -> float:
    data = list(values)
    return sum(data) / len(data) if data else 0.0


# Upper edges of the answerability bands of the reliability table; the last band is closed.
ANSWERABILITY_BANDS = (0.2, 0.4, 0.6, 0.8, 1.0)


def answerability_band(score: float | None) -> str:
    """The band of a calibrated answerability score ("0.4-0.6"), "none" when absent."""
    if score is None:
        return "none"
    low = 0.0
    for high in ANSWERABILITY_BANDS:
        if score < high or high == ANSWERABILITY_BANDS[-1]:
            return f"{low:.1f}-{high:.1f}"
        low = high
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Scored:
    """What the reliability table needs of one item."""

    answerability: float | None
    answerable: bool
    correct: bool


def reliability(items: Sequence[Scored]) -> dict[str, object]:
    """Accuracy by band of the backend's answerability score, separately for answerable
    items (answered correctly) and unanswerable ones (refused). A calibrated score has few
    unanswerable items in the high bands and few answerable ones in the low bands; the
    Brier score (mean squared gap between score and truth) sums that up, lower is better."""
    bands: dict[str, dict[str, object]] = {}
    names = [answerability_band(high - 0.1) for high in ANSWERABILITY_BANDS] + ["none"]
    for name in names:
        group = [i for i in items if answerability_band(i.answerability) == name]
        if not group:
            continue
        scores = [i.answerability for i in group if i.answerability is not None]
        row: dict[str, object] = {
            "n": len(group),
            "mean_score": round(mean(scores), 4) if scores else None,
        }
        for label, wanted in (("answerable", True), ("unanswerable", False)):
            part = [i for i in group if i.answerable is wanted]
            row[label] = {
                "n": len(part),
                "accuracy": round(mean(i.correct for i in part), 4) if part else None,
            }
        bands[name] = row
    known = [i for i in items if i.answerability is not None]
    brier = mean((float(i.answerability or 0.0) - float(i.answerable)) ** 2 for i in known)
    return {
        "bands": bands,
        "scored_items": len(known),
        "brier": round(brier, 4) if known else None,
    }
