"""The detective's state: the case file the graph passes from node to node.

``DetectiveState`` is the one documented state type. Every node reads it and returns a partial
update of the same type (LangGraph merges it: ``evidence``, ``steps`` and ``messages`` grow
through their reducers, every other key is replaced). ``initial_state`` fills every key, so
nodes read ``state["key"]`` directly.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

from vadetective.agent.core.types import Evidence, TraceStep, Verdict, VideoInfo


class DetectiveState(TypedDict, total=False):
    """The case file.

    ``messages`` is the planner's conversation; images in it are file references that are
    turned into data URIs only when a chat model is called, so checkpoints stay small.
    """

    question: str
    video: VideoInfo
    messages: Annotated[list[AnyMessage], add_messages]
    evidence: Annotated[list[Evidence], operator.add]
    steps: Annotated[list[TraceStep], operator.add]
    #: id of the perception timeline (the whole-video ``score_timeline`` evidence)
    timeline_id: str
    #: short anomaly hypotheses ("person lying on the ground") the chain passes along
    tags: list[str]
    planner_calls: int
    tool_calls: int
    frames_shown: int
    rejections: int
    final_asked: bool
    call_keys: list[str]
    #: why the planner could not produce a usable action (the graph then forces a verdict)
    planner_error: str | None
    verdict: Verdict | None
    stage_seconds: dict[str, float]


def initial_state(question: str, video: VideoInfo) -> DetectiveState:
    """A fresh case file for ``question`` about ``video``, with every key set."""
    return {
        "question": question,
        "video": video,
        "messages": [],
        "evidence": [],
        "steps": [],
        "timeline_id": "",
        "tags": [],
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


def timeline_evidence(state: DetectiveState) -> Evidence | None:
    """The perception timeline of the case file, if it was computed."""
    tid = state.get("timeline_id")
    return next((e for e in state.get("evidence", []) if e.id == tid), None) if tid else None


def new_step(state: DetectiveState, offset: int = 0, **fields: Any) -> TraceStep:
    """A trace step numbered after the steps already in the case file (plus ``offset`` for a
    node that adds several)."""
    return TraceStep(index=len(state.get("steps", [])) + offset, **fields)


def with_id(state: DetectiveState, ev: Evidence, offset: int = 0) -> Evidence:
    """``ev`` with the next evidence id of the case file (E1, E2, ...)."""
    return ev.model_copy(update={"id": f"E{len(state.get('evidence', [])) + offset + 1}"})


def add_stage(state: DetectiveState, name: str, seconds: float) -> dict[str, float]:
    """The stage timings with ``seconds`` added to ``name``."""
    out = dict(state.get("stage_seconds") or {})
    out[name] = out.get(name, 0.0) + seconds
    return out
