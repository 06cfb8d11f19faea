"""What the planner reads. Data stays in the state; these functions only render it."""

from __future__ import annotations

from collections.abc import Sequence

from vadetective.agent.core.types import Evidence, VideoInfo
from vadetective.agent.core.vocabulary import ToolName

SYSTEM_PROMPT = """\
You are a video anomaly detective. Answer the question about one video: whether something \
abnormal happens, when (spans in seconds), where (boxes in pixels) and why.

Start from the anomaly timeline you are given. Look at frames where the score is high, ground \
the people or objects there, inspect the most suspicious box with a concrete question, then \
decide. Prefer concrete hypotheses ("a person falls") over vague ones. Never repeat a call \
with the same arguments.

Each tool result is evidence with an id (E1, E2, ...). Finish with submit_verdict: a direct \
answer to the question, is_anomalous (true, false or null), confidence 0 to 1, spans and boxes \
inside the video, and a justification that cites the evidence ids it rests on, e.g. (E1, E3).\
"""

#: The system prompt of a planner that reads text only: no frames, the same evidence in words.
TEXT_ONLY_SYSTEM_PROMPT = """\
You are a video anomaly detective. You cannot see the video: you read what the tools measure. \
Answer the question about one video: whether something abnormal happens, when (spans in \
seconds), where (boxes in pixels) and why.

Start from the anomaly timeline you are given. Ground the people or objects at a time where the \
score is high, then inspect the most suspicious box: the inspector measures speed, posture, \
stillness and direction and says what is unusual. Then decide. Never repeat a call with the \
same arguments.

Each tool result is evidence with an id (E1, E2, ...). Finish with submit_verdict: a direct \
answer to the question, is_anomalous (true, false or null), confidence 0 to 1, spans and boxes \
inside the video, and a justification that cites the evidence ids it rests on, e.g. (E1, E3).\
"""

FINAL_PROMPT = (
    "Your budget is used up. Call submit_verdict now with what you have, citing the evidence ids."
)

#: The text before the images of a tool turn (a text-only planner gets the text without it).
IMAGES_FOLLOW = "Images from the last tool calls."

NUDGE_PROMPT = "Call one of the tools, or submit_verdict if you have enough evidence."


def for_text_only(system_text: str) -> str:
    """A system message for a model that reads text only: the built-in prompt becomes its
    text-only version; anything else (a tools section appended) is kept after it."""
    if system_text.startswith(SYSTEM_PROMPT):
        return TEXT_ONLY_SYSTEM_PROMPT + system_text[len(SYSTEM_PROMPT) :]
    return system_text


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
        parts.append(f"{len(ev.images)} image(s) attached")  # text-only planners drop this line
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


def render_budget(budget_left: int, frames_left: int, not_used: Sequence[str] = ()) -> str:
    """The budget line after each tool turn; ``not_used`` names the investigating tools not
    called yet (structure small models need: what is left to try before deciding)."""
    if budget_left == 0:
        hint = ""
    elif not_used:
        hint = f"; not used yet: {', '.join(not_used)}"
    else:
        hint = f"; call {ToolName.SUBMIT_VERDICT} when the evidence is enough"
    return f"[budget: {budget_left} tool calls, {frames_left} frames left{hint}]"
