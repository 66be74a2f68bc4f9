"""Retrieval and end-to-end latency (p50/p95) of the assistant against a naive baseline
measured in the same run: plain LangChain Chroma similarity search with the same model.

    .venv/bin/python benchmarks/query.py [--questions 40] [--llm-questions 3]
        [--llm-model qwen2.5-coder-0.5b | qwen2.5-coder-1.5b]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from assistant.core import Assistant
from assistant.language import detect_question_language
from assistant.settings import Settings
from evals.dataset import load_dataset
from evals.metrics import evidence_rank


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument(
        "--llm-questions",
        type=int,
        default=3,
        help="questions for the llamacpp backend (0 to skip; ~3-10 s each)",
    )
    parser.add_argument(
        "--llm-model",
        default="qwen2.5-coder-0.5b",
        help="local model for the llamacpp rows (assistant/answer/gguf.py MODELS)",
    )
    args = parser.parse_args()
    from langchain_chroma import Chroma
    from langchain_core.embeddings import Embeddings

    work = Path(tempfile.mkdtemp(prefix="bench-query-"))
    try:
        assistant = Assistant(Settings(data_dir=work))
        assistant.ingest([Path("corpus")])
        items = load_dataset(Path("evals/datasets/default.jsonl"))[: args.questions]
        embedder = assistant.embedder

        class SameModel(Embeddings):
            def embed_documents(self, texts: list[str]) -> list[list[float]]:
                return embedder.embed_passages(texts).tolist()

            def embed_query(self, text: str) -> list[float]:
                return embedder.embed_query(text).tolist()

        chunks = list(assistant.store.iter_chunks())
        naive = Chroma(
            collection_name="naive",
            embedding_function=SameModel(),
            persist_directory=str(work / "naive"),
        )
        naive.add_texts([c.text for c in chunks])

        rows: dict[str, list[float]] = {
            "naive dense (LangChain Chroma)": [],
            "hybrid retrieval": [],
            "ask (extractive, end to end)": [],
        }
        recall = {"naive dense (LangChain Chroma)": 0, "hybrid retrieval": 0}
        answerable = [i for i in items if i.answerable]
        for item in items:
            started = time.perf_counter()
            docs = naive.similarity_search(item.question, k=5)
            rows["naive dense (LangChain Chroma)"].append((time.perf_counter() - started) * 1e3)
            started = time.perf_counter()
            result = assistant.retriever.retrieve(
                item.question, 5, detect_question_language(item.question)
            )
            rows["hybrid retrieval"].append((time.perf_counter() - started) * 1e3)
            started = time.perf_counter()
            assistant.ask(item.question)
            rows["ask (extractive, end to end)"].append((time.perf_counter() - started) * 1e3)
            if item.answerable:
                recall["naive dense (LangChain Chroma)"] += (
                    evidence_rank(item, [d.page_content for d in docs]) is not None
                )
                recall["hybrid retrieval"] += (
                    evidence_rank(item, [c.chunk.text for c in result.chunks]) is not None
                )
        ttft: list[float] = []
        if args.llm_questions and importlib.util.find_spec("llama_cpp") is not None:
            from assistant.answer.gguf import ensure_gguf, part_model

            gguf = ensure_gguf(work, part_model(args.llm_model))
            llm = Assistant(
                Settings(data_dir=work, backend="llamacpp", llamacpp_model_path=gguf),
                embedder=embedder,
            )
            llm.ask(items[0].question)  # warm-up: model load and first-call costs
            name = f"ask (llamacpp {args.llm_model}, streamed, end to end)"
            rows[name] = []
            for item in items[: max(2, args.llm_questions)]:
                started = time.perf_counter()
                first: float | None = None
                for event in llm.stream(item.question):
                    if first is None and isinstance(event, str) and event.strip():
                        first = (time.perf_counter() - started) * 1e3
                rows[name].append((time.perf_counter() - started) * 1e3)
                ttft.append(first if first is not None else rows[name][-1])
        base = statistics.median(rows["naive dense (LangChain Chroma)"])
        print(f"{len(items)} questions, {len(chunks)} chunks\n")
        print("| path | p50 ms | p95 ms | p50 vs naive | recall@5 |")
        print("|---|---|---|---|---|")
        for name, values in rows.items():
            rec = f"{recall[name] / len(answerable):.3f}" if name in recall else "–"
            print(
                f"| {name} | {_p(values, 50):.1f} | {_p(values, 95):.1f} | "
                f"{_p(values, 50) / base:.1f}x | {rec} |"
            )
        if ttft:
            print(
                f"\nllamacpp {args.llm_model}: time to first token p50 {_p(ttft, 50):.0f} ms, "
                f"p95 {_p(ttft, 95):.0f} ms ({len(ttft)} questions, streamed)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
