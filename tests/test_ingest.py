"""Ingestion with the real model and a real Chroma in a temporary directory."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from assistant.core import Assistant
from assistant.errors import IndexMismatchError
from assistant.settings import Settings
from assistant.store.chroma import ChromaStore
from assistant.store.lexical import fingerprint
from assistant.store.records import ChunkMeta

REPO = Path(__file__).resolve().parents[1]


def _chunk_with(assistant: Assistant, needle: str) -> ChunkMeta:
    for chunk in assistant.store.iter_chunks():
        if needle in chunk.text:
            return chunk.meta
    raise AssertionError(f"no chunk contains {needle!r}")


def test_corpus_chunks_carry_pages_languages_and_sections(corpus_assistant: Assistant) -> None:
    assert _chunk_with(corpus_assistant, "Hälso- och sjukvårdslagen (2017:30)").page == 1
    assert _chunk_with(corpus_assistant, "Region Stockholm och Karolinska Institutet har").page == 2
    row = _chunk_with(corpus_assistant, "Liikevaihto 75 754 77 501 77 501 77 501 0")
    assert row.page == 15
    assert row.language == "fi"
    assert _chunk_with(corpus_assistant, "Forskning bygger på långsiktiga").language == "sv"
    sections = {c.meta.section for c in corpus_assistant.store.iter_chunks()}
    assert {"1. Inledning", "2. Syfte", "3. Tillämpning"} <= sections
    # A numbered heading that runs on over two lines is one heading (its section was lost).
    assert (
        "5.1.1.3 Universitetssjukvården och kunskapsstyrningen ska göra forskningsresultat "
        "till klinisk vardag"
    ) in sections
    status = corpus_assistant.status()
    assert status["documents"] == 2
    assert status["languages"] == {"sv": 1, "fi": 1}
    assert status["embedding_model"] == "intfloat/multilingual-e5-small"


def test_chunks_respect_token_limit_and_keep_table_rows_whole(corpus_assistant: Assistant) -> None:
    from assistant.ingest.chunking import LIST_CHUNKS, TABLE_CHUNKS
    from assistant.tokens import count_tokens

    limit = corpus_assistant.settings.chunk_tokens
    texts = [c.text for c in corpus_assistant.store.iter_chunks()]
    tables = [t for t in texts if "Liikevaihto 75 754" in t]
    lists = [t for t in texts if re.search(r":\s*\n• ", t) and t not in tables]
    assert all(count_tokens(t) <= limit + 5 for t in texts if t not in tables + lists)
    assert all(count_tokens(t) <= LIST_CHUNKS * limit + 5 for t in lists)
    # A list stays with its introduction (it was cut after its first item).
    intro = "Region Stockholm har tecknat avsiktsförklaringar med:"
    with_intro = [t for t in texts if intro in t and "LS 2015–1096" in t]
    assert with_intro and all("LS 1406–0706" in t for t in with_intro)
    # The Tilakeskus table is one chunk, caption and headers to its last row (split over
    # four chunks, its lower rows lost the caption and were not retrieved).
    assert len(tables) == 1
    table = tables[0]
    assert limit < count_tokens(table) <= TABLE_CHUNKS * limit
    assert table.startswith("Lahden Tilakeskus\n1 000 euroa TP 2024")
    assert table.rstrip().endswith("SITOVA TASO YLI-/ALIJÄÄMÄ 6 196 1 634 1 634 2 634 1 000")
    source = (REPO / "corpus" / "lahti-konsernihallinto-seurantaraportti-q1-2025.txt").read_text()
    rows = [
        line.strip()
        for line in source.splitlines()
        if line.startswith("Palvelujen ostot")
        or line.startswith("Henkilöstökulut")
        or line.startswith("SITOVA TASO")
    ]
    assert len(rows) == 3
    for row in rows:
        assert any(row in text for text in texts), row
    # Hyphenation across lines is repaired, compound dashes are kept.
    joined = " ".join(texts)
    assert "forsknings- och utvecklingsstrategi" in joined
    assert "uppfölj-" not in joined


def _small_corpus(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    a = folder / "budget.md"
    a.write_text(
        "# Budget 2026\n\nThe library budget for 2026 is 4.2 million euros.\n\n"
        "## Staff\n\nThe library employs 31 people in three branches.\n",
        "utf-8",
    )
    b = folder / "plan.txt"
    b.write_text(
        "Strategin för 2027 prioriterar klimatanpassning och digital service.\n"
        "Målet är att halvera utsläppen till 2030.\n",
        "utf-8",
    )
    return [a, b]


def _consistency(assistant: Assistant) -> None:
    """No duplicate, no orphan: every document complete with one hash, every sentence has
    its chunk, the lexical index matches the store."""
    meta = assistant.store.metadata_by_id()
    per_doc: dict[str, list[ChunkMeta]] = {}
    for m in meta.values():
        per_doc.setdefault(m.doc_id, []).append(m)
    for doc, chunks in per_doc.items():
        assert len({c.content_hash for c in chunks}) == 1, doc
        assert {c.n_chunks for c in chunks} == {len(chunks)}, doc
        assert sorted(c.chunk_index for c in chunks) == list(range(len(chunks))), doc
    parents = {m.parent for m in assistant.sentences.metadata_by_id().values()}
    assert parents <= set(meta)
    assert assistant.lexical.fingerprint == fingerprint(meta)


def test_reingest_edit_delete_prune(
    tmp_path: Path, fresh_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    docs = _small_corpus(tmp_path / "docs")
    assistant = Assistant(Settings(data_dir=fresh_data_dir))
    first = assistant.ingest([tmp_path / "docs"])
    assert sorted(first.added) == ["docs/budget.md", "docs/plan.txt"] and first.ok
    total = first.chunks_total
    _consistency(assistant)

    again = assistant.ingest([tmp_path / "docs"])
    assert again.chunks_written == 0 and again.chunks_deleted == 0
    assert len(again.unchanged) == 2 and not again.lexical_rebuilt

    docs[0].write_text(docs[0].read_text().replace("4.2 million", "5.1 million"), "utf-8")
    edited = assistant.ingest([tmp_path / "docs"])
    assert edited.updated == ["docs/budget.md"] and edited.unchanged == ["docs/plan.txt"]
    assert edited.chunks_written >= 1 and edited.chunks_total == total
    assert any("5.1 million" in c.text for c in assistant.store.iter_chunks())
    assert not any("4.2 million" in c.text for c in assistant.store.iter_chunks())
    _consistency(assistant)

    docs[1].unlink()
    kept = assistant.ingest([tmp_path / "docs"])
    assert kept.removed == []  # without --prune nothing is removed
    pruned = assistant.ingest([tmp_path / "docs"], prune=True)
    assert pruned.removed == ["docs/plan.txt"]
    assert {m.doc_id for m in assistant.store.metadata_by_id().values()} == {"docs/budget.md"}
    _consistency(assistant)


def test_opening_with_another_model_is_a_clear_error(corpus_index: Path) -> None:
    from assistant.store.chroma import make_client

    client = make_client(Settings(data_dir=corpus_index))
    with pytest.raises(IndexMismatchError, match=r"[Rr]e-index"):
        ChromaStore(client, "default", "some/other-model", 768, records=ChunkMeta)


def _broken_files(folder: Path) -> dict[str, str]:
    from pypdf import PdfWriter

    folder.mkdir()
    (folder / "empty.pdf").write_bytes(b"")
    (folder / "fake.pdf").write_text("this is not a pdf at all", "utf-8")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02binary" * 20)
    (folder / "notes.xyz").write_text("unsupported", "utf-8")
    (folder / "whitespace.md").write_text("   \n\n  ", "utf-8")
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.encrypt(user_password="secret", owner_password="owner")
    with (folder / "locked.pdf").open("wb") as handle:
        writer.write(handle)
    (folder / "good.md").write_text("# Good\n\nThe good file says the answer is 42.\n", "utf-8")
    return {
        "empty.pdf": "empty",
        "fake.pdf": "not a real .pdf",
        "binary.txt": "binary",
        "whitespace.md": "no extractable text",
        "locked.pdf": "encrypted",
    }


def test_broken_files_are_reported_and_skipped(tmp_path: Path, fresh_data_dir: Path) -> None:
    expected = _broken_files(tmp_path / "bad")
    assistant = Assistant(Settings(data_dir=fresh_data_dir))
    report = assistant.ingest([tmp_path / "bad", tmp_path / "bad" / "notes.xyz"])
    reasons = {Path(path).name: reason for path, reason in report.failed}
    for name, fragment in expected.items():
        assert fragment in reasons[name], (name, reasons.get(name))
    assert "unsupported" in reasons["notes.xyz"]
    assert len(report.added) == 1 and report.added[0].endswith("good.md")
    assert not report.ok


def test_cli_ingest_exit_code_and_status_json(tmp_path: Path, fresh_data_dir: Path) -> None:
    _broken_files(tmp_path / "bad")
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(fresh_data_dir)}
    cli = [sys.executable, "-m", "assistant.cli"]
    run = subprocess.run(
        [*cli, "ingest", "--json", str(tmp_path / "bad")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 1, run.stderr
    summary = json.loads(run.stdout)
    assert len(summary["failed"]) == 5 and len(summary["added"]) == 1
    status = subprocess.run(
        [*cli, "index", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["documents"] == 1


@pytest.mark.slow
def test_kill_during_ingest_then_rerun_is_consistent(tmp_path: Path, fresh_data_dir: Path) -> None:
    """SIGKILL of `assistant ingest` (embedded Chroma) a random moment (0-1 s) after its first
    write reached the database, twice, with a file changed in between; then a full run: no
    duplicate, no orphan, every chunk with its sentences, nothing left to do."""
    import random

    from assistant.store.chroma import WRITES_MARKER

    folder = tmp_path / "many"
    folder.mkdir()
    source = (REPO / "corpus" / "region-stockholm-fou-strategi.txt").read_text("utf-8")
    paragraphs = [p for p in source.split("\n\n") if len(p) > 80]
    for index in range(12):
        body = "\n\n".join(paragraphs[(index * 7) % len(paragraphs) :][:8])
        (folder / f"doc{index:02}.md").write_text(f"# Dokument {index}\n\n{body}\n", "utf-8")
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(fresh_data_dir)}
    cli = [sys.executable, "-m", "assistant.cli", "ingest", "--json", str(folder)]
    # Replaced after every write (assistant.store.chroma): the run has started writing.
    marker = fresh_data_dir / "index" / "chroma" / WRITES_MARKER
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)

    def stamp() -> int | None:
        return marker.stat().st_mtime_ns if marker.exists() else None

    for run in range(2):
        before = stamp()
        process = subprocess.Popen(
            cli, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 300
        while process.poll() is None and stamp() == before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.0))
        assert process.poll() is None, f"run {run} ended before it could be killed (seed {seed})"
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL, seed
        if run == 0:  # a partially written update is exercised too
            (folder / "doc00.md").write_text(
                "# Ändrad\n\nHelt ny text om budgeten 2031.\n", "utf-8"
            )
    # The repairing run in this process: the same Assistant.ingest as the CLI's, without a
    # third model start-up.
    assistant = Assistant(Settings(data_dir=fresh_data_dir))
    final = assistant.ingest([folder])
    assert final.ok, (seed, final.as_dict())
    _consistency(assistant)
    docs = Counter(m.doc_id for m in assistant.store.metadata_by_id().values())
    assert len(docs) == 12, seed
    assert any("budgeten 2031" in c.text for c in assistant.store.iter_chunks()), seed
    again = assistant.ingest([folder])
    assert again.chunks_written == 0 and len(again.unchanged) == 12, seed
    assert again.sentences_repaired == 0 and again.orphans_removed == 0, seed


def test_tiktoken_works_without_network(tmp_path: Path) -> None:
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -n is not permitted here")
    code = (
        "from assistant.tokens import count_tokens; "
        "print(count_tokens('Liikevaihto 75 754 euroa, hälso- och sjukvård'))"
    )
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty-cache")}
    run = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) > 5


def test_changing_access_groups_rewrites_chunks_and_sentences(
    tmp_path: Path, fresh_data_dir: Path
) -> None:
    from assistant.retrieve import Filters

    (tmp_path / "memo.md").write_text(
        "# Memo\n\nThe merger with the northern district is planned for 2028.\n", "utf-8"
    )
    assistant = Assistant(Settings(data_dir=fresh_data_dir))
    assistant.ingest([tmp_path / "memo.md"], groups=["hr"])
    report = assistant.ingest([tmp_path / "memo.md"], groups=["finance"])
    assert report.updated and report.chunks_written == 0  # same text: vectors are kept
    collection = assistant.settings.collection
    for name in (collection, f"{collection}-sentences"):
        # The stored encoding itself: the access filter matches on the group: keys.
        stored = assistant._client.get_collection(name).get(include=["metadatas"])["metadatas"]
        for meta in stored:
            assert meta["groups"] == "finance" and meta.get("group:finance") is True
            assert "group:hr" not in meta
    question = "When is the merger with the northern district planned?"
    assert assistant.ask(question, filters=Filters(groups=("hr",))).retrieved == []
    assert assistant.ask(question, filters=Filters(groups=("finance",))).retrieved
