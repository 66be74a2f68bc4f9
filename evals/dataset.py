"""The dataset format (JSONL, one item a line) and its validator.

Users write datasets for their own corpus, so the validator's messages name the file, the
line and the field."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

Kind = Literal["fact", "number", "crosslingual", "multihop", "unanswerable"]


class EvalItem(BaseModel, extra="forbid"):
    id: str
    question: str
    question_lang: Literal["sv", "fi", "en"]
    answer: str = ""
    must_include: list[str] = Field(default_factory=list)
    alternatives: dict[str, list[str]] = Field(default_factory=dict)
    doc: str
    evidence: str = ""
    kind: Kind
    # Extra fields written by `assistant feedback export`.
    feedback: str | None = None
    comment: str | None = None

    @field_validator("question")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @property
    def answerable(self) -> bool:
        return self.kind != "unanswerable"


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
