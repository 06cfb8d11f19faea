"""Incremental perception for live streams: frames go in, in order, once; scores come out.

``OnlinePerception`` is the seam the watcher depends on: ``update(frame)`` with every frame of
the stream in order (state carried forward, history never re-analysed), returning an
``Observation`` whenever it scored a moment.

``MotionOnline`` is the adapter over today's weight-free motion perception (the five families of
``tools.backends.motion.activity``), run online: the background is the median of frames sampled
over the last minute (refreshed every ``bg_refresh_s``), the threshold and person size are
calibrated on the first ``warmup_s`` seconds, each family's raw value goes through the same
normalisation as the whole-video pass but against a rolling history (``history_s``) instead of
the whole video, and the direction histogram behind counterflow is learned from that history.
Nothing is scored before the warm-up is over (``Observation.ready`` is False).

The rebuilt, tracking perception of issue 13 replaces this adapter behind the same Protocol.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from vadetective.agent.core.types import Box
from vadetective.agent.core.vocabulary import MOTION_FAMILIES, ScoreFamily
from vadetective.tools.backends.motion import activity as act
from vadetective.tools.backends.motion.scene import BG_FRAMES, PROC_MAX_SIDE, SceneModel, calibrate
from vadetective.tools.base import Frame


@dataclass(frozen=True)
class Observation:
    """What perception says about one moment of the stream."""

    t_s: float
    score: float  # overall anomaly score in [0, 1]
    families: dict[str, float] = field(default_factory=dict)
    family: str | None = None  # the family with the highest score
    boxes: list[Box] = field(default_factory=list)  # original pixels, t_s on the stream clock
    ready: bool = True  # False while the scene's normal is still being learned


class OnlinePerception(Protocol):
    """Perception fed a stream's frames in order (see the module docstring)."""

    def update(self, frame: Frame) -> Observation | None:
        """Take the next frame; return an observation when this frame was scored."""
        ...


def _resize(img: np.ndarray, max_side: int) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    if max(w, h) <= max_side:
        return img
    s = max_side / max(w, h)
    return cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


class MotionOnline:
    """Today's motion perception, online (see the module docstring).

    Args:
        grid_fps: scored moments per second.
        warmup_s: seconds of stream used to learn the background and calibrate before scoring.
        history_s: how much past the normalisation and the direction histogram remember.
        bg_refresh_s: how often the background is recomputed from the recent samples.
        weights: per-family weights in the overall score (default: all 1).
        box_threshold: boxes are measured only for moments scoring at least this.
    """

    def __init__(
        self,
        grid_fps: float = 4.0,
        warmup_s: float = 8.0,
        history_s: float = 300.0,
        bg_refresh_s: float = 20.0,
        weights: dict[str, float] | None = None,
        box_threshold: float = 0.3,
        max_side: int = PROC_MAX_SIDE,
    ) -> None:
        self.grid_s = 1.0 / grid_fps
        self.warmup_s = warmup_s
        self.bg_refresh_s = bg_refresh_s
        self.weights = weights or dict.fromkeys(MOTION_FAMILIES, 1.0)
        self.box_threshold = box_threshold
        self.max_side = max_side
        n_hist = max(20, round(history_s * grid_fps))
        self._raw: dict[str, deque[float]] = {f: deque(maxlen=n_hist) for f in MOTION_FAMILIES}
        self._fg_share: deque[float] = deque(maxlen=n_hist)
        self._pairs: deque[list[tuple[float, float | None, float]]] = deque(maxlen=n_hist)
        self._speeds: deque[float] = deque(maxlen=5)
        self._turns: deque[float] = deque(maxlen=max(1, round(2.0 * grid_fps)))
        self._recent: deque[tuple[float, np.ndarray]] = deque(maxlen=12)  # partners, ~10/s
        self._bg_samples: deque[np.ndarray] = deque(maxlen=BG_FRAMES)
        self._warm: list[tuple[np.ndarray, float]] = []
        self._t0: float | None = None
        self._next_grid = 0.0
        self._next_bg_sample = 0.0
        self._next_refresh = 0.0
        self._next_recent = 0.0
        self._hist_at = -math.inf
        self._hist = np.ones(12)
        self._dominant: float | None = None
        self.scene: SceneModel | None = None
        self._pass: act.ActivityPass | None = None

    # ------------------------------------------------------------------ public
    def update(self, frame: Frame) -> Observation | None:
        t = frame.t_s
        if self._t0 is None:
            self._t0 = t
            self._next_grid = self._next_bg_sample = self._next_recent = t
        small: np.ndarray | None = None
        if t >= self._next_recent - 1e-6:
            small = _resize(frame.image, self.max_side)
            self._recent.append((t, small))
            self._next_recent = t + 0.09
        if t >= self._next_bg_sample - 1e-6:
            small = small if small is not None else _resize(frame.image, self.max_side)
            self._bg_samples.append(small)
            self._next_bg_sample = t + (0.5 if self.scene is None else 1.5)
            if self.scene is None:
                self._warm.append((small, t))
        if self.scene is None:
            if t - self._t0 < self.warmup_s or len(self._warm) < 8:
                return None
            self._build_scene(frame)
        elif t >= self._next_refresh:
            self._refresh_background()
        if t < self._next_grid - 1e-6:
            return None
        self._next_grid = max(self._next_grid + self.grid_s, t + 0.5 * self.grid_s)
        small = small if small is not None else _resize(frame.image, self.max_side)
        return self._score(small, t, frame.scale)

    # ------------------------------------------------------------------ internals
    def _build_scene(self, frame: Frame) -> None:
        frames = [f for f, _ in self._warm]
        bg = np.median(np.stack(frames), axis=0).astype(np.uint8)
        h, w = bg.shape[:2]
        scene = SceneModel(
            content_hash="live",
            max_side=self.max_side,
            scale=float(frame.scale * max(frame.image.shape[:2]) / max(h, w)),
            proc_wh=(w, h),
            fps=1.0 / 0.1,
            duration_s=math.inf,
            dt_frames=2,
            window_edges_s=np.asarray([-np.inf, np.inf]),
            backgrounds=[bg],
            threshold=18.0,
            min_area=max(6, round(2e-4 * w * h)),
            person_area=(0.12 * h) ** 2 * 0.35,
            person_side=0.12 * h,
        )
        calibrate(scene, self._warm[:: max(1, len(self._warm) // 16)])
        self.scene = scene
        self._pass = act.ActivityPass(scene)
        self._warm = []
        self._next_refresh = (self._t0 or 0.0) + self.warmup_s + self.bg_refresh_s

    def _refresh_background(self) -> None:
        assert self.scene is not None
        if len(self._bg_samples) >= 8:
            self.scene.backgrounds[0] = np.median(np.stack(self._bg_samples), axis=0).astype(
                np.uint8
            )
        self._next_refresh += self.bg_refresh_s

    def _partner(self, t: float) -> tuple[float, np.ndarray] | None:
        best = None
        for tp, img in self._recent:
            if 0.1 <= t - tp <= 0.4 and (
                best is None or abs(t - tp - 0.2) < abs(t - best[0] - 0.2)
            ):
                best = (tp, img)
        return best

    def _score(self, small: np.ndarray, t: float, scale: float) -> Observation | None:
        assert self.scene is not None and self._pass is not None
        partner = self._partner(t)
        if partner is None:
            return None
        run = self._pass
        run.step(-1, small, partner[1], t, partner[0] - t)  # a stream has no frame index
        raw_now = {f: run.raw[f][-1] for f in ("speed", "stillness", "appearance", "erratic")}
        pairs = run.pairs[-1]
        self._fg_share.append(run.fg_fraction[-1])
        # the pass keeps lists for a whole video; online, only its state carries forward
        for values in run.raw.values():
            values.clear()
        run.pairs.clear()
        run.times.clear()
        run.frames.clear()
        run.fg_fraction.clear()
        run.typical.clear()
        self._pairs.append(pairs)
        if t - self._hist_at > 5.0:
            self._hist, self._dominant = act._direction_hist(list(self._pairs))
            self._hist_at = t
        # the whole-video pass filters speed (median of 3) and erratic (2-s mean); online the
        # windows trail
        self._speeds.append(raw_now["speed"])
        raw_now["speed"] = float(np.median(list(self._speeds)[-3:]))
        self._turns.append(raw_now["erratic"])
        raw_now["erratic"] = float(np.mean(self._turns))
        raw_now["counterflow"] = self._counterflow(pairs)
        reliability = float(np.clip((0.45 - float(np.median(self._fg_share))) / 0.2, 0.25, 1.0))
        families: dict[str, float] = {}
        for f in MOTION_FAMILIES:
            self._raw[f].append(raw_now[f])
            hist = np.asarray(self._raw[f], dtype=np.float64)
            families[f] = reliability * float(act.normalise(hist, act.PRIORS[f])[-1])
        weighted = {f: self.weights.get(f, 1.0) * v for f, v in families.items()}
        family = max(weighted, key=lambda k: weighted[k])
        score = float(weighted[family])
        boxes = self._boxes(small, t, family) if score >= self.box_threshold else []
        return Observation(t_s=t, score=score, families=families, family=family, boxes=boxes)

    def _counterflow(self, pairs: list[tuple[float, float | None, float]]) -> float:
        if self._dominant is None:
            return 0.0
        best = 0.0
        for ang, prev_ang, _ in pairs:
            now = 1.0 - act._hist_at(self._hist, ang)
            held = (
                min(now, 1.0 - act._hist_at(self._hist, prev_ang))
                if prev_ang is not None
                else 0.5 * now
            )
            best = max(best, held)
        return best

    def _boxes(self, small: np.ndarray, t: float, family: str) -> list[Box]:
        """Person- or object-sized foreground blobs at ``t``, largest first (original pixels)."""
        assert self.scene is not None
        scene = self.scene
        fg = scene.foreground(small, t)
        h, w = small.shape[:2]
        res = (round(w * scene.scale), round(h * scene.scale))
        out = []
        for b in sorted(fg.blobs, key=lambda b: -b.area)[:5]:
            if b.area < 0.25 * scene.person_area:
                continue
            xyxy = scene.to_original(b.xyxy, res, inset=0.5)
            label = scene.label(b) if family != ScoreFamily.STILLNESS else "still " + scene.label(b)
            out.append(Box(t_s=t, xyxy=xyxy, label=label, score=0.5))
        return out


__all__ = ["MotionOnline", "Observation", "OnlinePerception"]
