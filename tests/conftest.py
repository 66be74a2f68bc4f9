"""Shared fixtures: every test gets its own data directory; one real index of the default
corpus (real embedding model, real Chroma, real BM25) is built once per session and copied
for tests that modify an index."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.core import Assistant
from assistant.settings import Settings

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ASSISTANT_CONFIG", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Converted e5 model shared by the session (conversion takes a few seconds)."""
    from embeddings.e5_convert import ensure_e5_small_dir

    data = tmp_path_factory.mktemp("models-data")
    ensure_e5_small_dir(data)
    return data / "models"


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    """A data dir holding the default corpus, ingested once."""
    data = tmp_path_factory.mktemp("corpus-index")
    (data / "models").symlink_to(models_dir, target_is_directory=True)
    settings = Settings(data_dir=data, corpus_dir=CORPUS)
    report = Assistant(settings).ingest([CORPUS])
    assert report.ok and report.chunks_total > 50, report.as_dict()
    return data


@pytest.fixture(scope="session")
def corpus_assistant(corpus_index: Path) -> Assistant:
    """A read-only assistant over the default corpus (do not ingest into it)."""
    return Assistant(Settings(data_dir=corpus_index, corpus_dir=CORPUS))


@pytest.fixture
def fresh_data_dir(tmp_path: Path, models_dir: Path) -> Path:
    """An empty data dir that already holds the converted model."""
    data = tmp_path / "fresh"
    data.mkdir()
    (data / "models").symlink_to(models_dir, target_is_directory=True)
    return data
