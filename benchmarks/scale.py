"""Retrieval latency (p50/p95) at 1k, 10k and 100k chunks, embedded Chroma and a Chroma server,
against the naive baseline (plain LangChain `Chroma.similarity_search`, same model, same
collection) measured in the same run; resident memory of a serving process.

    .venv/bin/python benchmarks/scale.py [--sizes 1000,10000,100000] [--distinct 2000]
                                         [--queries 60] [--modes embedded,server]

A full run takes ~20 min on 2 shared cores (most of it Chroma building its HNSW graphs for
100k chunks and 300k sentence records); `--sizes 1000,10000 --distinct 500` takes a few.

How the large collections are made (so that a 100k build takes minutes on 2 cores):
* The corpus's documents (corpus/*.txt, Swedish and Finnish) are cleaned and cut into
  sentences with the ingest pipeline's own code. A chunk is 4 sentences of one document,
  drawn at random (seeded) and joined: a recombination in the document's language, about the
  length of a real 180-token chunk.
* `--distinct` chunks (default 2000) and every corpus sentence are embedded with the real
  model (e5-small, passage prefix). Each further chunk is a distinct chunk with its sentences
  rotated and one sentence replaced by another of the same language; its vector is the
  distinct chunk's vector plus Gaussian noise (sigma 0.015 per dimension, cosine ~0.95 to the
  original), re-normalised; its sentence vectors likewise. So texts, BM25 statistics and
  vectors are realistic in size and spread, but most vectors are derived, not embedded.
* Like a real ingest, each chunk has ~3 sentence records in "<collection>-sentences" (the
  sentence index of the hybrid path), and a BM25 index built from Chroma by LexicalIndex.
* The collections are written once with embedded Chroma (PersistentClient); the server mode
  runs `chroma run --path` on the same directory afterwards. Each mode is measured in a fresh
  subprocess that behaves like a serving process (question model only).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SENTENCES_PER_CHUNK = 4
SENTENCE_RECORDS_PER_CHUNK = 3  # the default corpus has 369 sentence records for 114 chunks
NOISE_SIGMA = 0.015
CANDIDATES = 30
TOP_K = 5


# Helpers ----------------------------------------------------------------------------------
def _rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _percentile(values: Sequence[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _settings(data_dir: Path, store: str, port: int, collection: str) -> Any:
    from assistant.settings import Settings

    return Settings(data_dir=data_dir, store=store, chroma_port=port, collection=collection)


def _collection(size: int) -> str:
    return f"scale-{size}"


# Building -----------------------------------------------------------------------------------
def _corpus_sentences() -> dict[str, list[tuple[str, str, str]]]:
    """(text, title, language) of every corpus sentence of 5+ words, per document."""
    from assistant.ingest.chunking import sentence_spans
    from assistant.ingest.documents import load_document

    documents: dict[str, list[tuple[str, str, str]]] = {}
    for path in sorted((REPO / "corpus").glob("*.txt")):
        document = load_document(path)
        found = documents.setdefault(path.name, [])
        for page in document.pages:
            for start, end in sentence_spans(page.text):
                text = " ".join(page.text[start:end].split())
                if len(text.split()) >= 5:
                    found.append((text, document.title, document.language))
    return documents


def build(work: Path, sizes: list[int], distinct: int) -> dict[str, Any]:
    from assistant.core import Assistant
    from assistant.schema import Chunk, SentenceRecord
    from assistant.store.chroma import ChromaStore
    from assistant.store.lexical import LexicalIndex
    from assistant.store.records import ChunkMeta, SentenceMeta

    started_all = time.perf_counter()
    rng = random.Random(7)
    noise = np.random.default_rng(7)
    documents = _corpus_sentences()
    pool = [(doc, *item) for doc, items in documents.items() for item in items]
    by_doc: dict[str, list[int]] = {}
    for index, (doc, *_rest) in enumerate(pool):
        by_doc.setdefault(doc, []).append(index)
    names = sorted(by_doc)

    assistant = Assistant(_settings(work, "chroma", 0, "unused"))
    embedder = assistant.embedder
    started = time.perf_counter()
    pool_vectors = embedder.embed_passages([text for _, text, _, _ in pool])
    # Distinct chunks: SENTENCES_PER_CHUNK random sentences of one document.
    bases: list[list[int]] = []
    for number in range(distinct):
        members = by_doc[names[number % len(names)]]
        bases.append(rng.sample(members, SENTENCES_PER_CHUNK))
    base_texts = [" ".join(pool[i][1] for i in members) for members in bases]
    base_titles = [pool[members[0]][2] for members in bases]
    base_vectors = embedder.embed_passages(
        [f"{title}\n{text}" for title, text in zip(base_titles, base_texts, strict=True)]
    )
    embed_seconds = time.perf_counter() - started
    embedded_texts = len(pool) + distinct

    def perturb(vector: np.ndarray) -> np.ndarray:
        moved = vector + noise.normal(0.0, NOISE_SIGMA, vector.shape).astype(np.float32)
        return np.asarray(moved / np.linalg.norm(moved, axis=-1, keepdims=True), np.float32)

    largest = max(sizes)
    members_of: list[list[int]] = []
    vectors = np.zeros((largest, embedder.dim), dtype=np.float32)
    for number in range(largest):
        base = number % distinct
        if number < distinct:
            members_of.append(bases[base])
            vectors[number] = base_vectors[base]
            continue
        members = list(bases[base])
        shift = (number // distinct) % SENTENCES_PER_CHUNK
        members = members[shift:] + members[:shift]
        doc_members = by_doc[pool[members[0]][0]]
        members[rng.randrange(SENTENCES_PER_CHUNK)] = rng.choice(doc_members)
        members_of.append(members)
    derived = np.arange(distinct, largest)
    if len(derived):
        vectors[derived] = perturb(base_vectors[derived % distinct])

    def chunks_for(size: int) -> tuple[list[Chunk], list[Chunk], list[int]]:
        chunks: list[Chunk] = []
        sentences: list[SentenceRecord] = []
        sentence_pool: list[int] = []
        for number in range(size):
            members = members_of[number]
            doc_name, _, title, language = pool[members[0]]
            texts = [pool[i][1] for i in members]
            text = " ".join(texts)
            doc_id = f"synthetic/{language}/{Path(doc_name).stem}-{number // 40:05}.txt"
            chunk_id = hashlib.sha256(f"{size}\x1f{number}".encode()).hexdigest()[:32]
            meta = ChunkMeta(
                doc_id=doc_id,
                source=Path(doc_id).name,
                title=title,
                language=language,
                page=1 + (number % 40) // 4,
                chunk_index=number % 40,
                # Like a real ingest: the chunk lists its sentence records' ids.
                sentence_ids=tuple(
                    f"{chunk_id}-{p}" for p in range(min(SENTENCE_RECORDS_PER_CHUNK, len(texts)))
                ),
            )
            chunk = Chunk(chunk_id, text, meta)
            chunks.append(chunk)
            offset = 0
            for position, (member, sentence) in enumerate(zip(members, texts, strict=True)):
                if position < SENTENCE_RECORDS_PER_CHUNK:
                    record = SentenceMeta.of_chunk(
                        meta, chunk_id, offset, offset + len(sentence), context=""
                    )
                    sentences.append(SentenceRecord(f"{chunk_id}-{position}", sentence, record))
                    sentence_pool.append(member)
                offset += len(sentence) + 1
        return chunks, sentences, sentence_pool

    report: dict[str, Any] = {
        "embedded_texts": embedded_texts,
        "embed_seconds": round(embed_seconds, 1),
        "pool_sentences": len(pool),
        "sizes": {},
    }
    client = assistant._client
    for size in sizes:
        started = time.perf_counter()
        chunks, sentences, sentence_pool = chunks_for(size)
        sentence_vectors = pool_vectors[np.asarray(sentence_pool)]
        # The distinct chunks keep exact sentence vectors, the derived ones get noise.
        sentence_vectors = np.where(
            (np.arange(len(sentences)) >= distinct * SENTENCE_RECORDS_PER_CHUNK)[:, None],
            perturb(sentence_vectors),
            sentence_vectors,
        ).astype(np.float32)
        name = _collection(size)
        store = ChromaStore(client, name, embedder.model_id, embedder.dim, records=ChunkMeta)
        sentence_store = ChromaStore(
            client, f"{name}-sentences", embedder.model_id, embedder.dim, records=SentenceMeta
        )
        step = 5000
        for start in range(0, size, step):
            end = min(start + step, size)
            store.upsert(chunks[start:end], vectors[start:end])
        chunk_seconds = time.perf_counter() - started
        started = time.perf_counter()
        for start in range(0, len(sentences), step):
            sentence_store.upsert(
                sentences[start : start + step], sentence_vectors[start : start + step]
            )
        sentence_seconds = time.perf_counter() - started
        started = time.perf_counter()
        lexical = LexicalIndex(work / "index" / "lexical" / name, store)
        lexical.refresh()
        bm25_seconds = time.perf_counter() - started
        report["sizes"][str(size)] = {
            "chunks": size,
            "sentences": len(sentences),
            "chunk_insert_seconds": round(chunk_seconds, 1),
            "sentence_insert_seconds": round(sentence_seconds, 1),
            "bm25_build_seconds": round(bm25_seconds, 1),
        }
        print(f"built {name}: {report['sizes'][str(size)]}", file=sys.stderr, flush=True)
    report["build_seconds"] = round(time.perf_counter() - started_all, 1)
    return report


# Measuring ----------------------------------------------------------------------------------
def _timed(calls: int, warmup: int, run: Callable[[int], object]) -> list[float]:
    for number in range(warmup):
        run(number)
    samples = []
    for number in range(calls):
        started = time.perf_counter()
        run(number)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def measure(
    work: Path, store: str, port: int, sizes: list[int], queries: int, server_pid: int | None
) -> dict[str, Any]:
    from langchain_chroma import Chroma
    from langchain_core.embeddings import Embeddings

    from assistant.core import Assistant
    from assistant.language import detect_question_language
    from assistant.retrieve import HybridRetriever
    from assistant.store.lexical import LexicalIndex
    from embeddings.base import Embedder, Kind
    from evals.dataset import load_dataset

    items = load_dataset(REPO / "evals" / "datasets" / "default.jsonl")
    questions = [(item.question, detect_question_language(item.question)) for item in items]
    result: dict[str, Any] = {"rss_start_mb": round(_rss_mb(), 1), "sizes": {}}
    first = Assistant(_settings(work, store, port, _collection(sizes[0])))
    embedder = first.embedder
    vectors = [embedder.embed_query(q) for q, _ in questions]  # also loads the model
    result["rss_model_mb"] = round(_rss_mb(), 1)
    if server_pid:
        result["server_rss_start_mb"] = round(_rss_mb(server_pid), 1)
    embed_samples = _timed(
        queries, 3, lambda n: embedder.embed_query(questions[n % len(questions)][0])
    )
    result["embed_ms"] = [_percentile(embed_samples, 50), _percentile(embed_samples, 95)]

    class Known(Embedder):
        """The question vectors computed above, so store-side paths exclude embedding."""

        model_id = embedder.model_id
        dim = embedder.dim

        def __init__(self) -> None:
            self.by_text = {q: v for (q, _), v in zip(questions, vectors, strict=True)}

        def _embed_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
            return np.stack([self.by_text[t] for t in texts])

        def embed_query(self, text: str) -> np.ndarray:
            return self.by_text[text]

    class SameModel(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embedder.embed_passages(texts).tolist()

        def embed_query(self, text: str) -> list[float]:
            return embedder.embed_query(text).tolist()

    keep: list[Any] = []  # every size stays loaded, so RSS grows as a serving process would
    for size in sizes:
        assistant = Assistant(_settings(work, store, port, _collection(size)), embedder=embedder)
        started = time.perf_counter()
        assistant.lexical.refresh()
        open_seconds = time.perf_counter() - started
        assert len(assistant.lexical.ids) == size, (len(assistant.lexical.ids), size)
        s = assistant.settings
        known = HybridRetriever(
            assistant.store,
            assistant.sentences,
            assistant.lexical,
            Known(),
            candidates=s.candidates,
            rrf_k=s.rrf_k,
            dense_weight=s.dense_weight,
            lexical_weight=s.lexical_weight,
            sentence_weight=s.sentence_weight,
            dedup_threshold=s.dedup_threshold,
        )
        naive = Chroma(
            client=assistant._client,
            collection_name=_collection(size),
            embedding_function=SameModel(),
        )
        paths = _paths(assistant, known, naive, questions, vectors)
        latencies = {}
        for name, run in paths.items():
            samples = _timed(queries, 5, run)
            latencies[name] = [_percentile(samples, 50), _percentile(samples, 95)]
        started = time.perf_counter()
        fresh = LexicalIndex(work / "rebuild-probe" / f"{store}-{size}", assistant.store)  # type: ignore[arg-type]
        fresh.refresh()
        rebuild_seconds = time.perf_counter() - started
        shutil.rmtree(work / "rebuild-probe", ignore_errors=True)
        del fresh
        keep.append((assistant, known, naive))
        entry: dict[str, Any] = {
            "latency_ms": latencies,
            "rss_mb": round(_rss_mb(), 1),
            "open_seconds": round(open_seconds, 2),
            "bm25_rebuild_from_chroma_seconds": round(rebuild_seconds, 1),
        }
        if server_pid:
            entry["server_rss_mb"] = round(_rss_mb(server_pid), 1)
        result["sizes"][str(size)] = entry
        print(f"measured {store} {size}: {entry}", file=sys.stderr, flush=True)
    return result


def _paths(
    assistant: Any, known: Any, naive: Any, questions: list[tuple[str, str]], vectors: list[Any]
) -> dict[str, Callable[[int], object]]:
    from assistant.retrieve import Filters

    allows = Filters().allows  # what the retriever passes when the caller has no filter

    def question(n: int) -> tuple[str, str]:
        return questions[n % len(questions)]

    def vector(n: int) -> Any:
        return vectors[n % len(vectors)]

    return {
        "dense, chunks (k=30)": lambda n: assistant.store.query(vector(n), CANDIDATES),
        "BM25 (k=30)": lambda n: assistant.lexical.search(
            question(n)[0], CANDIDATES, question(n)[1], allows
        ),
        "hybrid (chunks+sentences+BM25, RRF, k=5)": lambda n: known.retrieve(
            question(n)[0], TOP_K, question(n)[1]
        ),
        "hybrid incl. question embedding": lambda n: assistant.retriever.retrieve(
            question(n)[0], TOP_K, question(n)[1]
        ),
        "naive: LangChain similarity_search_by_vector (k=5)": lambda n: (
            naive.similarity_search_by_vector(vector(n).tolist(), k=TOP_K)
        ),
        "naive: LangChain similarity_search incl. embedding (k=5)": lambda n: (
            naive.similarity_search(question(n)[0], k=TOP_K)
        ),
    }


# Orchestration ------------------------------------------------------------------------------
def _child(arguments: list[str], serving: bool = False) -> dict[str, Any]:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    if serving:
        # One OpenMP thread for the question model: with two, a busy core turns its 20 ms
        # into 0.5-2 s now and then (see docs/deployment.md).
        env.setdefault("OMP_NUM_THREADS", "1")
    process = subprocess.run(
        [sys.executable, __file__, *arguments], stdout=subprocess.PIPE, text=True, cwd=REPO, env=env
    )
    if process.returncode != 0:
        raise SystemExit(f"{arguments[0]} failed with exit code {process.returncode}")
    return dict(json.loads(process.stdout.strip().splitlines()[-1]))


def _start_server(path: Path, port: int) -> subprocess.Popen[bytes]:
    import httpx

    log = (path.parent / "chroma-server.log").open("ab")
    chroma = Path(sys.executable).parent / "chroma"
    command = [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1"]
    server = subprocess.Popen([*command, "--port", str(port)], stdout=log, stderr=log)
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).is_success:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the Chroma server did not start")


def _print_tables(
    built: dict[str, Any], measured: dict[str, dict[str, Any]], sizes: list[int], distinct: int
) -> None:
    print(
        f"Collections: chunks = 4 corpus sentences of one document recombined (sv, fi); "
        f"{built['embedded_texts']} texts embedded with the real model "
        f"({distinct} chunks + {built['pool_sentences']} corpus sentences, "
        f"{built['embed_seconds']} s), every other vector = an embedded one + Gaussian noise "
        f"(sigma {NOISE_SIGMA}), re-normalised. ~{SENTENCE_RECORDS_PER_CHUNK} sentence records "
        f"per chunk. Whole build: {built['build_seconds']} s. Serving processes run with "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '1')}; k=30 candidates per "
        f"ranking, {TOP_K} results; questions from evals/datasets/default.jsonl.\n"
    )
    print(
        "| chunks | sentence records | insert chunks (s) | insert sentences (s) | BM25 build (s) |"
    )
    print("|---|---|---|---|---|")
    for size in sizes:
        b = built["sizes"][str(size)]
        print(
            f"| {size:,} | {b['sentences']:,} | {b['chunk_insert_seconds']} | "
            f"{b['sentence_insert_seconds']} | {b['bm25_build_seconds']} |"
        )
    print()
    paths = list(next(iter(next(iter(measured.values()))["sizes"].values()))["latency_ms"])
    header = " | ".join(f"{size:,}: p50 / p95" for size in sizes)
    for mode, result in measured.items():
        embed = result["embed_ms"]
        print(
            f"**{mode}** (ms; question embedding alone: p50 {embed[0]:.1f}, p95 {embed[1]:.1f})\n"
        )
        print(f"| path | {header} |")
        print("|---" * (len(sizes) + 1) + "|")
        for path in paths:
            cells = []
            for size in sizes:
                p50, p95 = result["sizes"][str(size)]["latency_ms"][path]
                cells.append(f"{p50:.1f} / {p95:.1f}")
            print(f"| {path} | {' | '.join(cells)} |")
        print()
    print(
        "| mode | chunks | serving process RSS (MB) | Chroma server RSS (MB) | "
        "BM25 rebuild from Chroma (s) |"
    )
    print("|---|---|---|---|---|")
    for mode, result in measured.items():
        server = result.get("server_rss_start_mb")
        print(
            f"| {mode} | model loaded, no index | {result['rss_model_mb']} | "
            f"{server if server else '–'} | – |"
        )
        for size in sizes:
            entry = result["sizes"][str(size)]
            print(
                f"| {mode} | {size:,} (cumulative) | {entry['rss_mb']} | "
                f"{entry.get('server_rss_mb', '–')} | "
                f"{entry['bm25_rebuild_from_chroma_seconds']} |"
            )
    print()
    if len(sizes) >= 2:
        low, high = sizes[-2], sizes[-1]
        for mode, result in measured.items():
            grow = result["sizes"][str(high)]["rss_mb"] - result["sizes"][str(low)]["rss_mb"]
            per = grow / ((high - low) / 10_000)
            line = f"{mode}: serving process +{per:.0f} MB per 10k chunks"
            if "server_rss_mb" in result["sizes"][str(high)]:
                server_grow = (
                    result["sizes"][str(high)]["server_rss_mb"]
                    - result["sizes"][str(low)]["server_rss_mb"]
                )
                line += f", Chroma server +{server_grow / ((high - low) / 10_000):.0f} MB"
            print(f"* {line} (from {low:,} to {high:,} chunks, with ~3 sentence records each)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--distinct", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--modes", default="embedded,server")
    parser.add_argument("--keep", type=Path, help="keep the built collections in this directory")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    modes = args.modes.split(",")
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        built = _child(["_build", str(work), args.sizes, str(args.distinct)])
        measured: dict[str, dict[str, Any]] = {}
        common = [str(work), args.sizes, str(args.queries)]
        if "embedded" in modes:
            measured["embedded"] = _child(["_measure", "chroma", "0", "0", *common], True)
        if "server" in modes:
            port = _free_port()
            server = _start_server(work / "index" / "chroma", port)
            try:
                measured["server"] = _child(
                    ["_measure", "chroma-http", str(port), str(server.pid), *common], True
                )
            finally:
                server.terminate()
                server.wait(timeout=30)
        _print_tables(built, measured, sizes, args.distinct)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_build":
        _, _, work_dir, size_list, distinct_count = sys.argv
        report = build(Path(work_dir), [int(s) for s in size_list.split(",")], int(distinct_count))
        print(json.dumps(report))
    elif len(sys.argv) > 1 and sys.argv[1] == "_measure":
        _, _, store_name, port_text, pid_text, work_dir, size_list, query_count = sys.argv
        report = measure(
            Path(work_dir),
            store_name,
            int(port_text),
            sorted(int(s) for s in size_list.split(",")),
            int(query_count),
            int(pid_text) or None,
        )
        print(json.dumps(report))
    else:
        main()
