"""Core types shared by tools, graphs, batch runs, metrics and reports.

One frozen pydantic model per concept. Units live in the names: ``t_s`` and ``*_s`` are seconds
from the start of the video, ``frame_idx`` counts decoded frames from 0, ``xyxy`` are pixels of
the original frame (x1, y1, x2, y2), ``resolution_wh`` is (width, height).

This module never imports torch, transformers, OpenCV or ultralytics: conversions from model
outputs happen in the adapters under ``vadetective.tools``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vadetective.agent.core.io import atomic_write_text, loads_json
from vadetective.agent.core.vocabulary import MeasuredFacts, StepKind, TimelineFacts

TRACE_FORMAT_VERSION = 1


class Frozen(BaseModel):
    """Base for every core type: immutable, strict about unknown fields, JSON-friendly."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


class VideoInfo(Frozen):
    """What is known about a video before any analysis."""

    path: str
    fps: float = Field(description="average frames per second of the video stream")
    frame_count: int
    duration_s: float
    resolution_wh: tuple[int, int]
    content_hash: str = Field(description="cheap content hash (size + sampled chunks), a cache key")
    codec: str | None = None
    backend: str | None = Field(default=None, description="frame source that decoded it")
    truncated_at_s: float | None = Field(
        default=None, description="where decoding stopped early in a damaged file, else None"
    )
    rotation_deg: int = Field(
        default=0,
        description="counter-clockwise turn the file's display matrix applies (0/90/180/270); "
        "frames and resolution_wh are as displayed, after it",
    )
    fps_source: str | None = Field(
        default=None,
        description="where fps came from when the frames carry no timestamps (a frame folder): "
        "a flag, a dataset's convention or the default",
    )

    @property
    def fps_text(self) -> str:
        """The frame rate for people, with three significant digits: ``25 fps``,
        ``0.00167 fps`` for six frames over an hour (never ``0.0 fps``)."""
        return f"{self.fps:.3g} fps"

    @field_validator("fps")
    @classmethod
    def _fps_positive(cls, v: float) -> float:
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"fps must be a positive number, got {v}")
        return v

    @field_validator("frame_count")
    @classmethod
    def _count_nonneg(cls, v: int) -> int:
        if v < 0:
            raise ValueError(f"frame_count must be >= 0, got {v}")
        return v

    @field_validator("duration_s")
    @classmethod
    def _duration_nonneg(cls, v: float) -> float:
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"duration_s must be >= 0, got {v}")
        return v

    @field_validator("resolution_wh")
    @classmethod
    def _res_positive(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] <= 0 or v[1] <= 0:
            raise ValueError(
                f"resolution_wh must be two positive integers (width, height), got {v}"
            )
        return v


class TimeSpan(Frozen):
    """A closed interval of video time in seconds, optionally with a score and a label."""

    start_s: float
    end_s: float
    score: float | None = None
    label: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> TimeSpan:
        _finite("start_s", self.start_s)
        _finite("end_s", self.end_s)
        if self.start_s < 0:
            raise ValueError(f"start_s ({self.start_s}) must be >= 0")
        if self.end_s <= self.start_s:
            raise ValueError(f"end_s ({self.end_s}) must be greater than start_s ({self.start_s})")
        if self.score is not None and not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score must be in [0, 1], got {self.score}")
        return self

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def contains(self, t_s: float) -> bool:
        return self.start_s <= t_s <= self.end_s

    def tiou(self, other: TimeSpan) -> float:
        """Temporal intersection over union with another span."""
        inter = max(0.0, min(self.end_s, other.end_s) - max(self.start_s, other.start_s))
        union = max(self.end_s, other.end_s) - min(self.start_s, other.start_s)
        return inter / union if union > 0 else 0.0


class Box(Frozen):
    """An axis-aligned box in pixels of the original frame at one moment of the video."""

    t_s: float
    xyxy: tuple[float, float, float, float]
    label: str = ""
    score: float = 1.0

    @model_validator(mode="after")
    def _valid(self) -> Box:
        _finite("t_s", self.t_s)
        x1, y1, x2, y2 = self.xyxy
        for name, v in zip(("x1", "y1", "x2", "y2"), self.xyxy, strict=True):
            _finite(name, v)
        if x2 <= x1 or y2 <= y1:
            raise ValueError(
                f"xyxy must be (x1, y1, x2, y2) with x2 > x1 and y2 > y1, got {self.xyxy}"
            )
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score must be in [0, 1], got {self.score}")
        return self

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.xyxy
        return (x2 - x1) * (y2 - y1)

    @property
    def center(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.xyxy
        return ((x1 + x2) / 2, (y1 + y2) / 2)

    def inside(self, resolution_wh: tuple[int, int], tolerance_px: float = 1.0) -> bool:
        """True when the box lies within a frame of this size (with a small tolerance)."""
        w, h = resolution_wh
        x1, y1, x2, y2 = self.xyxy
        t = tolerance_px
        return x1 >= -t and y1 >= -t and x2 <= w + t and y2 <= h + t

    def clipped(self, resolution_wh: tuple[int, int]) -> Box:
        """The same box clipped to the frame (at least one pixel wide and high)."""
        w, h = resolution_wh
        x1, y1, x2, y2 = self.xyxy
        x1 = min(max(0.0, x1), w - 1.0)
        y1 = min(max(0.0, y1), h - 1.0)
        x2 = min(max(x1 + 1.0, x2), float(w))
        y2 = min(max(y1 + 1.0, y2), float(h))
        return self.model_copy(update={"xyxy": (x1, y1, x2, y2)})

    def iou(self, other: Box) -> float:
        ax1, ay1, ax2, ay2 = self.xyxy
        bx1, by1, bx2, by2 = other.xyxy
        iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
        ih = max(0.0, min(ay2, by2) - max(ay1, by1))
        inter = iw * ih
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


class ScoreCurve(Frozen):
    """Anomaly scores in [0, 1] at increasing times; optional per-family curves."""

    t_s: list[float]
    score: list[float]
    families: dict[str, list[float]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _aligned(self) -> ScoreCurve:
        n = len(self.t_s)
        if len(self.score) != n:
            raise ValueError(f"score has {len(self.score)} values but t_s has {n}; they must match")
        for name, values in self.families.items():
            if len(values) != n:
                raise ValueError(f"family {name!r} has {len(values)} values but t_s has {n}")
        if any(b < a for a, b in zip(self.t_s, self.t_s[1:], strict=False)):
            raise ValueError("t_s must be non-decreasing")
        for name, values in [("score", self.score), *self.families.items()]:
            bad = [v for v in values if not (math.isfinite(v) and 0.0 <= v <= 1.0)]
            if bad:
                raise ValueError(f"{name} values must lie in [0, 1], got {bad[0]}")
        return self

    def __len__(self) -> int:
        return len(self.t_s)

    def at(self, t_s: Sequence[float]) -> list[float]:
        """Scores linearly interpolated at the given times (held constant past the ends)."""
        if not self.t_s:
            return [0.0 for _ in t_s]
        out: list[float] = []
        ts, sc = self.t_s, self.score
        j = 0
        for t in t_s:
            if t <= ts[0]:
                out.append(sc[0])
                continue
            if t >= ts[-1]:
                out.append(sc[-1])
                continue
            while j + 1 < len(ts) and ts[j + 1] < t:
                j += 1
            while j > 0 and ts[j] > t:
                j -= 1
            t0, t1 = ts[j], ts[j + 1]
            w = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
            out.append(sc[j] * (1 - w) + sc[j + 1] * w)
        return out


class ImageRef(Frozen):
    """An image written beside a trace, referenced by relative path and content hash."""

    path: str = Field(description="path relative to the run folder, with forward slashes")
    sha256: str
    kind: Literal["frame", "crop", "plot"] = "frame"
    t_s: float | None = None
    boxes: list[Box] = Field(default_factory=list)


Scalar = float | int | str | bool | None


class Evidence(Frozen):
    """What one tool call observed. A failed call is evidence too: ``error`` says what went wrong."""

    id: str = Field(description="E1, E2, ... in the order the case file received them")
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    summary: str = ""
    spans: list[TimeSpan] = Field(default_factory=list)
    boxes: list[Box] = Field(default_factory=list)
    images: list[ImageRef] = Field(default_factory=list)
    curve: ScoreCurve | None = None
    facts: dict[str, Scalar] = Field(
        default_factory=dict, description="free-form facts (a model inspector's, the crop's)"
    )
    measured: MeasuredFacts | None = Field(
        default=None, description="what a measuring inspector found, typed"
    )
    scored: TimelineFacts | None = Field(default=None, description="a timeline scoring's summary")
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def all_facts(self) -> dict[str, Scalar]:
        """Every fact of this evidence in one mapping: the typed ones (measured, scored) first,
        then the free-form ``facts``."""
        out: dict[str, Scalar] = {}
        if self.measured is not None:
            out.update(self.measured.present())
        if self.scored is not None:
            out.update({k: v for k, v in self.scored.model_dump().items() if v is not None})
        out.update(self.facts)
        return out


class Verdict(Frozen):
    """The answer to a question about a video, with when, where and why."""

    question: str
    answer: str
    is_anomalous: bool | None = Field(description="None when the evidence left it undecided")
    confidence: float = 0.5
    category: str | None = None
    spans: list[TimeSpan] = Field(default_factory=list)
    boxes: list[Box] = Field(default_factory=list)
    justification: str = ""
    evidence_ids: list[str] = Field(default_factory=list)
    frame_scores: ScoreCurve | None = None
    forced: bool = Field(
        default=False, description="True when the budget ran out and the graph decided"
    )

    @field_validator("confidence")
    @classmethod
    def _conf(cls, v: float) -> float:
        if not (math.isfinite(v) and 0.0 <= v <= 1.0):
            raise ValueError(f"confidence must be in [0, 1], got {v}")
        return v


class TraceStep(Frozen):
    """One step of an analysis: a planner turn, a tool call, a verdict check, the verdict."""

    index: int
    kind: StepKind
    tool: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    summary: str = ""
    text: str | None = Field(default=None, description="the planner's own words for plan steps")
    evidence_id: str | None = None
    images: list[ImageRef] = Field(default_factory=list)
    started_at: datetime
    duration_s: float = 0.0
    error: str | None = None
    meta: dict[str, Any] = Field(
        default_factory=dict,
        description="plan steps: how the planner answered (protocol, attempts, requests, tokens)",
    )


class Cost(Frozen):
    """What an analysis spent."""

    planner_calls: int = 0
    tool_calls: int = 0
    frames_decoded: int = 0
    decoded_per_frame: float | None = Field(
        default=None,
        description="frames_decoded / the video's frame count: about 1 for a first question "
        "(one pass), about 0 for a later one on the same session",
    )
    frames_from_cache: int = Field(
        default=0,
        description="frame reads served from the source's frame cache instead of decoded "
        "(look-backs, crops of frames the pass kept, a later question's pass)",
    )
    frames_shown: int = 0
    seconds_total: float = 0.0
    seconds_by_stage: dict[str, float] = Field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = Field(default=0, description="prompt tokens the server reused")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Trace(Frozen):
    """Everything an analysis did, in order; round-trips exactly through JSON.

    Images are files beside the trace, referenced by a path relative to the trace's folder and
    a hash (``ImageRef``).
    Fields added in later versions are optional, so older traces still load.
    """

    format_version: int = TRACE_FORMAT_VERSION
    question: str
    video: VideoInfo | None = None
    profile: str = ""
    graph: str = "detective"
    models: dict[str, str] = Field(default_factory=dict)
    planner: dict[str, str] = Field(
        default_factory=dict, description="the planner: model, and for servers server/protocol"
    )
    steps: list[TraceStep] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    verdict: Verdict | None = None
    cost: Cost = Field(default_factory=Cost)
    started_at: datetime = Field(default_factory=utcnow)

    model_config = ConfigDict(frozen=True, extra="ignore")

    def evidence_by_id(self, evidence_id: str) -> Evidence | None:
        return next((e for e in self.evidence if e.id == evidence_id), None)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def save(self, path: str | Path) -> Path:
        """Write the trace as JSON (atomically) and return the path."""
        path = Path(path)
        atomic_write_text(path, self.to_json())
        return path

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        """Read a trace written by ``save``; image paths stay relative to its folder.

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: one sentence when ``path`` is a folder, not UTF-8, not JSON (nested
                too deeply included) or not a trace.
        """
        path = Path(path)
        try:
            data = loads_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"no trace at {path}: pass the trace.json of a run") from exc
        except IsADirectoryError:
            raise ValueError(
                f"{path} is a folder, not a trace: pass the trace.json in it"
            ) from None
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path} is not a trace: not UTF-8 text ({exc.reason})") from None
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{path} is not a trace: invalid JSON ({exc.msg} at line {exc.lineno})"
            ) from exc
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err["loc"]) or "the top level"
            raise ValueError(f"{path} is not a trace: {where}: {err['msg']}") from None


# --------------------------------------------------------------------------------- live streams
# Times on a stream are seconds since the stream's first frame (the stream clock), which keeps
# counting across reconnects; wall times are UTC datetimes.

AlertStatus = Literal["open", "updated", "closed"]


class StreamGap(Frozen):
    """A stretch of the stream clock with no frames: the source dropped, stalled or jumped."""

    start_s: float
    end_s: float
    reason: str = ""
    noted_at: datetime = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _ordered(self) -> StreamGap:
        if not (math.isfinite(self.start_s) and math.isfinite(self.end_s)):
            raise ValueError("a gap's start_s and end_s must be finite")
        if self.end_s < self.start_s:
            raise ValueError(f"end_s ({self.end_s}) must not precede start_s ({self.start_s})")
        return self


class Alert(Frozen):
    """One event on a live stream, as written to the sinks. An event keeps its ``id`` while it
    lasts; each write is a new ``revision`` (``open``, then ``updated``, then ``closed``)."""

    id: str
    revision: int = 1
    status: AlertStatus = "open"
    source: str = ""
    start_s: float = Field(description="event start on the stream clock (s since first frame)")
    end_s: float = Field(description="event end so far on the stream clock")
    emitted_at: datetime = Field(description="wall time (UTC) when this revision was written")
    category: str | None = None
    confidence: float = 0.5
    peak_score: float = 0.0
    boxes: list[Box] = Field(default_factory=list, description="t_s on the stream clock")
    justification: str = ""
    answer: str = ""
    evidence: list[str] = Field(default_factory=list, description="one line per evidence item")
    keyframe: str | None = Field(default=None, description="path of the keyframe JPEG")
    confirmed_by: Literal["detective", "score"] = "detective"

    @model_validator(mode="after")
    def _valid(self) -> Alert:
        _finite("start_s", self.start_s)
        _finite("end_s", self.end_s)
        if self.end_s < self.start_s:
            raise ValueError(f"end_s ({self.end_s}) must not precede start_s ({self.start_s})")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence}")
        if self.revision < 1:
            raise ValueError(f"revision must be >= 1, got {self.revision}")
        return self
