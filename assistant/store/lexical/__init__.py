"""BM25 over the same chunks as the vector store, with Snowball stemming per language.

The index is a derived copy, never a source of truth. Each process holds one in memory
(index.py) and keeps a copy on disk, under its data_dir, only to start quickly (cache.py).
It follows the store by the generation every write leaves in the collection (refresh.py).
Tokens, building and searching one version of the index are in bm25.py.
"""

from assistant.store.lexical.bm25 import fingerprint, tokenize
from assistant.store.lexical.index import LexicalIndex, sync
from assistant.store.lexical.refresh import LexicalSource

__all__ = ["LexicalIndex", "LexicalSource", "fingerprint", "sync", "tokenize"]
