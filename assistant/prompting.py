"""Prompt files from the `prompts` package, rendered with Jinja2 StrictUndefined so a
missing variable fails loudly instead of producing a silently broken prompt."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from assistant.errors import PromptError


@cache
def load_prompt(name: str) -> dict[str, Any]:
    import yaml

    try:
        text = resources.files("prompts").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PromptError(f"prompt file prompts/{name}.yaml is missing") from exc
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise PromptError(f"prompts/{name}.yaml must hold a mapping")
    return data


@cache
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def render(template: str, **variables: Any) -> str:
    import jinja2

    try:
        return str(_environment().from_string(template).render(**variables)).strip()
    except jinja2.UndefinedError as exc:
        raise PromptError(f"prompt variable missing: {exc.message}") from exc


def render_prompt(name: str, part: str, **variables: Any) -> str:
    prompt = load_prompt(name)
    if part not in prompt:
        raise PromptError(f"prompts/{name}.yaml has no part {part!r}")
    return render(str(prompt[part]), **variables)


def phrase(key: str, language: str, **variables: Any) -> str:
    """A fixed phrase in the answer language (English when the language has none)."""
    table = load_prompt("phrases")[key]
    return render(str(table.get(language) or table["en"]), **variables)
