"""Protocols the model backends implement, and the data they pass around.

Each backend is a small class behind a one-method Protocol, registered by name (see
``registry.py``). Backends load their models lazily on first use, resolve the device once, and
never download anything at import time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from vadetective.agent.core.types import Box, ScoreCurve, VideoInfo
from vadetective.agent.core.vocabulary import MeasuredFacts


@dataclass(frozen=True)
class FrameBatch:
    """Decoded frames in time order.

    ``frames`` is (N, H, W, 3) uint8 RGB, possibly downscaled; ``t_s`` and ``frame_idx`` are the
    exact timestamps (seconds) and indices of the frames; ``scale`` maps a pixel of these frames
    back to the original resolution (original = decoded * scale).
    """

    frames: np.ndarray
    t_s: np.ndarray
    frame_idx: np.ndarray
    scale: float = 1.0

    def __len__(self) -> int:
        return int(self.frames.shape[0])


@dataclass(frozen=True)
class Frame:
    """One decoded frame at working resolution, as a sequential pass yields it.

    ``image`` is (H, W, 3) uint8 RGB; ``scale`` maps its pixels back to the original frame
    (original = image * scale).
    """

    frame_idx: int
    t_s: float
    image: np.ndarray
    scale: float = 1.0


@runtime_checkable
class FrameSource(Protocol):
    """The frames of one video: one sequential pass, and random access for what comes later.

    Perception reads the video through ``iter_frames`` once per question, at its working
    resolution; tools that look again later (look-backs, crops at full resolution) use
    ``read``, which a source serves from what it kept (its bounded frame cache) before it
    decodes anything. ``frames_decoded`` counts every frame the decoder produced, for the
    trace's cost: a question should decode each frame about once.

    Frames are RGB uint8 as displayed (a rotation in the file is applied); ``info.resolution_wh``
    is the displayed size and boxes are in its pixels.
    """

    @property
    def info(self) -> VideoInfo: ...

    @property
    def timestamps(self) -> np.ndarray:
        """Exact timestamp (seconds) of every decodable frame, ascending."""
        ...

    @property
    def frames_decoded(self) -> int:
        """How many frames this source has decoded so far (for cost accounting)."""
        ...

    def read(self, frame_idx: Sequence[int], max_side: int | None = None) -> FrameBatch:
        """Decode the given frames (read in sorted order, returned in sorted order)."""
        ...

    def iter_frames(
        self,
        max_side: int | None = None,
        fps: float | None = None,
        start_s: float = 0.0,
        end_s: float | None = None,
        frame_idx: Sequence[int] | np.ndarray | None = None,
    ) -> Iterator[Frame]:
        """One sequential pass: frames in time order at working resolution (longer side at most
        ``max_side``, scaled inside the decoder), each decoded at most once. Either exactly the
        frames ``frame_idx`` (any order; yielded ascending, each once), or every frame / about
        ``fps`` per second between ``start_s`` and ``end_s``. Frames a damaged stretch cannot
        give are left out. Perception reads the video through this, once."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ScoreResult:
    """A temporal scorer's output: the (unsmoothed) curve and what it used."""

    curve: ScoreCurve
    model_id: str
    details: dict[str, float | str] = field(default_factory=dict)


@runtime_checkable
class TemporalScorer(Protocol):
    """Scores how anomalous each sampled moment of a video is."""

    name: str
    model_id: str

    def score(
        self,
        source: FrameSource,
        t_s: Sequence[float],
        phrases: Sequence[str] | None = None,
    ) -> ScoreResult:
        """Score the frames nearest to ``t_s``; ``phrases`` (when given) describe the anomaly
        to look for instead of the built-in prompt bank. Scores lie in [0, 1]."""
        ...


@runtime_checkable
class Grounder(Protocol):
    """Finds boxes for text phrases in one moment of a video."""

    name: str
    model_id: str

    def ground(self, source: FrameSource, t_s: float, phrases: Sequence[str]) -> list[Box]:
        """Boxes in pixels of the original frame, labelled with the phrase they match."""
        ...


@dataclass(frozen=True)
class Inspection:
    """An inspector's answer about one box: free text plus measured facts."""

    answer: str
    facts: dict[str, float | int | str | bool | None] = field(default_factory=dict)
    confidence: float | None = None
    crop: np.ndarray | None = None  # RGB uint8 crop that was looked at, for the trace
    #: The same object's box at other moments, when the inspector followed it (original
    #: pixels, time order). Empty when it did not track.
    track: list[Box] = field(default_factory=list)
    #: Typed measurements, from inspectors that measure (the weight-free ``measure``).
    measured: MeasuredFacts | None = None


@runtime_checkable
class Inspector(Protocol):
    """Looks closely at one box and answers a targeted question."""

    name: str
    model_id: str

    def inspect(self, source: FrameSource, t_s: float, box: Box, question: str) -> Inspection: ...
