"""Faults: the Chroma server goes away and comes back; ingests are killed at random points;
the lexical index on disk is deleted or corrupted. Real server, real model, real BM25."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_chroma_server import ChromaServer, load_embedder, settings_for
from test_ingest import _consistency, _small_corpus

from assistant.core import Assistant
from assistant.errors import BackendUnavailableError
from assistant.settings import Settings
from assistant.store.chroma import ChromaStore
from assistant.store.lexical import LexicalIndex
from embeddings.base import Embedder

REPO = Path(__file__).resolve().parents[1]
QUESTION = "How many people does the library employ?"


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """A server these tests may stop and start again (not the session's shared one)."""
    server = ChromaServer(tmp_path_factory.mktemp("own-chroma") / "db")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def embedder(models_dir: Path) -> Embedder:
    return load_embedder(models_dir)


def test_server_outage_is_a_clear_error_and_heals_without_restart(
    own_server: ChromaServer,
    embedder: Embedder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    _small_corpus(tmp_path / "docs")
    settings = settings_for("chroma-http", tmp_path / "data", own_server.port, "outage")
    assistant = Assistant(settings, embedder=embedder)
    assistant.ingest([tmp_path / "docs"])
    assert "31" in assistant.ask(QUESTION).answer

    own_server.stop()
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError) as raised:
        assistant.ask(QUESTION)
    message = str(raised.value)
    assert f"Chroma server at http://127.0.0.1:{own_server.port}" in message
    assert "not available" in message and "back" in message
    assert time.monotonic() - started < 5  # refused connections fail fast, no hang
    # A process started during the outage fails the same way instead of crashing.
    with pytest.raises(BackendUnavailableError, match="not reachable"):
        Assistant(settings, embedder=embedder).ask(QUESTION)

    own_server.start()  # same port, same data directory
    answer = assistant.ask(QUESTION)
    assert not answer.refused and "31" in answer.answer
    assert "31" in Assistant(settings, embedder=embedder).ask(QUESTION).answer


def _generation(client: Any, collection: str) -> str | None:
    try:
        meta = client.get_collection(collection).metadata or {}
        return str(meta.get("generation", ""))
    except Exception:
        return None


@pytest.mark.slow
def test_ingest_killed_at_random_points_then_rerun_is_consistent(
    own_server: ChromaServer,
    fresh_data_dir: Path,
    embedder: Embedder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGKILL of `assistant ingest` shortly after it started writing (a random delay after
    its first write is visible on the server), three times, with a file changed between runs;
    then a full run: no duplicate, no orphan, Chroma and BM25 agree, nothing left to do."""
    folder = tmp_path / "many"
    folder.mkdir()
    source = (REPO / "corpus" / "region-stockholm-fou-strategi.txt").read_text("utf-8")
    paragraphs = [p for p in source.split("\n\n") if len(p) > 80]
    for index in range(10):
        body = "\n\n".join(paragraphs[(index * 5) % len(paragraphs) :][:8])
        (folder / f"doc{index:02}.md").write_text(f"# Dokument {index}\n\n{body}\n", "utf-8")
    collection = f"kill-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "ASSISTANT_DATA_DIR": str(fresh_data_dir),
        "ASSISTANT_STORE": "chroma-http",
        "ASSISTANT_CHROMA_PORT": str(own_server.port),
        "ASSISTANT_COLLECTION": collection,
    }
    cli = [sys.executable, "-m", "assistant.cli", "ingest", "--json", str(folder)]
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    kills = 0
    import chromadb

    # One client for the polling: a new one per poll costs more than the poll.
    watcher = chromadb.HttpClient(host="127.0.0.1", port=own_server.port)
    for run in range(3):
        before = _generation(watcher, collection)
        process = subprocess.Popen(
            cli, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if _generation(watcher, collection) not in (before, None, ""):
                # Writes span files in batches now, so an ingest of ten small files ends
                # soon after its first write: kill within the first 100 ms of writing.
                time.sleep(rng.uniform(0.0, 0.1))
                break
            time.sleep(0.02)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            assert process.wait(timeout=30) == -signal.SIGKILL, seed
            kills += 1
        process.wait(timeout=30)
        if run == 1:  # a partially written update is exercised too
            (folder / "doc00.md").write_text("# Ändrad\n\nHelt ny text om budgeten 2031.\n")
    assert kills >= 2, f"the ingests finished before they could be killed (seed {seed})"

    # The repairing run in this process (the CLI's Assistant.ingest, with the model that is
    # already loaded): one model start-up less.
    settings = settings_for("chroma-http", fresh_data_dir, own_server.port, collection)
    assistant = Assistant(settings, embedder=embedder)
    final = assistant.ingest([folder])
    assert final.ok, (seed, final.as_dict())
    _consistency(assistant)
    docs = Counter(m.doc_id for m in assistant.store.metadata_by_id().values())
    assert len(docs) == 10, seed
    # Another host's assistant (own data dir) builds the same BM25 from the server.
    other = Assistant(
        settings_for("chroma-http", tmp_path / "other", own_server.port, collection),
        embedder=embedder,
    )
    other.lexical.refresh()
    assert other.lexical.fingerprint == assistant.lexical.fingerprint
    hits = other.lexical.search("budgeten 2031", 3, "sv")
    assert hits and assistant.store.get([hits[0][0]])[0].doc_id == "many/doc00.md"
    monkeypatch.chdir(REPO)  # document ids do not depend on the working directory
    again = assistant.ingest([folder])
    assert again.chunks_written == 0 and len(again.unchanged) == 10, seed
    assert not again.lexical_rebuilt, seed


def _corrupt(directory: Path, how: str) -> None:
    if how == "deleted":
        import shutil

        shutil.rmtree(directory)
    elif how == "garbage-state":
        (directory / "state.json").write_text('{"version": 1, "ids": [', "utf-8")
    elif how == "truncated-bm25":
        for path in (directory / "bm25").iterdir():
            if path.suffix == ".npy":
                path.write_bytes(path.read_bytes()[:40])
    elif how == "wrong-ids":
        state = json.loads((directory / "state.json").read_text("utf-8"))
        state["ids"] = [*state["ids"][:-1], "not-a-chunk"]
        (directory / "state.json").write_text(json.dumps(state), "utf-8")
    else:
        raise ValueError(how)


@pytest.mark.parametrize(
    ("mode", "how"),
    [
        ("chroma", "deleted"),
        ("chroma", "garbage-state"),
        ("chroma", "truncated-bm25"),
        ("chroma", "wrong-ids"),
        ("chroma-http", "deleted"),
        ("chroma-http", "truncated-bm25"),
    ],
)
def test_damaged_lexical_index_is_detected_and_rebuilt(
    mode: str,
    how: str,
    own_server: ChromaServer,
    embedder: Embedder,
    tmp_path: Path,
    fresh_data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    _small_corpus(tmp_path / "docs")
    settings: Settings = settings_for(mode, fresh_data_dir, own_server.port, f"dmg-{how}")
    Assistant(settings, embedder=embedder).ingest([tmp_path / "docs"])
    directory = Path(settings.index_dir) / "lexical" / settings.collection
    assert LexicalIndex(directory).load()
    _corrupt(directory, how)
    assert not LexicalIndex(directory).load()

    restarted = Assistant(settings, embedder=embedder)
    answer = restarted.ask(QUESTION)
    assert "31" in answer.answer
    assert restarted.lexical.rebuilds == 1
    assert restarted.lexical.search("employs people branches", 3, "en")
    _consistency(restarted)
    assert LexicalIndex(directory).load()  # the rebuilt copy was written back
    assert isinstance(restarted.store, ChromaStore)


def test_leftovers_of_a_save_killed_midway_are_swept(tmp_path: Path) -> None:
    from assistant.schema import Chunk
    from assistant.store.records import ChunkMeta

    directory = tmp_path / "lexical" / "default"
    index = LexicalIndex(directory)
    chunk = Chunk("c1", "Budgeten är 4,2 miljoner euro.", ChunkMeta(doc_id="a.md", language="sv"))
    index.build([chunk])
    index.save()
    dead = subprocess.Popen(["true"])
    dead.wait()
    leftovers = [
        directory.with_name(f"default.tmp-{dead.pid}-0badc0de"),
        directory.with_name(f"default.old-{dead.pid}-0badc0de"),
    ]
    running = directory.with_name(f"default.tmp-{os.getpid()}-0badc0de")  # a live writer's
    for path in [*leftovers, running]:
        path.mkdir()
    index.save()
    assert not any(path.exists() for path in leftovers)
    assert running.exists()
    assert LexicalIndex(directory).load()
