"""Events on a stream: when a suspicious stretch opens, goes on and ends (with a cooldown).

``EventTracker`` turns the perception's scores into event transitions. An event *opens* when the
score stays at or above ``on_threshold`` for ``min_on_s``; it *extends* while the score stays
above ``off_threshold`` (hysteresis, so a score hovering at the threshold does not flicker);
it *closes* only once the score has stayed below ``off_threshold`` for ``cooldown_s`` — a dip
shorter than the cooldown is the same event, so one event is one alert. Its end is the last
moment the score was above ``off_threshold``.

``FrameRing`` keeps the last seconds of frames (JPEG-compressed, at a bounded rate) so the
detective can look back at a suspicious window; ``WindowSource`` serves such a window as an
ordinary ``FrameSource`` whose times start at 0.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from vadetective.agent.core.types import Box, VideoInfo
from vadetective.tools.base import Frame, FrameBatch
from vadetective.tools.video.sampling import iter_frames_by_reading

Transition = Literal["opened", "extended", "closed"]


@dataclass
class Event:
    """One suspicious stretch of the stream (times on the stream clock)."""

    id: str
    start_s: float
    end_s: float
    peak_score: float
    peak_t_s: float
    family: str | None
    boxes: list[Box] = field(default_factory=list)  # at the peak
    closed: bool = False


class EventTracker:
    """Score -> event transitions (see the module docstring)."""

    def __init__(
        self,
        on_threshold: float = 0.5,
        off_threshold: float = 0.35,
        min_on_s: float = 0.5,
        cooldown_s: float = 5.0,
        id_prefix: str = "evt",
    ) -> None:
        if off_threshold > on_threshold:
            raise ValueError(
                f"off_threshold ({off_threshold}) must not exceed on_threshold ({on_threshold})"
            )
        self.on, self.off = on_threshold, off_threshold
        self.min_on_s, self.cooldown_s = min_on_s, cooldown_s
        self.prefix = id_prefix
        self._ids = itertools.count(1)
        self.event: Event | None = None
        self._rise: float | None = None  # when the score first reached `on` (not yet open)
        self._below: float | None = None  # when the score fell below `off` in an open event

    def update(
        self, t_s: float, score: float, family: str | None = None, boxes: Sequence[Box] = ()
    ) -> list[tuple[Transition, Event]]:
        """Feed one scored moment; return what happened to the event, in order."""
        out: list[tuple[Transition, Event]] = []
        ev = self.event
        if ev is None:
            if score >= self.on:
                if self._rise is None:
                    self._rise = t_s
                if t_s - self._rise >= self.min_on_s - 1e-9:
                    ev = self.event = Event(
                        id=f"{self.prefix}-{next(self._ids):04d}",
                        start_s=self._rise,
                        end_s=t_s,
                        peak_score=score,
                        peak_t_s=t_s,
                        family=family,
                        boxes=list(boxes),
                    )
                    self._rise = self._below = None
                    out.append(("opened", ev))
            else:
                self._rise = None
            return out
        if score >= self.off:
            self._below = None
            ev.end_s = t_s
            if score > ev.peak_score:
                ev.peak_score, ev.peak_t_s, ev.family = score, t_s, family
                if boxes:
                    ev.boxes = list(boxes)
            out.append(("extended", ev))
            return out
        if self._below is None:
            self._below = t_s
        if t_s - self._below >= self.cooldown_s - 1e-9:
            out.append(("closed", self.close()))
        return out

    def close(self) -> Event:
        """Close the open event now (the stream ended or the watcher stops)."""
        ev = self.event
        assert ev is not None, "no open event"
        ev.closed = True
        self.event = None
        self._below = self._rise = None
        return ev


class FrameRing:
    """The last ``seconds`` of frames at about ``fps`` per second, JPEG-compressed in memory
    (a 640x360 frame is ~40 KB instead of 690 KB), so looking back costs bounded memory."""

    def __init__(self, seconds: float = 30.0, fps: float = 8.0, quality: int = 90) -> None:
        self.seconds, self.step_s, self.quality = seconds, 1.0 / fps, quality
        self._frames: deque[tuple[float, bytes, float]] = deque(
            maxlen=max(2, round(seconds * fps) + 2)
        )
        self._next = -np.inf

    def add(self, frame: Frame) -> None:
        if frame.t_s < self._next - 1e-6:
            return
        import cv2

        ok, buf = cv2.imencode(
            ".jpg",
            cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, self.quality],
        )
        if ok:
            self._frames.append((frame.t_s, buf.tobytes(), frame.scale))
            self._next = max(self._next + self.step_s, frame.t_s + 0.5 * self.step_s)

    @property
    def span_s(self) -> tuple[float, float] | None:
        if not self._frames:
            return None
        return self._frames[0][0], self._frames[-1][0]

    def window(self, start_s: float, end_s: float, name: str) -> WindowSource:
        """The frames between ``start_s`` and ``end_s`` as a ``FrameSource`` (times from 0)."""
        picked = [f for f in self._frames if start_s - 1e-6 <= f[0] <= end_s + 1e-6]
        if len(picked) < 2:
            raise ValueError(f"fewer than two frames kept between {start_s:.1f} and {end_s:.1f} s")
        return WindowSource(picked, name)

    def nearest(self, t_s: float) -> np.ndarray | None:
        """The kept frame nearest ``t_s`` (RGB, working resolution)."""
        if not self._frames:
            return None
        _t, data, _ = min(self._frames, key=lambda f: abs(f[0] - t_s))
        return _decode_jpeg(data)


def _decode_jpeg(data: bytes) -> np.ndarray:
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:  # pragma: no cover - the ring only holds what OpenCV encoded
        raise ValueError("a kept frame could not be decoded")
    return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


class WindowSource:
    """A window of a live stream as a ``FrameSource``: times from 0 at the window's first
    frame (``offset_s`` maps them back to the stream clock); boxes are in original pixels."""

    def __init__(self, frames: list[tuple[float, bytes, float]], name: str) -> None:
        self._data = [d for _, d, _ in frames]
        self.offset_s = frames[0][0]
        self._t = np.asarray([t - self.offset_s for t, _, _ in frames], dtype=np.float64)
        self._t.setflags(write=False)
        self._scale = frames[0][2]
        first = _decode_jpeg(self._data[0])
        h, w = first.shape[:2]
        duration = float(self._t[-1]) + float(np.median(np.diff(self._t)))
        self._info = VideoInfo(
            path=f"live://{name}",
            fps=max(1e-3, (len(frames) - 1) / max(float(self._t[-1]), 1e-3)),
            frame_count=len(frames),
            duration_s=duration,
            resolution_wh=(round(w * self._scale), round(h * self._scale)),
            content_hash=f"live-{name}",
            backend="live",
        )
        self._decoded = 0

    @property
    def info(self) -> VideoInfo:
        return self._info

    @property
    def timestamps(self) -> np.ndarray:
        return self._t

    @property
    def frames_decoded(self) -> int:
        return self._decoded

    def read(self, frame_idx: Sequence[int], max_side: int | None = None) -> FrameBatch:
        import cv2

        idx = np.unique(np.asarray(frame_idx, dtype=np.int64).reshape(-1))
        if idx.size and (idx[0] < 0 or idx[-1] >= len(self._data)):
            raise IndexError(
                f"frame_idx out of range: the window has frames 0..{len(self._data) - 1}"
            )
        out = []
        scale = self._scale
        for i in idx.tolist():
            img = _decode_jpeg(self._data[i])
            self._decoded += 1
            h, w = img.shape[:2]
            if max_side is not None and max(w, h) > max_side:
                s = max_side / max(w, h)
                img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
                scale = self._scale * max(w, h) / max(img.shape[:2])
            out.append(img)
        frames = np.stack(out) if out else np.empty((0, 1, 1, 3), np.uint8)
        return FrameBatch(frames=frames, t_s=self._t[idx], frame_idx=idx, scale=scale)

    def iter_frames(
        self,
        max_side: int | None = None,
        fps: float | None = None,
        start_s: float = 0.0,
        end_s: float | None = None,
        frame_idx: Sequence[int] | np.ndarray | None = None,
    ) -> Iterator[Frame]:
        return iter_frames_by_reading(self, max_side, fps, start_s, end_s, frame_idx)

    def close(self) -> None:
        return None


__all__ = ["Event", "EventTracker", "FrameRing", "Transition", "WindowSource"]
