"""Storage of chunks: a vector store (Chroma) and a lexical BM25 index kept in step with it."""
