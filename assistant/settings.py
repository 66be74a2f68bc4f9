"""One typed settings object.

Precedence: explicit keyword arguments (CLI flags) > environment (ASSISTANT_*) > TOML file
(ASSISTANT_CONFIG or ./assistant.toml) > defaults. Defaults work offline on a fresh install.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = "assistant.toml"


def _config_file() -> Path | None:
    explicit = os.environ.get("ASSISTANT_CONFIG")
    if explicit:
        if not Path(explicit).is_file():
            from assistant.errors import ConfigError

            raise ConfigError(f"ASSISTANT_CONFIG points to {explicit!r}, which is not a file")
        return Path(explicit)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.exists() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_", extra="forbid", validate_default=True
    )

    # Where the index, converted models and feedback live.
    data_dir: Path = Path(".assistant")
    corpus_dir: Path = Path("corpus")
    collection: str = "default"

    # Embeddings: a registry name (see embeddings.registry) and an optional local model path
    # for the sentence-transformers backend.
    embedder: str = "e5-small"
    embedding_model_path: Path | None = None
    embedding_batch_size: int = Field(16, ge=1, le=512)

    # Chunking, in tiktoken (cl100k_base) tokens; why these values: README "Chunking".
    chunk_tokens: int = Field(180, ge=32, le=2000)
    chunk_overlap: int = Field(40, ge=0, le=500)

    # Vector store.
    store: Literal["chroma", "chroma-http"] = "chroma"
    chroma_host: str = "127.0.0.1"
    chroma_port: int = 8000
    chroma_ssl: bool = False
    chroma_headers: dict[str, str] = Field(default_factory=dict)

    # Retrieval.
    top_k: int = Field(5, ge=1, le=50)
    candidates: int = Field(30, ge=1, le=500)
    rrf_k: int = Field(10, ge=1)
    dense_weight: float = Field(0.5, ge=0)
    lexical_weight: float = Field(0.3, ge=0)
    sentence_weight: float = Field(1.0, ge=0)
    # BM25 over the words the documents' other languages use for the concepts a question
    # names (lexicon and glossary of assistant/text/profiles); 0 turns it off.
    translation_weight: float = Field(0.5, ge=0)
    reranker_path: Path | None = None
    dedup_threshold: float = Field(0.95, gt=0, le=1)

    # Answering.
    backend: str = "extractive"
    max_question_chars: int = Field(1000, ge=10)
    # Key sentences quoted in an overview answer ("summarise ...").
    answer_sentences: int = Field(5, ge=1, le=10)
    # Refuse below this calibrated answerability (chosen on the dev split: false refusals <= 0.08).
    refusal_threshold: float = Field(0.45, ge=0, le=1)
    # Which local GGUF model the llamacpp backend joins from its PyPI part-packages
    # (assistant/answer/gguf.py MODELS); llamacpp_model_path overrides it with a file.
    llamacpp_model: str = "qwen2.5-coder-0.5b"
    llamacpp_model_path: Path | None = None
    llamacpp_threads: int = Field(2, ge=1)
    llamacpp_context: int = Field(4096, ge=512)
    openai_base_url: str | None = None
    openai_model: str = "local"
    openai_api_key: str = "not-needed"
    temperature: float = Field(0.0, ge=0, le=2)
    max_answer_tokens: int = Field(400, ge=16)

    # Ingestion limits and document ids (README "Ingest limits"): a file over a limit is
    # reported as failed, naming the setting, and the rest of the ingest goes on.
    ingest_max_file_mb: float = Field(100.0, gt=0)
    ingest_max_chars: int = Field(2_000_000, ge=1000)
    ingest_docx_max_unpacked_mb: float = Field(200.0, gt=0)
    ingest_docx_max_ratio: float = Field(100.0, ge=2)
    # Document ids are file paths relative to this folder; default: the data dir's parent.
    documents_root: Path | None = None

    # Server.
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    # The path prefix a reverse proxy serves the app under (and strips), e.g. "/assistant".
    root_path: str = Field("", pattern=r"^(/[^/?#]+)*$")
    ui_language: Literal["auto", "sv", "fi", "en"] = "auto"
    api_tokens: dict[str, list[str]] = Field(default_factory=dict)
    allowed_origins: list[str] = Field(default_factory=list)
    frame_ancestors: list[str] = Field(default_factory=lambda: ["'self'"])
    rate_limit_per_minute: int = Field(60, ge=1)
    max_body_bytes: int = Field(64_000, ge=1024)
    concurrency: int = Field(4, ge=1)
    queue_size: int = Field(64, ge=1)
    # Callers whose token grants this group may upload and delete documents (auth off: all).
    admin_group: str = "admin"
    max_upload_mb: float = Field(20.0, gt=0)
    # What of a conversation's history reaches the answerer (the newest turns, each cut).
    max_history_turns: int = Field(6, ge=0, le=50)
    max_history_chars: int = Field(2000, ge=100)

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, value: int, info: Any) -> int:
        size = info.data.get("chunk_tokens", 180)
        if value >= size:
            raise ValueError(f"chunk_overlap ({value}) must be smaller than chunk_tokens ({size})")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"
