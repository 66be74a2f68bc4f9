"""The retrieval chain as LangChain runnables (LCEL):

    prepare (language, stand-alone question) | retrieve (hybrid) | generate (backend)
    | check (citations) -> Answer

`stream_answer` runs the same steps but yields the backend's text as it arrives.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from assistant.answer.base import GenerationRequest, Passage
from assistant.answer.citations import check_citations
from assistant.language import detect_question_language
from assistant.prompting import phrase, render_prompt
from assistant.schema import Answer, RetrievedPassage

if TYPE_CHECKING:
    from assistant.core import Assistant

# A follow-up that leans on the previous turn: short, or built around a pronoun.
_REFERRING = re.compile(
    r"\b(it|its|that|this|they|them|those|these|det|den|dess|de|dem|detta|denna|sitä|se|"
    r"siitä|sen|ne|niitä|niiden|tämä|tästä|entä|och|än|also|too|också|myös)\b",
    re.I,
)


def _elapsed(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def prepare(assistant: Assistant, state: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    question: str = state["question"]
    history: list[dict[str, str]] = state["history"]
    language = detect_question_language(question)
    search_question = question
    last_user = next((t["content"] for t in reversed(history) if t["role"] == "user"), "")
    if last_user:
        backend = assistant.backend
        if backend.can_rewrite:
            system = render_prompt("condense", "system")
            user = render_prompt("condense", "user", history=history[-6:], question=question)
            search_question = backend.complete(system, user).strip() or question
        elif len(question.split()) <= 3 or _REFERRING.search(question):
            # The extractive backend cannot rewrite; the previous question supplies the topic
            # of a pronoun-led or fragmentary follow-up ("Och 2024?"), but not of a short new
            # question that names its own topic ("Mitä Lahti teki tekoälyn suhteen?").
            search_question = f"{last_user} {question}"
    timings = {"prepare": _elapsed(started)}
    return {**state, "language": language, "search_question": search_question, "timings": timings}


def retrieve(assistant: Assistant, state: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    result = assistant.retriever.retrieve(
        state["search_question"], assistant.settings.top_k, state["language"], state["filters"]
    )
    timings = dict(state["timings"])
    timings.update({f"retrieve_{k}": round(v, 1) for k, v in result.timings_ms.items()})
    timings["retrieve"] = _elapsed(started)
    passages = [Passage(n=i + 1, scored=c) for i, c in enumerate(result.chunks)]
    return {
        **state,
        "passages": passages,
        "query_vector": result.query_vector,
        "sentences": result.sentences,
        "timings": timings,
    }


def request_of(state: dict[str, Any]) -> GenerationRequest:
    return GenerationRequest(
        question=state["search_question"],
        language=state["language"],
        passages=state["passages"],
        history=state["history"],
        query_vector=state["query_vector"],
        sentences=state.get("sentences", []),
    )


def generate(assistant: Assistant, state: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    text = assistant.backend.generate(request_of(state)) if state["passages"] else ""
    timings = {**state["timings"], "generate": _elapsed(started)}
    return {**state, "raw_answer": text, "timings": timings}


def finalise(assistant: Assistant, state: dict[str, Any]) -> Answer:
    started = time.perf_counter()
    language: str = state["language"]
    passages: list[Passage] = state["passages"]
    refusal = phrase("refusal", language)
    checked = check_citations(state["raw_answer"], passages, language)
    refused = not checked.citations
    timings = {**state["timings"], "check": _elapsed(started)}
    return Answer(
        answer=refusal if refused else checked.text,
        language=language,
        refused=refused,
        citations=[] if refused else checked.citations,
        retrieved=[
            RetrievedPassage(
                n=p.n,
                chunk_id=p.scored.chunk_id,
                doc=p.source,
                title=p.title,
                page=p.page,
                text=p.text,
                score=round(p.scored.score, 4),
            )
            for p in passages
        ],
        timings_ms=timings,
        unsupported_sentences=[] if refused else checked.unsupported,
        backend=assistant.backend.name,
        question=state["question"],
    )


def build_chain(assistant: Assistant) -> Any:
    from langchain_core.runnables import RunnableLambda

    return (
        RunnableLambda(lambda s: prepare(assistant, s), name="prepare")
        | RunnableLambda(lambda s: retrieve(assistant, s), name="retrieve")
        | RunnableLambda(lambda s: generate(assistant, s), name="generate")
        | RunnableLambda(lambda s: finalise(assistant, s), name="check_citations")
    )


def stream_answer(
    assistant: Assistant, question: str, history: list[dict[str, str]], filters: Any
) -> Iterator[str | Answer]:
    started = time.perf_counter()
    state: dict[str, Any] = {"question": question, "history": history, "filters": filters}
    state = retrieve(assistant, prepare(assistant, state))
    generation_started = time.perf_counter()
    parts: list[str] = []
    if state["passages"]:
        for delta in assistant.backend.stream(request_of(state)):
            parts.append(delta)
            yield delta
    state["raw_answer"] = "".join(parts)
    state["timings"] = {**state["timings"], "generate": _elapsed(generation_started)}
    answer = finalise(assistant, state)
    answer.timings_ms["total"] = _elapsed(started)
    yield answer
