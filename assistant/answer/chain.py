"""The answer pipeline's steps as LangChain runnables (LCEL):

    prepare | retrieve | generate | check_citations -> Answer

The steps themselves live in assistant.answer.pipeline (typed state, injected parts); this
module only composes them, so a LangChain user can insert, trace or replace a step.
"""

from __future__ import annotations

from typing import Any

from assistant.answer.pipeline import AnswerPipeline


def build_chain(pipeline: AnswerPipeline) -> Any:
    from langchain_core.runnables import RunnableLambda

    return (
        RunnableLambda(pipeline.prepare, name="prepare")
        | RunnableLambda(pipeline.retrieve, name="retrieve")
        | RunnableLambda(pipeline.generate, name="generate")
        | RunnableLambda(pipeline.finalise, name="check_citations")
    )
