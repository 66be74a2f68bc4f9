"""LLM backends: a local GGUF model through llama-cpp-python, and any OpenAI-compatible server
(vLLM, llama.cpp server, Ollama, Azure OpenAI).

Both are evidence-first readers. The model sees numbered evidence lines (the sentences and
table rows of the top passages, rows under their column headers) and replies with JSON,
`{"evidence": [line numbers], "answer": "..."}`, constrained by a JSON schema where the engine
supports it (llama.cpp grammar; OpenAI `response_format`), parsed from plain text where it does
not. The answer is rendered with [n] markers of the passages that hold the cited lines, and
the citation check (citations.py) then shows the supporting line, verbatim, as the quote.
An empty evidence list is the model's refusal.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from assistant.answer.base import AnswerBackend, GenerationRequest
from assistant.answer.citations import EvidenceLine, evidence_lines
from assistant.answer.tables import asks_for_column
from assistant.errors import ConfigError, MissingExtraError
from assistant.prompting import phrase, render_prompt
from assistant.settings import Settings


@dataclass(frozen=True)
class ReaderConfig:
    # Passages whose lines the model sees, and how many lines at most: every prompt token
    # costs ~25 ms on 2 cores with the 1.5B model, so the lines are the ones closest to the
    # question, shown in document order.
    passages: int = 4
    max_lines: int = 12
    # Subtracted from a table row's similarity when the question names none of its columns.
    row_penalty: float = 0.05
    max_evidence: int = 3


@dataclass(frozen=True)
class Reading:
    """The model's reply: the evidence lines it names and its answer."""

    evidence: list[int]
    answer: str

    @property
    def refused(self) -> bool:
        return not self.evidence or not self.answer.strip()


def select_lines(request: GenerationRequest, config: ReaderConfig) -> list[EvidenceLine]:
    lines, vectors = evidence_lines(request.passages[: config.passages], request.sentences)
    if len(lines) <= config.max_lines:
        return lines
    if request.query_vector is not None and all(v is not None for v in vectors):
        matrix = np.vstack([np.asarray(v, np.float32) for v in vectors if v is not None])
        scores = matrix @ np.asarray(request.query_vector, np.float32)
        # The rows of a whole table would fill every line for any question about money:
        # rows of a table whose columns the question does not name rank lower (as in the
        # extractive backend).
        question = request.asked or request.question
        asked = {
            line.context: asks_for_column(question, line.context, request.language)
            for line in lines
            if line.context
        }
        scores = scores - np.array(
            [
                config.row_penalty if line.context and not asked[line.context] else 0.0
                for line in lines
            ],
            dtype=np.float32,
        )
        keep = sorted(np.argsort(-scores)[: config.max_lines].tolist())
    else:
        keep = list(range(config.max_lines))
    return [lines[i] for i in keep]


def response_schema(n_lines: int, max_evidence: int) -> dict[str, Any]:
    # Evidence before answer: the model commits to lines first, and the answer can stream as
    # soon as its first characters arrive.
    return {
        "type": "object",
        "properties": {
            "evidence": {
                "type": "array",
                "items": {"type": "integer", "enum": list(range(1, n_lines + 1))},
                "maxItems": max_evidence,
            },
            "answer": {"type": "string"},
        },
        "required": ["evidence", "answer"],
        "additionalProperties": False,
    }


def build_messages(
    request: GenerationRequest, lines: Sequence[EvidenceLine]
) -> list[dict[str, str]]:
    # One heading per passage; the rows of a table under one "columns" line.
    groups: list[dict[str, Any]] = []
    for k, line in enumerate(lines, start=1):
        new_passage = not groups or groups[-1]["n"] != line.passage.n
        if new_passage or groups[-1]["context"] != line.context:
            groups.append(
                {
                    "n": line.passage.n,
                    "title": line.passage.title if new_passage else "",
                    "page": line.passage.page,
                    "context": line.context,
                    "lines": [],
                }
            )
        groups[-1]["lines"].append({"k": k, "text": " ".join(line.text.split())})
    variables = {
        "language_name": phrase("language_name", request.language),
        "groups": groups,
        "question": request.question,
    }
    # Both parts get every variable; StrictUndefined still catches a misspelt one.
    system = render_prompt("answer", "system", **variables)
    user = render_prompt("answer", "user", **variables)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_LINE_REF = re.compile(r"\s*\[(\d{1,3})\]")
_JSON_OBJECT = re.compile(r"\{.*\}", re.S)


def parse_reading(text: str, n_lines: int) -> Reading:
    """The model's JSON reply; from plain text when the engine could not constrain it
    (line references written as [k] count as evidence)."""
    match = _JSON_OBJECT.search(text)
    if match:
        try:
            data = json.loads(match.group(0))
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            raw = data.get("evidence") or data.get("lines") or []
            evidence = [int(k) for k in raw if isinstance(k, int | str) and str(k).isdigit()]
            answer = str(data.get("answer") or "")
            return Reading([k for k in evidence if 1 <= k <= n_lines], answer)
    evidence = [int(k) for k in _LINE_REF.findall(text) if 1 <= int(k) <= n_lines]
    return Reading(evidence, text)


def render(reading: Reading, lines: Sequence[EvidenceLine], language: str) -> str:
    """The answer with [n] markers of the passages holding the cited lines."""
    if reading.refused:
        return phrase("refusal", language)
    markers: list[int] = []
    for k in reading.evidence:
        n = lines[k - 1].passage.n
        if n not in markers:
            markers.append(n)
    text = _LINE_REF.sub("", reading.answer).strip()
    return f"{text} {''.join(f'[{n}]' for n in markers)}"


class _AnswerStream:
    """Turns the raw JSON deltas of a constrained reply into answer-text deltas as they
    arrive. Evidence comes first in the schema, so it is known before the answer starts."""

    def __init__(self) -> None:
        self.raw = ""
        self._start: int | None = None  # index in raw of the answer string's first char
        self._emitted = 0  # decoded answer characters already yielded
        self.evidence: list[int] | None = None

    def feed(self, delta: str) -> str:
        self.raw += delta
        if self._start is None:
            match = re.search(r'"answer"\s*:\s*"', self.raw)
            if match is None:
                return ""
            self._start = match.end()
            found = re.search(r'"evidence"\s*:\s*\[([^\]]*)\]', self.raw[: match.start()])
            self.evidence = [int(k) for k in re.findall(r"\d+", found.group(1))] if found else None
        decoded = _decode_partial(self.raw[self._start :])
        # Hold back a possible line reference ("[1", "[12") until it is complete.
        cut = len(decoded)
        bracket = decoded.rfind("[")
        if bracket >= 0 and re.fullmatch(r"\[\d{0,3}", decoded[bracket:]):
            cut = bracket
        # Stripped, so the text yielded so far is always a prefix of the rendered answer.
        text = _LINE_REF.sub("", decoded[:cut]).strip()
        fresh = text[self._emitted :]
        self._emitted = len(text)
        return fresh


def _decode_partial(body: str) -> str:
    """The characters of a JSON string body so far, up to its closing quote."""
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == '"':
            break
        if char == "\\":
            if i + 1 >= len(body):
                break
            escape = body[i + 1]
            if escape == "u":
                if i + 6 > len(body):
                    break
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append({"n": "\n", "t": "\t", "r": "", "b": "", "f": ""}.get(escape, escape))
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


class EvidenceReader(AnswerBackend):
    """The prompt, parsing and rendering shared by the LLM backends; subclasses send the
    messages (`_reply` returns the raw reply, `_reply_stream` yields its deltas)."""

    can_rewrite = True

    def __init__(self, config: ReaderConfig | None = None) -> None:
        self.config = config or ReaderConfig()

    def _reply(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> str:
        raise NotImplementedError

    def _reply_stream(
        self, messages: list[dict[str, str]], schema: dict[str, Any]
    ) -> Iterator[str]:
        yield self._reply(messages, schema)

    def read(self, request: GenerationRequest) -> tuple[Reading, list[EvidenceLine]]:
        lines = select_lines(request, self.config)
        if not lines:
            return Reading([], ""), lines
        schema = response_schema(len(lines), self.config.max_evidence)
        raw = self._reply(build_messages(request, lines), schema)
        return parse_reading(raw, len(lines)), lines

    def generate(self, request: GenerationRequest) -> str:
        reading, lines = self.read(request)
        return render(reading, lines, request.language)

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        lines = select_lines(request, self.config)
        if not lines:
            yield phrase("refusal", request.language)
            return
        schema = response_schema(len(lines), self.config.max_evidence)
        decoder = _AnswerStream()
        streamed = ""
        for delta in self._reply_stream(build_messages(request, lines), schema):
            fresh = decoder.feed(delta)
            if fresh and decoder.evidence:
                # The joined deltas are what the citation check sees: they are the rendered
                # text, so the answer checked is the answer shown.
                streamed += fresh
                yield fresh
        reading = parse_reading(decoder.raw, len(lines))
        final = render(reading, lines, request.language)
        if streamed and final.startswith(streamed):
            rest = final[len(streamed) :]
            if rest:
                yield rest
        elif streamed:
            # A refusal decided at the end (no valid line): no marker follows the streamed
            # text, so the check refuses it; say so in words too.
            yield "\n\n" + final
        else:
            yield final


class OpenAIBackend(EvidenceReader):
    """Any OpenAI-compatible server. Structured output is tried in the order OpenAI / vLLM /
    Ollama accept it (`json_schema`), then llama-cpp-python's server (`json_object` with a
    schema), then plain text; the first that the server accepts is kept."""

    name = "openai"
    MODES = ("json_schema", "json_object", "text")

    def __init__(self, settings: Settings, config: ReaderConfig | None = None) -> None:
        super().__init__(config)
        if not settings.openai_base_url:
            raise ConfigError("backend 'openai' needs ASSISTANT_OPENAI_BASE_URL")
        try:
            import openai
        except ImportError as exc:
            raise MissingExtraError("openai", "openai") from exc
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=settings.openai_base_url, api_key=settings.openai_api_key, max_retries=1
        )
        self._settings = settings
        self._mode_lock = threading.Lock()
        self.mode: str | None = None  # a property of the server, found on the first request

    @staticmethod
    def _format(mode: str, schema: dict[str, Any]) -> dict[str, Any] | None:
        if mode == "json_schema":
            return {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema, "strict": True},
            }
        if mode == "json_object":
            return {"type": "json_object", "schema": schema}
        return None

    def _create(self, messages: list[dict[str, str]], schema: dict[str, Any], stream: bool) -> Any:
        modes = [self.mode] if self.mode else list(self.MODES)
        for i, mode in enumerate(modes):
            extra: dict[str, Any] = {}
            response_format = self._format(mode, schema)
            if response_format is not None:
                extra["response_format"] = response_format
            try:
                result = self._client.chat.completions.create(
                    model=self._settings.openai_model,
                    messages=messages,  # type: ignore[arg-type]
                    temperature=self._settings.temperature,
                    max_tokens=self._settings.max_answer_tokens,
                    stream=stream,
                    **extra,
                )
            except self._openai.APIStatusError as exc:
                # 400/422 from most servers; llama-cpp-python's server answers a response
                # format it does not know with a 500 that names the field.
                rejected = exc.status_code in (400, 422) or "response_format" in str(exc)
                if i == len(modes) - 1 or not rejected:
                    raise
                continue
            with self._mode_lock:
                self.mode = mode
            return result
        raise ConfigError("no response format accepted")  # unreachable: the loop raises

    def _reply(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> str:
        response = self._create(messages, schema, False)
        return str(response.choices[0].message.content or "")

    def _reply_stream(
        self, messages: list[dict[str, str]], schema: dict[str, Any]
    ) -> Iterator[str]:
        for event in self._create(messages, schema, True):
            if event.choices and event.choices[0].delta.content:
                yield str(event.choices[0].delta.content)

    def complete(self, system: str, user: str) -> str:
        response = self._client.chat.completions.create(
            model=self._settings.openai_model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            temperature=self._settings.temperature,
            max_tokens=self._settings.max_answer_tokens,
        )
        return str(response.choices[0].message.content or "")


class LlamaCppBackend(EvidenceReader):
    """A local GGUF model, loaded without weight repacking (no AMX crash, gguf.py). The JSON
    schema becomes a llama.cpp grammar, so the reply always parses."""

    name = "llamacpp"

    def __init__(self, settings: Settings, config: ReaderConfig | None = None) -> None:
        super().__init__(config)
        from assistant.answer.gguf import DEFAULT_MODEL, ensure_gguf, load_llama, part_model

        model_path = settings.llamacpp_model_path
        if model_path is None:
            # A model from its PyPI part-packages (gguf.py); the setting names it.
            name = str(getattr(settings, "llamacpp_model", None) or DEFAULT_MODEL)
            model_path = ensure_gguf(settings.data_dir, part_model(name))
        if not model_path.is_file():
            raise ConfigError(f"ASSISTANT_LLAMACPP_MODEL_PATH: {model_path} is not a .gguf file")
        self._settings = settings
        self.model_path = model_path
        self._llm: Any = load_llama(
            model_path,
            n_ctx=settings.llamacpp_context,
            n_threads=settings.llamacpp_threads,
            n_threads_batch=settings.llamacpp_threads,
            verbose=False,
        )
        # One llama.cpp context serves one request at a time.
        self._lock = threading.Lock()

    def _chat(
        self, messages: list[dict[str, str]], schema: dict[str, Any] | None, stream: bool
    ) -> Any:
        extra: dict[str, Any] = {}
        if schema is not None:
            extra["response_format"] = {"type": "json_object", "schema": schema}
        return self._llm.create_chat_completion(
            messages=messages,
            temperature=self._settings.temperature,
            max_tokens=self._settings.max_answer_tokens,
            stream=stream,
            **extra,
        )

    def _reply(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> str:
        with self._lock:
            return str(self._chat(messages, schema, False)["choices"][0]["message"]["content"])

    def _reply_stream(
        self, messages: list[dict[str, str]], schema: dict[str, Any]
    ) -> Iterator[str]:
        with self._lock:
            for event in self._chat(messages, schema, True):
                delta = event["choices"][0].get("delta", {}).get("content")
                if delta:
                    yield str(delta)

    def complete(self, system: str, user: str) -> str:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        with self._lock:
            return str(self._chat(messages, None, False)["choices"][0]["message"]["content"])
