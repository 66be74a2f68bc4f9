"""The dataset format (JSONL, one item a line) and its validator.

Users write datasets for their own corpus, so the validator's messages name the file, the
line and the field.

Format: one JSON object per line; blank lines and lines starting with ``//`` are skipped.

==================  ========================================================================
field               meaning
==================  ========================================================================
``id``              unique within the file
``split``           required, ``"dev"`` or ``"test"``. Tune on dev only; the CI gate runs
                    test. An item's split is fixed when it is written and never changed.
``question``        what the user types (the last turn when there is a history)
``question_lang``   ``sv``, ``fi``, ``en`` or ``de``
``kind``            ``fact``, ``number``, ``crosslingual`` (a question in another language than
                    its document), ``multihop``, ``table`` (one cell of a table, named by row
                    label and column header), ``overview`` ("summarise…", "what are the main
                    goals…"), ``followup`` (a turn that needs the previous one: a fragment or a
                    pronoun-led question), ``topic_switch`` (a stand-alone question on another
                    topic after an exchange) or ``unanswerable``
``history``         the conversation before ``question``: a list of ``{"role": "user" |
                    "assistant", "content": str}``. Required (non-empty, with a user turn) for
                    ``followup`` and ``topic_switch``, forbidden for every other kind.
``answer``          the reference answer (for people and LLM judges; not scored)
``must_include``    short strings a correct answer contains (an empty list for unanswerable)
``min_include``     optional int: the answer is correct when at least this many must_include
                    items appear (default: all of them). For overview items, e.g. 2 of 4 key
                    phrases. 1 <= min_include <= len(must_include).
``alternatives``    optional, must_include item -> other accepted spellings
``doc``             file name of the document holding the answer, ``none`` when unanswerable
``evidence``        a verbatim passage of ``doc`` (compared with whitespace collapsed)
``feedback``,       written by ``assistant feedback export``; ignored by the runner
``comment``
==================  ========================================================================

Unanswerable items have ``must_include: []``, ``doc: "none"`` and no evidence; they are
correct only when the answer is a refusal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, ValidationInfo, field_validator

Kind = Literal[
    "fact",
    "number",
    "crosslingual",
    "multihop",
    "table",
    "overview",
    "followup",
    "topic_switch",
    "unanswerable",
]
Split = Literal["dev", "test"]
# Kinds whose question only makes sense after the conversation in `history`.
CONVERSATION_KINDS = frozenset({"followup", "topic_switch"})


class Turn(BaseModel, extra="forbid"):
    role: Literal["user", "assistant"]
    content: str

    @field_validator("content")
    @classmethod
    def _content(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class EvalItem(BaseModel, extra="forbid"):
    # Field order matters: the validators of history and min_include read kind and
    # must_include, which pydantic has validated only when they are declared earlier.
    id: str
    split: Split
    question: str
    question_lang: Literal["sv", "fi", "en", "de"]
    kind: Kind
    answer: str = ""
    must_include: list[str] = Field(default_factory=list)
    min_include: int | None = None
    alternatives: dict[str, list[str]] = Field(default_factory=dict)
    doc: str
    evidence: str = ""
    # Validated when absent too: followup and topic_switch items must have one.
    history: list[Turn] = Field(default_factory=list, validate_default=True)
    # Extra fields written by `assistant feedback export`.
    feedback: str | None = None
    comment: str | None = None

    @field_validator("question")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("min_include")
    @classmethod
    def _min_include(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is None:
            return value
        required = info.data.get("must_include")
        if required is None:  # must_include itself is invalid; reported there
            return value
        if not 1 <= value <= len(required):
            raise ValueError(
                f"must be between 1 and the number of must_include items ({len(required)})"
            )
        return value

    @field_validator("history")
    @classmethod
    def _history(cls, value: list[Turn], info: ValidationInfo) -> list[Turn]:
        kind = info.data.get("kind")
        if kind is None:  # kind itself is invalid; reported there
            return value
        if kind in CONVERSATION_KINDS:
            if not any(turn.role == "user" for turn in value):
                raise ValueError(f"{kind} items need a history with at least one user turn")
        elif value:
            raise ValueError(
                f"only followup and topic_switch items have a history, not {kind} items"
            )
        return value

    @property
    def answerable(self) -> bool:
        return self.kind != "unanswerable"

    @property
    def required_count(self) -> int:
        """How many must_include items a correct answer must contain."""
        return self.min_include if self.min_include is not None else len(self.must_include)


class DatasetError(Exception):
    pass


def load_dataset(path: Path) -> list[EvalItem]:
    items: list[EvalItem] = []
    seen: set[str] = set()
    errors: list[str] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            item = EvalItem.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            errors.append(f"{path}:{number}: not JSON ({exc.msg})")
            continue
        except ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(p) for p in error["loc"]) or "(item)"
                errors.append(f"{path}:{number}: field {field}: {error['msg']}")
            continue
        if item.id in seen:
            errors.append(f"{path}:{number}: field id: duplicate id {item.id!r}")
        seen.add(item.id)
        items.append(item)
    if errors:
        raise DatasetError("\n".join(errors))
    if not items:
        raise DatasetError(f"{path}: no items")
    return items


def select_split(items: list[EvalItem], split: str) -> list[EvalItem]:
    """Items of one split ("dev", "test"), or all of them ("all")."""
    if split == "all":
        return list(items)
    if split not in ("dev", "test"):
        raise DatasetError(f"unknown split {split!r}: use dev, test or all")
    return [item for item in items if item.split == split]


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def validate_items(items: list[EvalItem], document_text: Callable[[str], str | None]) -> list[str]:
    """Problems found: evidence not in its document, must_include not in evidence/document."""
    problems: list[str] = []
    for item in items:
        if not item.answerable:
            if item.must_include or item.doc not in ("none", ""):
                problems.append(f"{item.id}: unanswerable items have must_include [] and doc none")
            continue
        text = document_text(item.doc)
        if text is None:
            problems.append(f"{item.id}: field doc: {item.doc!r} is not in the index")
            continue
        haystack = squash(text)
        if not item.evidence.strip():
            problems.append(f"{item.id}: field evidence: empty")
        elif squash(item.evidence) not in haystack:
            problems.append(f"{item.id}: field evidence: not found verbatim in {item.doc}")
        for required in item.must_include:
            accepted = [required, *item.alternatives.get(required, [])]
            where = squash(item.evidence) + " " + haystack
            if not any(squash(a) in where for a in accepted):
                problems.append(
                    f"{item.id}: field must_include: {required!r} not in evidence or {item.doc}"
                )
        for key in item.alternatives:
            if key not in item.must_include:
                problems.append(f"{item.id}: field alternatives: {key!r} is not in must_include")
    return problems
