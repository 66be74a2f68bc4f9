"""Any sentence-transformers model directory on local disk (never a hub download)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.base import Embedder, Kind


def _require_sentence_transformers() -> Any:
    try:
        import sentence_transformers
    except ImportError as exc:  # pragma: no cover - a base dependency, but keep the message
        raise ImportError(
            "sentence-transformers is required: pip install sentence-transformers"
        ) from exc
    return sentence_transformers


class SentenceTransformerEmbedder(Embedder):
    """Loads a model directory once per process. Prompts named "query"/"passage" in the
    model's config are used when present (e5, EmbeddingGemma, bge ship them)."""

    def __init__(self, path: Path, model_id: str | None = None, batch_size: int = 16) -> None:
        path = Path(path)
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path} is not a sentence-transformers model directory (no modules.json)"
            )
        # Belt and braces: a local directory never needs the hub, and an intranet has none.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        st = _require_sentence_transformers()
        self._model = st.SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self.batch_size = batch_size
        dimension = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        self.dim = int(dimension() or 0)
        self.model_id = model_id or path.name
        prompts = getattr(self._model, "prompts", {}) or {}
        self._prompt_names: dict[str, str | None] = {
            kind: kind if kind in prompts else None for kind in ("query", "passage")
        }

    def _embed_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
        return np.asarray(
            self._model.encode(
                texts,
                prompt_name=self._prompt_names[kind],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ),
            dtype=np.float32,
        )
