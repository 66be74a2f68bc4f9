"""Ingestion: load files, clean their text, split it into token chunks, index them."""
