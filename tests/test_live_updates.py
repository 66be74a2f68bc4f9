"""A running server and an `assistant ingest` in another process: questions keep working
during the ingest (old or new version, never an error), the change is answered within 5 s
of the ingest's end, and /readyz tells the truth. Embedded Chroma and a `chroma run` server;
real model, real uvicorn on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from test_chroma_server import ChromaServer
from test_ingest import _small_corpus

from assistant.settings import Settings
from assistant.web.server import create_app

CLI = [sys.executable, "-m", "assistant.cli"]
OLD_QUESTION = "What is the library budget for 2026?"
NEW_QUESTION = "When will the water tower in Kallio be renovated?"


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_config=None, timeout_graceful_shutdown=2)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("the server never became ready")
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path_factory.mktemp("live-chroma") / "db")
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("mode", ["chroma", "chroma-http"])
def test_questions_keep_working_while_another_process_ingests(
    mode: str, tmp_path: Path, fresh_data_dir: Path, own_server: ChromaServer
) -> None:
    docs = tmp_path / "docs"
    budget, _ = _small_corpus(docs)
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(fresh_data_dir)}
    # The loop asks as fast as the server answers: no rate limit may turn a question away.
    settings = Settings(data_dir=fresh_data_dir, rate_limit_per_minute=1_000_000)
    if mode == "chroma-http":
        collection = f"live-{uuid.uuid4().hex[:8]}"
        env.update(
            ASSISTANT_STORE="chroma-http",
            ASSISTANT_CHROMA_PORT=str(own_server.port),
            ASSISTANT_COLLECTION=collection,
        )
        settings = Settings(
            data_dir=fresh_data_dir,
            store="chroma-http",
            chroma_port=own_server.port,
            collection=collection,
            rate_limit_per_minute=1_000_000,
        )
    first = subprocess.run(
        [*CLI, "ingest", str(docs)], env=env, capture_output=True, text=True, timeout=300
    )
    assert first.returncode == 0, first.stderr

    with serving(settings) as base, httpx.Client(base_url=base, timeout=60) as http:
        assert (
            "4.2 million" in http.post("/api/ask", json={"question": OLD_QUESTION}).json()["answer"]
        )
        # Replace every chunk of one document (the server's view still lists the old ones)
        # and add a new document, in another process.
        budget.write_text(
            "# Budget 2026\n\nThe library budget for 2026 is 5.1 million euros.\n\n"
            "## Branches\n\nThe library has three branches and a mobile library.\n",
            "utf-8",
        )
        (docs / "tower.md").write_text(
            "# Water tower\n\nThe water tower in Kallio will be renovated in 2029.\n", "utf-8"
        )
        ingest = subprocess.Popen(
            [*CLI, "ingest", str(docs)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        failures: list[str] = []
        asked = 0
        finished_at: float | None = None
        seen_at: float | None = None
        deadline = time.monotonic() + 600
        while asked < 5000 and time.monotonic() < deadline:
            question = (OLD_QUESTION, NEW_QUESTION)[asked % 2]
            response = http.post("/api/ask", json={"question": question})
            asked += 1
            if response.status_code != 200:
                failures.append(f"{response.status_code}: {response.text[:300]}")
            elif question == NEW_QUESTION and "2029" in response.json()["answer"]:
                seen_at = seen_at or time.monotonic()
            ready = http.get("/readyz")
            if ready.status_code != 200:
                failures.append(f"/readyz {ready.status_code}: {ready.text[:300]}")
            if finished_at is None and ingest.poll() is not None:
                finished_at = time.monotonic()
            if finished_at is not None and (seen_at or time.monotonic() - finished_at > 10):
                break
        out, err = ingest.communicate(timeout=60)
        assert ingest.returncode == 0, err
        assert not failures, (len(failures), asked, failures[:5])
        assert finished_at is not None and seen_at is not None, (asked, out)
        assert seen_at - finished_at < 5.0, seen_at - finished_at
        print(f"live[{mode}]: {asked} questions, 0 failed, new fact {seen_at - finished_at:+.2f} s")
        answer = http.post("/api/ask", json={"question": OLD_QUESTION}).json()["answer"]
        assert "5.1 million" in answer and "4.2 million" not in answer
        assert asked > 10  # the loop really ran during the ingest


def test_readyz_follows_the_store(
    tmp_path: Path, fresh_data_dir: Path, own_server: ChromaServer
) -> None:
    """503 backend_unavailable while the Chroma server is down, 200 again once it is back,
    without a restart of the assistant."""
    collection = f"ready-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        data_dir=fresh_data_dir,
        store="chroma-http",
        chroma_port=own_server.port,
        collection=collection,
    )
    env = {
        **os.environ,
        "ASSISTANT_DATA_DIR": str(fresh_data_dir),
        "ASSISTANT_STORE": "chroma-http",
        "ASSISTANT_CHROMA_PORT": str(own_server.port),
        "ASSISTANT_COLLECTION": collection,
    }
    _small_corpus(tmp_path / "docs")
    first = subprocess.run(
        [*CLI, "ingest", str(tmp_path / "docs")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert first.returncode == 0, first.stderr
    with serving(settings) as base:
        own_server.stop()
        try:
            down = httpx.get(f"{base}/readyz", timeout=30)
            assert down.status_code == 503, down.text
            assert down.json()["error"]["code"] == "backend_unavailable"
        finally:
            own_server.start()
        up = httpx.get(f"{base}/readyz", timeout=30)
        assert up.status_code == 200, up.text
