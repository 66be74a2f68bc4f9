"""Reports rendered from a saved run (report.json): Markdown, self-contained HTML with inline
SVG charts, and the comparison of two runs."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

HEADLINE = [
    ("answer_accuracy", "answer accuracy (answerable, with valid citation)"),
    ("refusal_rate", "refusal rate (unanswerable)"),
    ("false_refusal_rate", "false refusals (answerable)"),
    ("crosslingual_accuracy", "cross-language accuracy (question language ≠ document's)"),
    ("hit_at_1", "hit@1"),
    ("recall_at_k", "recall@k"),
    ("mrr", "MRR"),
    ("citation_precision", "citation precision"),
    ("answers_with_valid_citation", "answers with a valid citation"),
    ("accuracy", "overall accuracy (all items)"),
]


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def summary_table(summary: dict[str, Any]) -> str:
    rows = ["| metric | value |", "|---|---|"]
    rows += [f"| {label} | {_fmt(summary.get(key))} |" for key, label in HEADLINE]
    total = summary.get("latency_ms", {}).get("total", {})
    rows.append(f"| latency p50 / p95 (ms) | {_fmt(total.get('p50'))} / {_fmt(total.get('p95'))} |")
    judged = summary.get("llm_judged")
    if judged:
        rows.append(
            f"| LLM-judged correctness / faithfulness ({judged['judge_model']}, "
            f"{judged['judged_items']} items) | {_fmt(judged['judged_correctness'])} / "
            f"{_fmt(judged['judged_faithfulness'])} |"
        )
    rows.append(
        f"| items / errors / run time (s) | {summary.get('items')} / "
        f"{summary.get('errors')} / {summary.get('total_seconds')} |"
    )
    return "\n".join(rows)


def breakdown_table(summary: dict[str, Any], key: str) -> str:
    rows = [f"| {key.removeprefix('by_')} | n | accuracy | recall@k |", "|---|---|---|---|"]
    for name, block in summary.get(key, {}).items():
        rows.append(
            f"| {name} | {block['n']} | {_fmt(block['accuracy'])} | {_fmt(block['recall_at_k'])} |"
        )
    return "\n".join(rows)


SPLIT_COLUMNS = [
    ("n", "n"),
    ("answer_accuracy", "answer accuracy"),
    ("refusal_rate", "refusal rate"),
    ("false_refusal_rate", "false refusals"),
    ("recall_at_k", "recall@k"),
    ("accuracy", "overall accuracy"),
]


def split_table(summary: dict[str, Any]) -> str:
    rows = [
        "| split | " + " | ".join(label for _, label in SPLIT_COLUMNS) + " |",
        "|---" * (len(SPLIT_COLUMNS) + 1) + "|",
    ]
    for name, block in summary.get("by_split", {}).items():
        cells = " | ".join(_fmt(block.get(key)) for key, _ in SPLIT_COLUMNS)
        rows.append(f"| {name} | {cells} |")
    return "\n".join(rows)


def reliability_table(summary: dict[str, Any]) -> str:
    """Accuracy by band of Answer.answerability, answerable and unanswerable items apart."""
    data = summary.get("reliability") or {}
    rows = [
        "| answerability | n | mean score | answerable n | answer accuracy "
        "| unanswerable n | refused |",
        "|---|---|---|---|---|---|---|",
    ]
    for band, row in data.get("bands", {}).items():
        a, u = row["answerable"], row["unanswerable"]
        rows.append(
            f"| {band} | {row['n']} | {_fmt(row['mean_score'])} | {a['n']} | "
            f"{_fmt(a['accuracy'])} | {u['n']} | {_fmt(u['accuracy'])} |"
        )
    rows.append("")
    rows.append(
        f"Items with a score: {data.get('scored_items', 0)}; "
        f"Brier score (lower is better): {_fmt(data.get('brier'))}"
    )
    return "\n".join(rows)


def render_markdown(run: dict[str, Any]) -> str:
    summary = run["summary"]
    parts = [
        "# Evaluation report",
        "",
        f"Configuration: `{json.dumps(run['config'])}`",
        "",
        summary_table(summary),
        "",
        "## By split",
        "",
        split_table(summary),
        "",
        "## By kind",
        "",
        breakdown_table(summary, "by_kind"),
        "",
        "## By language",
        "",
        breakdown_table(summary, "by_language"),
        "",
        "## Cross-language (question language -> document language)",
        "",
        breakdown_table(summary, "crosslingual"),
        "",
        "## Reliability of the answerability score",
        "",
        reliability_table(summary),
        "",
        "## Latency per stage (ms)",
        "",
        "| stage | p50 | p95 |",
        "|---|---|---|",
    ]
    for stage, values in summary.get("latency_ms", {}).items():
        parts.append(f"| {stage} | {values['p50']} | {values['p95']} |")
    parts += ["", "## Failed items", ""]
    for item in run["items"]:
        if not item["correct"]:
            parts.append(
                f"- **{item['id']}** ({item['kind']}, {item['question_lang']}, "
                f"{item.get('split') or '?'}): {item['reason']} — Q: {item['user_input']}"
            )
    return "\n".join(parts) + "\n"


def _bar_chart(title: str, data: dict[str, float]) -> str:
    width, bar_height = 420, 22
    height = 30 + bar_height * len(data)
    bars = [f'<text x="0" y="16" font-weight="bold">{html.escape(title)}</text>']
    for index, (label, value) in enumerate(data.items()):
        y = 26 + index * bar_height
        bars.append(f'<text x="0" y="{y + 15}">{html.escape(label)}</text>')
        bars.append(
            f'<rect x="130" y="{y}" width="{max(1, int(250 * value))}" '
            f'height="{bar_height - 6}" fill="#3b6ea5"/>'
        )
        bars.append(f'<text x="{135 + int(250 * value)}" y="{y + 13}">{value:.2f}</text>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">{"".join(bars)}</svg>'
    )


def _histogram(values: list[float], bins: int = 12) -> dict[str, float]:
    if not values:
        return {}
    low, high = min(values), max(values)
    step = (high - low) / bins or 1.0
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int((value - low) / step))] += 1
    peak = max(counts) or 1
    return {f"{low + i * step:,.0f} ms": c / peak for i, c in enumerate(counts)}


def _html_table(markdown: str) -> str:
    """A Markdown table (header, rule, rows; text after a blank line as a paragraph)."""
    table, _, note = markdown.partition("\n\n")
    lines = table.splitlines()

    def row(line: str, tag: str) -> str:
        cells = line.strip().strip("|").split("|")
        return "<tr>" + "".join(f"<{tag}>{html.escape(c.strip())}</{tag}>" for c in cells) + "</tr>"

    body = row(lines[0], "th") + "".join(row(line, "td") for line in lines[2:])
    return f"<table>{body}</table>" + (f"<p>{html.escape(note.strip())}</p>" if note else "")


def render_html(run: dict[str, Any]) -> str:
    summary = run["summary"]
    table = _html_table(summary_table(summary))
    sections = "".join(
        f"<h2>{html.escape(title)}</h2>{_html_table(markdown)}"
        for title, markdown in (
            ("By split", split_table(summary)),
            ("By kind", breakdown_table(summary, "by_kind")),
            ("By language", breakdown_table(summary, "by_language")),
            ("Cross-language", breakdown_table(summary, "crosslingual")),
            ("Reliability of the answerability score", reliability_table(summary)),
        )
    )
    charts = [
        _bar_chart("Accuracy per kind", {k: v["accuracy"] for k, v in summary["by_kind"].items()}),
        _bar_chart(
            "Accuracy per language", {k: v["accuracy"] for k, v in summary["by_language"].items()}
        ),
        _bar_chart(
            "Latency histogram (share of peak)",
            _histogram([i["timings_ms"].get("total", 0.0) for i in run["items"]]),
        ),
    ]
    items = "".join(
        f"<tr class={'ok' if i['correct'] else 'bad'}><td>{html.escape(i['id'])}</td>"
        f"<td>{html.escape(str(i.get('split') or ''))}</td>"
        f"<td>{html.escape(i['user_input'])}</td><td>{html.escape(i['response'])}</td>"
        f"<td>{html.escape(i['reason'])}</td></tr>"
        for i in run["items"]
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Evaluation report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}td{{padding:2px 8px;
vertical-align:top;border-bottom:1px solid #ddd}}tr.bad td:first-child{{color:#b00}}
tr.ok td:first-child{{color:#080}}th{{text-align:left;padding:2px 8px}}</style></head>
<body><h1>Evaluation report</h1>
{table}{"".join(charts)}{sections}<h2>Items</h2><table>{items}</table></body></html>
"""


def write_reports(run: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(run, ensure_ascii=False, indent=1), "utf-8")
    (out / "report.md").write_text(render_markdown(run), "utf-8")
    (out / "report.html").write_text(render_html(run), "utf-8")


def compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    rows = ["| metric | A | B | delta |", "|---|---|---|---|"]
    for key, label in HEADLINE:
        va, vb = a["summary"].get(key), b["summary"].get(key)
        delta = (
            f"{vb - va:+.3f}"
            if isinstance(va, int | float) and isinstance(vb, int | float)
            else "–"
        )
        rows.append(f"| {label} | {_fmt(va)} | {_fmt(vb)} | {delta} |")
    before = {i["id"]: i["correct"] for i in a["items"]}
    flips = [
        f"- {i['id']}: {'fixed' if i['correct'] else 'broke'} ({i['reason']})"
        for i in b["items"]
        if i["id"] in before and before[i["id"]] != i["correct"]
    ]
    return "\n".join([*rows, "", f"Flipped items: {len(flips)}", *flips]) + "\n"


def compare_backends(runs: dict[str, dict[str, Any]]) -> str:
    """The summaries of several backends over the same items, side by side."""
    names = list(runs)
    rows = [
        "| metric | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for key, label in HEADLINE:
        rows.append(
            f"| {label} | " + " | ".join(_fmt(runs[n]["summary"].get(key)) for n in names) + " |"
        )
    p50 = [runs[n]["summary"].get("latency_ms", {}).get("total", {}).get("p50") for n in names]
    rows.append("| latency p50 (ms) | " + " | ".join(_fmt(v) for v in p50) + " |")
    kinds = sorted({k for n in names for k in runs[n]["summary"].get("by_kind", {})})
    for kind in kinds:
        cells = [runs[n]["summary"].get("by_kind", {}).get(kind, {}).get("accuracy") for n in names]
        rows.append(f"| accuracy: {kind} | " + " | ".join(_fmt(v) for v in cells) + " |")
    rows.append(
        "| items / errors | "
        + " | ".join(
            f"{runs[n]['summary']['items']} / {runs[n]['summary']['errors']}" for n in names
        )
        + " |"
    )
    return "\n".join(rows) + "\n"
