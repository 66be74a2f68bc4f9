"""Ingest throughput against the raw encode rate of the same model on the same texts,
measured in one run, plus peak memory.

    .venv/bin/python benchmarks/ingest.py [--corpus corpus] [--repeat 1]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from assistant.core import Assistant
from assistant.settings import Settings


def _recheck(assistant: Assistant, corpus: Path, folder: Path, files: int) -> None:
    """Re-check of an unchanged corpus of many files: must parse nothing and embed nothing.
    The files are Markdown, two sentences of the default corpus each (generated, seeded)."""
    import random
    import re

    sentences = [
        s.strip()
        for path in sorted(corpus.glob("*.txt"))
        for s in re.split(r"(?<=[.!?])\s+", " ".join(path.read_text("utf-8").split()))
        if len(s.split()) >= 6
    ]
    rng = random.Random(7)
    folder.mkdir()
    for index in range(files):
        body = " ".join(rng.sample(sentences, 2))
        (folder / f"note-{index:04}.md").write_text(f"# Note {index}\n\n{body}\n", "utf-8")
    started = time.perf_counter()
    first = assistant.ingest([folder])
    first_seconds = time.perf_counter() - started
    # The raw encode rate of the same model on the same texts (the generated files' chunks
    # and sentences), measured now, in the same run.
    texts = _indexed_texts(assistant, lambda meta: meta.path.startswith(str(folder)))
    started = time.perf_counter()
    assistant.embedder.embed_passages(texts)
    encode_seconds = time.perf_counter() - started
    embedded: list[int] = []
    original = assistant.embedder.embed

    def counting(texts: Any, kind: Any) -> Any:
        embedded.append(len(texts))
        return original(texts, kind)

    assistant.embedder.embed = counting  # type: ignore[method-assign]
    started = time.perf_counter()
    again = assistant.ingest([folder])
    seconds = time.perf_counter() - started
    print(
        f"| first ingest of {files} generated files (s), chunks | {first_seconds:.1f}, "
        f"{first.chunks_written} |"
    )
    ingest_rate, encode_rate = len(texts) / first_seconds, len(texts) / encode_seconds
    print(
        f"| {files} files: ingest rate / raw encode rate (texts/s), ratio | {ingest_rate:.1f} / "
        f"{encode_rate:.1f}, {ingest_rate / encode_rate:.2f} |"
    )
    print(f"| re-check of the {files} unchanged files (s) | {seconds:.2f} |")
    print(
        f"| texts embedded / chunks written during the re-check | {sum(embedded)} / "
        f"{again.chunks_written} |"
    )


def _indexed_texts(assistant: Assistant, wanted: Any = None) -> list[str]:
    """What the ingest embedded: each chunk's indexed text and each sentence's."""
    chunks = [c for c in assistant.store.iter_chunks() if wanted is None or wanted(c.meta)]
    ids = {c.chunk_id for c in chunks}
    sentences = [s for s in assistant.sentences.iter_chunks() if s.meta.parent in ids]
    texts = [c.indexed_text() for c in chunks]
    texts += [f"{s.meta.context}: {s.text}" if s.meta.context else s.text for s in sentences]
    return texts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument(
        "--recheck-files",
        type=int,
        default=1000,
        help="size of the generated corpus for the unchanged re-check (0: skip)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        settings = Settings(data_dir=work)
        assistant = Assistant(settings)
        # Load the model and convert it outside the timed region: both runs need it.
        assistant.embedder.embed_passages(["warm up"] * 20)
        started = time.perf_counter()
        report = assistant.ingest([args.corpus])
        ingest_seconds = time.perf_counter() - started
        chunks = list(assistant.store.iter_chunks())
        sentences = list(assistant.sentences.iter_chunks())
        texts = [c.indexed_text() for c in chunks]
        texts += [f"{s.meta.context}: {s.text}" if s.meta.context else s.text for s in sentences]
        started = time.perf_counter()
        assistant.embedder.embed_passages(texts)
        encode_seconds = time.perf_counter() - started
        recheck_started = time.perf_counter()
        again = assistant.ingest([args.corpus])
        recheck_seconds = time.perf_counter() - recheck_started
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ingest_rate = len(texts) / ingest_seconds
        encode_rate = len(texts) / encode_seconds
        print("| measure | value |")
        print("|---|---|")
        print(
            f"| files / chunks / sentences | {len(report.added)} / {len(chunks)} / "
            f"{len(sentences)} |"
        )
        print(f"| whole ingest (s) | {ingest_seconds:.1f} |")
        print(f"| ingest rate (embedded texts/s) | {ingest_rate:.1f} |")
        print(f"| raw encode rate, same model and texts (texts/s) | {encode_rate:.1f} |")
        print(f"| ratio ingest / raw encode | {ingest_rate / encode_rate:.2f} |")
        print(
            f"| re-check of unchanged corpus (s), embeddings written | {recheck_seconds:.2f}, "
            f"{again.chunks_written} |"
        )
        print(f"| peak resident memory (MB) | {peak_mb:.0f} |")
        if args.recheck_files:
            _recheck(assistant, args.corpus, work / "many", args.recheck_files)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
