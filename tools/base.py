"""Protocols the model backends implement, and the data they pass around.

Each backend is a small class behind a one-method Protocol, registered by name (see
``registry.py``). Backends load their models lazily on first use, resolve the device once, and
never download anything at import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from vadetective.agent.core.types import Box, ScoreCurve, TimeSpan, VideoInfo

if TYPE_CHECKING:
    pass


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


@runtime_checkable
class FrameSource(Protocol):
    """Random access to the frames of one video."""

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


@runtime_checkable
class Inspector(Protocol):
    """Looks closely at one box and answers a targeted question."""

    name: str
    model_id: str

    def inspect(self, source: FrameSource, t_s: float, box: Box, question: str) -> Inspection: ...


def spans_from_curve(
    curve: ScoreCurve,
    threshold: float,
    min_gap_s: float = 1.0,
    min_len_s: float = 0.0,
    top_k: int | None = None,
) -> list[TimeSpan]:
    """Merge the moments of ``curve`` at or above ``threshold`` into spans with their mean
    score, best first. Runs separated by less than ``min_gap_s`` are joined."""
    t = np.asarray(curve.t_s, dtype=float)
    s = np.asarray(curve.score, dtype=float)
    if t.size == 0:
        return []
    step = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    above = s >= threshold
    spans: list[tuple[int, int]] = []
    i = 0
    while i < t.size:
        if not above[i]:
            i += 1
            continue
        j = i
        while j + 1 < t.size and above[j + 1]:
            j += 1
        if spans and t[i] - t[spans[-1][1]] <= min_gap_s:
            spans[-1] = (spans[-1][0], j)
        else:
            spans.append((i, j))
        i = j + 1
    out: list[TimeSpan] = []
    for a, b in spans:
        start = max(0.0, float(t[a]) - step / 2)
        end = float(t[b]) + step / 2
        if end - start < min_len_s:
            continue
        out.append(
            TimeSpan(start_s=start, end_s=end, score=float(np.clip(s[a : b + 1].mean(), 0, 1)))
        )
    out.sort(key=lambda sp: -(sp.score or 0.0))
    return out[:top_k] if top_k else out
