"""Fixtures for the graph tests: a small real video and fake backends with known answers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
import pytest

from vadetective.agent.core.config import Config
from vadetective.agent.core.types import Box, ScoreCurve
from vadetective.agent.core.vocabulary import MeasuredFacts
from vadetective.tools.base import FrameSource, Inspection, ScoreResult
from vadetective.tools.toolbox import Backends

W, H, FPS, SECONDS = 160, 120, 10, 10


@pytest.fixture(scope="session")
def small_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10 s, 10 fps, 160x120 H.264 clip with a moving square (real file, real decoder)."""
    path = tmp_path_factory.mktemp("video") / "small.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(FPS * SECONDS):
            img = np.full((H, W, 3), 90, np.uint8)
            x = 10 + i
            img[40:70, x : x + 20] = (220, 40, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


class FakeScorer:
    """A bump of high scores between 4 and 6 s; counts its calls."""

    name = "fake-scorer"
    model_id = "fake"

    def __init__(self, peak: float = 0.9) -> None:
        self.calls = 0
        self.peak = peak

    def score(
        self, source: FrameSource, t_s: Sequence[float], phrases: Sequence[str] | None = None
    ) -> ScoreResult:
        self.calls += 1
        t = np.asarray(t_s, dtype=float)
        s = np.where((t >= 4.0) & (t <= 6.0), self.peak, 0.1)
        return ScoreResult(
            curve=ScoreCurve(t_s=t.tolist(), score=s.tolist(), families={"speed": s.tolist()}),
            model_id="fake",
        )


class FakeGrounder:
    name = "fake-grounder"
    model_id = "fake"

    def __init__(self) -> None:
        self.calls = 0

    def ground(self, source: FrameSource, t_s: float, phrases: Sequence[str]) -> list[Box]:
        self.calls += 1
        return [Box(t_s=t_s, xyxy=(50.0, 40.0, 70.0, 70.0), label=phrases[0], score=0.8)]


class FakeInspector:
    name = "fake-inspector"
    model_id = "fake"

    def __init__(self, speed_ratio: float = 4.2) -> None:
        self.speed_ratio = speed_ratio

    def inspect(self, source: FrameSource, t_s: float, box: Box, question: str) -> Inspection:
        crop = np.zeros((32, 32, 3), np.uint8)
        return Inspection(
            answer=f"it moves at {self.speed_ratio}x the typical speed",
            measured=MeasuredFacts(
                matched=True, label="person", speed_vs_typical=self.speed_ratio, moving=True
            ),
            crop=crop,
        )


@pytest.fixture
def config() -> Config:
    return Config(
        profile="classical", max_steps=8, max_planner_calls=10, max_frames_shown=12, sample_fps=2.0
    )


@pytest.fixture
def fakes(config: Config) -> Backends:
    return Backends(
        config, _scorer=FakeScorer(), _grounder=FakeGrounder(), _inspector=FakeInspector()
    )


class Fakes:
    """Factories for fake backends, for tests that need more than one set."""

    Scorer = FakeScorer
    Grounder = FakeGrounder
    Inspector = FakeInspector

    def __init__(self, config: Config) -> None:
        self.config = config

    def backends(self, peak: float = 0.9) -> Backends:
        return Backends(
            self.config,
            _scorer=FakeScorer(peak),
            _grounder=FakeGrounder(),
            _inspector=FakeInspector(),
        )


@pytest.fixture
def make(config: Config) -> Fakes:
    return Fakes(config)
