"""Optional LLM-judged correctness and faithfulness (RAGAS-style), off by default: `assistant
eval run --judge` with an LLM backend configured. Scores are labelled as judged by that model
and are never mixed into the deterministic metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistant.prompting import render_prompt

if TYPE_CHECKING:
    from assistant.answer.base import AnswerBackend
    from evals.runner import ItemResult


def _verdict(text: str) -> bool | None:
    word = text.strip().split()[0].strip(".,:!").upper() if text.strip() else ""
    return {"YES": True, "NO": False}.get(word)


def judge_item(backend: AnswerBackend, item: ItemResult) -> dict[str, bool | None]:
    """Correctness against the reference and faithfulness to the retrieved passages."""
    if item.refused or not item.response:
        return {"judged_correct": None, "judged_faithful": None}
    system = "You are a strict grader. Answer only YES or NO."
    correctness = backend.complete(
        system,
        render_prompt(
            "judge",
            "correctness",
            question=item.user_input,
            reference=item.reference,
            response=item.response,
        ),
    )
    faithfulness = backend.complete(
        system,
        render_prompt(
            "judge", "faithfulness", contexts=item.retrieved_contexts, response=item.response
        ),
    )
    return {"judged_correct": _verdict(correctness), "judged_faithful": _verdict(faithfulness)}


def summarise_judgements(items: list[ItemResult], model: str) -> dict[str, object]:
    correct = [i.judged.get("judged_correct") for i in items if i.judged]
    faithful = [i.judged.get("judged_faithful") for i in items if i.judged]

    def rate(values: list[bool | None]) -> float | None:
        known = [v for v in values if v is not None]
        return round(sum(known) / len(known), 4) if known else None

    return {
        "judge_model": model,
        "judged_correctness": rate(correct),
        "judged_faithfulness": rate(faithful),
        "judged_items": sum(1 for v in correct if v is not None),
    }
