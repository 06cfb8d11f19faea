"""Core types: validation messages, helpers and exact JSON round-trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from vadetective.agent.core.types import (
    Box,
    Cost,
    Evidence,
    ImageRef,
    ScoreCurve,
    TimeSpan,
    Trace,
    TraceStep,
    Verdict,
    VideoInfo,
)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start_s": 4.0, "end_s": 3.2}, "end_s (3.2) must be greater than start_s (4.0)"),
        ({"start_s": 1.0, "end_s": 1.0}, "must be greater than start_s"),
        ({"start_s": -1.0, "end_s": 1.0}, "start_s (-1.0) must be >= 0"),
        ({"start_s": 0.0, "end_s": float("nan")}, "end_s must be a finite number"),
        ({"start_s": 0.0, "end_s": 1.0, "score": 1.5}, "score must be in [0, 1]"),
    ],
)
def test_timespan_rejects(kwargs: dict, message: str) -> None:
    with pytest.raises(
        ValidationError,
        match=message.replace("(", r"\(")
        .replace(")", r"\)")
        .replace("[", r"\[")
        .replace("]", r"\]"),
    ):
        TimeSpan(**kwargs)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 10), (0, 10), 1.0),
        ((0, 10), (5, 15), 5 / 15),
        ((0, 1), (2, 3), 0.0),
        ((2, 4), (0, 10), 0.2),
    ],
)
def test_timespan_tiou(a: tuple, b: tuple, expected: float) -> None:
    x, y = TimeSpan(start_s=a[0], end_s=a[1]), TimeSpan(start_s=b[0], end_s=b[1])
    assert x.tiou(y) == pytest.approx(expected)
    assert y.tiou(x) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("xyxy", "score", "message"),
    [
        ((10, 10, 5, 20), 1.0, "x2 > x1 and y2 > y1"),
        ((0, 0, 10, 0), 1.0, "x2 > x1 and y2 > y1"),
        ((0, 0, 10, 10), -0.1, "score must be in [0, 1]"),
        ((0, 0, float("inf"), 10), 1.0, "x2 must be a finite number"),
    ],
)
def test_box_rejects(xyxy: tuple, score: float, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Box(t_s=0.0, xyxy=xyxy, score=score)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (5, 0, 15, 10), 50 / 150),
        ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),
    ],
)
def test_box_iou(a: tuple, b: tuple, expected: float) -> None:
    assert Box(t_s=0, xyxy=a).iou(Box(t_s=0, xyxy=b)) == pytest.approx(expected)


def test_box_inside_and_clip() -> None:
    b = Box(t_s=0, xyxy=(-20, 5, 700, 100))
    assert not b.inside((640, 360))
    c = b.clipped((640, 360))
    assert c.inside((640, 360)) and c.xyxy == (0.0, 5.0, 640.0, 100.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"t_s": [0, 1], "score": [0.5]}, "score has 1 values but t_s has 2"),
        ({"t_s": [1, 0], "score": [0.5, 0.5]}, "non-decreasing"),
        ({"t_s": [0, 1], "score": [0.5, 1.2]}, "must lie in \\[0, 1\\]"),
        (
            {"t_s": [0, 1], "score": [0.5, 0.2], "families": {"speed": [0.1]}},
            "family 'speed' has 1 values",
        ),
    ],
)
def test_scorecurve_rejects(kwargs: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ScoreCurve(**kwargs)


def test_scorecurve_interpolates() -> None:
    c = ScoreCurve(t_s=[0.0, 1.0, 2.0], score=[0.0, 1.0, 0.0])
    assert c.at([-1.0, 0.5, 1.0, 1.75, 5.0]) == pytest.approx([0.0, 0.5, 1.0, 0.25, 0.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fps": 0.0}, "fps must be a positive number"),
        ({"frame_count": -1}, "frame_count must be >= 0"),
        ({"resolution_wh": (0, 10)}, "resolution_wh must be two positive integers"),
    ],
)
def test_videoinfo_rejects(kwargs: dict, message: str) -> None:
    base = {
        "path": "a.mp4",
        "fps": 25.0,
        "frame_count": 10,
        "duration_s": 0.4,
        "resolution_wh": (64, 48),
        "content_hash": "x",
    }
    with pytest.raises(ValidationError, match=message):
        VideoInfo(**{**base, **kwargs})


def test_verdict_json_has_the_fields_consumers_rely_on() -> None:
    v = Verdict(
        question="q?",
        answer="yes",
        is_anomalous=None,
        confidence=0.4,
        spans=[TimeSpan(start_s=1, end_s=2)],
        boxes=[Box(t_s=1.5, xyxy=(1, 2, 3, 4), label="person", score=0.9)],
        evidence_ids=["E1"],
        frame_scores=ScoreCurve(t_s=[0, 1], score=[0.1, 0.9]),
    )
    data = json.loads(v.model_dump_json())
    for key in (
        "question",
        "answer",
        "is_anomalous",
        "confidence",
        "category",
        "spans",
        "boxes",
        "justification",
        "evidence_ids",
        "frame_scores",
    ):
        assert key in data
    assert data["is_anomalous"] is None
    assert data["spans"][0]["start_s"] == 1 and data["spans"][0]["end_s"] == 2
    assert data["boxes"][0]["xyxy"] == [1, 2, 3, 4]
    assert data["frame_scores"] == {"t_s": [0, 1], "score": [0.1, 0.9], "families": {}}
    with pytest.raises(ValidationError, match="confidence must be in"):
        Verdict(question="q", answer="a", is_anomalous=True, confidence=2)


def _trace() -> Trace:
    t0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    img = ImageRef(
        path="frames/abc.jpg",
        sha256="ab" * 32,
        kind="frame",
        t_s=1.0,
        boxes=[Box(t_s=1.0, xyxy=(1, 1, 5, 5))],
    )
    ev = Evidence(
        id="E1",
        tool="sample_frames",
        args={"start_s": 0.0, "end_s": 2.0, "count": 1},
        summary="1 frame",
        images=[img],
        facts={"x": 1.5, "y": None},
    )
    steps = [
        TraceStep(index=0, kind="perceive", tool="score_timeline", started_at=t0, duration_s=0.1),
        TraceStep(
            index=1,
            kind="tool",
            tool="sample_frames",
            args=ev.args,
            summary=ev.summary,
            evidence_id="E1",
            images=[img],
            started_at=t0,
        ),
    ]
    return Trace(
        question="q?",
        steps=steps,
        evidence=[ev],
        cost=Cost(planner_calls=1, tool_calls=2),
        started_at=t0,
        verdict=Verdict(question="q?", answer="a", is_anomalous=False, evidence_ids=["E1"]),
    )


def test_trace_round_trip_is_exact(tmp_path: Path) -> None:
    trace = _trace()
    path = trace.save(tmp_path / "trace.json")
    loaded = Trace.load(path)
    assert loaded == trace
    assert loaded.to_json() == trace.to_json()
    raw = path.read_text()
    assert "frames/abc.jpg" in raw and "base64" not in raw


def test_trace_from_an_older_run_without_newer_fields_loads(tmp_path: Path) -> None:
    data = json.loads(_trace().to_json())
    for key in ("cost", "graph", "models", "format_version"):
        data.pop(key)
    data["some_future_field"] = 1
    (tmp_path / "old.json").write_text(json.dumps(data))
    loaded = Trace.load(tmp_path / "old.json")
    assert loaded.cost.tool_calls == 0 and loaded.graph == "detective"


def test_trace_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no trace at"):
        Trace.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not a trace: invalid JSON"):
        Trace.load(tmp_path / "bad.json")
