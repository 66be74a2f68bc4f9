"""Answer backends by name (ASSISTANT_BACKEND). Third parties register theirs through the
entry-point group `assistant.backends` (a callable taking Settings and an Embedder)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from assistant.answer.base import AnswerBackend
from assistant.errors import ConfigError
from embeddings.registry import with_entry_points

if TYPE_CHECKING:
    from assistant.settings import Settings
    from embeddings.base import Embedder

Factory = Callable[["Settings", "Embedder"], AnswerBackend]


def _extractive(settings: Settings, embedder: Embedder) -> AnswerBackend:
    from assistant.answer.extractive import ExtractiveBackend, ExtractiveConfig

    return ExtractiveBackend(
        embedder,
        ExtractiveConfig(
            refusal_threshold=settings.refusal_threshold,
            overview_sentences=settings.answer_sentences,
        ),
    )


def _llamacpp(settings: Settings, embedder: Embedder) -> AnswerBackend:
    from assistant.answer.llm import LlamaCppBackend

    return LlamaCppBackend(settings)


def _openai(settings: Settings, embedder: Embedder) -> AnswerBackend:
    from assistant.answer.llm import OpenAIBackend

    return OpenAIBackend(settings)


BACKENDS: dict[str, Factory] = {
    "extractive": _extractive,
    "llamacpp": _llamacpp,
    "openai": _openai,
}


def available() -> dict[str, Factory]:
    return with_entry_points(BACKENDS, "assistant.backends")


def create_backend(settings: Settings, embedder: Embedder) -> AnswerBackend:
    factories = available()
    factory = factories.get(settings.backend)
    if factory is None:
        raise ConfigError(
            f"unknown backend {settings.backend!r} (ASSISTANT_BACKEND); "
            f"choose one of {sorted(factories)}"
        )
    backend = factory(settings, embedder)
    if not isinstance(backend, AnswerBackend):
        raise ConfigError(f"backend {settings.backend!r} did not return an AnswerBackend")
    return backend
