"""Embedding backends behind one small interface (see base.Embedder)."""
