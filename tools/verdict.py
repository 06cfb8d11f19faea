"""What ``submit_verdict`` receives: the draft verdict the graph checks before accepting it.

The planner writes these fields as plain JSON (seconds, pixel lists); the graph turns an
accepted draft into a ``Verdict``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


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
