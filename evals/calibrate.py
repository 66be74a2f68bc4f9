"""Fit the extractive backend's answerability model on the DEV split only.

    python -m evals.calibrate [--dataset FILE ...] [--write]

For every dev item the pipeline prepares and retrieves as it would when answering, the backend
computes its signals (assistant.answer.answerability.Signals), and a logistic regression is
fitted to "is this question answerable by the documents". Items the backend decides by rule (a
number of the question absent from the evidence, no sentence of the asked-for type) are left
out: the model only decides what the rules leave open. With --write the parameters are saved
as package data keyed to the embedder's model id, where the backend loads them.

The test split is never read here: its figures are what `assistant eval run --split test`
reports, on questions the calibration has not seen.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from assistant.answer.answerability import Calibration, Signals, calibration_path, fit
from assistant.answer.extractive import ExtractiveBackend
from assistant.answer.pipeline import AnswerState
from assistant.core import Assistant
from assistant.retrieve import Filters
from assistant.settings import Settings
from evals.dataset import EvalItem, load_dataset

DEFAULT_DATASETS = [Path(__file__).parent / "datasets" / "default.jsonl"]


def collect_signals(assistant: Assistant, items: list[EvalItem]) -> list[tuple[Signals, bool]]:
    backend = assistant.backend
    if not isinstance(backend, ExtractiveBackend):
        raise SystemExit("calibration fits the extractive backend (ASSISTANT_BACKEND=extractive)")
    pipeline = assistant.pipeline
    rows: list[tuple[Signals, bool]] = []
    for item in items:
        history = tuple(
            turn if isinstance(turn, dict) else turn.model_dump()
            for turn in getattr(item, "history", None) or ()
        )
        state = AnswerState(question=item.question, history=history, filters=Filters())
        state = pipeline.retrieve(pipeline.prepare(state))
        selection = backend.select(state.request())
        if selection.signals is not None:
            rows.append((selection.signals, item.answerable))
    return rows


def auc(scores: list[float], labels: list[bool]) -> float:
    positives = [s for s, label in zip(scores, labels, strict=True) if label]
    negatives = [s for s, label in zip(scores, labels, strict=True) if not label]
    if not positives or not negatives:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def out_of_fold(
    rows: list[tuple[Signals, bool]], model_id: str, *, l2: float, folds: int = 5
) -> list[float]:
    """Each row's probability from a model fitted without its fold: what the calibration
    would say of questions it has not seen, the honest basis for choosing a threshold."""
    scores = [0.0] * len(rows)
    for fold in range(folds):
        train = [row for i, row in enumerate(rows) if i % folds != fold]
        model = fit(train, model_id, l2=l2)
        for i, (signals, _) in enumerate(rows):
            if i % folds == fold:
                scores[i] = model.probability(signals)
    return scores


def threshold_table(scores: list[float], labels: list[bool]) -> None:
    print("threshold  refusal(unanswerable)  false refusal(answerable)")
    for step in range(6, 15):
        threshold = step / 20
        refused = [s < threshold for s in scores]
        unanswerable = [r for r, label in zip(refused, labels, strict=True) if not label]
        answerable = [r for r, label in zip(refused, labels, strict=True) if label]
        print(
            f"{threshold:9.2f}  {sum(unanswerable) / max(1, len(unanswerable)):21.3f}  "
            f"{sum(answerable) / max(1, len(answerable)):25.3f}"
        )


def report(
    calibration: Calibration, rows: list[tuple[Signals, bool]], cross_validated: list[float]
) -> None:
    scores = [calibration.probability(s) for s, _ in rows]
    labels = [label for _, label in rows]
    print(f"dev rows: {len(rows)} ({sum(labels)} answerable, {len(labels) - sum(labels)} not)")
    print(f"AUC (fitted data): {auc(scores, labels):.3f}")
    for name in Signals.__dataclass_fields__:
        single = [float(getattr(s, name)) for s, _ in rows]
        print(f"  AUC of {name:<18} alone: {auc(single, labels):.3f}")
    print(f"AUC (5-fold cross-validated): {auc(cross_validated, labels):.3f}")
    print("cross-validated (choose the threshold from this table):")
    threshold_table(cross_validated, labels)
    print("weights:", calibration.weights)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, action="append")
    parser.add_argument("--l2", type=float, default=2.0)
    parser.add_argument("--write", action="store_true", help="save as the shipped calibration")
    args = parser.parse_args()
    items = [
        item
        for path in args.dataset or DEFAULT_DATASETS
        for item in load_dataset(path)
        if getattr(item, "split", "dev") == "dev"
    ]
    assistant = Assistant(Settings())
    rows = collect_signals(assistant, items)
    names = ", ".join(p.name for p in args.dataset or DEFAULT_DATASETS)
    calibration = fit(rows, assistant.embedder.model_id, l2=args.l2, fitted_on=f"dev of {names}")
    model_id = assistant.embedder.model_id
    report(calibration, rows, out_of_fold(rows, model_id, l2=args.l2))
    if args.write:
        path = calibration_path(assistant.embedder.model_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(calibration.to_json(), encoding="utf-8")
        print(f"written: {path}")


if __name__ == "__main__":
    main()
