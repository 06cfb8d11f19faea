"""What the planner reads. Data stays in the state; these functions only render it."""

from __future__ import annotations

from collections.abc import Sequence

from vadetective.agent.core.types import Evidence, VideoInfo
from vadetective.agent.core.vocabulary import ToolName

SYSTEM_PROMPT = """\
You are a video anomaly detective. You answer a question about one video: whether something \
abnormal happens, when (spans in seconds), where (boxes in pixels of the frame) and why.

Work like a detective: start from the anomaly timeline you are given, look at frames where the \
score is high, ground the people or objects involved, inspect the most suspicious one with a \
concrete question, and only then decide. Prefer concrete, action-centric hypotheses \
("a person falls and lies on the ground", "someone punches another person") over vague ones. \
If the evidence is insufficient, use another tool; do not repeat a call with the same arguments.

Every tool result is evidence with an id (E1, E2, ...). Finish by calling submit_verdict: give \
a direct answer, is_anomalous (true, false, or null if undecided), a confidence from 0 to 1, \
the spans and boxes, and a justification that cites the evidence ids it rests on, e.g. (E1, E3). \
Spans must lie inside the video and boxes inside the frame.\
"""

FINAL_PROMPT = (
    "Your budget is used up. Call submit_verdict now with what you have, citing the evidence ids."
)

NUDGE_PROMPT = "Call one of the tools, or submit_verdict if you have enough evidence."


def render_video(video: VideoInfo) -> str:
    w, h = video.resolution_wh
    return f"{video.duration_s:.1f} s long, {video.fps:.1f} fps, {w}x{h} pixels"


def render_evidence(ev: Evidence) -> str:
    """One evidence item as the planner sees it: compact, with its id."""
    if ev.error:
        return f"{ev.id} {ev.tool} ERROR: {ev.error}"
    parts = [f"{ev.id} {ev.tool}: {ev.summary}"]
    if ev.tool == ToolName.INSPECT_CROP:
        facts = ", ".join(f"{k}={_fmt(v)}" for k, v in ev.all_facts().items() if v is not None)
        if facts:
            parts.append(f"facts: {facts}")
    if ev.images:
        parts.append(f"{len(ev.images)} image(s) attached")
    return "\n".join(parts)


def _fmt(v: object) -> str:
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def render_case_file(
    question: str,
    video: VideoInfo,
    evidence: Sequence[Evidence],
    budget_left: int,
    frames_left: int,
) -> str:
    """The opening briefing: the question, the video and the evidence so far."""
    lines = [
        f"Question: {question}",
        f"Video: {render_video(video)}.",
        "Evidence so far:",
        *[f"- {render_evidence(ev)}" for ev in evidence],
        f"Budget: {budget_left} more tool calls, {frames_left} more frames can be shown.",
    ]
    return "\n".join(lines)


def render_budget(budget_left: int, frames_left: int) -> str:
    return f"[budget: {budget_left} tool calls, {frames_left} frames left]"
