"""Thumbs up/down (with an optional comment) on chat answers, kept in SQLite in the data dir,
and their export as eval-dataset lines (evals/dataset.py reads them) for review."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from assistant.schema import Answer
from assistant.settings import Settings
from assistant.web.i18n import LANGUAGES
from assistant.web.sqlite import SqliteStore

Rating = Literal["up", "down"]
FILENAME = "feedback.sqlite3"
# Longer comments are refused by the chat and cut here, whoever calls.
MAX_COMMENT_CHARS = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    turn INTEGER NOT NULL,
    caller TEXT NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL,
    question_lang TEXT NOT NULL,
    answer TEXT NOT NULL,
    refused INTEGER NOT NULL,
    citations TEXT NOT NULL,
    backend TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (session, turn)
)
"""


@dataclass(frozen=True)
class FeedbackItem:
    id: str
    session: str
    turn: int
    caller: str
    rating: Rating
    comment: str
    question: str
    question_lang: str
    answer: str
    refused: bool
    citations: list[dict[str, Any]]
    backend: str
    created: float
    updated: float


class FeedbackStore(SqliteStore):
    """One row per (chat session, answer); a later rating or comment updates that row."""

    FILENAME = FILENAME
    SCHEMA = (_SCHEMA,)

    def record(
        self,
        *,
        session: str,
        turn: int,
        caller: str,
        rating: Rating,
        answer: Answer,
        comment: str | None = None,
    ) -> str:
        """Stores (or updates) the rating of one answer; comment=None keeps an earlier one."""
        now = time.time()
        if comment is not None:
            comment = comment[:MAX_COMMENT_CHARS]
        citations = json.dumps([c.model_dump() for c in answer.citations], ensure_ascii=False)
        with self._db() as db:
            row = db.execute(
                "SELECT id FROM feedback WHERE session = ? AND turn = ?", (session, turn)
            ).fetchone()
            if row:
                db.execute(
                    "UPDATE feedback SET rating = ?, comment = COALESCE(?, comment), "
                    "updated = ? WHERE id = ?",
                    (rating, comment, now, row[0]),
                )
                return str(row[0])
            item_id = uuid.uuid4().hex[:16]
            db.execute(
                "INSERT INTO feedback (id, session, turn, caller, rating, comment, question, "
                "question_lang, answer, refused, citations, backend, created, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    item_id,
                    session,
                    turn,
                    caller,
                    rating,
                    comment or "",
                    answer.question,
                    answer.language,
                    answer.answer,
                    int(answer.refused),
                    citations,
                    answer.backend,
                    now,
                    now,
                ),
            )
            return item_id

    def items(self) -> list[FeedbackItem]:
        if not self.path.exists():
            return []
        with self._db() as db:
            rows = db.execute(
                "SELECT id, session, turn, caller, rating, comment, question, question_lang, "
                "answer, refused, citations, backend, created, updated "
                "FROM feedback ORDER BY created, turn"
            ).fetchall()
        return [
            FeedbackItem(
                id=row[0],
                session=row[1],
                turn=row[2],
                caller=row[3],
                rating=row[4],
                comment=row[5],
                question=row[6],
                question_lang=row[7],
                answer=row[8],
                refused=bool(row[9]),
                citations=json.loads(row[10]),
                backend=row[11],
                created=row[12],
                updated=row[13],
            )
            for row in rows
        ]


def eval_line(item: FeedbackItem) -> dict[str, Any]:
    """One eval-dataset item. A refusal becomes an "unanswerable" item and an answer a "fact"
    item whose evidence is its first cited quote; must_include stays empty for a reviewer to
    fill in, guided by "feedback" and "comment"."""
    first = item.citations[0] if item.citations and not item.refused else None
    return {
        "id": f"feedback-{item.id}",
        # Feedback is material to tune on, never held-out test data.
        "split": "dev",
        "question": item.question,
        "question_lang": item.question_lang if item.question_lang in LANGUAGES else "en",
        "answer": item.answer,
        "must_include": [],
        "doc": str(first["doc"]) if first else "none",
        "evidence": str(first["quote"]) if first else "",
        "kind": "fact" if first else "unanswerable",
        "feedback": item.rating,
        "comment": item.comment,
    }


def export(settings: Settings, out: Path) -> int:
    """Writes every rated answer as one JSONL line to out; returns how many."""
    items = FeedbackStore.for_settings(settings).items()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(eval_line(item), ensure_ascii=False) + "\n")
    return len(items)
