"""Command line: `assistant ingest`, `assistant index status`, `assistant ask`, `assistant
eval ...`, `assistant serve`, `assistant chat`. Heavy libraries are imported inside commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from assistant.errors import AssistantError

app = typer.Typer(
    help="Chat assistant over strategy documents and reports, with citations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
index_app = typer.Typer(help="Inspect the index.", no_args_is_help=True)
app.add_typer(index_app, name="index")


def _settings(**overrides: Any) -> Any:
    from assistant.settings import Settings

    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def ingest(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders (default corpus/)")
    ] = None,
    collection: Annotated[str | None, typer.Option(help="Collection name")] = None,
    prune: Annotated[bool, typer.Option(help="Remove documents whose files are gone")] = False,
    groups: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated access groups for these documents ('' makes them public). "
            "Without it, documents keep their groups (or take a .assistant-groups file's)."
        ),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Fail at once if another ingest is running")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Load, clean, chunk, embed and index documents (unchanged files are skipped)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from assistant.core import Assistant

    assistant = Assistant(_settings(collection=collection))
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        disable=as_json or not console.is_terminal,
    ) as bar:
        task = bar.add_task("ingesting", total=None)

        def progress(name: str, done: int, total: int) -> None:
            bar.update(task, description=f"ingesting {name}"[:60], completed=done, total=total)

        def waiting(message: str) -> None:
            typer.echo(message, err=True)

        report = assistant.ingest(
            paths or None,
            prune=prune,
            groups=None if groups is None else groups.split(","),
            progress=progress,
            wait=not no_wait,
            on_wait=waiting,
        )
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        typer.echo(
            f"added {len(report.added)}, updated {len(report.updated)}, "
            f"unchanged {len(report.unchanged)}, removed {len(report.removed)}, "
            f"failed {len(report.failed)} files; chunks written {report.chunks_written}, "
            f"deleted {report.chunks_deleted}, total {report.chunks_total} "
            f"({report.seconds:.1f} s)"
        )
        for doc_id, old, new in report.groups_changed:
            old, new = old or "(public)", new or "(public)"
            typer.echo(f"access groups changed: {doc_id}: {old} -> {new}")
        if report.sentences_repaired:
            typer.echo(f"repaired: {report.sentences_repaired} missing sentence records")
        for path, reason in report.failed:
            typer.echo(f"failed: {path}: {reason}", err=True)
    if report.failed:
        raise typer.Exit(1)


@index_app.command("check")
def index_check(
    repair: Annotated[bool, typer.Option(help="Fix what is found")] = False,
    collection: Annotated[str | None, typer.Option(help="Collection name")] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Fail at once if an ingest is running")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every chunk has its sentences, no sentence lacks its chunk, no document is half
    written. Exit code 1 when damage was found and not repaired."""
    from assistant.core import Assistant
    from assistant.ingest.pipeline import Ingestor

    assistant = Assistant(_settings(collection=collection))
    damage = Ingestor.for_assistant(assistant).check(
        repair=repair, wait=not no_wait, on_wait=lambda m: typer.echo(m, err=True)
    )
    summary = damage.as_dict()
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        for key, value in summary.items():
            typer.echo(f"{key:34} {value}")
    if not damage.ok and not repair:
        raise typer.Exit(1)


@index_app.command("status")
def index_status(
    collection: Annotated[str | None, typer.Option(help="Collection name")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Documents, chunks, languages, embedding model and data directory."""
    from assistant.core import Assistant

    status = Assistant(_settings(collection=collection)).status()
    if as_json:
        typer.echo(json.dumps(status, ensure_ascii=False, indent=2))
        return
    for key in (
        "collection",
        "documents",
        "chunks",
        "languages",
        "embedding_model",
        "embedding_dim",
        "store",
        "data_dir",
        "lexical_index_chunks",
    ):
        typer.echo(f"{key:22} {status[key]}")
    for doc in status["document_list"]:
        typer.echo(
            f"  {doc['doc_id']}  [{doc['language']}]  {doc['chunks']} chunks  {doc['title']}"
        )


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout")] = False,
    backend: Annotated[str | None, typer.Option(help="extractive, llamacpp, openai")] = None,
    collection: Annotated[str | None, typer.Option(help="Collection name")] = None,
    doc: Annotated[
        list[str] | None, typer.Option(help="Only this document (doc id as in 'index status')")
    ] = None,
    language: Annotated[
        list[str] | None, typer.Option(help="Only documents in this language (sv, fi, en, ...)")
    ] = None,
) -> None:
    """Answer one question with numbered, checked citations."""
    from assistant.core import Assistant
    from assistant.retrieve import Filters

    filters = Filters(doc_ids=tuple(doc or ()), languages=tuple(language or ()))
    answer = Assistant(_settings(backend=backend, collection=collection)).ask(
        question, filters=filters
    )
    if as_json:
        fields = {"answer", "language", "refused", "citations", "retrieved", "timings_ms"}
        payload = answer.model_dump(include=fields)
        payload["retrieved"] = [
            {k: r[k] for k in ("chunk_id", "doc", "page", "text", "score")}
            for r in payload["retrieved"]
        ]
        typer.echo(json.dumps(payload, ensure_ascii=False))
        return
    typer.echo(answer.answer)
    if answer.citations:
        typer.echo("\nSources:")
        for c in answer.citations:
            page = f", page {c.page}" if c.page is not None else ""
            # The title is what people recognise; the file is where to check it.
            name = f"{c.title} ({c.doc})" if c.title and c.title != c.doc else c.doc
            typer.echo(f"  [{c.n}] {name}{page}: “{c.quote}”")
    for sentence in answer.unsupported_sentences:
        typer.echo(f"  (no valid citation: {sentence})")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    collection: Annotated[str | None, typer.Option(help="Collection name")] = None,
    root_path: Annotated[
        str | None,
        typer.Option(help="Path prefix a reverse proxy serves the app under, e.g. /assistant"),
    ] = None,
) -> None:
    """Start the web server: chat at /, embed view at /embed, API at /api and /v1."""
    from assistant.web.server import run

    run(_settings(host=host, port=port, collection=collection, root_path=root_path))


feedback_app = typer.Typer(help="Thumbs up/down collected in the chat.", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    out: Annotated[Path, typer.Option("--out", help="JSONL file to write")] = Path(
        "feedback.jsonl"
    ),
) -> None:
    """Write the collected feedback as eval-dataset lines (JSONL)."""
    from assistant.web.feedback import export

    count = export(_settings(), out)
    typer.echo(f"wrote {count} feedback items to {out}")


eval_app = typer.Typer(
    help="Evaluation suite: fixed Q&A pairs as a benchmark.", no_args_is_help=True
)
app.add_typer(eval_app, name="eval")
DEFAULT_DATASET = Path("evals/datasets/default.jsonl")


@eval_app.command("validate")
def eval_validate(
    dataset: Annotated[Path, typer.Argument(help="JSONL dataset")],
    corpus: Annotated[
        Path | None,
        typer.Option(help="Validate against this folder, ingested into its own collection"),
    ] = None,
    collection: Annotated[str | None, typer.Option(help="Collection name")] = None,
) -> None:
    """Check that every evidence and must_include item occurs in its indexed document."""
    from evals.dataset import load_dataset, validate_items

    items = load_dataset(dataset)
    assistant = _eval_assistant(_settings(collection=_eval_collection(corpus, collection)), corpus)
    # Each page rebuilt from its chunks at their offsets: chunks overlap, so joining them
    # whole would repeat the text at every boundary and a passage running across one would
    # not be found although it is verbatim in the document.
    spans: dict[str, dict[int, dict[int, str]]] = {}
    for chunk in assistant.store.iter_chunks():
        for key in {chunk.meta.source, chunk.doc_id}:
            page = spans.setdefault(key, {}).setdefault(chunk.meta.page or 0, {})
            if len(chunk.text) > len(page.get(chunk.meta.char_start, "")):
                page[chunk.meta.char_start] = chunk.text
    texts = {
        key: "\n".join(_rebuilt(pages[number]) for number in sorted(pages))
        for key, pages in spans.items()
    }
    problems = validate_items(items, texts.get)
    for problem in problems:
        typer.echo(f"{dataset}: {problem}", err=True)
    typer.echo(f"{len(items)} items, {len(problems)} problems")
    if problems:
        raise typer.Exit(1)


def _rebuilt(spans: dict[int, str]) -> str:
    """A page's text from overlapping spans keyed by their start offset."""
    text = ""
    for start in sorted(spans):
        span = spans[start]
        if start >= len(text):
            text += " " * (start - len(text)) + span
        elif start + len(span) > len(text):
            text = text[:start] + span
    return text


def _eval_collection(corpus: Path | None, collection: str | None) -> str | None:
    """An eval corpus gets its own collection, named after its folder."""
    if collection or corpus is None:
        return collection
    name = corpus.resolve().name
    if not name:
        _fail(f"--corpus {corpus}: cannot name a collection after this folder")
    return name


def _eval_assistant(settings: Any, corpus: Path | None, **components: Any) -> Any:
    """The assistant an eval runs against; with a corpus folder, that folder is ingested
    first (idempotent: unchanged files are skipped, files gone from the folder removed)."""
    from assistant.core import Assistant

    assistant = Assistant(settings, **components)
    if corpus is not None:
        if not corpus.is_dir():
            _fail(f"--corpus {corpus}: not a folder")
        report = assistant.ingest([corpus], prune=True)
        typer.echo(
            f"corpus {corpus} -> collection {settings.collection!r}: added "
            f"{len(report.added)}, updated {len(report.updated)}, unchanged "
            f"{len(report.unchanged)}, removed {len(report.removed)}, failed "
            f"{len(report.failed)} files; {report.chunks_total} chunks",
            err=True,
        )
        if report.failed or report.chunks_total == 0:
            _fail(f"--corpus {corpus}: ingest failed {report.failed}")
    return assistant


@eval_app.command("run")
def eval_run(
    dataset: Annotated[list[Path] | None, typer.Option("--dataset", help="JSONL file(s)")] = None,
    backend: Annotated[
        list[str] | None,
        typer.Option(
            "--backend",
            help="Answer backend; repeat it to run several over the same items side by side",
        ),
    ] = None,
    split: Annotated[
        str, typer.Option(help="dev (tune on it), test (held out; the CI gate) or all")
    ] = "all",
    corpus: Annotated[
        Path | None,
        typer.Option(
            help="Evaluate against this folder, ingested into a collection named after it"
        ),
    ] = None,
    collection: Annotated[str | None, typer.Option(help="Collection name")] = None,
    out: Annotated[
        Path, typer.Option(help="Report directory (one sub-directory per backend)")
    ] = Path("eval-reports/latest"),
    min_accuracy: Annotated[float | None, typer.Option(help="Fail below this")] = None,
    min_recall: Annotated[float | None, typer.Option(help="Fail below this")] = None,
    min_refusal: Annotated[float | None, typer.Option(help="Fail below this")] = None,
    judge: Annotated[
        str | None,
        typer.Option(
            help="Also let this LLM backend (llamacpp, openai) judge correctness "
            "and faithfulness; off by default"
        ),
    ] = None,
) -> None:
    """Run the dataset(s) through the assistant; write report.json/.md/.html."""
    from rich.console import Console
    from rich.progress import Progress

    from evals.dataset import DatasetError, load_dataset, select_split
    from evals.report import compare_backends, summary_table, write_reports
    from evals.runner import run_eval

    if split not in ("dev", "test", "all"):
        _fail(f"unknown split {split!r}: use dev, test or all")
    datasets = dataset or [DEFAULT_DATASET]
    items = select_split([i for path in datasets for i in load_dataset(path)], split)
    if not items:
        raise DatasetError(f"no items of split {split!r} in {', '.join(map(str, datasets))}")
    backends: list[str | None] = list(dict.fromkeys(backend)) if backend else [None]
    base = _settings(backend=backends[0], collection=_eval_collection(corpus, collection))
    first = _eval_assistant(base, corpus)
    runs: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    console = Console(stderr=True)
    for name in backends:
        settings = base.model_copy(update={"backend": name or base.backend})
        # Later backends share the first one's index and embedder: same retrieval, same items.
        assistant = (
            first
            if settings.backend == first.settings.backend
            else _eval_assistant(
                settings,
                None,
                embedder=first.embedder,
                store=first.store,
                sentences=first.sentences,
                lexical=first.lexical,
            )
        )
        config = {
            "backend": settings.backend,
            "embedder": settings.embedder,
            "collection": settings.collection,
            "top_k": settings.top_k,
            "split": split,
            "datasets": [str(p) for p in datasets],
            "corpus": str(corpus) if corpus else None,
        }
        with Progress(console=console, disable=not console.is_terminal) as bar:
            task = bar.add_task(f"evaluating {settings.backend}", total=len(items))

            def advance(done: int, total: int, task: Any = task) -> None:
                bar.update(task, completed=done)

            run = run_eval(
                assistant,
                items,
                config=config,
                progress=advance,
                judge=_judge_backend(settings, judge, assistant),
            )
        result = run.to_dict()
        target = out / settings.backend if len(backends) > 1 else out
        write_reports(result, target)
        runs[settings.backend] = result
        if len(backends) == 1:
            typer.echo(summary_table(result["summary"]))
        typer.echo(f"\nreports ({settings.backend}): {target}/report.json, report.md, report.html")
        failures += _below_thresholds(
            settings.backend, result["summary"], min_accuracy, min_recall, min_refusal
        )
    if len(runs) > 1:
        comparison = compare_backends(runs)
        (out / "comparison.md").write_text(comparison, encoding="utf-8")
        typer.echo(f"\n{comparison}\ncomparison: {out}/comparison.md")
    if failures:
        typer.echo("below threshold: " + "; ".join(failures), err=True)
        raise typer.Exit(1)


def _below_thresholds(
    name: str,
    summary: dict[str, Any],
    min_accuracy: float | None,
    min_recall: float | None,
    min_refusal: float | None,
) -> list[str]:
    return [
        f"{name}: {label} {summary[key]:.3f} < {limit}"
        for label, key, limit in (
            ("answer accuracy", "answer_accuracy", min_accuracy),
            ("recall", "recall_at_k", min_recall),
            ("refusal rate", "refusal_rate", min_refusal),
        )
        if limit is not None and summary.get(key) is not None and summary[key] < limit
    ]


def _judge_backend(settings: Any, name: str | None, assistant: Any) -> Any:
    if name is None:
        return None
    from assistant.answer.registry import create_backend

    return create_backend(settings.model_copy(update={"backend": name}), assistant.embedder)


@eval_app.command("compare")
def eval_compare(
    a: Annotated[Path, typer.Argument(help="report.json (or its directory) of run A")],
    b: Annotated[Path, typer.Argument(help="report.json (or its directory) of run B")],
) -> None:
    """Per-metric deltas and the items that flipped between two runs."""
    from evals.report import compare

    def load(path: Path) -> dict[str, Any]:
        path = path / "report.json" if path.is_dir() else path
        return dict(json.loads(path.read_text(encoding="utf-8")))

    typer.echo(compare(load(a), load(b)))


def main() -> None:
    try:
        app()
    except AssistantError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:
        from evals.dataset import DatasetError

        if not isinstance(exc, DatasetError | ValueError | FileNotFoundError):
            raise
        # Dataset, settings and model-path errors: a message, not a traceback.
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
