"""Fixtures for the agent tests: a realistic hand-built trace with its images, and Chromium.

``sample_trace`` is what a detective run over a 12 s street scene would leave behind: a
perception pass with a score curve (three families) and candidate spans, planner turns, frame
sampling (frames stored downscaled, as the frame source does), grounding with boxes, a failed
tool call, a crop inspection, a rejected and an accepted verdict check, the verdict and a note.
Its frames and crops are real JPEGs written beside ``trace.json`` with their sha256.

``chromium`` runs Debian's headless Chromium on a page and reports the screenshot, the DOM and
every console message; tests that use it skip (with the reason) only when no binary exists.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

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

RES_WH = (320, 180)
DURATION_S = 12.0
FPS = 15.0
FALL_SPAN = (6.0, 8.5)
# Where the falling person is at each moment (original-frame pixels).
_WALKER = (40.0, 70.0, 62.0, 130.0)


def _person_xyxy(t_s: float) -> tuple[float, float, float, float]:
    """The second person's box: walking until 6 s, lying on the ground from 7 s."""
    if t_s < FALL_SPAN[0]:
        x = 150.0 + 6.0 * t_s
        return (x, 70.0, x + 22.0, 130.0)
    if t_s < 7.0:
        return (186.0, 95.0, 226.0, 132.0)
    return (180.0, 112.0, 240.0, 134.0)


def _scene(t_s: float) -> np.ndarray:
    """One BGR frame of the synthetic street at time ``t_s``."""
    import cv2

    w, h = RES_WH
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = np.linspace(170, 120, h, dtype=np.uint8)[:, None, None]  # sky-to-street gradient
    img[110:, :] = (90, 95, 100)  # road
    cv2.line(img, (0, 145), (w, 145), (200, 200, 200), 2)
    cv2.rectangle(img, (250, 20), (310, 108), (60, 80, 140), cv2.FILLED)  # a building
    x1, y1, x2, y2 = (round(v) for v in _WALKER)
    cv2.rectangle(
        img, (x1 + round(4 * t_s), y1), (x2 + round(4 * t_s), y2), (40, 120, 40), cv2.FILLED
    )
    px1, py1, px2, py2 = (round(v) for v in _person_xyxy(t_s))
    cv2.rectangle(img, (px1, py1), (px2, py2), (30, 30, 200), cv2.FILLED)
    cv2.putText(img, f"{t_s:05.2f}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
    return img


def _write_jpeg(trace_dir: Path, rel: str, image: np.ndarray) -> str:
    import cv2

    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    data = buf.tobytes()
    path = trace_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _frame_ref(
    trace_dir: Path, name: str, t_s: float, scale: float = 1.0, boxes: list[Box] | None = None
) -> ImageRef:
    import cv2

    img = _scene(t_s)
    if scale != 1.0:
        img = cv2.resize(
            img, (round(RES_WH[0] * scale), round(RES_WH[1] * scale)), interpolation=cv2.INTER_AREA
        )
    rel = f"frames/{name}_t{t_s:06.2f}.jpg"
    return ImageRef(
        path=rel, sha256=_write_jpeg(trace_dir, rel, img), kind="frame", t_s=t_s, boxes=boxes or []
    )


def _bump(t: float, center: float, width: float, height: float, base: float) -> float:
    return float(min(1.0, base + height * np.exp(-(((t - center) / width) ** 2))))


def build_sample_trace(trace_dir: Path) -> Trace:
    """Write the images of a realistic run into ``trace_dir`` and return its trace."""
    import cv2

    t0 = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)

    def at(seconds: float) -> datetime:
        return t0 + timedelta(seconds=seconds)

    video = VideoInfo(
        path="/data/street/cam03_0412.mp4",
        fps=FPS,
        frame_count=int(DURATION_S * FPS),
        duration_s=DURATION_S,
        resolution_wh=RES_WH,
        content_hash="5f0c2a9e41d7b3c8a6e2f1d0c9b8a7e6",
        codec="h264",
        backend="decord",
    )
    ts = [round(0.25 * i, 2) for i in range(int(DURATION_S / 0.25) + 1)]
    violence = [_bump(t, 7.2, 0.9, 0.78, 0.08) for t in ts]
    property_ = [_bump(t, 2.3, 0.4, 0.30, 0.05) for t in ts]
    safety = [_bump(t, 7.0, 1.4, 0.55, 0.10) for t in ts]
    score = [max(a, b, c) for a, b, c in zip(violence, property_, safety, strict=True)]
    curve = ScoreCurve(
        t_s=ts,
        score=score,
        families={
            "violence / harm to people": violence,
            "property crime": property_,
            "public safety": safety,
        },
    )
    e1 = Evidence(
        id="E1",
        tool="score_timeline",
        args={"start_s": 0.0, "end_s": DURATION_S, "stride_s": 0.25},
        summary="peak 0.86 at 7.25 s; 2 candidate spans",
        spans=[
            TimeSpan(start_s=6.0, end_s=8.5, score=0.86, label="violence / harm to people"),
            TimeSpan(start_s=2.0, end_s=2.75, score=0.35, label="property crime"),
        ],
        curve=curve,
        facts={"scorer": "motion", "smoothing": "gaussian sigma=2"},
    )
    sampled = [_frame_ref(trace_dir, "E2", t, scale=0.5) for t in (5.5, 6.5, 7.5, 8.5)]
    e2 = Evidence(
        id="E2",
        tool="sample_frames",
        args={"start_s": 5.5, "end_s": 8.5, "n": 4},
        summary="4 frames from 5.50 to 8.50 s",
        images=sampled,
    )
    lying = Box(t_s=7.5, xyxy=_person_xyxy(7.5), label="person lying on the ground", score=0.81)
    standing = Box(t_s=7.5, xyxy=(70.0, 70.0, 92.0, 130.0), label="person", score=0.66)
    grounded = _frame_ref(trace_dir, "E3", 7.5, boxes=[lying, standing])
    e3 = Evidence(
        id="E3",
        tool="ground",
        args={"phrases": ["person lying on the ground", "person"], "t_s": 7.5},
        summary="2 boxes at 7.50 s: person lying on the ground (0.81), person (0.66)",
        boxes=[lying, standing],
        images=[grounded],
    )
    e4 = Evidence(
        id="E4",
        tool="ground",
        args={"phrases": ["weapon"], "t_s": 30.0},
        error="t_s (30.0) is outside the video (0.00-12.00 s)",
    )
    x1, y1, x2, y2 = (round(v) for v in lying.xyxy)
    crop = cv2.resize(_scene(7.5)[y1 - 10 : y2 + 10, x1 - 10 : x2 + 10], None, fx=3, fy=3)
    crop_ref = ImageRef(
        path="crops/E5_crop0.jpg",
        sha256=_write_jpeg(trace_dir, "crops/E5_crop0.jpg", crop),
        kind="crop",
        t_s=7.5,
    )
    e5 = Evidence(
        id="E5",
        tool="inspect_crop",
        args={
            "evidence_id": "E3",
            "box_index": 0,
            "question": "Is the person injured or motionless?",
        },
        summary="the person lies still on the road for 1.5 s",
        images=[crop_ref],
        facts={
            "aspect_ratio": 2.7,
            "motion_px_per_s": 0.4,
            "still_for_s": 1.5,
            "answer": "lying still",
        },
    )
    later = _frame_ref(trace_dir, "verdict", 8.25)
    verdict_spans = [TimeSpan(start_s=6.25, end_s=8.75, score=0.84, label="fall")]
    verdict_boxes = [
        lying,
        Box(t_s=8.25, xyxy=_person_xyxy(8.25), label="person lying on the ground", score=0.77),
    ]
    frame_t = [round(i / FPS, 4) for i in range(int(DURATION_S * FPS))]
    frame_scores = ScoreCurve(t_s=frame_t, score=curve.at(frame_t))
    verdict = Verdict(
        question="Is anything abnormal happening on this street?",
        answer="Yes: a pedestrian falls at about 6.3 s and lies motionless on the road.",
        is_anomalous=True,
        confidence=0.82,
        category="violence / harm to people",
        spans=verdict_spans,
        boxes=verdict_boxes,
        justification=(
            "The timeline peaks at 6.0-8.5 s (E1). At 7.5 s a person is lying on the road (E3), "
            "and the crop shows them motionless for 1.5 s (E5)."
        ),
        evidence_ids=["E1", "E3", "E5"],
        frame_scores=frame_scores,
    )
    steps = [
        TraceStep(
            index=0,
            kind="perceive",
            tool="score_timeline",
            args=e1.args,
            summary=e1.summary,
            evidence_id="E1",
            started_at=at(0.0),
            duration_s=1.84,
        ),
        TraceStep(
            index=1,
            kind="plan",
            summary="call sample_frames",
            started_at=at(1.9),
            duration_s=2.31,
            text="The score peaks between 6.0 and 8.5 s (E1), mostly in the harm-to-people family. "
            "I will look at frames across that span before deciding.",
        ),
        TraceStep(
            index=2,
            kind="tool",
            tool="sample_frames",
            args=e2.args,
            summary=e2.summary,
            evidence_id="E2",
            started_at=at(4.2),
            duration_s=0.35,
        ),
        TraceStep(
            index=3,
            kind="plan",
            summary="call ground",
            started_at=at(4.6),
            duration_s=2.05,
            text="In E2 the red figure walks, then is horizontal from 7.5 s. "
            "Ground 'person lying on the ground' at 7.5 s.",
        ),
        TraceStep(
            index=4,
            kind="tool",
            tool="ground",
            args=e3.args,
            summary=e3.summary,
            evidence_id="E3",
            started_at=at(6.7),
            duration_s=0.62,
        ),
        TraceStep(
            index=5,
            kind="tool",
            tool="ground",
            args=e4.args,
            summary="error",
            evidence_id="E4",
            started_at=at(7.4),
            duration_s=0.01,
            error=e4.error,
        ),
        TraceStep(
            index=6,
            kind="tool",
            tool="inspect_crop",
            args=e5.args,
            summary=e5.summary,
            evidence_id="E5",
            started_at=at(7.5),
            duration_s=1.12,
        ),
        TraceStep(
            index=7,
            kind="plan",
            summary="call submit_verdict",
            started_at=at(8.7),
            duration_s=1.70,
            text="E3 and E5 agree: a fall at ~6.3 s. Submitting the verdict with span 6.25-14.0 s.",
            args={"spans": [[6.25, 14.0]]},
        ),
        TraceStep(
            index=8,
            kind="check",
            summary="verdict rejected",
            started_at=at(10.4),
            duration_s=0.0,
            error="span 6.25-14.00 s ends after the video (12.00 s)",
        ),
        TraceStep(
            index=9,
            kind="plan",
            summary="call submit_verdict",
            started_at=at(10.5),
            duration_s=1.42,
            text="The video ends at 12 s; the person is already still at 8.5 s. Span 6.25-8.75 s.",
            args={"spans": [[6.25, 8.75]]},
        ),
        TraceStep(
            index=10, kind="check", summary="verdict accepted", started_at=at(11.9), duration_s=0.0
        ),
        TraceStep(
            index=11,
            kind="verdict",
            tool="submit_verdict",
            summary="anomalous (0.82): fall",
            started_at=at(11.9),
            duration_s=0.0,
            images=[later],
        ),
        TraceStep(index=12, kind="note", summary="used 7 of 8 steps", started_at=at(11.9)),
    ]
    return Trace(
        question=verdict.question,
        video=video,
        profile="classical",
        graph="detective",
        models={"planner": "rule", "scorer": "motion", "grounder": "opencv-people"},
        steps=steps,
        evidence=[e1, e2, e3, e4, e5],
        verdict=verdict,
        cost=Cost(
            planner_calls=4,
            tool_calls=5,
            frames_decoded=61,
            frames_shown=5,
            seconds_total=11.9,
            seconds_by_stage={"perceive": 1.84, "plan": 7.48, "act": 2.10, "check": 0.0},
        ),
        started_at=t0,
    )


@pytest.fixture
def trace_dir(tmp_path: Path) -> Path:
    """A run folder holding ``trace.json`` and its frames and crops."""
    folder = tmp_path / "run"
    folder.mkdir()
    build_sample_trace(folder).save(folder / "trace.json")
    return folder


@pytest.fixture
def sample_trace(trace_dir: Path) -> Trace:
    """The realistic trace, loaded back from ``trace_dir/trace.json`` as a user would."""
    return Trace.load(trace_dir / "trace.json")


# ---------------------------------------------------------------------------- Chromium

_CONSOLE_RE = re.compile(r":CONSOLE[:(]\S*\]?\s*(.*)$")


@dataclass(frozen=True)
class BrowserRun:
    """What one headless Chromium run produced.

    Attributes:
        returncode: Chromium's exit code.
        console: Every console message the page produced (errors, CSP violations, logs).
        stdout: Chromium's stdout (the DOM with ``dump_dom``).
        stderr: Chromium's full log, for failure messages.
    """

    returncode: int
    console: list[str]
    stdout: str
    stderr: str


class Chromium:
    """Runs headless Chromium on local files with a fresh profile, offline-minded flags."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self._runs = 0

    def _run(self, url: str, *extra: str, window_wh: tuple[int, int] = (1280, 2000)) -> BrowserRun:
        self._runs += 1
        profile = self.workdir / f"profile-{self._runs}"
        cmd = [
            self.binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            f"--window-size={window_wh[0]},{window_wh[1]}",
            *extra,
            url,
        ]
        env = {**os.environ, "HOME": str(self.workdir)}
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=120, env=env, check=False
        )
        console = [
            m.group(1) for line in proc.stderr.splitlines() if (m := _CONSOLE_RE.search(line))
        ]
        return BrowserRun(
            returncode=proc.returncode, console=console, stdout=proc.stdout, stderr=proc.stderr
        )

    def screenshot(
        self, url: str, png: Path, window_wh: tuple[int, int] = (1280, 2000)
    ) -> BrowserRun:
        """Load ``url`` and save a screenshot of the window to ``png``."""
        return self._run(url, f"--screenshot={png}", window_wh=window_wh)

    def dump_dom(self, url: str) -> BrowserRun:
        """Load ``url``, run its scripts, and return the resulting DOM in ``stdout``."""
        return self._run(url, "--dump-dom")


def find_chromium() -> str | None:
    """The Chromium binary: ``$VADETECTIVE_CHROMIUM``, else the usual names on PATH."""
    env = os.environ.get("VADETECTIVE_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def chromium(tmp_path: Path) -> Chromium:
    """Headless Chromium; skips with the reason when no binary is installed."""
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium binary (apt-get install chromium, or set VADETECTIVE_CHROMIUM)")
    workdir = tmp_path / "chromium"
    workdir.mkdir()
    return Chromium(binary, workdir)
