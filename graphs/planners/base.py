"""Planners: who decides the next tool call.

Any LangChain chat model that supports tool calling can plan (``ChatPlanner``); the
``rules`` policy needs no model and reads the typed case file directly. Every planner answers
with an ``AIMessage`` whose ``tool_calls`` name the next tool, and ends with ``submit_verdict``.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.tools import StructuredTool

from vadetective.agent.core.config import Config
from vadetective.agent.core.vocabulary import ToolName
from vadetective.graphs.state import DetectiveState
from vadetective.tools.registry import build

log = logging.getLogger(__name__)

FILE_PREFIX = "file://"

#: ``response_metadata`` key of a planner reply that holds no usable tool call, and why. A
#: planner that fails without raising returns an ``AIMessage`` with no tool calls and this key;
#: the graph then forces a verdict whose trace names the error.
PLANNER_ERROR_KEY = "planner_error"


class Planner(Protocol):
    """Chooses the next tool call from the case file.

    A planner may also have ``describe() -> dict[str, str]`` (model, server, protocol), which
    the trace records.
    """

    name: str
    model_id: str

    def decide(
        self, state: DetectiveState, tools: Sequence[StructuredTool], final: bool
    ) -> AIMessage:
        """The next action. ``final`` means only ``submit_verdict`` is allowed now."""
        ...


def image_block(path: Path) -> dict[str, Any]:
    """An image content block that refers to a file (kept light in checkpoints)."""
    return {"type": "image_url", "image_url": {"url": FILE_PREFIX + str(path)}}


def inline_images(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """Copies of ``messages`` with file image references turned into JPEG data URIs."""
    out: list[AnyMessage] = []
    for m in messages:
        if isinstance(m, HumanMessage) and isinstance(m.content, list):
            blocks: list[Any] = []
            for b in m.content:
                url = b.get("image_url", {}).get("url", "") if isinstance(b, dict) else ""
                if isinstance(url, str) and url.startswith(FILE_PREFIX):
                    data = Path(url[len(FILE_PREFIX) :]).read_bytes()
                    uri = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
                    blocks.append({"type": "image_url", "image_url": {"url": uri}})
                else:
                    blocks.append(b)
            out.append(m.model_copy(update={"content": blocks}))
        else:
            out.append(m)
    return out


class ChatPlanner:
    """A planner backed by any LangChain chat model with tool calling."""

    def __init__(self, model: BaseChatModel, name: str = "chat", model_id: str = "") -> None:
        self.model = model
        self.name = name
        self.model_id = model_id or str(
            getattr(model, "model_name", "") or getattr(model, "model", "") or type(model).__name__
        )

    def decide(
        self, state: DetectiveState, tools: Sequence[StructuredTool], final: bool
    ) -> AIMessage:
        allowed = [t for t in tools if t.name == ToolName.SUBMIT_VERDICT] if final else list(tools)
        bound = self.bind(allowed, state)
        result = bound.invoke(inline_images(state.get("messages", [])))
        if not isinstance(result, AIMessage):
            raise TypeError(
                f"the planner model returned {type(result).__name__}, expected an AIMessage"
            )
        return result

    def bind(self, allowed: Sequence[StructuredTool], state: DetectiveState) -> Any:
        """The model with this turn's tools bound (subclasses may bind more from the state)."""
        return self.model.bind_tools(allowed)

    def describe(self) -> dict[str, str]:
        """What the trace records about this planner (model; servers add server and protocol)."""
        return {"model": self.model_id}


def build_planner(config: Config) -> Planner:
    """The planner named by ``config.planner`` (``rules``, ``local`` or ``server``), built from
    the catalog."""

    planner: Planner = build("planner", config.planner, config)
    return planner
