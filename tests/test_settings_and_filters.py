"""Settings precedence and validation; metadata filters on retrieval."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from assistant.core import Assistant
from assistant.errors import ConfigError
from assistant.retrieve import Filters
from assistant.settings import Settings
from assistant.store.records import ChunkMeta


def test_precedence_flag_over_env_over_file_over_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "assistant.toml"
    config.write_text('collection = "from-file"\ntop_k = 7\nchunk_tokens = 200\n', "utf-8")
    monkeypatch.setenv("ASSISTANT_CONFIG", str(config))
    monkeypatch.setenv("ASSISTANT_TOP_K", "9")
    settings = Settings()
    assert settings.collection == "from-file"  # file over default
    assert settings.top_k == 9  # env over file
    assert Settings(top_k=3).top_k == 3  # flag over env
    assert Settings().chunk_overlap == 40  # default


def test_bad_settings_name_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_CHUNK_OVERLAP", "500")
    monkeypatch.setenv("ASSISTANT_CHUNK_TOKENS", "100")
    with pytest.raises(ValidationError, match="chunk_overlap"):
        Settings()
    monkeypatch.delenv("ASSISTANT_CHUNK_OVERLAP")
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        Settings()
    monkeypatch.delenv("ASSISTANT_CONFIG")
    with pytest.raises(ValidationError, match="not_a_setting"):
        Settings(not_a_setting=1)  # type: ignore[call-arg]


def test_filters_restrict_documents_and_languages(corpus_assistant: Assistant) -> None:
    question = "Vad säger dokumenten om budgeten och forskningen?"
    only_fi = corpus_assistant.ask(question, filters=Filters(languages=("fi",)))
    assert {r.doc for r in only_fi.retrieved} == {
        "lahti-konsernihallinto-seurantaraportti-q1-2025.txt"
    }
    doc_id = "corpus/region-stockholm-fou-strategi.txt"
    docs = {d["doc_id"] for d in corpus_assistant.status()["document_list"]}
    doc_id = next(d for d in docs if d.endswith("region-stockholm-fou-strategi.txt"))
    only_sv = corpus_assistant.ask(question, filters=Filters(doc_ids=(doc_id,)))
    assert {r.doc for r in only_sv.retrieved} == {"region-stockholm-fou-strategi.txt"}
    assert Filters(groups=("hr",)).allows(ChunkMeta(doc_id="d"))
    assert Filters(groups=("hr",)).allows(ChunkMeta(doc_id="d", groups=("hr", "finance")))
    assert not Filters(groups=("hr",)).allows(ChunkMeta(doc_id="d", groups=("finance",)))
