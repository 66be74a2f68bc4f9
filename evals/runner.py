"""Runs a dataset through Assistant.ask and computes the summary. The report files are
rendered from the saved results (evals.report), never recomputed."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from evals.dataset import EvalItem
from evals.metrics import (
    Scored,
    answer_accuracy,
    citation_precision,
    evidence_rank,
    mean,
    percentile,
    reciprocal_rank,
    reliability,
)

if TYPE_CHECKING:
    from assistant.answer.base import AnswerBackend
    from assistant.schema import Answer
    from assistant.settings import Settings


class Asker(Protocol):
    """What the runner needs of an assistant (assistant.core.Assistant, or a test double)."""

    settings: Settings

    def ask(self, question: str, history: Sequence[dict[str, str]] = ...) -> Answer: ...


@dataclass
class ItemResult:
    id: str
    kind: str
    question_lang: str
    user_input: str
    reference: str
    response: str
    refused: bool
    correct: bool
    reason: str
    evidence_rank: int | None
    citations: list[dict[str, Any]]
    retrieved_ids: list[str]
    retrieved_contexts: list[str]
    citation_precision: float | None
    has_valid_citation: bool
    timings_ms: dict[str, float]
    error: str | None = None
    # LLM-judged verdicts (evals.judge), only with --judge.
    judged: dict[str, bool | None] = field(default_factory=dict)
    split: str = ""
    # Language of the item's document as the index detected it (None: unanswerable/unknown).
    doc_lang: str | None = None
    # The backend's calibrated probability that the question is answerable (None: absent).
    answerability: float | None = None
    history: list[dict[str, str]] = field(default_factory=list)

    @property
    def answerable(self) -> bool:
        return self.kind != "unanswerable"

    @property
    def crosslingual(self) -> bool:
        """An answerable item asked in another language than its document's."""
        return self.answerable and self.doc_lang is not None and self.doc_lang != self.question_lang


@dataclass
class RunResult:
    config: dict[str, Any]
    summary: dict[str, Any]
    items: list[ItemResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "summary": self.summary,
            "items": [asdict(i) for i in self.items],
        }


def evaluate_item(assistant: Asker, item: EvalItem, doc_lang: str | None = None) -> ItemResult:
    history = [turn.model_dump() for turn in item.history]
    common: dict[str, Any] = {
        "id": item.id,
        "kind": item.kind,
        "question_lang": item.question_lang,
        "user_input": item.question,
        "reference": item.answer,
        "split": item.split,
        "doc_lang": doc_lang if item.answerable else None,
        "history": history,
    }
    try:
        answer = assistant.ask(item.question, history=history)
    except Exception as exc:  # one failing item must not end the run; it counts as wrong
        return ItemResult(
            **common,
            response="",
            refused=False,
            correct=False,
            reason=f"error: {exc}",
            evidence_rank=None,
            citations=[],
            retrieved_ids=[],
            retrieved_contexts=[],
            citation_precision=None,
            has_valid_citation=False,
            timings_ms={},
            error=str(exc),
        )
    contexts = [r.text for r in answer.retrieved]
    cited = [r.text for r in answer.retrieved if r.n in {c.n for c in answer.citations}]
    # Quotes are part of the response: the facts must appear in what the user reads.
    response = answer.answer
    accuracy = answer_accuracy(item, response, answer.refused)
    precision = citation_precision(item, cited)
    correct = accuracy.correct
    reason = accuracy.reason
    if item.answerable and correct and not precision:
        correct, reason = False, "facts present but no cited chunk holds them"
    return ItemResult(
        **common,
        response=response,
        refused=answer.refused,
        correct=correct,
        reason=reason,
        evidence_rank=evidence_rank(item, contexts),
        citations=[c.model_dump() for c in answer.citations],
        retrieved_ids=[r.chunk_id for r in answer.retrieved],
        retrieved_contexts=contexts,
        citation_precision=precision,
        has_valid_citation=bool(answer.citations),
        timings_ms=dict(answer.timings_ms),
        answerability=answer.answerability,
    )


def _block(group: list[ItemResult]) -> dict[str, Any]:
    fair = [i for i in group if i.answerable]
    return {
        "n": len(group),
        "accuracy": round(mean(i.correct for i in group), 4),
        "recall_at_k": round(mean(i.evidence_rank is not None for i in fair), 4) if fair else None,
    }


def _headline(items: list[ItemResult]) -> dict[str, Any]:
    answerable = [i for i in items if i.answerable]
    unanswerable = [i for i in items if not i.answerable]
    return {
        "n": len(items),
        "accuracy": round(mean(i.correct for i in items), 4),
        "answer_accuracy": round(mean(i.correct for i in answerable), 4) if answerable else None,
        "refusal_rate": round(mean(i.refused for i in unanswerable), 4) if unanswerable else None,
        "false_refusal_rate": round(mean(i.refused for i in answerable), 4) if answerable else None,
        "recall_at_k": round(mean(i.evidence_rank is not None for i in answerable), 4)
        if answerable
        else None,
    }


def summarise(items: list[ItemResult], k: int) -> dict[str, Any]:
    answerable = [i for i in items if i.answerable]
    unanswerable = [i for i in items if not i.answerable]
    crosslingual = [i for i in items if i.crosslingual]

    stages: dict[str, list[float]] = defaultdict(list)
    for item in items:
        for stage, value in item.timings_ms.items():
            stages[stage].append(value)
    precisions = [i.citation_precision for i in answerable if i.citation_precision is not None]
    summary: dict[str, Any] = {
        "items": len(items),
        "accuracy": round(mean(i.correct for i in items), 4),
        "answer_accuracy": round(mean(i.correct for i in answerable), 4),
        "refusal_rate": round(mean(i.refused for i in unanswerable), 4) if unanswerable else None,
        "false_refusal_rate": round(mean(i.refused for i in answerable), 4),
        # Every answerable item whose question language differs from its document's, not
        # only the items of kind crosslingual.
        "crosslingual_accuracy": round(mean(i.correct for i in crosslingual), 4)
        if crosslingual
        else None,
        "hit_at_1": round(mean(i.evidence_rank == 1 for i in answerable), 4),
        f"recall_at_{k}": round(mean(i.evidence_rank is not None for i in answerable), 4),
        "mrr": round(mean(reciprocal_rank(i.evidence_rank) for i in answerable), 4),
        "citation_precision": round(mean(precisions), 4) if precisions else None,
        "answers_with_valid_citation": round(
            mean(i.has_valid_citation for i in answerable if not i.refused), 4
        ),
        "errors": sum(1 for i in items if i.error),
        "latency_ms": {
            stage: {"p50": round(percentile(v, 50), 1), "p95": round(percentile(v, 95), 1)}
            for stage, v in sorted(stages.items())
        },
        "by_split": {
            split: _headline([i for i in items if i.split == split])
            for split in sorted({i.split for i in items})
        },
        "by_kind": {
            kind: _block([i for i in items if i.kind == kind])
            for kind in sorted({i.kind for i in items})
        },
        "by_language": {
            lang: _block([i for i in items if i.question_lang == lang])
            for lang in sorted({i.question_lang for i in items})
        },
        "crosslingual": {
            pair: _block([i for i in crosslingual if f"{i.question_lang}->{i.doc_lang}" == pair])
            for pair in sorted({f"{i.question_lang}->{i.doc_lang}" for i in crosslingual})
        },
        "reliability": reliability(
            [Scored(i.answerability, i.answerable, i.correct) for i in items]
        ),
    }
    summary["recall_at_k"] = summary[f"recall_at_{k}"]
    return summary


def document_languages(assistant: Asker) -> dict[str, str]:
    """File name and doc id -> language, as the index detected it at ingest."""
    store = getattr(assistant, "store", None)
    if store is None:
        return {}
    languages: dict[str, str] = {}
    for meta in store.metadata_by_id().values():
        language = meta.language
        if not language or language == "und":
            continue
        for key in (meta.source, meta.doc_id):
            if key:
                languages[key] = language
    return languages


def run_eval(
    assistant: Asker,
    items: list[EvalItem],
    *,
    config: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    judge: AnswerBackend | None = None,
    doc_languages: Mapping[str, str] | None = None,
) -> RunResult:
    started = time.perf_counter()
    if doc_languages is None:
        doc_languages = document_languages(assistant)
    results = []
    for index, item in enumerate(items):
        results.append(evaluate_item(assistant, item, doc_languages.get(item.doc)))
        if progress:
            progress(index + 1, len(items))
    summary = summarise(results, assistant.settings.top_k)
    if judge is not None:
        from evals.judge import judge_item, summarise_judgements

        for result in results:
            result.judged = judge_item(judge, result)
        summary["llm_judged"] = summarise_judgements(results, judge.name)
    summary["total_seconds"] = round(time.perf_counter() - started, 2)
    return RunResult(config=config or {}, summary=summary, items=results)
