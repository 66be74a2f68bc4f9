"""The eval suite as a regression gate. It runs the held-out TEST split only: the answerer is
tuned on the dev split, so these figures say how it does on questions nobody tuned for.

The thresholds may only ever go up. Raise them (to just under a new measurement) when the
scores improve; never lower them, never move items between splits, never edit or replace a
test item to make the gate pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.answer.base import AnswerBackend, GenerationRequest
from assistant.core import Assistant
from assistant.settings import Settings
from evals.dataset import load_dataset, select_split
from evals.report import write_reports
from evals.runner import run_eval

REPO = Path(__file__).resolve().parents[1]

# Default dataset, test split, offline default (e5-small + extractive). This gate is new with
# the held-out split: the earlier gate (0.50 / 0.78 / 0.57) was measured on the 79 items the
# answerer had been tuned on, which are now the dev split. Measured 2026-12-02 at the answer
# step of 2ff97a1 with `assistant eval run --split test`: answer accuracy 0.500 (34/68),
# recall@5 0.868, refusal rate 0.462 (6/13); each set one item under. Raised 2026-12-03 after
# tables were kept whole in one chunk, on a freshly built index: accuracy 0.559 (38/68),
# recall@5 0.926 (63/68), refusal 0.462 (6/13); set about one item under. Raised again on
# 2026-12-03 (second session) at 50b6581, fresh index: accuracy 0.632 (43/68), recall@5 0.956
# (65/68), refusal 0.538 (7/13), false refusals 0.059 (4/68); each set one item under (over,
# for false refusals). Accuracy raised at 5951c5f: 0.647 (44/68). Only ever raise these (lower,
# for false refusals). Raised on 2026-12-03 (fourth session) with the public-sector lexicon at
# 4747666, fresh index: accuracy 0.676 (46/68), refusal 0.538 (7/13), false refusals 0.059
# (4/68); accuracy set one item under. Raised again at 849d11b (fresh index): accuracy 0.706
# (48/68), recall@5 0.956 (65/68), refusal 0.615 (8/13), false refusals 0.029 (2/68); each set
# one item under (over, for false refusals). Refusal raised on 2026-12-03 (fifth session) at
# abd6498 (names no document uses, turnout as a rate, interest rate), fresh index: refusal
# 0.692 (9/13), accuracy 0.706 (48/68), false refusals 0.029 (2/68); set one item under.
MIN_ANSWER_ACCURACY = 0.69
MIN_RECALL = 0.94
MIN_REFUSAL_RATE = 0.61
MAX_FALSE_REFUSALS = 0.045

# Second corpus (German Debian Reference), test split. Measured 2026-12-02 at 7c058cb with
# `assistant eval run --dataset evals/datasets/debian-reference-de.jsonl --corpus
# evals/corpora/debian-reference-de --split test`: answer accuracy 0.48 (12/25), recall@5
# 0.92, refusal rate 0.29 (2/7); set one item under. Raised 2026-12-03: recall@5 0.96 (24/25),
# accuracy and refusal unchanged. Raised on 2026-12-03 (second session) at 50b6581: accuracy
# 0.52 (13/25), recall@5 0.96, refusal 0.29. Only ever raise these.
GERMAN_DATASET = REPO / "evals" / "datasets" / "debian-reference-de.jsonl"
GERMAN_CORPUS = REPO / "evals" / "corpora" / "debian-reference-de"
MIN_DE_ANSWER_ACCURACY = 0.48
MIN_DE_RECALL = 0.92
MIN_DE_REFUSAL_RATE = 0.14


def test_default_eval_test_split_meets_thresholds(
    corpus_assistant: Assistant, tmp_path: Path
) -> None:
    items = select_split(load_dataset(REPO / "evals" / "datasets" / "default.jsonl"), "test")
    assert len(items) >= 65
    run = run_eval(corpus_assistant, items, config={"backend": "extractive", "split": "test"})
    summary = run.summary
    write_reports(run.to_dict(), tmp_path)
    assert (tmp_path / "report.html").stat().st_size > 1000
    assert set(summary["by_split"]) == {"test"}
    assert summary["errors"] == 0
    assert summary["answer_accuracy"] >= MIN_ANSWER_ACCURACY, summary
    assert summary["recall_at_k"] >= MIN_RECALL, summary
    assert summary["refusal_rate"] >= MIN_REFUSAL_RATE, summary
    assert summary["false_refusal_rate"] <= MAX_FALSE_REFUSALS, summary


def test_german_eval_test_split_meets_thresholds(fresh_data_dir: Path, tmp_path: Path) -> None:
    if not GERMAN_CORPUS.is_dir():
        pytest.skip(f"the German eval corpus {GERMAN_CORPUS.relative_to(REPO)} does not exist yet")
    items = select_split(load_dataset(GERMAN_DATASET), "test")
    assistant = Assistant(
        Settings(data_dir=fresh_data_dir, collection=GERMAN_CORPUS.name, corpus_dir=GERMAN_CORPUS)
    )
    report = assistant.ingest([GERMAN_CORPUS])
    assert report.ok and report.chunks_total > 0, report.as_dict()
    run = run_eval(assistant, items, config={"backend": "extractive", "split": "test"})
    summary = run.summary
    write_reports(run.to_dict(), tmp_path)
    assert summary["errors"] == 0
    assert summary["answer_accuracy"] >= MIN_DE_ANSWER_ACCURACY, summary
    assert summary["recall_at_k"] >= MIN_DE_RECALL, summary
    if summary["refusal_rate"] is not None:
        assert summary["refusal_rate"] >= MIN_DE_REFUSAL_RATE, summary


class SilentBackend(AnswerBackend):
    """Writes nothing citable, so every answer becomes a refusal: a second backend for the
    side-by-side run, registered by name like any other."""

    name = "silent"

    def generate(self, request: GenerationRequest) -> str:
        return "Nothing to say."


MINI_DOC = (
    "Kaffepolicy för kontoret\n\n"
    "Kaffemaskinen på plan 3 rengörs varje fredag av fastighetsavdelningen. "
    "Varje medarbetare får två gratis koppar kaffe per dag.\n"
)


def _mini_dataset(path: Path) -> None:
    lines = [
        {
            "id": "m1",
            "split": "test",
            "question": "Hur många gratis koppar kaffe får en medarbetare per dag?",
            "question_lang": "sv",
            "kind": "number",
            "must_include": ["två"],
            "doc": "kaffe.txt",
            "evidence": "Varje medarbetare får två gratis koppar kaffe per dag.",
        },
        {
            "id": "m2",
            "split": "test",
            "question": "Och vem rengör kaffemaskinen?",
            "question_lang": "sv",
            "kind": "followup",
            "history": [{"role": "user", "content": "Var står kaffemaskinen?"}],
            "must_include": ["fastighetsavdelningen"],
            "doc": "kaffe.txt",
            "evidence": "rengörs varje fredag av fastighetsavdelningen",
        },
        {
            "id": "m3",
            "split": "dev",
            "question": "Vem är vd?",
            "question_lang": "sv",
            "kind": "unanswerable",
            "doc": "none",
        },
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", "utf-8")


def test_cli_runs_a_corpus_split_and_backends_side_by_side(
    fresh_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant.answer import registry
    from assistant.cli import app

    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(fresh_data_dir))
    monkeypatch.setitem(registry.BACKENDS, "silent", lambda settings, embedder: SilentBackend())
    corpus = tmp_path / "kontor-policy"
    corpus.mkdir()
    (corpus / "kaffe.txt").write_text(MINI_DOC, "utf-8")
    dataset = tmp_path / "mini.jsonl"
    _mini_dataset(dataset)
    out = tmp_path / "reports"
    runner = CliRunner()

    validate = runner.invoke(app, ["eval", "validate", str(dataset), "--corpus", str(corpus)])
    assert validate.exit_code == 0, validate.output
    # The corpus goes into its own collection, named after the folder.
    assert "collection 'kontor-policy': added 1" in validate.output
    assert "3 items, 0 problems" in validate.output

    base = ["eval", "run", "--dataset", str(dataset), "--corpus", str(corpus)]
    backends = ["--backend", "extractive", "--backend", "silent"]
    result = runner.invoke(app, [*base, *backends, "--split", "test", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "unchanged 1" in result.output  # ingest is idempotent
    assert "| metric | extractive | silent |" in result.output
    assert (out / "comparison.md").is_file()
    runs = {
        name: json.loads((out / name / "report.json").read_text("utf-8"))
        for name in ("extractive", "silent")
    }
    for name, run in runs.items():
        assert [i["id"] for i in run["items"]] == ["m1", "m2"], name  # test split only
        assert run["config"]["collection"] == "kontor-policy"
        assert run["items"][1]["history"] == [
            {"role": "user", "content": "Var står kaffemaskinen?"}
        ]
    assert runs["silent"]["summary"]["false_refusal_rate"] == 1.0, runs["silent"]["items"]
    assert runs["extractive"]["summary"]["items"] == 2

    dev_out = tmp_path / "dev"
    again = runner.invoke(app, [*base, "--split", "dev", "--out", str(dev_out)])
    assert again.exit_code == 0, again.output
    dev = json.loads((dev_out / "report.json").read_text("utf-8"))
    assert [i["id"] for i in dev["items"]] == ["m3"]
    assert "refusal rate" in again.output  # one backend: its summary table
    # The default collection was never touched.
    assert Assistant(Settings(data_dir=fresh_data_dir)).store.count() == 0

    # A threshold fails the run; the silent backend refuses everything.
    gate = runner.invoke(
        app, [*base, "--backend", "silent", "--out", str(tmp_path / "g"), "--min-accuracy", "0.5"]
    )
    assert gate.exit_code == 1 and "silent: answer accuracy 0.000 < 0.5" in gate.output
    bad = runner.invoke(app, [*base, "--split", "nope", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "unknown split" in bad.output
