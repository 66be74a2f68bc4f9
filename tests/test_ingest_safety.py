"""One writer at a time, damage detected and repaired, access groups kept, hostile files
refused with a reason, document ids independent of the working directory. Real model, real
embedded Chroma, real processes for the concurrency tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from test_ingest import _consistency, _small_corpus

from assistant.core import Assistant
from assistant.ingest.check import inspect
from assistant.ingest.lock import lock_path, writer_lock
from assistant.ingest.pipeline import Ingestor
from assistant.ingest.sentences import sentences_of
from assistant.settings import Settings

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "assistant.cli"]


def every_chunk_has_its_sentences(assistant: Assistant) -> int:
    """The consistency check of the issue: for every chunk, each sentence it lists exists, and
    so does every sentence its text yields (recomputed here, independently of the ingest).
    Returns the number of chunks checked."""
    sentences = assistant.sentences.metadata_by_id()
    chunks = list(assistant.store.iter_chunks())
    for chunk in chunks:
        listed = list(chunk.meta.sentence_ids or ())
        expected = [s.sentence_id for s in sentences_of(chunk, chunk.text)]
        assert sorted(listed) == sorted(expected), chunk.doc_id
        for sentence_id in listed:
            assert sentences[sentence_id].parent == chunk.chunk_id, chunk.doc_id
    parents = {m.parent for m in sentences.values()}
    assert parents <= {c.chunk_id for c in chunks}, "orphan sentences"
    return len(chunks)


def _folder_of_documents(folder: Path, count: int, offset: int = 0) -> Path:
    source = (REPO / "corpus" / "region-stockholm-fou-strategi.txt").read_text("utf-8")
    paragraphs = [p for p in source.split("\n\n") if len(p) > 80]
    folder.mkdir(parents=True)
    for index in range(count):
        body = "\n\n".join(paragraphs[((index + offset) * 5) % len(paragraphs) :][:6])
        (folder / f"doc{index:02}.md").write_text(f"# Dokument {index}\n\n{body}\n", "utf-8")
    return folder


def _wait_for_line(process: subprocess.Popen[str], text: str) -> None:
    """Reads the process's stderr until a line holds text (it blocks while the process has
    said nothing more; the line is what proves the process reached that point)."""
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if text in line:
            return
    raise AssertionError(f"{text!r} never written; stderr: {''.join(seen)[-2000:]}")


def test_two_concurrent_ingests_are_serialised_and_leave_every_sentence(
    tmp_path: Path, fresh_data_dir: Path
) -> None:
    """Two `assistant ingest` processes at once on one data dir, over folders that share a
    file. Both are started while the write lock is taken, so both must wait, then run one
    after the other: nothing is lost, and every chunk has all its sentences."""
    first = _folder_of_documents(tmp_path / "a", 8)
    second = _folder_of_documents(tmp_path / "b", 6, offset=3)
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(fresh_data_dir)}
    lock = lock_path(Settings(data_dir=fresh_data_dir).index_dir, "default")
    processes = []
    with writer_lock(lock):
        for paths in ([first], [second, first / "doc00.md"]):
            process = subprocess.Popen(
                [*CLI, "ingest", "--json", *map(str, paths)],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            processes.append(process)
        for process in processes:
            _wait_for_line(process, "waiting for it")
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-2000:]
        reports.append(json.loads(out))
    added = [doc for report in reports for doc in report["added"]]
    assert sorted(added) == sorted(set(added)) and len(added) == 14
    assert [doc for report in reports for doc in report["unchanged"]] == ["a/doc00.md"]

    assistant = Assistant(Settings(data_dir=fresh_data_dir))
    assert every_chunk_has_its_sentences(assistant) == max(r["chunks_total"] for r in reports)
    damage = inspect(assistant.store, assistant.sentences, "test")
    assert damage.ok, damage.as_dict()
    _consistency(assistant)
    assert assistant.status()["documents"] == 14


def test_no_wait_fails_fast_and_a_waiting_ingest_says_so(
    tmp_path: Path, fresh_data_dir: Path
) -> None:
    _small_corpus(tmp_path / "docs")
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(fresh_data_dir)}
    lock = lock_path(Settings(data_dir=fresh_data_dir).index_dir, "default")
    with writer_lock(lock):
        started = time.monotonic()
        refused = subprocess.run(
            [*CLI, "ingest", "--no-wait", str(tmp_path / "docs")],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode == 2, refused.stderr
        assert "another ingest is writing to this index" in refused.stderr
        assert f"pid {os.getpid()}" in refused.stderr
        assert time.monotonic() - started < 60  # no embedding was started
        waiting = subprocess.Popen(
            [*CLI, "ingest", "--json", str(tmp_path / "docs")],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for_line(waiting, "waiting for it")
        assert waiting.poll() is None
    out, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err
    assert len(json.loads(out)["added"]) == 2


def test_lost_sentences_are_found_by_check_and_repaired_by_a_reingest(
    tmp_path: Path, fresh_data_dir: Path
) -> None:
    """The damage two unserialised ingests used to cause: sentences of existing chunks gone,
    while every file still reads as unchanged."""
    _small_corpus(tmp_path / "docs")
    settings = Settings(data_dir=fresh_data_dir)
    assistant = Assistant(settings)
    assistant.ingest([tmp_path / "docs"])
    total = len(assistant.sentences.metadata_by_id())
    victims = sorted(assistant.sentences.metadata_by_id())[: total // 2 + 1]
    assistant.sentences.delete(victims)

    env = {**os.environ, "ASSISTANT_DATA_DIR": str(fresh_data_dir)}
    check = subprocess.run(
        [*CLI, "index", "check", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 1, check.stderr
    found = json.loads(check.stdout)
    assert found["missing_sentences"] == len(victims) and not found["ok"]

    report = assistant.ingest([tmp_path / "docs"])
    assert len(report.unchanged) == 2 and report.chunks_written == 0
    assert report.sentences_repaired == len(victims)
    assert len(assistant.sentences.metadata_by_id()) == total
    every_chunk_has_its_sentences(assistant)

    # And on demand, for damage a re-ingest of other folders would not touch.
    assistant.sentences.delete(victims[:1])
    repaired = subprocess.run(
        [*CLI, "index", "check", "--repair", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert repaired.returncode == 0, repaired.stderr
    assert json.loads(repaired.stdout)["sentences_repaired"] == 1
    every_chunk_has_its_sentences(Assistant(settings))


def test_orphan_sweep_spares_a_recent_write_of_another_writer(
    tmp_path: Path, fresh_data_dir: Path
) -> None:
    """Sentences written by a writer elsewhere (another host on the same Chroma server) whose
    chunk is not written yet are left alone; old ones and this lock's own are swept."""
    _small_corpus(tmp_path / "docs")
    assistant = Assistant(Settings(data_dir=fresh_data_dir))
    assistant.ingest([tmp_path / "docs"])
    records = assistant.sentences.get_with_vectors(sorted(assistant.sentences.metadata_by_id()))
    now = int(time.time())
    planted = []
    for index, (writer, age) in enumerate(
        [("elsewhere", 5), ("elsewhere", 3600), (Ingestor.for_assistant(assistant).writer, 5)]
    ):
        record, vector = records[index]
        meta = replace(
            record.meta, parent=f"chunk-in-progress-{index}", writer=writer, written_at=now - age
        )
        planted.append((replace(record, chunk_id=f"planted-{index}", meta=meta), vector))
    import numpy as np

    assistant.sentences.upsert([p[0] for p in planted], np.stack([p[1] for p in planted]))
    report = assistant.ingest([tmp_path / "docs"])
    assert report.orphans_removed == 2
    left = set(assistant.sentences.metadata_by_id())
    assert "planted-0" in left and "planted-1" not in left and "planted-2" not in left


def test_access_groups_belong_to_the_document(tmp_path: Path, fresh_data_dir: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "b").mkdir(parents=True)
    (docs / "open.md").write_text("# Open\n\nThe canteen opens at eight every weekday.\n")
    (docs / "b" / "secret.md").write_text("# Secret\n\nProject Polaris ends in March 2027.\n")
    assistant = Assistant(Settings(data_dir=fresh_data_dir))

    def groups() -> dict[str, str]:
        return {d["doc_id"]: d["groups"] for d in assistant.status()["document_list"]}

    assistant.ingest([docs / "b"], groups=["b"])
    # The nightly job over the parent folder, without --groups: nothing becomes public.
    nightly = assistant.ingest([docs])
    assert groups() == {"docs/open.md": "", "docs/b/secret.md": "b"}
    assert nightly.groups_changed == [] and nightly.unchanged == ["docs/b/secret.md"]
    # A groups file beside the documents changes them, and the summary says so.
    (docs / "b" / ".assistant-groups").write_text("# who may read docs/b\nb, board\n")
    changed = assistant.ingest([docs])
    assert changed.groups_changed == [("docs/b/secret.md", "b", "b,board")]
    assert groups()["docs/b/secret.md"] == "b,board" and changed.chunks_written == 0
    # An explicit --groups wins over the file; '' (no groups) makes them public.
    public = assistant.ingest([docs / "b" / "secret.md"], groups=[])
    assert public.groups_changed == [("docs/b/secret.md", "b,board", "")]
    assert groups()["docs/b/secret.md"] == ""
    _consistency(assistant)


def test_cli_summary_reports_changed_groups(tmp_path: Path, fresh_data_dir: Path) -> None:
    (tmp_path / "memo.md").write_text("# Memo\n\nThe merger is planned for 2028.\n")
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(fresh_data_dir)}
    for args in (["--groups", "hr"], [], ["--groups", "hr,finance"]):
        run = subprocess.run(
            [*CLI, "ingest", *args, str(tmp_path / "memo.md")],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr
    assert "access groups changed: memo.md: hr -> finance,hr" in run.stdout


def _docx_bomb(path: Path, unpacked_mb: int) -> None:
    """A .docx whose document.xml unpacks to unpacked_mb megabytes of one repeated letter."""
    run = "<w:p><w:r><w:t>" + "a" * 1_000_000 + "</w:t></w:r></w:p>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w") as handle:
            for _ in range(unpacked_mb):
                handle.write(run.encode())


def test_hostile_files_are_refused_with_a_reason(tmp_path: Path, fresh_data_dir: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "huge.txt").write_text("Ett två tre fyra fem sex sju åtta. " * 40_000, "utf-8")
    (bad / "long.md").write_text("# Lång\n\n" + "Budgeten ökar varje år med tre procent. " * 3000)
    _docx_bomb(bad / "bomb.docx", 300)
    (bad / "invisible.txt").write_text("\u200b\u200c\u200d\ufeff\u2060" * 50, "utf-8")
    (bad / "utf16.txt").write_text(
        "Budgeten för 2026 är 4,2 miljoner euro enligt planen.\n", "utf-16"
    )
    (bad / "utf8bom.md").write_bytes(
        "\ufeff# Plan\n\nMålet är att halvera utsläppen till 2030.\n".encode()
    )
    loop = bad / "loop"
    loop.mkdir()
    (loop / "again").symlink_to(bad, target_is_directory=True)
    (bad / "dangling.md").symlink_to(bad / "nowhere.md")
    (bad / "good.md").write_text("# Good\n\nThe good file says the answer is 42.\n", "utf-8")
    settings = Settings(data_dir=fresh_data_dir, ingest_max_file_mb=1.0, ingest_max_chars=100_000)
    started = time.monotonic()
    report = Assistant(settings).ingest([bad])
    seconds = time.monotonic() - started
    reasons = {Path(path).name: reason for path, reason in report.failed}
    assert "ASSISTANT_INGEST_MAX_FILE_MB" in reasons["huge.txt"], reasons
    assert "ASSISTANT_INGEST_MAX_CHARS" in reasons["long.md"], reasons
    assert "zip bomb" in reasons["bomb.docx"], reasons
    assert "ASSISTANT_INGEST_DOCX_MAX" in reasons["bomb.docx"], reasons
    assert "no text left after cleaning" in reasons["invisible.txt"], reasons
    assert "symbolic link loop" in reasons["again"], reasons
    assert "broken symbolic link" in reasons["dangling.md"], reasons
    assert sorted(Path(d).name for d in report.added) == ["good.md", "utf16.txt", "utf8bom.md"]
    assert len(report.failed) == 6
    texts = " ".join(c.text for c in Assistant(settings).store.iter_chunks())
    assert "4,2 miljoner euro" in texts and "halvera utsläppen" in texts
    assert seconds < 120, seconds


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file and folder")
def test_unreadable_files_and_folders_are_reported(tmp_path: Path, fresh_data_dir: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "closed").mkdir(parents=True)
    (docs / "closed" / "x.md").write_text("# X\n\nHidden text of the closed folder.\n")
    (docs / "locked.md").write_text("# Locked\n\nNobody may read this file.\n")
    (docs / "good.md").write_text("# Good\n\nThe good file says the answer is 42.\n")
    (docs / "closed").chmod(0)
    (docs / "locked.md").chmod(0)
    try:
        report = Assistant(Settings(data_dir=fresh_data_dir)).ingest([docs])
    finally:
        (docs / "closed").chmod(0o755)
        (docs / "locked.md").chmod(0o644)
    reasons = {Path(path).name: reason for path, reason in report.failed}
    assert "cannot read folder" in reasons["closed"] and "cannot read" in reasons["locked.md"]
    assert report.added == ["docs/good.md"]


def test_document_ids_do_not_depend_on_the_working_directory(
    tmp_path: Path, fresh_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _small_corpus(tmp_path / "docs")
    (tmp_path / "elsewhere").mkdir()
    settings = Settings(data_dir=fresh_data_dir)
    monkeypatch.chdir(tmp_path / "elsewhere")
    first = Assistant(settings).ingest([tmp_path / "docs"])
    assert sorted(first.added) == ["docs/budget.md", "docs/plan.txt"]  # relative to data dir
    monkeypatch.chdir("/")
    again = Assistant(settings).ingest([Path(os.path.relpath(tmp_path / "docs", "/"))])
    assert sorted(again.unchanged) == ["docs/budget.md", "docs/plan.txt"]
    assert again.chunks_written == 0
    # A second, empty data dir beside the first, filled from a third working directory with
    # a relative path: the same document ids and the same chunk ids.
    other = fresh_data_dir.parent / "fresh-too"
    other.mkdir()
    (other / "models").symlink_to(fresh_data_dir / "models", target_is_directory=True)
    monkeypatch.chdir(tmp_path / "docs")
    third = Assistant(Settings(data_dir=other))
    assert sorted(third.ingest([Path(".")]).added) == ["docs/budget.md", "docs/plan.txt"]
    first_ids = Assistant(settings).store.metadata_by_id()
    third_ids = third.store.metadata_by_id()
    assert set(first_ids) == set(third_ids)
    assert {m.doc_id for m in first_ids.values()} == {m.doc_id for m in third_ids.values()}


def test_ids_of_an_older_index_are_migrated_by_path(tmp_path: Path, fresh_data_dir: Path) -> None:
    """An index written when ids followed the working directory: the same file is rewritten
    under its new id once, with no duplicate left."""
    _small_corpus(tmp_path / "docs")
    assistant = Assistant(Settings(data_dir=fresh_data_dir))
    old = Ingestor.for_assistant(assistant)
    old.id_root = Path("/")
    old.ingest([tmp_path / "docs"])
    before = sorted(d["doc_id"] for d in assistant.status()["document_list"])
    assert before == [f"{str(tmp_path)[1:]}/docs/budget.md", f"{str(tmp_path)[1:]}/docs/plan.txt"]
    report = assistant.ingest([tmp_path / "docs"])
    assert sorted(report.updated) == ["docs/budget.md", "docs/plan.txt"]
    assert sorted(d["doc_id"] for d in assistant.status()["document_list"]) == [
        "docs/budget.md",
        "docs/plan.txt",
    ]
    _consistency(assistant)
