"""The whole-video activity pass behind the ``motion`` scorer: five families of motion novelty.

On a fixed grid of times (``grid_fps``, 4/s by default) each sample compares the frame at ``t``
with the background, and with the frame ``FLOW_DT_S`` (0.2 s) earlier. Blob velocities come
from masked template matching of each foreground blob against that earlier frame, not from
dense optical flow: at 320 px a sprinter moves several of its own widths in 0.2 s, which
Farneback/DIS flow loses (measured: DIS read a 4x-walking-speed sprinter as walking), and flow
bleeds a passer-by's motion onto the still bag beside them. Raw, unit-bearing features:

==============  ================================================================================
family          raw feature per sample
==============  ================================================================================
speed           speed of the fastest person-sized blob, in its own body lengths per second
                (walking is ~0.8; the unit removes perspective and resolution)
stillness       how long (s) the oldest patch of foreground has stayed still and unchanged,
                damped for patches much smaller than a person: a fallen person, a left object
appearance      size (in half person areas, capped at 1) of a blob that appeared mid-frame out
                of nowhere (no foreground near it, or where its motion says it came from, one
                and two samples earlier); decays with a 1.5 s time constant
erratic         how much moving blobs turn between consecutive samples, (1 - cos)/2 weighted
                by speed, averaged over 2 s
counterflow     how rare the direction of a moving blob is in the video's own direction
                histogram (1 - p / p_max), held over two consecutive samples
==============  ================================================================================

Each raw curve becomes a score in [0, 1] twice: relative to the video's own typical activity
(a robust z-score against the lower part of its distribution, with a per-family floor on the
spread) and against a fixed absolute prior in the feature's units (``PRIORS``: a logistic
around e.g. 1.7 body lengths/s); the family score is their geometric mean, so a value must be
unusual for this video *and* unusual in absolute terms. A busy but normal scene has a high
baseline and stays low; a quiet scene where one person walks stays low on the absolute prior.

The backend assumes a fixed camera. When the median frame is mostly foreground (the camera
pans or shakes), every score is damped (x1 at <= 25% foreground, down to x0.25 at >= 45%)
and a warning is logged: motion evidence from such a video is unreliable.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from vadetective.agent.core.vocabulary import MOTION_FAMILIES, ScoreFamily, family_words
from vadetective.tools.backends.motion.scene import Blob, SceneModel

log = logging.getLogger(__name__)

FAMILIES: tuple[ScoreFamily, ...] = MOTION_FAMILIES
MAX_POINTS = 3600  # grid points per video; longer videos get a coarser grid
_MOVING_BL_S = 0.4  # body lengths per second above which a blob counts as moving
_DIR_BINS = 12
_MATCH_RATIO = 0.65  # rms error of a trusted match / rms difference from the background
_COARSE_WORK = 4e6  # positions x template pixels above which a match goes coarse-to-fine


@dataclass(frozen=True)
class FamilyPrior:
    """Absolute prior (logistic ``center``/``width``) and relative floor of one family."""

    center: float
    width: float
    floor: float
    unit: str


PRIORS: dict[str, FamilyPrior] = {
    ScoreFamily.SPEED: FamilyPrior(1.7, 0.25, 0.25, "body lengths per second of the fastest blob"),
    ScoreFamily.STILLNESS: FamilyPrior(
        1.5, 0.4, 0.4, "seconds the oldest still foreground has stayed"
    ),
    ScoreFamily.APPEARANCE: FamilyPrior(
        0.35, 0.08, 0.1, "size of a blob appearing mid-frame (0-1)"
    ),
    ScoreFamily.ERRATIC: FamilyPrior(0.18, 0.05, 0.06, "mean turn of moving blobs over 2 s (0-1)"),
    ScoreFamily.COUNTERFLOW: FamilyPrior(
        0.6, 0.08, 0.12, "rarity of a moving blob's direction (0-1)"
    ),
}

#: Words in the planner's phrases that point at a family (matched as substrings), from the shared
#: vocabulary. Families of matched words keep weight 1 in the overall score, the others drop to
#: ``_UNMATCHED_WEIGHT``; phrases that match nothing leave every family at weight 1.
FAMILY_WORDS: dict[ScoreFamily, tuple[str, ...]] = {f: family_words(f) for f in MOTION_FAMILIES}
_UNMATCHED_WEIGHT = 0.4


def family_weights(phrases: Sequence[str] | None) -> dict[str, float]:
    """Weights of the families in the overall score, from the planner's phrases."""
    text = " ".join(p.lower() for p in (phrases or []) if isinstance(p, str))
    hit = {f for f, words in FAMILY_WORDS.items() if any(w in text for w in words)}
    if not hit:
        return dict.fromkeys(FAMILIES, 1.0)
    return {f: 1.0 if f in hit else _UNMATCHED_WEIGHT for f in FAMILIES}


@dataclass(frozen=True)
class Activity:
    """The activity pass of one video: per-family raw values and scores on a time grid."""

    t_s: np.ndarray
    raw: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]
    frame_idx: np.ndarray  # the frame of each sample (int64): the pass kept these
    typical_speed_bl_s: float  # body lengths per second of moving blobs (median)
    typical_speed_px_s: float  # the same in original pixels per second
    direction_hist: np.ndarray  # share of moving mass per 30° bin (0° = +x, 90° = +y = down)
    dominant_direction_deg: float | None  # None when the video has too little motion
    foreground_share: float  # median share of a frame that is foreground
    reliability: float  # < 1 when so much is foreground that the camera probably moves
    frames_decoded: int
    seconds: float

    def rarity(self, angle_deg: float) -> float:
        """How rare a direction is in this video (0 = the dominant one, 1 = never seen)."""
        if self.dominant_direction_deg is None:
            return 0.0
        return float(1.0 - _hist_at(self.direction_hist, angle_deg))

    def overall(self, weights: dict[str, float]) -> np.ndarray:
        return np.max(np.stack([weights[f] * self.scores[f] for f in FAMILIES]), axis=0)


@dataclass(frozen=True)
class _Mover:
    cx: float
    cy: float
    vx: float  # processing px/s
    vy: float
    speed_bl: float
    area: int
    long_side: int


def _logistic(x: np.ndarray, center: float, width: float) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-(x - center) / width)))


def normalise(raw: np.ndarray, prior: FamilyPrior) -> np.ndarray:
    """Raw family values -> scores in [0, 1]: sqrt(relative * absolute), see the module doc.

    The relative part is a robust z-score against the lower part of the video's own
    distribution (centre: 25th percentile; spread: 50th - 10th percentile, at least the
    family's floor), so an anomaly lasting up to about half the video does not raise its own
    baseline; for a symmetric distribution of normal activity it behaves like median / MAD.
    """
    if raw.size == 0:
        return raw.astype(float)
    p10, p25, p50 = (float(v) for v in np.percentile(raw, [10, 25, 50]))
    spread = max(p50 - p10, prior.floor)
    rel = _logistic((raw - p25) / spread, 3.0, 0.7)
    absolute = _logistic(raw, prior.center, prior.width)
    return np.clip(np.sqrt(rel * absolute), 0.0, 1.0)


def _hist_at(hist: np.ndarray, angle_deg: float) -> float:
    pos = (angle_deg % 360.0) / (360.0 / _DIR_BINS)
    k = int(pos) % _DIR_BINS
    frac = pos - int(pos)
    # linear interpolation between bin centres
    centre = frac - 0.5
    j = (k + (1 if centre > 0 else -1)) % _DIR_BINS
    w = abs(centre)
    return float((1 - w) * hist[k] + w * hist[j])


def _median_filter3(x: np.ndarray) -> np.ndarray:
    if x.size < 3:
        return x
    p = np.pad(x, 1, mode="edge")
    return np.asarray(np.median(np.stack([p[:-2], p[1:-1], p[2:]]), axis=0))


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or x.size == 0:
        return x
    kernel = np.ones(width) / width
    p = np.pad(x, (width // 2, width - 1 - width // 2), mode="edge")
    return np.convolve(p, kernel, mode="valid")


@dataclass
class _Sample:
    """What the next sample needs to know about the previous one."""

    t: float
    frame: np.ndarray
    mask: np.ndarray
    static: np.ndarray
    movers: list[_Mover]


class ActivityPass:
    """Walks the grid in time order, turning each (frame, partner) pair into raw features."""

    def __init__(self, scene: SceneModel, pool: Executor | None = None) -> None:
        self.scene = scene
        self.pool = pool  # blob matches of one sample run on it (OpenCV releases the GIL)
        w, h = scene.proc_wh
        self.raw: dict[str, list[float]] = {f: [] for f in FAMILIES}
        self.times: list[float] = []
        self.frames: list[int] = []
        self.fg_fraction: list[float] = []  # share of the frame that is foreground
        self.pairs: list[list[tuple[float, float | None, float]]] = []  # angle, prev angle, area
        self.typical: list[tuple[float, float]] = []  # (body lengths/s, original px/s)
        self.prev: _Sample | None = None
        self.prev2_mask: np.ndarray | None = None
        self.age = np.zeros((h, w), np.float32)
        self.appear = 0.0

    def step(self, i: int, f: np.ndarray, fp: np.ndarray, t: float, dt_s: float) -> None:
        """Add the sample of frame ``i`` (image ``f`` at ``t``) and its partner ``fp``,
        ``dt_s`` seconds away."""
        import cv2

        scene, thr, ps = self.scene, self.scene.threshold, self.scene.person_side
        fg = scene.foreground(f, t)
        # Pixel-exact change over FLOW_DT_S (dense optical flow would bleed the motion of a
        # person walking past onto the still object beside them).
        static = fg.mask.astype(bool) & (scene.difference(f, fp) <= thr)

        # Blob velocities (masked template matching against the partner frame).
        movers: list[_Mover] = []
        velocities: dict[int, tuple[float, float]] = {}
        fastest = 0.0
        big = [b for b in fg.blobs if b.area >= 0.25 * scene.person_area]
        bg = scene.background_at(t)

        def velocity(b: Blob) -> tuple[float, float] | None:
            return blob_velocity(scene, f, fp, fg.labels, b, dt_s, bg)

        found = (
            list(self.pool.map(velocity, big))
            if self.pool and len(big) > 1
            else [velocity(b) for b in big]
        )
        for b, v in zip(big, found, strict=True):
            if v is None:
                continue
            vx, vy = velocities[b.label_id] = v
            sp = math.hypot(vx, vy) / scene.body_length(b)
            fastest = max(fastest, sp)
            if sp >= 0.2:
                self.typical.append((sp, math.hypot(vx, vy) * scene.scale))
            if sp >= _MOVING_BL_S:
                movers.append(_Mover(b.cx, b.cy, vx, vy, sp, b.area, b.long_side))

        prev = self.prev
        gap = t - prev.t if prev is not None else math.inf
        if prev is not None and gap <= 1.0:
            # Stillness: how long foreground pixels have stayed still and unchanged.
            keep = static & prev.static & (scene.difference(f, prev.frame) <= thr)
            self.age = np.where(keep, self.age + np.float32(gap), np.float32(0.0)).astype(
                np.float32
            )
            # Appearance: blobs with no foreground near them (or where they came from) before.
            r = math.ceil(1.2 * ps * gap + 2)
            before = prev.mask if self.prev2_mask is None else prev.mask | self.prev2_mask
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
            reach = cv2.dilate(before, kernel)
            event = _appearance(scene, fg.blobs, fg.labels, reach, velocities, gap)
            self.appear = max(event, self.appear * math.exp(-gap / 1.5))
            prev_movers = prev.movers
        else:
            self.age = np.zeros_like(self.age)
            self.appear = 0.0
            prev_movers = []

        # Turns of moving blobs between consecutive samples, and their directions.
        turn = 0.0
        pairs: list[tuple[float, float | None, float]] = []
        for m in movers:
            j = _match(m, prev_movers, gap, ps)
            ang = math.degrees(math.atan2(m.vy, m.vx))
            if j is not None:
                cos = (m.vx * j.vx + m.vy * j.vy) / (
                    math.hypot(m.vx, m.vy) * math.hypot(j.vx, j.vy)
                )
                turn = max(turn, (1 - cos) / 2 * min(1.0, m.speed_bl))
                pairs.append((ang, math.degrees(math.atan2(j.vy, j.vx)), float(m.area)))
            else:
                pairs.append((ang, None, float(m.area)))

        self.fg_fraction.append(float(fg.mask.mean()))
        self.raw["speed"].append(fastest)
        self.raw["stillness"].append(_stillness(scene, self.age))
        self.raw["appearance"].append(self.appear)
        self.raw["erratic"].append(turn)
        self.times.append(t)
        self.frames.append(i)
        self.pairs.append(pairs)
        self.prev2_mask = prev.mask if prev is not None else None
        self.prev = _Sample(t, f, fg.mask, static, movers)

    def counterflow(self, hist: np.ndarray, dominant: float | None) -> list[float]:
        """Per sample: the rarest direction among its moving blobs, held over two samples."""
        out = []
        for pairs in self.pairs:
            best = 0.0
            if dominant is not None:
                for ang, prev_ang, _ in pairs:
                    now = 1.0 - _hist_at(hist, ang)
                    held = (
                        min(now, 1.0 - _hist_at(hist, prev_ang))
                        if prev_ang is not None
                        else 0.5 * now
                    )
                    best = max(best, held)
            out.append(best)
        return out


def grid_step_s(scene: SceneModel, grid_fps: float) -> float:
    """Seconds between samples: ``1 / grid_fps`` (coarser for long videos, ``MAX_POINTS`` at
    most), rounded to a whole number of pair gaps (``FLOW_DT_S``) when it is not finer than
    one, so each sample's partner frame is the previous sample's frame and the pass converts
    one frame per sample instead of two."""
    step = max(1.0 / grid_fps, scene.duration_s / MAX_POINTS)
    unit = scene.dt_frames / scene.fps
    if step >= 0.75 * unit:
        step = unit * max(1, round(step / unit))
    return step


def grid_frames(
    scene: SceneModel, timestamps: np.ndarray, grid_fps: float
) -> tuple[np.ndarray, np.ndarray]:
    """The samples' frames (ascending, unique) and each one's partner frame, ``dt_frames``
    earlier (later for the first ones)."""
    from vadetective.tools.video.sampling import nearest_indices

    ts = np.asarray(timestamps, dtype=np.float64)
    step = grid_step_s(scene, grid_fps)
    grid = np.unique(nearest_indices(ts, np.arange(0.0, scene.duration_s, step)))
    dt = scene.dt_frames
    partners = np.where(grid - dt >= 0, grid - dt, np.minimum(grid + dt, ts.size - 1))
    return grid, partners


def finish(
    run: ActivityPass,
    scene: SceneModel,
    grid_fps: float,
    path: str,
    frames_decoded: int,
    seconds: float,
) -> Activity:
    """Turn the raw features a pass collected into the video's ``Activity``."""
    if not run.times:
        raise ValueError(f"{path}: no frame pair could be decoded for motion scoring")
    step = grid_step_s(scene, grid_fps)
    hist, dominant = _direction_hist(run.pairs)
    raws = {f: np.asarray(v, dtype=np.float64) for f, v in run.raw.items()}
    raws["counterflow"] = np.asarray(run.counterflow(hist, dominant), dtype=np.float64)
    raws["speed"] = _median_filter3(raws["speed"])
    raws["erratic"] = _moving_average(raws["erratic"], max(1, round(2.0 / step)))
    sp = np.asarray(run.typical if run.typical else [(0.8, 0.8 * scene.person_side * scene.scale)])
    fg_share = float(np.median(run.fg_fraction))
    reliability = float(np.clip((0.45 - fg_share) / 0.2, 0.25, 1.0))
    if reliability < 1.0:
        log.warning(
            "%s: %.0f%% of a typical frame differs from the background model; the camera probably "
            "moves, so the motion scores are damped x%.2f",
            path, 100 * fg_share, reliability,
        )  # fmt: skip
    act = Activity(
        t_s=np.asarray(run.times, dtype=np.float64),
        raw=raws,
        scores={f: reliability * normalise(raws[f], PRIORS[f]) for f in FAMILIES},
        frame_idx=np.asarray(run.frames, dtype=np.int64),
        foreground_share=fg_share,
        reliability=reliability,
        typical_speed_bl_s=float(np.median(sp[:, 0])),
        typical_speed_px_s=float(np.median(sp[:, 1])),
        direction_hist=hist,
        dominant_direction_deg=dominant,
        frames_decoded=frames_decoded,
        seconds=seconds,
    )
    log.debug("motion activity of %s: %d samples in %.2f s", path, len(run.times), seconds)
    return act


def _stillness(scene: SceneModel, age: np.ndarray) -> float:
    import cv2

    still = (age >= 0.5).astype(np.uint8)
    if not still.any():
        return 0.0
    n, labels, stats, _ = cv2.connectedComponentsWithStats(still, connectivity=8)
    sums = np.bincount(labels.ravel(), weights=age.ravel().astype(np.float64), minlength=n)
    best = 0.0
    for k in range(1, n):
        area = int(stats[k][4])
        if area < scene.min_area:
            continue
        mean_age = float(sums[k] / area)
        best = max(best, min(mean_age, 60.0) * min(1.0, area / (0.1 * scene.person_area)))
    return best


def _appearance(
    scene: SceneModel,
    blobs: list[Blob],
    labels: np.ndarray,
    reach: np.ndarray,
    velocities: dict[int, tuple[float, float]],
    gap: float,
) -> float:
    h, w = labels.shape
    best = 0.0
    for b in blobs:
        x1, y1, x2, y2 = b.xyxy
        if b.area < 0.25 * scene.person_area or x1 <= 1 or y1 <= 1 or x2 >= w - 1 or y2 >= h - 1:
            continue  # small, or entering from an edge
        sel = labels[y1:y2, x1:x2] == b.label_id
        if reach[y1:y2, x1:x2][sel].any():
            continue
        # Where its own motion says it was one sample ago.
        vx, vy = velocities.get(b.label_id, (0.0, 0.0))
        dx, dy = round(-vx * gap), round(-vy * gap)
        bx1, by1 = min(max(0, x1 + dx), w - 1), min(max(0, y1 + dy), h - 1)
        bx2, by2 = min(max(bx1 + 1, x2 + dx), w), min(max(by1 + 1, y2 + dy), h)
        if reach[by1:by2, bx1:bx2].any():
            continue
        best = max(best, min(1.0, b.area / (0.5 * scene.person_area)))
    return best


def blob_velocity(
    scene: SceneModel,
    frame: np.ndarray,
    partner: np.ndarray,
    labels: np.ndarray,
    blob: Blob,
    dt_s: float,
    background: np.ndarray,
    max_speed_bl_s: float = 6.0,
) -> tuple[float, float] | None:
    """Velocity (processing px/s) of ``blob`` from ``frame`` to ``partner`` taken ``dt_s``
    later (negative: earlier): the blob's own pixels are template-matched (masked squared
    difference, sub-pixel by a parabola fit) within the reach of ``max_speed_bl_s``.

    None when the measurement cannot be trusted: the blob touches the frame border (part of
    it is outside, so its template is cut) or no place in the partner frame matches it well.

    Optical flow on downscaled frames loses small fast objects (a sprinter moves several of
    its own widths between the two frames); matching the blob itself does not.
    """
    h, w = labels.shape
    x1, y1, x2, y2 = blob.xyxy
    if x1 <= 0 or y1 <= 0 or x2 >= w or y2 >= h:
        return None
    r = max(2, math.ceil(max_speed_bl_s * scene.body_length(blob) * abs(dt_s)))
    sx1, sy1, sx2, sy2 = max(0, x1 - r), max(0, y1 - r), min(w, x2 + r), min(h, y2 + r)
    templ = frame[y1:y2, x1:x2]
    mask = (labels[y1:y2, x1:x2] == blob.label_id).astype(np.float32)
    search = partner[sy1:sy2, sx1:sx2]
    n_px = float(mask.sum())
    if search.shape[0] < templ.shape[0] or search.shape[1] < templ.shape[1] or n_px < 4:
        return None
    best, mx, my, fx, fy = _masked_match(search, templ, mask)
    # Trust the match when it explains the blob much better than the background does.
    bg = background[y1:y2, x1:x2].astype(np.float32)
    err_bg = float((((templ.astype(np.float32) - bg) ** 2).sum(axis=2) * mask).sum())
    if best > _MATCH_RATIO**2 * err_bg:
        return None
    px, py = sx1 + mx, sy1 + my  # integer position of the match in the partner frame
    fast = math.hypot(px - x1, py - y1) > 1.5 * scene.body_length(blob) * abs(dt_s)
    if fast and not _matches_back(frame, partner, mask, (px, py), (x1, y1), r):
        return None
    dx, dy = sx1 + fx - x1, sy1 + fy - y1  # where the blob is in the partner frame
    return dx / dt_s, dy / dt_s


def _masked_match(
    search: np.ndarray, templ: np.ndarray, mask: np.ndarray
) -> tuple[float, int, int, float, float]:
    """Where ``templ`` (masked by ``mask``) matches ``search`` best: the squared error there,
    its integer position and its sub-pixel position (vertex of the parabola through the errors
    either side).

    A large search (big blob, long reach) is matched coarse-to-fine: at half size first, then
    at full size within 3 pixels of the coarse match. The result is the full search's unless
    two far-apart places match almost equally well; it costs about a tenth.
    """
    import cv2

    th, tw = templ.shape[:2]
    out_w, out_h = search.shape[1] - tw + 1, search.shape[0] - th + 1
    x0 = y0 = 0
    window = search
    if out_w * out_h * th * tw > _COARSE_WORK and min(th, tw) >= 8 and min(out_w, out_h) >= 8:
        half = (search.shape[1] // 2, search.shape[0] // 2)
        s2 = cv2.resize(search, half, interpolation=cv2.INTER_AREA).astype(np.float32)
        t2 = cv2.resize(templ, (tw // 2, th // 2), interpolation=cv2.INTER_AREA)
        m2 = cv2.resize(mask, (tw // 2, th // 2), interpolation=cv2.INTER_AREA) >= 0.5
        coarse = cv2.matchTemplate(
            s2, t2.astype(np.float32), cv2.TM_SQDIFF, mask=m2.astype(np.float32)
        )
        _, _, (cx, cy), _ = cv2.minMaxLoc(coarse)
        x0, y0 = max(0, 2 * cx - 3), max(0, 2 * cy - 3)
        x1, y1 = min(out_w - 1, 2 * cx + 3), min(out_h - 1, 2 * cy + 3)
        window = search[y0 : y1 + th, x0 : x1 + tw]
    res = cv2.matchTemplate(
        window.astype(np.float32), templ.astype(np.float32), cv2.TM_SQDIFF, mask=mask
    )
    best, _, (mx, my), _ = cv2.minMaxLoc(res)
    fx, fy = float(mx), float(my)
    if 0 < mx < res.shape[1] - 1:  # sub-pixel: vertex of the parabola through three values
        a, b0, c = res[my, mx - 1], res[my, mx], res[my, mx + 1]
        den = a - 2 * b0 + c
        fx += 0.5 * (a - c) / den if den > 0 else 0.0
    if 0 < my < res.shape[0] - 1:
        a, b0, c = res[my - 1, mx], res[my, mx], res[my + 1, mx]
        den = a - 2 * b0 + c
        fy += 0.5 * (a - c) / den if den > 0 else 0.0
    return float(best), x0 + mx, y0 + my, x0 + fx, y0 + fy


def _matches_back(
    frame: np.ndarray,
    partner: np.ndarray,
    mask: np.ndarray,
    at: tuple[int, int],
    origin: tuple[int, int],
    r: int,
) -> bool:
    """Forward-backward check of a fast match: the matched patch of the partner frame, matched
    back into the frame, must land where the blob is (not on a look-alike nearby)."""
    import cv2

    h, w = frame.shape[:2]
    th, tw = mask.shape
    px, py = at
    if px < 0 or py < 0 or px + tw > w or py + th > h:
        return False
    templ = partner[py : py + th, px : px + tw].astype(np.float32)
    sx1, sy1 = max(0, px - r), max(0, py - r)
    search = frame[sy1 : min(h, py + th + r), sx1 : min(w, px + tw + r)].astype(np.float32)
    res = cv2.matchTemplate(search, templ, cv2.TM_SQDIFF, mask=mask)
    _, _, (mx, my), _ = cv2.minMaxLoc(res)
    return abs(sx1 + mx - origin[0]) <= 2 and abs(sy1 + my - origin[1]) <= 2


def _match(m: _Mover, prev: list[_Mover], gap: float, person_side: float) -> _Mover | None:
    """The previous sample's mover that ``m`` most plausibly was: the nearest by where either
    one's velocity says the other should be (after a sharp turn only the old velocity points
    the right way), or simply by distance."""
    best, best_d = None, math.inf
    for j in prev:
        d = min(
            math.hypot(j.cx - (m.cx - m.vx * gap), j.cy - (m.cy - m.vy * gap)),
            math.hypot(m.cx - (j.cx + j.vx * gap), m.cy - (j.cy + j.vy * gap)),
            math.hypot(m.cx - j.cx, m.cy - j.cy),
        )
        if d < best_d:
            best, best_d = j, d
    if best is None or best_d > 0.5 * m.long_side + 0.3 * person_side:
        return None
    return best


def _direction_hist(
    pairs_per_sample: list[list[tuple[float, float | None, float]]],
) -> tuple[np.ndarray, float | None]:
    """Direction histogram of moving blobs (area-weighted, smoothed, max = 1) and the dominant
    direction; no dominant direction when fewer than ~10 blob-samples moved."""
    hist = np.zeros(_DIR_BINS)
    count = 0
    for pairs in pairs_per_sample:
        for ang, _, weight in pairs:
            hist[int((ang % 360.0) // (360.0 / _DIR_BINS)) % _DIR_BINS] += weight
            count += 1
    if count < 10 or hist.max() <= 0:
        return np.ones(_DIR_BINS), None
    smooth = 0.5 * hist + 0.25 * np.roll(hist, 1) + 0.25 * np.roll(hist, -1)
    smooth /= smooth.max()
    k = int(np.argmax(smooth))
    ks = [(k - 1) % _DIR_BINS, k, (k + 1) % _DIR_BINS]
    rad = np.radians((np.asarray(ks) + 0.5) * 360.0 / _DIR_BINS)
    wts = hist[ks]
    dominant = math.degrees(
        math.atan2(float(np.sum(wts * np.sin(rad))), float(np.sum(wts * np.cos(rad))))
    )
    return smooth, dominant % 360.0
