"""Conversations kept per caller in SQLite in the data dir, for the chat and the HTTP API.

A conversation belongs to the caller that started it (the token's id; while auth is off the
browser's, from its cookie, see assistant/web/auth.py) and every read or change names its
owner, so one caller can never reach another's conversation, not even by guessing an id.
Each exchange is a question and the checked Answer JSON, which is what the chat re-renders
and what the server turns into history (assistant/web/history.py) when a client sends a
conversation_id.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from assistant.schema import Answer
from assistant.web.auth import Caller
from assistant.web.sqlite import SqliteStore

FILENAME = "conversations.sqlite3"
TITLE_CHARS = 80

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS conversations (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        title TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS conversations_owner ON conversations (owner, updated)",
    """CREATE TABLE IF NOT EXISTS exchanges (
        conversation TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (conversation, position)
    )""",
)


class Summary(BaseModel):
    """A conversation in the list: its number of exchanges, not their text."""

    id: str
    title: str
    created: float
    updated: float
    exchanges: int


class Conversation(BaseModel):
    id: str
    title: str
    created: float
    updated: float
    # [{"question": str, "answer": Answer JSON}], oldest first
    exchanges: list[dict[str, Any]] = Field(default_factory=list)


class ConversationList(BaseModel):
    conversations: list[Summary]


def title_for(question: str) -> str:
    text = " ".join(question.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


class ConversationStore(SqliteStore):
    FILENAME = FILENAME
    SCHEMA = _SCHEMA

    def create(self, owner: str, title: str) -> str:
        conversation_id = uuid.uuid4().hex
        now = time.time()
        with self._db() as db:
            db.execute(
                "INSERT INTO conversations (id, owner, title, created, updated) "
                "VALUES (?, ?, ?, ?, ?)",
                (conversation_id, owner, title_for(title), now, now),
            )
        return conversation_id

    def list(self, owner: str) -> list[Summary]:
        """The owner's conversations, the most recently changed first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT c.id, c.title, c.created, c.updated, COUNT(e.position) "
                "FROM conversations c LEFT JOIN exchanges e ON e.conversation = c.id "
                "WHERE c.owner = ? GROUP BY c.id ORDER BY c.updated DESC",
                (owner,),
            ).fetchall()
        keys = ("id", "title", "created", "updated", "exchanges")
        return [Summary(**dict(zip(keys, row, strict=True))) for row in rows]

    def get(self, owner: str, conversation_id: str) -> Conversation | None:
        with self._db() as db:
            row = db.execute(
                "SELECT id, title, created, updated FROM conversations WHERE id = ? AND owner = ?",
                (conversation_id, owner),
            ).fetchone()
            if row is None:
                return None
            exchanges = db.execute(
                "SELECT question, answer FROM exchanges WHERE conversation = ? ORDER BY position",
                (conversation_id,),
            ).fetchall()
        return Conversation(
            id=row[0],
            title=row[1],
            created=row[2],
            updated=row[3],
            exchanges=[{"question": q, "answer": json.loads(a)} for q, a in exchanges],
        )

    def append(self, owner: str, conversation_id: str, question: str, answer: Answer) -> bool:
        return self._write_exchange(owner, conversation_id, question, answer, replace_last=False)

    def replace_last(self, owner: str, conversation_id: str, answer: Answer) -> bool:
        """A regenerated answer takes the place of the last one."""
        return self._write_exchange(owner, conversation_id, None, answer, replace_last=True)

    def _write_exchange(
        self,
        owner: str,
        conversation_id: str,
        question: str | None,
        answer: Answer,
        *,
        replace_last: bool,
    ) -> bool:
        now = time.time()
        data = answer.model_dump_json()
        with self._db() as db:
            if not _owned(db, owner, conversation_id):
                return False
            last = db.execute(
                "SELECT MAX(position) FROM exchanges WHERE conversation = ?", (conversation_id,)
            ).fetchone()[0]
            if replace_last:
                if last is None:
                    return False
                db.execute(
                    "UPDATE exchanges SET answer = ?, created = ? "
                    "WHERE conversation = ? AND position = ?",
                    (data, now, conversation_id, last),
                )
            else:
                db.execute(
                    "INSERT INTO exchanges (conversation, position, question, answer, created) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (conversation_id, (last or 0) + 1, question, data, now),
                )
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id))
        return True

    def rename(self, owner: str, conversation_id: str, title: str) -> bool:
        title = title_for(title)
        if not title:
            return False
        with self._db() as db:
            changed = db.execute(
                "UPDATE conversations SET title = ? WHERE id = ? AND owner = ?",
                (title, conversation_id, owner),
            ).rowcount
        return bool(changed)

    def delete(self, owner: str, conversation_id: str) -> bool:
        with self._db() as db:
            if not _owned(db, owner, conversation_id):
                return False
            db.execute("DELETE FROM exchanges WHERE conversation = ?", (conversation_id,))
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        return True


def _owned(db: sqlite3.Connection, owner: str, conversation_id: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM conversations WHERE id = ? AND owner = ?", (conversation_id, owner)
    ).fetchone()
    return row is not None


class RenameRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=500)


def conversations_router(store: ConversationStore, caller: Any) -> APIRouter:
    """The caller's own conversations; another caller's id is a 404, like a missing one."""
    router = APIRouter(tags=["conversations"])

    def own(conversation_id: str, who: Caller) -> Conversation:
        found = store.get(who.id, conversation_id)
        if found is None:
            raise HTTPException(404, "no such conversation")
        return found

    @router.get("/api/conversations")
    def list_conversations(who: Caller = Depends(caller)) -> ConversationList:
        """The caller's conversations, the most recently changed first."""
        return ConversationList(conversations=store.list(who.id))

    @router.get("/api/conversations/{conversation_id}")
    def get_conversation(conversation_id: str, who: Caller = Depends(caller)) -> Conversation:
        """One conversation with its exchanges ({"question", "answer": Answer JSON})."""
        return own(conversation_id, who)

    @router.patch("/api/conversations/{conversation_id}")
    def rename(
        conversation_id: str, body: RenameRequest, who: Caller = Depends(caller)
    ) -> dict[str, Any]:
        """Give a conversation another title."""
        own(conversation_id, who)
        store.rename(who.id, conversation_id, body.title)
        return {"id": conversation_id, "title": title_for(body.title)}

    @router.delete("/api/conversations/{conversation_id}")
    def delete(conversation_id: str, who: Caller = Depends(caller)) -> dict[str, str]:
        """Delete a conversation and its exchanges."""
        own(conversation_id, who)
        store.delete(who.id, conversation_id)
        return {"deleted": conversation_id}

    return router
