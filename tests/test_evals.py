"""Unit tests of every metric on hand-made cases, the dataset validator and the reports."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import pytest

from assistant.schema import Answer
from assistant.settings import Settings
from evals.dataset import (
    DatasetError,
    EvalItem,
    Kind,
    load_dataset,
    select_split,
    validate_items,
)
from evals.metrics import (
    Scored,
    answer_accuracy,
    answerability_band,
    citation_precision,
    evidence_rank,
    includes,
    normalise_answer_text,
    percentile,
    reciprocal_rank,
    reliability,
)
from evals.report import compare, compare_backends, render_html, render_markdown
from evals.runner import ItemResult, run_eval, summarise

REPO = Path(__file__).resolve().parents[1]


def _item(**overrides: object) -> EvalItem:
    base = {
        "id": "x1",
        "split": "dev",
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


def _result(
    id_: str,
    kind: str,
    correct: bool,
    refused: bool,
    rank: int | None,
    *,
    lang: str = "sv",
    doc_lang: str | None = "sv",
    split: str = "dev",
    answerability: float | None = None,
) -> ItemResult:
    return ItemResult(
        id=id_,
        kind=kind,
        question_lang=lang,
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
        split=split,
        doc_lang=doc_lang if kind != "unanswerable" else None,
        answerability=answerability,
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
        '{"id": "a", "split": "dev", "question": "", "question_lang": "xx", "doc": "d", '
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
    assert len(items) >= 150
    assert sum(not i.answerable for i in items) >= 25
    texts = {p.name: p.read_text("utf-8") for p in (REPO / "corpus").glob("*.txt")}
    # Evidence is written against the text with whitespace collapsed.
    assert validate_items(items, texts.get) == []


def test_default_dataset_splits_cover_every_kind_and_language() -> None:
    items = load_dataset(REPO / "evals" / "datasets" / "default.jsonl")
    dev, test = select_split(items, "dev"), select_split(items, "test")
    assert len(test) >= 65 and len(dev) >= 79 and len(dev) + len(test) == len(items)
    kinds = set(get_args(Kind))
    assert len(kinds) == 9
    for split in (dev, test):
        assert {i.kind for i in split} == kinds
        assert {i.question_lang for i in split} >= {"sv", "fi", "en"}
    assert sum(not i.answerable for i in test) >= 12


# The ids of the held-out test split, as a digest. Items may be added to the dataset (then
# update the digest in the same commit, and say so), but no item ever moves between splits:
# a changed digest without new items means someone moved test items into dev.
TEST_SPLIT_DIGEST = "a45795c8f5e6904f"


def test_the_test_split_is_fixed() -> None:
    items = load_dataset(REPO / "evals" / "datasets" / "default.jsonl")
    ids = sorted(i.id for i in select_split(items, "test"))
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
    assert digest == TEST_SPLIT_DIGEST, (len(ids), digest)


# The format's rules --------------------------------------------------------------------------
def _load_one(tmp_path: Path, **overrides: object) -> list[EvalItem]:
    base: dict[str, Any] = {
        "id": "q1",
        "split": "test",
        "question": "Och 2024?",
        "question_lang": "sv",
        "kind": "fact",
        "must_include": ["75 754"],
        "doc": "d.txt",
        "evidence": "Liikevaihto 75 754",
    }
    base.update(overrides)
    base = {k: v for k, v in base.items() if v is not None}
    path = tmp_path / "one.jsonl"
    path.write_text("// a comment\n" + json.dumps(base) + "\n", "utf-8")
    return load_dataset(path)


def _problem(tmp_path: Path, **overrides: object) -> str:
    with pytest.raises(DatasetError) as error:
        _load_one(tmp_path, **overrides)
    return str(error.value)


HISTORY = [
    {"role": "user", "content": "Hur stor var omsättningen 2025?"},
    {"role": "assistant", "content": "77 501 tusen euro."},
]


def test_split_is_required_and_checked(tmp_path: Path) -> None:
    assert "one.jsonl:2: field split: Field required" in _problem(tmp_path, split=None)
    assert "one.jsonl:2: field split: Input should be 'dev' or 'test'" in _problem(
        tmp_path, split="train"
    )
    assert _load_one(tmp_path, question_lang="de")[0].question_lang == "de"


def test_history_is_required_for_conversation_kinds_and_forbidden_otherwise(
    tmp_path: Path,
) -> None:
    for kind in ("followup", "topic_switch"):
        (item,) = _load_one(tmp_path, kind=kind, history=HISTORY)
        assert [t.role for t in item.history] == ["user", "assistant"]
        message = _problem(tmp_path, kind=kind)
        assert f"one.jsonl:2: field history: Value error, {kind} items need a history" in message
    assert "field history: Value error, only followup and topic_switch" in _problem(
        tmp_path, kind="fact", history=HISTORY
    )
    assert "field history.0.role" in _problem(
        tmp_path, kind="followup", history=[{"role": "system", "content": "x"}]
    )
    assert "field history.0.content" in _problem(
        tmp_path, kind="followup", history=[{"role": "user", "content": " "}]
    )
    only_assistant = [{"role": "assistant", "content": "Hej"}]
    assert "field history" in _problem(tmp_path, kind="followup", history=only_assistant)


def test_min_include_bounds(tmp_path: Path) -> None:
    must = ["a", "b", "c"]
    (item,) = _load_one(tmp_path, kind="overview", must_include=must, min_include=2)
    assert item.required_count == 2
    assert _load_one(tmp_path, must_include=must)[0].required_count == 3
    for bad in (0, 4):
        assert "field min_include: Value error, must be between 1 and" in _problem(
            tmp_path, must_include=must, min_include=bad
        )


def test_min_include_scores_overview_answers() -> None:
    item = _item(
        kind="overview",
        must_include=["klimatneutral", "resvanor", "K2", "flervetenskapligt"],
        min_include=2,
        evidence="K2 är ett flervetenskapligt centrum",
    )
    two = answer_accuracy(item, "En klimatneutral region; data om resvanor.", False)
    assert two.correct and "2 of 4" in two.reason
    one = answer_accuracy(item, "En klimatneutral region.", False)
    assert not one.correct and "needs 2" in one.reason
    assert not answer_accuracy(item, "klimatneutral resvanor", True).correct
    # Retrieval counts a chunk that holds enough of the facts and most of the evidence's words.
    assert evidence_rank(item, ["nothing", "K2 är flervetenskapligt och klimatneutral"]) == 2


def test_select_split() -> None:
    items = [_item(id="a", split="dev"), _item(id="b", split="test"), _item(id="c")]
    assert [i.id for i in select_split(items, "dev")] == ["a", "c"]
    assert [i.id for i in select_split(items, "test")] == ["b"]
    assert len(select_split(items, "all")) == 3
    with pytest.raises(DatasetError, match="unknown split"):
        select_split(items, "train")


# The runner ----------------------------------------------------------------------------------
class RecordingAssistant:
    """A test double with Assistant.ask's interface: records what it was asked and answers
    with the text of the last history turn plus the question, citing nothing."""

    def __init__(self) -> None:
        self.settings = Settings(top_k=5)
        self.calls: list[tuple[str, list[dict[str, str]]]] = []

    def ask(self, question: str, history: Sequence[dict[str, str]] = ()) -> Answer:
        self.calls.append((question, list(history)))
        refused = question.startswith("Who")
        return Answer(
            answer="" if refused else f"{question} 77 501",
            language="en",
            refused=refused,
            answerability=0.1 if refused else 0.9,
        )


def test_run_passes_history_and_split(tmp_path: Path) -> None:
    items = [
        _item(id="f1", kind="followup", history=HISTORY, question="Och prognosen?", split="test"),
        _item(
            id="u1",
            kind="unanswerable",
            must_include=[],
            doc="none",
            evidence="",
            question="Who is the mayor?",
        ),
    ]
    fake = RecordingAssistant()
    run = run_eval(fake, items, doc_languages={"d.txt": "fi"})
    assert fake.calls == [("Och prognosen?", HISTORY), ("Who is the mayor?", [])]
    first, second = run.items
    assert first.history == HISTORY and first.split == "test" and first.doc_lang == "fi"
    assert first.answerability == 0.9 and second.doc_lang is None
    assert second.correct  # refused an unanswerable question
    assert run.summary["by_split"]["test"]["n"] == 1
    assert run.summary["by_split"]["dev"]["refusal_rate"] == 1.0
    assert set(run.summary["by_kind"]) == {"followup", "unanswerable"}


def test_crosslingual_accuracy_counts_every_item_asked_in_another_language() -> None:
    items = [
        # Question language differs from the document's, whatever the kind.
        _result("t1", "table", True, False, 1, lang="en", doc_lang="fi"),
        _result("f1", "fact", False, False, 1, lang="sv", doc_lang="fi"),
        _result("c1", "crosslingual", True, False, 1, lang="fi", doc_lang="sv"),
        # Same language: not cross-language, although of kind crosslingual.
        _result("c2", "crosslingual", False, False, 1, lang="sv", doc_lang="sv"),
        # Unknown document language and unanswerable items do not count.
        _result("n1", "number", False, False, 1, lang="en", doc_lang=None),
        _result("u1", "unanswerable", False, False, None, lang="en"),
    ]
    summary = summarise(items, k=5)
    assert summary["crosslingual_accuracy"] == round(2 / 3, 4)
    assert summary["crosslingual"]["en->fi"] == {"n": 1, "accuracy": 1.0, "recall_at_k": 1.0}
    assert summary["crosslingual"]["sv->fi"]["accuracy"] == 0.0
    assert set(summary["crosslingual"]) == {"en->fi", "sv->fi", "fi->sv"}
    assert "Cross-language" in render_markdown(
        {"config": {}, "summary": summary, "items": [vars(i) for i in items]}
    )


def test_answerability_bands() -> None:
    assert answerability_band(None) == "none"
    assert answerability_band(0.0) == "0.0-0.2"
    assert answerability_band(0.2) == "0.2-0.4"
    assert answerability_band(0.79) == "0.6-0.8"
    assert answerability_band(1.0) == "0.8-1.0"
    assert answerability_band(1.3) == "0.8-1.0" and answerability_band(-0.1) == "0.0-0.2"


def test_reliability_table_by_band() -> None:
    table = reliability(
        [
            Scored(0.95, True, True),
            Scored(0.9, True, False),
            Scored(0.85, False, False),  # confidently answered an unanswerable question
            Scored(0.1, False, True),
            Scored(0.05, True, False),
            Scored(None, True, True),
        ]
    )
    bands: Any = table["bands"]
    assert list(bands) == ["0.0-0.2", "0.8-1.0", "none"]
    high = bands["0.8-1.0"]
    assert high["n"] == 3 and high["mean_score"] == 0.9
    assert high["answerable"] == {"n": 2, "accuracy": 0.5}
    assert high["unanswerable"] == {"n": 1, "accuracy": 0.0}
    assert bands["0.0-0.2"]["unanswerable"] == {"n": 1, "accuracy": 1.0}
    assert bands["none"]["mean_score"] is None and bands["none"]["answerable"]["n"] == 1
    assert table["scored_items"] == 5
    # (0.05^2 + 0.1^2 + 0.85^2 + 0.1^2 + 0.95^2) / 5
    assert table["brier"] == pytest.approx(0.3295, abs=1e-4)
    assert reliability([Scored(None, True, True)])["brier"] is None


def test_reports_show_reliability_and_backends_side_by_side() -> None:
    items = [
        _result("a", "fact", True, False, 1, answerability=0.9, split="test"),
        _result("u", "unanswerable", True, True, None, answerability=0.1, split="test"),
    ]
    summary = summarise(items, k=5)
    run = {"config": {}, "summary": summary, "items": [vars(i) for i in items]}
    markdown = render_markdown(run)
    assert "| 0.8-1.0 | 1 | 0.900 | 1 | 1.000 | 0 | – |" in markdown
    assert "| 0.0-0.2 | 1 | 0.100 | 0 | – | 1 | 1.000 |" in markdown
    assert "| test | 2 |" in markdown
    page = render_html(run)
    assert "Reliability of the answerability score" in page and "<th>answerability</th>" in page
    worse = json.loads(json.dumps(run))
    worse["summary"]["answer_accuracy"] = 0.25
    table = compare_backends({"extractive": run, "llamacpp": worse})
    assert "| metric | extractive | llamacpp |" in table
    assert "| answer accuracy (answerable, with valid citation) | 1.000 | 0.250 |" in table
    assert "| accuracy: unanswerable | 1.000 | 1.000 |" in table


def test_validate_rebuilds_pages_from_overlapping_chunks() -> None:
    from assistant.cli import _rebuilt

    page = "Alpha beta gamma. Delta epsilon zeta. Eta theta iota."
    # Two chunks overlapping on "Delta epsilon zeta.": joined whole, the passage across the
    # boundary ("zeta. Eta") would appear nowhere and "Delta" twice.
    spans = {0: page[:37], 18: page[18:]}
    assert _rebuilt(spans) == page
    assert _rebuilt({0: "Alpha", 10: "gamma"}) == "Alpha     gamma"
