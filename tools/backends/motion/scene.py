"""The per-video scene model shared by the ``motion`` backends: background, foreground blobs.

Everything runs on frames decoded at a reduced size (``max_side``, 320 by default); boxes go back
to original pixels with ``SceneModel.scale``. The background is the per-pixel median of frames
spread over the video (one model per window of a few minutes, so slow lighting changes and
long-term scene changes are followed); the foreground is where a frame differs from it by more
than a threshold set from the video's own noise.

A person-size prior comes from the same frames: the median area and long side of the
foreground blobs seen in them (in surveillance footage the moving blobs are mostly people).
The grounder's labels and the scorers' units ("body heights per second") rest on it.

Scene models are built by the one pass in ``perception.py`` (together with the activity pass),
cached in memory and on disk per (content hash, settings), so the scorer, the grounder and the
inspector of one analysis share one background and one activity pass.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vadetective.tools.base import FrameSource

log = logging.getLogger(__name__)

PROC_MAX_SIDE = 320
BG_WINDOW_S = 180.0  # one background model per window of this length
BG_FRAMES = 41  # frames per background window (the median is robust to < 50% occupancy)
FLOW_DT_S = 0.2  # time between the two frames of a flow / difference pair


@dataclass(frozen=True)
class Blob:
    """A connected foreground region in processing pixels (``x2``/``y2`` exclusive)."""

    xyxy: tuple[int, int, int, int]
    area: int
    cx: float
    cy: float
    contrast: float  # mean max-channel difference from the background (grey levels)
    label_id: int = 0  # its label in the component image it came from

    @property
    def width(self) -> int:
        return self.xyxy[2] - self.xyxy[0]

    @property
    def height(self) -> int:
        return self.xyxy[3] - self.xyxy[1]

    @property
    def long_side(self) -> int:
        return max(self.width, self.height)

    def iou(self, xyxy: Sequence[float]) -> float:
        ax1, ay1, ax2, ay2 = self.xyxy
        bx1, by1, bx2, by2 = xyxy
        iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
        ih = max(0.0, min(ay2, by2) - max(ay1, by1))
        inter = iw * ih
        union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
        return inter / union if union > 0 else 0.0


@dataclass
class Foreground:
    """The foreground of one frame: mask, difference image, component labels and blobs."""

    mask: np.ndarray  # uint8 0/1
    diff: np.ndarray  # uint8 max-channel |frame - background|
    labels: np.ndarray  # int32 component labels (0 = background)
    blobs: list[Blob]


@dataclass
class SceneModel:
    """What the motion backends know about one video before looking at any moment closely."""

    content_hash: str
    max_side: int
    scale: float  # original pixels = processing pixels * scale
    proc_wh: tuple[int, int]
    fps: float
    duration_s: float
    dt_frames: int  # frames between the two frames of a flow / difference pair
    window_edges_s: np.ndarray  # background windows: [edges[k], edges[k+1])
    backgrounds: list[np.ndarray]  # uint8 RGB, one per window
    threshold: float  # foreground when the max-channel difference exceeds this
    min_area: int  # smallest blob kept (processing pixels)
    person_area: float  # typical blob area (processing pixels)
    person_side: float  # typical blob long side (processing pixels)

    # ----------------------------------------------------------------------------- pixels
    def background_at(self, t_s: float) -> np.ndarray:
        k = int(np.searchsorted(self.window_edges_s, t_s, side="right")) - 1
        return self.backgrounds[min(max(k, 0), len(self.backgrounds) - 1)]

    def difference(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Max-channel absolute difference of two RGB images (uint8)."""
        import cv2

        c = cv2.split(cv2.absdiff(a, b))  # (numpy's max over the channel axis is ~50x slower)
        return np.asarray(cv2.max(cv2.max(c[0], c[1]), c[2]))

    def foreground(
        self, frame: np.ndarray, t_s: float, extra: np.ndarray | None = None
    ) -> Foreground:
        """Foreground of ``frame`` (processing size) against the background at ``t_s``;
        ``extra`` (uint8 0/1) is OR-ed into the mask before cleaning (e.g. frame differencing)."""
        diff = self.difference(frame, self.background_at(t_s))
        mask = (diff > self.threshold).astype(np.uint8)
        if extra is not None:
            mask |= extra
        return self.blobs_of(mask, diff)

    def blobs_of(self, mask: np.ndarray, diff: np.ndarray) -> Foreground:
        """Clean a raw mask (drop specks, bridge small gaps) and split it into blobs."""
        import cv2

        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
        n, labels, stats, cents = cv2.connectedComponentsWithStats(mask, connectivity=8)
        blobs: list[Blob] = []
        if n > 1:
            sums = np.bincount(labels.ravel(), weights=diff.ravel().astype(np.float64), minlength=n)
            for k in range(1, n):
                x, y, w, h, area = (int(v) for v in stats[k])
                if area < self.min_area:
                    continue
                blobs.append(
                    Blob(
                        xyxy=(x, y, x + w, y + h),
                        area=area,
                        cx=float(cents[k][0]),
                        cy=float(cents[k][1]),
                        contrast=float(sums[k] / area),
                        label_id=k,
                    )
                )
        return Foreground(mask=mask, diff=diff, labels=labels, blobs=blobs)

    # ----------------------------------------------------------------------------- people
    def label(self, blob: Blob) -> str:
        """``"person"`` or ``"object"`` by size and shape against the person-size prior.

        A blob is person-like when its area lies within [0.3, 4] times the typical blob area
        and its long side is at least 0.6 times the typical long side (upright or lying: the
        long side of a lying person is still a body length); anything smaller (a bag, a box)
        or much larger (a vehicle) is an object.
        """
        pa, ps = self.person_area, self.person_side
        if 0.3 * pa <= blob.area <= 4.0 * pa and blob.long_side >= 0.6 * ps:
            return "person"
        return "object"

    def body_length(self, blob: Blob) -> float:
        """The length that speeds are measured in (processing pixels): the blob's long side,
        but not less than 0.6 typical sides (a half-detected body would inflate speeds)."""
        return max(float(blob.long_side), 0.6 * self.person_side)

    def to_original(
        self, xyxy: Sequence[float], resolution_wh: tuple[int, int], inset: float = 0.0
    ) -> tuple[float, float, float, float]:
        """A processing-pixel box in original pixels, clipped to the frame.

        ``inset`` (processing pixels) shrinks each side first: a blob's boundary pixels are
        foreground as soon as the object covers a fraction of them, so blob boxes overshoot
        by about half a pixel per side on average.
        """
        w, h = resolution_wh
        s = self.scale
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        if x2 - x1 > 2 * inset + 1 and y2 - y1 > 2 * inset + 1:
            x1, y1, x2, y2 = x1 + inset, y1 + inset, x2 - inset, y2 - inset
        x1, y1, x2, y2 = x1 * s, y1 * s, x2 * s, y2 * s
        x1, y1 = min(max(0.0, x1), w - 1.0), min(max(0.0, y1), h - 1.0)
        return x1, y1, min(max(x1 + 1.0, x2), float(w)), min(max(y1 + 1.0, y2), float(h))

    def to_proc(self, xyxy: Sequence[float]) -> tuple[float, float, float, float]:
        s = self.scale
        x1, y1, x2, y2 = (float(v) / s for v in xyxy)
        return x1, y1, x2, y2


# --------------------------------------------------------------------------------- reading


def read_frames(
    source: FrameSource, frame_idx: Sequence[int] | np.ndarray, max_side: int, chunk: int = 64
) -> dict[int, np.ndarray]:
    """Decode frames (sorted, in chunks) at processing size; frames a damaged file cannot
    give are simply absent from the result."""
    idx = np.unique(np.asarray(frame_idx, dtype=np.int64))
    out: dict[int, np.ndarray] = {}
    for start in range(0, idx.size, chunk):
        batch = source.read(idx[start : start + chunk].tolist(), max_side=max_side)
        for i, frame in zip(batch.frame_idx.tolist(), batch.frames, strict=True):
            out[int(i)] = frame
    return out


def nearest_frame(source: FrameSource, t_s: float) -> int:
    from vadetective.tools.video.sampling import nearest_indices

    return int(nearest_indices(source, [t_s])[0])


# --------------------------------------------------------------------------------- building


def window_edges(duration_s: float) -> np.ndarray:
    """Edges of the background windows (``BG_WINDOW_S`` long; the last one open-ended)."""
    n_win = max(1, math.ceil(duration_s / BG_WINDOW_S))
    edges = np.linspace(0.0, duration_s, n_win + 1)
    edges[-1] = np.inf
    return edges


def background_frames(timestamps: np.ndarray, edges: np.ndarray) -> list[np.ndarray]:
    """For each background window, the frames its median is taken over (``BG_FRAMES`` spread
    evenly inside it; none for a window without frames)."""
    from vadetective.tools.video.sampling import uniform_indices

    ts = np.asarray(timestamps, dtype=np.float64)
    out = []
    for k in range(edges.size - 1):
        lo = int(np.searchsorted(ts, edges[k], side="left"))
        hi = int(np.searchsorted(ts, edges[k + 1], side="left"))
        out.append(uniform_indices(ts[lo:hi], BG_FRAMES) + lo if hi > lo else np.zeros(0, np.int64))
    return out


def new_scene(
    content_hash: str,
    max_side: int,
    fps: float,
    duration_s: float,
    proc_wh: tuple[int, int],
    scale: float,
) -> SceneModel:
    """A scene model with default thresholds and no background yet (``backgrounds`` fills up
    window by window as the pass reaches them; ``calibrate`` sets the thresholds)."""
    w, h = proc_wh
    return SceneModel(
        content_hash=content_hash,
        max_side=max_side,
        scale=float(scale),
        proc_wh=(w, h),
        fps=float(fps),
        duration_s=duration_s,
        dt_frames=max(1, round(FLOW_DT_S * fps)),
        window_edges_s=window_edges(duration_s),
        backgrounds=[],
        threshold=18.0,
        min_area=max(6, round(2e-4 * w * h)),
        person_area=(0.12 * h) ** 2 * 0.35,
        person_side=0.12 * h,
    )


def median_background(frames: Sequence[np.ndarray]) -> np.ndarray:
    """The per-pixel median of frames (uint8 RGB)."""
    return np.median(np.stack(list(frames)), axis=0).astype(np.uint8)


def calibration_samples(
    frames: Sequence[np.ndarray], t_s: Sequence[float]
) -> list[tuple[np.ndarray, float]]:
    """A few of a window's background frames (about 16) to calibrate on."""
    step = max(1, len(frames) // 16)
    return [(f, float(t)) for f, t in zip(list(frames)[::step], list(t_s)[::step], strict=True)]


def calibrate(model: SceneModel, samples: list[tuple[np.ndarray, float]]) -> None:
    """Set the foreground threshold from the video's noise and the person-size prior from the
    blobs of a few frames (kept at their defaults when the frames show no blobs)."""
    diffs = np.stack([model.difference(f, model.background_at(t)) for f, t in samples])
    noise = float(np.median(diffs))  # most pixels are background: this is the noise level
    model.threshold = float(np.clip(6.0 * noise, 18.0, 45.0))
    areas, sides = [], []
    for f, t in samples:
        for b in model.foreground(f, t).blobs:
            areas.append(b.area)
            sides.append(b.long_side)
    if len(areas) >= 3:
        big = np.asarray(areas) >= np.percentile(areas, 25)  # ignore specks and fragments
        model.person_area = float(np.median(np.asarray(areas)[big]))
        model.person_side = float(np.median(np.asarray(sides)[big]))
    model.min_area = max(model.min_area, round(0.04 * model.person_area))
