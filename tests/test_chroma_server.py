"""The store against both Chroma modes: embedded (PersistentClient in the data dir) and a real
`chroma run` server on 127.0.0.1 (HttpClient), with the real embedding model; and the BM25
index shared by several assistants on one server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from test_ingest import _consistency, _small_corpus

from assistant.core import Assistant
from assistant.errors import IndexMismatchError
from assistant.retrieve import Filters
from assistant.schema import Chunk
from assistant.settings import Settings
from assistant.store.chroma import ChromaStore, make_client
from assistant.store.lexical import fingerprint
from assistant.store.records import ChunkMeta
from embeddings.base import Embedder

CHROMA = Path(sys.executable).parent / "chroma"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ChromaServer:
    """`chroma run` in a subprocess, on 127.0.0.1 only; start() waits for the heartbeat."""

    def __init__(self, path: Path, port: int | None = None) -> None:
        self.path = path
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        log = (self.path.parent / f"{self.path.name}-server.log").open("ab")
        command = [str(CHROMA), "run", "--path", str(self.path), "--host", "127.0.0.1"]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.path.parent,
        )
        log.close()
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}/api/v2/heartbeat"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chroma run exited with {self.process.returncode}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"chroma run did not answer on port {self.port} in {timeout} s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
        self.process = None


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server") / "db")
    server.start()
    yield server
    server.stop()


def load_embedder(models_dir: Path) -> Embedder:
    from embeddings.registry import create_embedder

    return create_embedder(Settings(data_dir=models_dir.parent))


@pytest.fixture(scope="module")
def embedder(models_dir: Path) -> Embedder:
    """The real e5-small, loaded once and injected into every assistant of these tests."""
    return load_embedder(models_dir)


def settings_for(mode: str, data_dir: Path, port: int, collection: str) -> Settings:
    if mode == "chroma-http":
        return Settings(
            data_dir=data_dir, store="chroma-http", chroma_port=port, collection=collection
        )
    return Settings(data_dir=data_dir, collection=collection)


@pytest.fixture(params=["chroma", "chroma-http"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_settings(
    mode: str, chroma_server: ChromaServer, fresh_data_dir: Path
) -> Callable[..., Settings]:
    """Settings factory for the mode under test; every test gets its own collection on the
    shared server (and its own data dir)."""
    collection = f"t-{uuid.uuid4().hex[:12]}"

    def make(data_dir: Path = fresh_data_dir) -> Settings:
        return settings_for(mode, data_dir, chroma_server.port, collection)

    return make


def _chunk(chunk_id: str, doc: str, text: str, **meta: Any) -> Chunk:
    return Chunk(chunk_id, text, ChunkMeta(**{"doc_id": doc, "language": "en", **meta}))


def test_store_operations_in_both_modes(
    make_settings: Callable[..., Settings], embedder: Embedder
) -> None:
    settings = make_settings()
    client = make_client(settings)
    store = ChromaStore(
        client, settings.collection, embedder.model_id, embedder.dim, records=ChunkMeta
    )
    chunks = [
        _chunk("a1", "a.md", "The library budget for 2026 is 4.2 million euros."),
        _chunk("a2", "a.md", "The library employs 31 people in three branches."),
        _chunk("b1", "b.md", "Målet är att halvera utsläppen till 2030.", language="sv"),
    ]
    assert store.generation() == ""
    store.upsert(chunks, embedder.embed_passages([c.text for c in chunks]))
    first = store.generation()
    assert first and store.count() == 3
    meta = client.get_collection(settings.collection).metadata
    assert meta["embedding_model"] == embedder.model_id and meta["embedding_dim"] == embedder.dim

    hits = store.query(embedder.embed_query("How many employees does the library have?"), 2)
    assert hits[0][0].chunk_id == "a2" and 0.5 < hits[0][1] <= 1.0
    only_sv = store.query(embedder.embed_query("utsläpp"), 3, {"language": "sv"})
    assert [c.chunk_id for c, _ in only_sv] == ["b1"]
    assert [c.chunk_id for c in store.get(["b1", "missing", "a1"])] == ["b1", "a1"]
    with_vectors = store.get_where({"doc_id": "a.md"})
    assert sorted(c.chunk_id for c, _ in with_vectors) == ["a1", "a2"]
    assert all(v.shape == (embedder.dim,) for _, v in with_vectors)
    assert abs(float(np.linalg.norm(with_vectors[0][1])) - 1.0) < 1e-3

    store.update_metadata([_chunk("a1", "a.md", chunks[0].text, groups=("hr",))])
    assert store.metadata_by_id()["a1"].groups == ("hr",)
    second = store.generation()
    assert second not in ("", first)
    store.delete(["a2"])
    store.delete_where({"doc_id": "b.md"})
    assert sorted(store.all_ids()) == ["a1"] and [c.chunk_id for c in store.iter_chunks()] == ["a1"]
    assert store.generation() not in (first, second)
    # The generation never replaces the model keys, so reopening still checks the model.
    with pytest.raises(IndexMismatchError, match=r"[Rr]e-index"):
        ChromaStore(client, settings.collection, "some/other-model", 768, records=ChunkMeta)
    assert (
        ChromaStore(
            client, settings.collection, embedder.model_id, embedder.dim, records=ChunkMeta
        ).count()
        == 1
    )
    # Every collection searches wide enough to be exact and repeatable on a few hundred
    # vectors; one made with Chroma's default is widened when opened.
    from assistant.store.chroma import HNSW_SEARCH_EF

    assert client.get_collection(settings.collection).configuration["hnsw"]["ef_search"] == (
        HNSW_SEARCH_EF
    )
    client.create_collection(
        "narrow",
        configuration={"hnsw": {"space": "cosine"}},
        metadata={"embedding_model": embedder.model_id, "embedding_dim": embedder.dim},
    )
    assert client.get_collection("narrow").configuration["hnsw"]["ef_search"] < HNSW_SEARCH_EF
    ChromaStore(client, "narrow", embedder.model_id, embedder.dim, records=ChunkMeta).count()
    assert client.get_collection("narrow").configuration["hnsw"]["ef_search"] == HNSW_SEARCH_EF


def test_ingest_and_ask_in_both_modes(
    make_settings: Callable[..., Settings],
    embedder: Embedder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    _small_corpus(tmp_path / "docs")
    assistant = Assistant(make_settings(), embedder=embedder)
    report = assistant.ingest([tmp_path / "docs"])
    assert report.ok and len(report.added) == 2 and report.lexical_rebuilt
    _consistency(assistant)
    assert isinstance(assistant.store, ChromaStore)
    generation = assistant.store.generation()

    answer = assistant.ask("How many people does the library employ?")
    assert not answer.refused and "31" in answer.answer
    assert answer.citations[0].doc == "budget.md"
    lexical = assistant.lexical.search("employs people", 5, "en")
    assert lexical and lexical[0][0] in assistant.store.metadata_by_id()

    again = assistant.ingest([tmp_path / "docs"])
    assert again.chunks_written == 0 and not again.lexical_rebuilt
    assert assistant.store.generation() == generation
    assert assistant.lexical.generation == generation


def _wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.25)


def test_two_assistants_on_one_server_share_bm25(
    chroma_server: ChromaServer,
    embedder: Embedder,
    tmp_path: Path,
    models_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two processes' worth of assistants (own data dirs, as on two hosts) on one server:
    what one ingests, the other finds through BM25 within seconds, without a restart."""
    monkeypatch.chdir(tmp_path)
    _small_corpus(tmp_path / "docs")
    collection = f"shared-{uuid.uuid4().hex[:8]}"
    writer = Assistant(
        settings_for("chroma-http", tmp_path / "host-a", chroma_server.port, collection),
        embedder=embedder,
    )
    reader = Assistant(
        settings_for("chroma-http", tmp_path / "host-b", chroma_server.port, collection),
        embedder=embedder,
    )
    writer.ingest([tmp_path / "docs"])
    assert isinstance(writer.store, ChromaStore)
    assert not reader.ask("How many people does the library employ?").refused
    assert reader.lexical.fingerprint == writer.lexical.fingerprint
    reader.lexical.check_seconds = 0.2  # production default: 5 s

    extra = tmp_path / "more" / "vatten.md"
    extra.parent.mkdir()
    extra.write_text(
        "# Vattenverk\n\nKvarnbäcksverket får 12,5 miljoner kronor i investeringsbudgeten "
        "för 2026.\n",
        "utf-8",
    )
    writer.ingest([extra])

    def found_by_bm25() -> bool:
        result = reader.retriever.retrieve("Kvarnbäcksverket investeringsbudget", 5, "sv")
        return any(
            c.lexical_rank is not None and c.chunk.doc_id == "more/vatten.md" for c in result.chunks
        )

    _wait_until(found_by_bm25)
    assert reader.lexical.fingerprint == writer.lexical.fingerprint
    assert reader.lexical.generation == writer.store.generation()
    answer = reader.ask("Hur mycket får Kvarnbäcksverket?")
    assert answer.citations and answer.citations[0].doc == "vatten.md"
    assert "12,5" in answer.answer

    # A metadata-only change (access groups) reaches the other BM25 copy too: same chunk ids,
    # so a fingerprint alone would miss it; the generation does not.
    writer.ingest([tmp_path / "docs" / "budget.md"], groups=["hr"])
    budget_ids = {
        i for i, m in writer.store.metadata_by_id().items() if m.doc_id == "docs/budget.md"
    }

    def groups_updated() -> bool:
        reader.lexical.search("library", 1, "en")  # searching is what triggers the check
        return all(
            m.groups == ("hr",)
            for i, m in zip(reader.lexical.ids, reader.lexical.meta, strict=True)
            if i in budget_ids
        )

    _wait_until(groups_updated)
    finance = Filters(groups=("finance",))
    hits = reader.lexical.search("library budget employs", 5, "en", finance.allows)
    assert not {i for i, _ in hits} & budget_ids
    hr = reader.lexical.search("library budget employs", 5, "en", Filters(groups=("hr",)).allows)
    assert {i for i, _ in hr} & budget_ids
    assert reader.lexical.fingerprint == fingerprint(writer.store.metadata_by_id())
    # The sentence records keep the groups they were written with; the chunks they lead to
    # are checked against their own metadata, so nothing of "hr" reaches a "finance" caller.
    answer = reader.ask("How many people does the library employ?", filters=finance)
    assert all(r.doc != "budget.md" for r in answer.retrieved), answer.retrieved


def test_store_reopens_a_collection_another_process_recreated(
    make_settings: Callable[..., Settings], embedder: Embedder
) -> None:
    """A collection deleted and rebuilt under the same name (a re-index) is opened again
    by name on the next operation, instead of failing until a restart."""
    settings = make_settings()
    client = make_client(settings)
    chunks = [
        _chunk("x1", "x.md", "Budgeten för 2026 är 4,2 miljoner euro."),
        _chunk("x2", "x.md", "Biblioteket har 31 anställda."),
    ]
    vectors = embedder.embed_passages([c.text for c in chunks])
    serving = ChromaStore(
        client, settings.collection, embedder.model_id, embedder.dim, records=ChunkMeta
    )
    serving.upsert(chunks[:1], vectors[:1])
    client.delete_collection(settings.collection)
    rebuilt = ChromaStore(
        client, settings.collection, embedder.model_id, embedder.dim, records=ChunkMeta
    )
    rebuilt.upsert(chunks, vectors)
    assert serving.count() == 2
    assert [c.chunk_id for c, _ in serving.query(vectors[1], 1)] == ["x2"]


def test_collection_written_without_generation_is_checked_by_ids(
    make_settings: Callable[..., Settings], embedder: Embedder, tmp_path: Path
) -> None:
    """A collection written by an older version (or another tool) has no generation: a
    starting process compares the ids instead of trusting its copy on disk."""
    from assistant.store.lexical import LexicalIndex

    settings = make_settings()
    client = make_client(settings)
    store = ChromaStore(
        client, settings.collection, embedder.model_id, embedder.dim, records=ChunkMeta
    )
    raw = client.get_collection(settings.collection)
    chunks = [
        _chunk("y1", "y.md", "Budgeten för 2026 är 4,2 miljoner euro."),
        _chunk("y2", "y.md", "Biblioteket har 31 anställda i tre filialer."),
    ]
    vectors = embedder.embed_passages([c.text for c in chunks])

    def write_like_an_old_version(part: slice) -> None:
        raw.upsert(
            ids=[c.chunk_id for c in chunks[part]],
            documents=[c.text for c in chunks[part]],
            metadatas=[c.meta.to_store() for c in chunks[part]],
            embeddings=vectors[part],
        )

    write_like_an_old_version(slice(0, 1))
    assert store.generation() == ""
    directory = tmp_path / "lexical" / settings.collection
    first = LexicalIndex(directory, store)
    assert first.refresh() and first.ids == ["y1"]
    write_like_an_old_version(slice(1, 2))
    restarted = LexicalIndex(directory, store)
    assert restarted.load() and restarted.ids == ["y1"]  # the stale copy on disk
    assert restarted.refresh()
    assert sorted(restarted.ids) == ["y1", "y2"]
    assert restarted.search("anställda filialer", 1, "sv")[0][0] == "y2"


def test_a_query_that_meets_records_deleted_meanwhile_is_asked_again(
    make_settings: Callable[..., Settings], embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Chroma server answered one question in 65 during an ingest with "Error finding id"
    # (its index listed records the ingest had just deleted): a 503 to the user. The fault
    # is injected into the real collection's query once; the store asks again.
    settings = make_settings()
    client = make_client(settings)
    store = ChromaStore(
        client, settings.collection, embedder.model_id, embedder.dim, records=ChunkMeta
    )
    chunk = _chunk("a1", "a.md", "The library budget for 2026 is 4.2 million euros.")
    store.upsert([chunk], embedder.embed_passages([chunk.text]))
    collection_type = type(client.get_collection(settings.collection))
    real_query = collection_type.query
    faults: list[str] = []

    def query_once_stale(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not faults:
            faults.append("raised")
            raise RuntimeError("Error executing plan: Internal error: Error finding id")
        return real_query(self, *args, **kwargs)

    monkeypatch.setattr(collection_type, "query", query_once_stale)
    hits = store.query(embedder.embed_query("What is the library budget?"), 1)
    assert faults == ["raised"]  # the fault happened
    assert [c.chunk_id for c, _ in hits] == ["a1"]
