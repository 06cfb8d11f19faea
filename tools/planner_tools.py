"""The planner's view of the tools: plain typed functions whose docstrings are the schema.

``make_planner_tools(toolbox)`` returns LangChain ``StructuredTool``s bound to one toolbox. The
graph both binds them to a chat model (the schema) and calls them (the implementation), so
the schema the model sees and the code that runs cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

from vadetective.agent.core.types import Evidence
from vadetective.tools.toolbox import Toolbox

TOOL_NAMES = ("sample_frames", "score_timeline", "ground", "inspect_crop", "submit_verdict")


class SpanArg(BaseModel):
    """A time span in seconds."""

    start_s: float = Field(description="start, seconds from the beginning of the video")
    end_s: float = Field(description="end, seconds; greater than start_s")


class BoxArg(BaseModel):
    """A box in pixels of the original frame at one moment."""

    t_s: float = Field(description="time of the frame, seconds")
    xyxy: list[float] = Field(description="[x1, y1, x2, y2] in pixels of the original frame")
    label: str = Field(default="", description="what the box contains")
    score: float = Field(default=1.0, description="confidence in [0, 1]")


class VerdictDraft(BaseModel):
    """What ``submit_verdict`` receives; the graph checks it before accepting it."""

    answer: str
    is_anomalous: bool | None = None
    confidence: float = 0.5
    category: str | None = None
    spans: list[SpanArg] = Field(default_factory=list)
    boxes: list[BoxArg] = Field(default_factory=list)
    justification: str = ""
    evidence_ids: list[str] = Field(default_factory=list)


def make_planner_tools(toolbox: Toolbox) -> dict[str, StructuredTool]:
    """The five tools, bound to ``toolbox``, by name."""

    def sample_frames(start_s: float, end_s: float, count: int = 4) -> Evidence:
        """Look at frames from a span of the video; they are shown to you as images.

        Args:
            start_s: Start of the span, in seconds from the beginning of the video.
            end_s: End of the span, in seconds (at least start_s).
            count: How many frames to take, evenly spread over the span (1 to 8).
        """
        return toolbox.sample_frames(start_s, end_s, count)

    def score_timeline(
        phrases: list[str] | None = None, start_s: float | None = None, end_s: float | None = None
    ) -> Evidence:
        """Score how anomalous each moment of the video is and list the top candidate spans.

        Args:
            phrases: Optional concrete descriptions of the anomaly to look for, such as
                "a person lying on the ground"; omit to use the built-in prompt bank.
            start_s: Optional start of the part to report, in seconds.
            end_s: Optional end of the part to report, in seconds.
        """
        return toolbox.score_timeline(phrases, start_s, end_s)

    def ground(t_s: float, phrases: list[str]) -> Evidence:
        """Find boxes for text phrases in the frame at one moment.

        Args:
            t_s: Time of the frame, in seconds.
            phrases: What to look for, for example ["person", "bag"].
        """
        return toolbox.ground(t_s, phrases)

    def inspect_crop(t_s: float, box_xyxy: list[float], question: str) -> Evidence:
        """Zoom on a box (with some context around it) and answer a targeted question about it.

        Args:
            t_s: Time of the frame, in seconds.
            box_xyxy: The box [x1, y1, x2, y2] in pixels of the original frame.
            question: A specific question, such as "is this person lying on the ground?".
        """
        return toolbox.inspect_crop(t_s, box_xyxy, question)

    def submit_verdict(
        answer: str,
        is_anomalous: bool | None,
        confidence: float,
        justification: str,
        evidence_ids: list[str],
        category: str | None = None,
        spans: list[SpanArg] | None = None,
        boxes: list[BoxArg] | None = None,
    ) -> VerdictDraft:
        """Submit your final answer. It ends the investigation once it passes the checks.

        Args:
            answer: A direct answer to the question, in one or two sentences.
            is_anomalous: True if something abnormal happens, False if not, null if undecided.
            confidence: Your confidence in the answer, from 0 to 1.
            justification: Why, citing the evidence ids it rests on, e.g. "(E2, E4)".
            evidence_ids: The evidence ids cited in the justification.
            category: A short name for what happened, e.g. "fall" or "fighting".
            spans: When it happens: a list of {"start_s", "end_s"} in seconds.
            boxes: Where: a list of {"t_s", "xyxy", "label", "score"} in pixels of the frame.
        """
        return VerdictDraft(
            answer=answer,
            is_anomalous=is_anomalous,
            confidence=confidence,
            category=category,
            spans=spans or [],
            boxes=boxes or [],
            justification=justification,
            evidence_ids=evidence_ids,
        )

    funcs: list[Any] = [sample_frames, score_timeline, ground, inspect_crop, submit_verdict]
    return {f.__name__: StructuredTool.from_function(f, parse_docstring=True) for f in funcs}
