"""Many staff at once: N = 1, 5, 20 simultaneous users asking through the HTTP API.

    .venv/bin/python benchmarks/concurrency.py [--users 1,5,20] [--requests 10]
                                               [--stores chroma,chroma-http]

The default corpus is ingested into a temporary data dir (embedded Chroma, and a `chroma run`
server for chroma-http). For each store, `create_app(settings)` is served by uvicorn in a
subprocess on 127.0.0.1 with the offline extractive backend; every user is a thread with its
own HTTP connection that POSTs /api/ask {"question": ...} a fixed number of times, questions
taken in turn from evals/datasets/default.jsonl. All traffic goes to 127.0.0.1; every loop is
bounded in count and in time. Reported: throughput, p50/p95/max latency, errors (any answer
other than 200), and the resident memory of the serving process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
LEVEL_TIME_LIMIT_S = 600.0
REQUEST_TIMEOUT_S = 120.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _wait_http(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=5) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise SystemExit(f"{url}: the server exited with {process.returncode}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer 200 within {timeout} s")


def serve(port: int) -> None:
    """The serving process: the real app, as `assistant serve` builds it."""
    import uvicorn

    from assistant.settings import Settings
    from assistant.web.server import create_app

    settings = Settings(host="127.0.0.1", port=port)
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")


def _questions() -> tuple[list[str], list[str]]:
    """Every question of the eval set, and one per language for the warm-up (the language
    detector and stemmers load per language on first use)."""
    lines = (REPO / "evals" / "datasets" / "default.jsonl").read_text("utf-8").splitlines()
    items = [json.loads(line) for line in lines if line.strip()]
    first = {item["question_lang"]: item["question"] for item in reversed(items)}
    return [item["question"] for item in items], list(first.values())


def run_level(port: int, users: int, requests: int, questions: list[str]) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + LEVEL_TIME_LIMIT_S

    def user(number: int) -> None:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=REQUEST_TIMEOUT_S
        ) as client:
            for turn in range(requests):
                if time.monotonic() > deadline:
                    with lock:
                        errors.append("not sent: level time limit reached")
                    continue
                question = questions[(number * requests + turn) % len(questions)]
                started = time.perf_counter()
                try:
                    response = client.post("/api/ask", json={"question": question})
                    outcome = None if response.status_code == 200 else str(response.status_code)
                    if outcome is None and "answer" not in response.json():
                        outcome = "200 without an answer"
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if outcome is None:
                        latencies.append(elapsed)
                    else:
                        errors.append(outcome)

    threads = [threading.Thread(target=user, args=(n,), daemon=True) for n in range(users)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=LEVEL_TIME_LIMIT_S + REQUEST_TIMEOUT_S)
    wall = time.perf_counter() - started
    return {
        "users": users,
        "requests": users * requests,
        "ok": len(latencies),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "throughput": len(latencies) / wall,
        "p50": _percentile(latencies, 50),
        "p95": _percentile(latencies, 95),
        "max": max(latencies) if latencies else float("nan"),
        "wall": wall,
    }


def bench_store(
    store: str,
    work: Path,
    levels: list[int],
    requests: int,
    questions: list[str],
    warmup: list[str],
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    data = work / store
    env = {
        **os.environ,
        "ASSISTANT_DATA_DIR": str(data),
        "ASSISTANT_STORE": store,
        "ASSISTANT_BACKEND": "extractive",
        # The benchmark is one client address; the per-client limit is not what is measured.
        "ASSISTANT_RATE_LIMIT_PER_MINUTE": "100000",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "TOKENIZERS_PARALLELISM": "false",
    }
    env.pop("ASSISTANT_CONFIG", None)
    chroma: subprocess.Popen[bytes] | None = None
    server: subprocess.Popen[bytes] | None = None
    try:
        if store == "chroma-http":
            chroma_port = _free_port()
            env["ASSISTANT_CHROMA_PORT"] = str(chroma_port)
            (data / "server").mkdir(parents=True)
            command = [str(Path(sys.executable).parent / "chroma"), "run", "--host", "127.0.0.1"]
            chroma = subprocess.Popen(
                [*command, "--port", str(chroma_port), "--path", str(data / "server")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            _wait_http(f"http://127.0.0.1:{chroma_port}/api/v2/heartbeat", 60, chroma)
        ingest = subprocess.run(
            [sys.executable, "-m", "assistant.cli", "ingest", "--json", "corpus"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if ingest.returncode != 0:
            raise SystemExit(f"ingest failed: {ingest.stderr[-2000:]}")
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "_serve", str(port)],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_http(f"http://127.0.0.1:{port}/readyz", 300, server)
        # Warm-up: the first questions load what /readyz does not (language detector etc.).
        run_level(port, 1, 2 * len(warmup), warmup)
        memory = {"rss_ready_mb": _rss_mb(server.pid)}
        results = [run_level(port, users, requests, questions) for users in levels]
        memory["rss_after_mb"] = _rss_mb(server.pid)
        memory["rss_peak_mb"] = _rss_mb(server.pid, "VmHWM")
        if chroma is not None:
            memory["chroma_rss_mb"] = _rss_mb(chroma.pid)
        return results, memory
    finally:
        for process in (server, chroma):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="1,5,20")
    parser.add_argument("--requests", type=int, default=20, help="questions per user")
    parser.add_argument("--stores", default="chroma,chroma-http")
    args = parser.parse_args()
    levels = [int(n) for n in args.users.split(",")]
    questions, warmup = _questions()
    work = Path(tempfile.mkdtemp(prefix="bench-concurrency-"))
    try:
        report = {
            store: bench_store(store, work, levels, args.requests, questions, warmup)
            for store in args.stores.split(",")
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"POST /api/ask through uvicorn on 127.0.0.1, extractive backend, default corpus; "
        f"{args.requests} questions per user; server settings: concurrency 4, queue 64 "
        f"(defaults); OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '1')}.\n"
    )
    print("| store | users | requests | errors | throughput (req/s) | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|---|---|---|---|")
    for store, (results, _) in report.items():
        for r in results:
            kinds = f" ({', '.join(r['error_kinds'])})" if r["errors"] else ""
            print(
                f"| {store} | {r['users']} | {r['requests']} | {r['errors']}{kinds} | "
                f"{r['throughput']:.1f} | {r['p50']:.0f} | {r['p95']:.0f} | {r['max']:.0f} |"
            )
    print()
    print(
        "| store | serving process RSS ready (MB) | after load (MB) | peak (MB) | Chroma server |"
    )
    print("|---|---|---|---|---|")
    for store, (_, memory) in report.items():
        chroma = memory.get("chroma_rss_mb")
        print(
            f"| {store} | {memory['rss_ready_mb']:.0f} | {memory['rss_after_mb']:.0f} | "
            f"{memory['rss_peak_mb']:.0f} | {f'{chroma:.0f} MB' if chroma else '–'} |"
        )
    failed = sum(r["errors"] for results, _ in report.values() for r in results)
    if failed:
        raise SystemExit(f"{failed} requests failed")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_serve":
        serve(int(sys.argv[2]))
    else:
        main()
