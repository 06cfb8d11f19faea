"""A scripted chat model for tests and demos: it answers with queued tool calls.

LangChain's fake chat models drop tool calls unless ``bind_tools`` is a no-op and streaming is
disabled; this one is built for tool calling from the start and records what it was shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field


class ScriptedChatModel(BaseChatModel):
    """Answers each call with the next queued action.

    Each action is an ``AIMessage`` or a ``(tool_name, args)`` pair (turned into a tool call);
    when the queue is empty it answers with plain text and no tool call.
    """

    actions: list[Any] = Field(default_factory=list)
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[list[str]] = Field(default_factory=list)
    disable_streaming: bool = True
    _i: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        self.bound_tools.append([getattr(t, "name", str(t)) for t in tools])
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(list(messages))
        n = len(self.seen) - 1
        if n < len(self.actions):
            action = self.actions[n]
            if isinstance(action, AIMessage):
                msg = action
            else:
                tool, args = action
                msg = AIMessage(
                    content=f"calling {tool}",
                    tool_calls=[{"name": tool, "args": args, "id": f"call_{n}"}],
                )
        else:
            msg = AIMessage(content="I have nothing more to do.")
        return ChatResult(generations=[ChatGeneration(message=msg)])
