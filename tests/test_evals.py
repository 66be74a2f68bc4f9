"""Unit tests of every metric on hand-made cases, the dataset validator and the reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.dataset import DatasetError, EvalItem, load_dataset, validate_items
from evals.metrics import (
    answer_accuracy,
    citation_precision,
    evidence_rank,
    includes,
    normalise_answer_text,
    percentile,
    reciprocal_rank,
)
from evals.report import compare, render_html, render_markdown
from evals.runner import ItemResult, summarise

REPO = Path(__file__).resolve().parents[1]


def _item(**overrides: object) -> EvalItem:
    base = {
        "id": "x1",
        "question": "Paljonko?",
        "question_lang": "fi",
        "answer": "2,2 milj.",
        "must_include": ["2,2", "1 000"],
        "doc": "d.txt",
        "evidence": "Ennuste on 2,2 milj. euroa ja 1 000 henkeä.",
        "kind": "number",
    }
    base.update(overrides)
    return EvalItem.model_validate(base)


def test_number_normalisation() -> None:
    assert normalise_answer_text("1 000 euroa") == "1000 euroa"
    assert normalise_answer_text("2,2 MILJ.") == "2.2 milj."
    assert includes("It is 2.2 million and 1000 people", "2,2")
    assert includes("LS 2015-1096", "2015–1096")
    assert not includes("22 million", "2,2")


def test_answer_accuracy_and_refusals() -> None:
    item = _item()
    assert answer_accuracy(item, "Ennuste 2,2 milj. ja 1 000 henkeä", False).correct
    missing = answer_accuracy(item, "Ennuste 2,2 milj.", False)
    assert not missing.correct and "1 000" in missing.reason
    assert not answer_accuracy(item, "2,2 ja 1 000", True).correct
    unanswerable = _item(kind="unanswerable", must_include=[], doc="none", evidence="")
    assert answer_accuracy(unanswerable, "I could not find this", True).correct
    assert not answer_accuracy(unanswerable, "It is 5", False).correct


def test_alternatives_count() -> None:
    item = _item(must_include=["2015–1096"], alternatives={"2015–1096": ["2015/1096"]})
    assert answer_accuracy(item, "diarienummer 2015/1096", False).correct


def test_retrieval_metrics() -> None:
    item = _item()
    contexts = ["nothing here", "Ennuste on 2,2 milj. euroa ja 1 000 henkeä. Lisää."]
    assert evidence_rank(item, contexts) == 2
    assert evidence_rank(item, ["nothing"]) is None
    assert reciprocal_rank(2) == 0.5 and reciprocal_rank(None) == 0.0
    assert citation_precision(item, [contexts[1], "unrelated"]) == 0.5
    assert citation_precision(item, []) is None
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)


def _result(id_: str, kind: str, correct: bool, refused: bool, rank: int | None) -> ItemResult:
    return ItemResult(
        id=id_,
        kind=kind,
        question_lang="sv",
        user_input="q",
        reference="r",
        response="a",
        refused=refused,
        correct=correct,
        reason="r",
        evidence_rank=rank,
        citations=[],
        retrieved_ids=[],
        retrieved_contexts=[],
        citation_precision=1.0 if correct else 0.0,
        has_valid_citation=not refused,
        timings_ms={"total": 10.0},
    )


def test_summary_counts_refusals_and_recall() -> None:
    items = [
        _result("a", "fact", True, False, 1),
        _result("b", "fact", False, True, None),
        _result("c", "unanswerable", True, True, None),
        _result("d", "unanswerable", False, False, None),
    ]
    summary = summarise(items, k=5)
    assert summary["answer_accuracy"] == 0.5
    assert summary["refusal_rate"] == 0.5
    assert summary["false_refusal_rate"] == 0.5
    assert summary["recall_at_5"] == 0.5 and summary["hit_at_1"] == 0.5
    assert summary["by_kind"]["unanswerable"]["n"] == 2
    run = {"config": {}, "summary": summary, "items": [vars(i) for i in items]}
    assert "refusal rate" in render_markdown(run)
    assert "<svg" in render_html(run)
    flipped = json.loads(json.dumps(run))
    flipped["items"][0]["correct"] = False
    assert "a: broke" in compare(run, flipped)


def test_dataset_loader_names_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"id": "a", "question": "", "question_lang": "xx", "doc": "d", '
        '"kind": "fact"}\nnot json\n',
        "utf-8",
    )
    with pytest.raises(DatasetError) as error:
        load_dataset(path)
    message = str(error.value)
    assert "bad.jsonl:1: field question_lang" in message
    assert "bad.jsonl:2: not JSON" in message


def test_validator_finds_missing_evidence() -> None:
    good, bad = _item(), _item(id="x2", evidence="not in the document", must_include=["9,9"])
    text = "Ennuste on 2,2 milj. euroa ja 1 000 henkeä."
    problems = validate_items([good, bad], lambda doc: text if doc == "d.txt" else None)
    assert problems == [
        "x2: field evidence: not found verbatim in d.txt",
        "x2: field must_include: '9,9' not in evidence or d.txt",
    ]


def test_default_dataset_is_valid_against_the_corpus() -> None:
    items = load_dataset(REPO / "evals" / "datasets" / "default.jsonl")
    assert len(items) >= 60
    assert sum(not i.answerable for i in items) >= 8
    texts = {p.name: p.read_text("utf-8") for p in (REPO / "corpus").glob("*.txt")}
    # Evidence is written against the text with whitespace collapsed.
    assert validate_items(items, texts.get) == []
