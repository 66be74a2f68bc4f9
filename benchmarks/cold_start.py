"""Cold-start latency of `assistant ask` (a new process per question, index already built),
against the cost of starting Python itself, measured in the same run.

    .venv/bin/python benchmarks/cold_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

QUESTIONS = [
    "Vilken lag säger att regioner ska medverka i klinisk forskning?",
    "Paljonko konsernihallinnon ennuste parantaa kaupungin tulosta?",
    "When did the new financial system Jämerä go live?",
]


def _time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    python = [_time([sys.executable, "-c", "pass"]) for _ in range(args.runs)]
    ask = [
        _time([sys.executable, "-m", "assistant.cli", "ask", QUESTIONS[i % len(QUESTIONS)]])
        for i in range(args.runs)
    ]
    print("| command | runs | median s | max s |")
    print("|---|---|---|---|")
    print(
        f"| python -c pass (baseline) | {args.runs} | {statistics.median(python):.2f} | "
        f"{max(python):.2f} |"
    )
    print(
        f"| assistant ask (cold process) | {args.runs} | {statistics.median(ask):.2f} | "
        f"{max(ask):.2f} |"
    )
    print(f"\ntarget: answer within 3 s from a cold start; worst run {max(ask):.2f} s")


if __name__ == "__main__":
    main()
