"""The detective's state: the case file the graph passes from node to node."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

from vadetective.agent.core.types import Evidence, TraceStep, Verdict, VideoInfo


class DetectiveState(TypedDict, total=False):
    """The case file.

    ``evidence`` and ``steps`` only grow (reducers append); counters are replaced by the node
    that changes them. ``messages`` is the planner's conversation; images in it are file
    references that are turned into data URIs only when a chat model is called, so
    checkpoints stay small.
    """

    question: str
    video: VideoInfo
    messages: Annotated[list[AnyMessage], add_messages]
    evidence: Annotated[list[Evidence], operator.add]
    steps: Annotated[list[TraceStep], operator.add]
    timeline_id: str
    planner_calls: int
    tool_calls: int
    frames_shown: int
    rejections: int
    final_asked: bool
    call_keys: list[str]
    planner_error: str | None
    verdict: Verdict | None
    stage_seconds: dict[str, float]


def initial_state(question: str, video: VideoInfo) -> dict[str, Any]:
    return {
        "question": question,
        "video": video,
        "messages": [],
        "evidence": [],
        "steps": [],
        "planner_calls": 0,
        "tool_calls": 0,
        "frames_shown": 0,
        "rejections": 0,
        "final_asked": False,
        "call_keys": [],
        "planner_error": None,
        "verdict": None,
        "stage_seconds": {},
    }
