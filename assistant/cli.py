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
    groups: Annotated[str, typer.Option(help="Comma-separated access groups")] = "",
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

        report = assistant.ingest(
            paths or None,
            prune=prune,
            groups=groups.split(",") if groups else (),
            progress=progress,
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
        for path, reason in report.failed:
            typer.echo(f"failed: {path}: {reason}", err=True)
    if report.failed:
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
) -> None:
    """Answer one question with numbered, checked citations."""
    from assistant.core import Assistant

    answer = Assistant(_settings(backend=backend, collection=collection)).ask(question)
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
            typer.echo(f"  [{c.n}] {c.doc}{page}: “{c.quote}”")
    for sentence in answer.unsupported_sentences:
        typer.echo(f"  (no valid citation: {sentence})")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    collection: Annotated[str | None, typer.Option(help="Collection name")] = None,
) -> None:
    """Start the web server: chat at /, embed view at /embed, API at /api and /v1."""
    from assistant.web.server import run

    run(_settings(host=host, port=port, collection=collection))


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


def main() -> None:
    try:
        app()
    except AssistantError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except (ValueError, FileNotFoundError) as exc:
        # Settings validation errors and missing model paths: a message, not a traceback.
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
