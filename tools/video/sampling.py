"""Turning times, rates and spans into frame indices, and reading frames by time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from vadetective.agent.core.types import TimeSpan
from vadetective.tools.base import Frame, FrameBatch, FrameSource

Timeline = FrameSource | Sequence[float] | np.ndarray


def _times(timeline: Timeline) -> np.ndarray:
    if hasattr(timeline, "timestamps"):  # a FrameSource (duck-typed: test fakes count too)
        return np.asarray(timeline.timestamps, dtype=np.float64)
    return np.asarray(timeline, dtype=np.float64)


def _end_s(timeline: Timeline, t: np.ndarray) -> float:
    if hasattr(timeline, "info"):
        return float(timeline.info.duration_s)
    step = float(np.median(np.diff(t))) if t.size > 1 else 0.0
    return float(t[-1]) + step if t.size else 0.0


def nearest_indices(timeline: Timeline, t_s: Sequence[float] | np.ndarray) -> np.ndarray:
    """The index of the frame nearest to each time (ties go to the earlier frame).

    Args:
        timeline: a FrameSource, or the ascending timestamps (seconds) of its frames.
        t_s: times in seconds, any order; times outside the video map to its ends.

    Returns:
        One int64 index per time, in the order given.
    """
    t = _times(timeline)
    if t.size == 0:
        raise ValueError("the video has no frames to choose from")
    q = np.asarray(t_s, dtype=np.float64).reshape(-1)
    right = np.clip(np.searchsorted(t, q, side="left"), 1, max(1, t.size - 1))
    left = right - 1
    if t.size == 1:
        return np.zeros(q.size, dtype=np.int64)
    pick = np.where(np.abs(t[right] - q) < np.abs(q - t[left]), right, left)
    return pick.astype(np.int64)


def uniform_indices(timeline: Timeline, n: int) -> np.ndarray:
    """``n`` frames spread evenly over the video: the middle frame of ``n`` equal segments.

    Args:
        timeline: a FrameSource, or the timestamps of its frames.
        n: how many frames; all frames when the video has fewer.

    Returns:
        Ascending unique int64 frame indices.
    """
    total = _times(timeline).size
    if n <= 0 or total == 0:
        return np.zeros(0, dtype=np.int64)
    if n >= total:
        return np.arange(total, dtype=np.int64)
    return np.floor((np.arange(n) + 0.5) * total / n).astype(np.int64)


def _in_span(timeline: Timeline, span: TimeSpan | None, samples: np.ndarray) -> np.ndarray:
    """Unique frames nearest to ``samples`` among the frames inside ``span``."""
    t = _times(timeline)
    lo, hi = (
        (0, t.size)
        if span is None
        else (
            int(np.searchsorted(t, span.start_s, side="left")),
            int(np.searchsorted(t, span.end_s, side="right")),
        )
    )
    if hi <= lo:  # a span between two frames: the frame nearest to its middle
        mid = 0.0 if span is None else (span.start_s + span.end_s) / 2
        return np.unique(nearest_indices(t, [mid]))
    return np.unique(nearest_indices(t[lo:hi], samples) + lo)


def indices_at_fps(timeline: Timeline, fps: float, span: TimeSpan | None = None) -> np.ndarray:
    """Frames sampled every ``1 / fps`` seconds, over the whole video or within ``span``.

    Args:
        timeline: a FrameSource, or the timestamps of its frames.
        fps: samples per second; above the video's own rate a frame nearest to several
            samples is returned once.
        span: only sample inside this span (seconds).

    Returns:
        Ascending unique int64 frame indices.
    """
    if not fps > 0:
        raise ValueError(f"fps must be a positive number, got {fps}")
    t = _times(timeline)
    if t.size == 0:
        return np.zeros(0, dtype=np.int64)
    start = 0.0 if span is None else span.start_s
    end = _end_s(timeline, t) if span is None else span.end_s
    samples = start + np.arange(max(1, int(np.ceil((end - start) * fps - 1e-9)))) / fps
    return _in_span(timeline, span, samples)


def indices_in_span(timeline: Timeline, span: TimeSpan, count: int) -> np.ndarray:
    """``count`` frames spread evenly inside ``span`` (the middles of ``count`` equal parts).

    Args:
        timeline: a FrameSource, or the timestamps of its frames.
        span: the span, in seconds.
        count: how many frames; fewer when the span holds fewer frames.

    Returns:
        Ascending unique int64 frame indices (at least one: the nearest frame to the span's
        middle when no frame lies inside it).
    """
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    samples = span.start_s + (np.arange(count) + 0.5) * span.duration_s / count
    return _in_span(timeline, span, samples)


def read_at(
    source: FrameSource, t_s: Sequence[float] | np.ndarray, max_side: int | None = None
) -> FrameBatch:
    """The frames nearest to the given times, decoded in one sorted batch.

    Args:
        source: an open video.
        t_s: times in seconds, any order.
        max_side: downscale so the longer side is at most this many pixels.

    Returns:
        The frames sorted by time, each once (two times nearest to the same frame share it).
    """
    return source.read(nearest_indices(source, t_s).tolist(), max_side=max_side)


def iter_batches(
    source: FrameSource,
    frame_idx: Sequence[int] | np.ndarray | None = None,
    batch_size: int = 64,
    max_side: int | None = None,
) -> Iterator[FrameBatch]:
    """Read many frames in sorted batches of ``batch_size``, bounding memory.

    Args:
        source: an open video.
        frame_idx: which frames (default: every frame).
        batch_size: frames per batch.
        max_side: downscale so the longer side is at most this many pixels.

    Yields:
        FrameBatch after FrameBatch, in time order.
    """
    if frame_idx is None:
        frame_idx = np.arange(source.info.frame_count)
    idx = np.unique(np.asarray(frame_idx, dtype=np.int64))
    for start in range(0, idx.size, max(1, batch_size)):
        yield source.read(idx[start : start + batch_size].tolist(), max_side=max_side)


def frames_between(
    timeline: Timeline, fps: float | None = None, start_s: float = 0.0, end_s: float | None = None
) -> np.ndarray:
    """Indices of the frames between ``start_s`` and ``end_s`` (inclusive): all of them, or about
    ``fps`` per second (``indices_at_fps``)."""
    t = _times(timeline)
    end = float("inf") if end_s is None else end_s
    if fps is not None:
        span = None
        if start_s > 0 or end_s is not None:
            hi = min(end, _end_s(timeline, t))
            if hi <= start_s:
                return np.zeros(0, dtype=np.int64)
            span = TimeSpan(start_s=max(0.0, start_s), end_s=hi)
        return indices_at_fps(timeline, fps, span)
    return np.flatnonzero((t >= start_s) & (t <= end)).astype(np.int64)


def iter_frames_by_reading(
    source: FrameSource,
    max_side: int | None = None,
    fps: float | None = None,
    start_s: float = 0.0,
    end_s: float | None = None,
    frame_idx: Sequence[int] | np.ndarray | None = None,
    chunk: int = 32,
) -> Iterator[Frame]:
    """``FrameSource.iter_frames`` through ``source.read`` in sorted chunks: for sources that have
    no cheaper sequential pass of their own (test fakes, in-memory frames)."""
    if frame_idx is None:
        idx = frames_between(source, fps, start_s, end_s)
    else:
        idx = np.unique(np.asarray(frame_idx, dtype=np.int64).reshape(-1))
    for start in range(0, idx.size, chunk):
        batch = source.read(idx[start : start + chunk].tolist(), max_side=max_side)
        for k in range(len(batch)):
            yield Frame(int(batch.frame_idx[k]), float(batch.t_s[k]), batch.frames[k], batch.scale)
