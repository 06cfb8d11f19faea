"""The ``motion`` backends: classical computer vision, no model weights at all.

- :class:`MotionScorer` (``TemporalScorer``): motion novelty per moment in five families
  (speed, stillness, appearance, erratic, counterflow; see ``motion_activity``), each normalised
  against the video's own typical activity and a fixed absolute prior.
- :class:`MotionGrounder` (``Grounder``): foreground blobs from background subtraction and
  three-frame differencing, labelled ``person`` or ``object`` by size and shape.
- :class:`MeasureInspector` (``Inspector``): measured facts about a box (speed, size, posture,
  how long it has been still, direction against the flow, sudden appearance), not guesses.

All three decode at a reduced size (``max_side``, 320 px) and share one pass over the video
(``perception.py``: background, thresholds, person-size prior, activity), kept in memory and in
the on-disk cache by the video's content hash and settings, so a second call, a second question
or a second process costs little; moments they look at again are read from the frames that pass
kept.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vadetective.agent.core.config import Config
from vadetective.agent.core.types import Box, ScoreCurve
from vadetective.agent.core.vocabulary import MeasuredFacts
from vadetective.tools.backends.motion.activity import (
    FAMILIES,
    FAMILY_WORDS,
    PRIORS,
    Activity,
    blob_velocity,
    family_weights,
)
from vadetective.tools.backends.motion.perception import (
    DEFAULT_GRID_FPS,
    clear_cache,
    perceive,
)
from vadetective.tools.backends.motion.scene import PROC_MAX_SIDE, Blob, SceneModel, read_frames
from vadetective.tools.base import FrameSource, Inspection, ScoreResult
from vadetective.tools.cache import ArrayCache

log = logging.getLogger(__name__)

MODEL_ID = "opencv-motion-v1"

#: Words that make a phrase ask for person blobs, or for object blobs (matched per word, with
#: a plural "s" ignored). A phrase with neither asks for both.
PERSON_WORDS = frozenset(
    [
        "person",
        "people",
        "man",
        "men",
        "woman",
        "women",
        "child",
        "children",
        "kid",
        "boy",
        "girl",
        "pedestrian",
        "someone",
        "somebody",
        "human",
        "runner",
        "walker",
        "jogger",
        "body",
        "individual",
        "guy",
        "crowd",
        "group",
        "thief",
        "suspect",
        "victim",
        "worker",
        "passerby",
        "passer-by",
        "adult",
    ]
)
OBJECT_WORDS = frozenset(
    [
        "object",
        "bag",
        "backpack",
        "box",
        "package",
        "parcel",
        "suitcase",
        "luggage",
        "item",
        "thing",
        "briefcase",
        "case",
        "container",
        "bottle",
        "cart",
        "trolley",
        "vehicle",
        "car",
        "bike",
        "bicycle",
        "debris",
        "rubbish",
        "trash",
        "sack",
    ]
)

__all__ = [
    "FAMILIES",
    "FAMILY_WORDS",
    "PRIORS",
    "GroundedBlob",
    "MeasureInspector",
    "MotionGrounder",
    "MotionScorer",
    "clear_cache",
    "family_weights",
]


def _grid_fps(config: Config) -> float:
    """The activity grid of a configuration: at least as dense as ``sample_fps``."""
    return min(30.0, max(DEFAULT_GRID_FPS, config.sample_fps))


def _cache_of(config: Config) -> ArrayCache | None:
    return ArrayCache(Path(config.cache_dir) / "arrays") if config.cache_dir else None


def _check_time(source: FrameSource, t_s: float) -> None:
    end = float(source.info.duration_s)
    if not (np.isfinite(t_s) and -1e-6 <= t_s <= end + 1e-6):
        raise ValueError(f"t_s ({t_s}) is outside the video (0.00-{end:.2f} s)")


class MotionScorer:
    """Motion novelty per moment, in [0, 1], with per-family curves.

    The video is analysed once on a grid of ``grid_fps`` samples per second (cached per video);
    ``score`` interpolates that analysis at the requested times, so the result for a time never
    depends on which other times were asked for.

    ``phrases`` bias the overall score, never the family curves: a family whose words appear
    in the phrases (``FAMILY_WORDS``: "running" -> speed, "lying"/"left bag" -> stillness,
    "appears" -> appearance, "zigzag"/"fight" -> erratic, "wrong way" -> counterflow) keeps
    weight 1 while the others drop to 0.4; phrases that name no family change nothing. The
    overall score is the maximum of the weighted family scores.
    """

    name = "motion"
    model_id = MODEL_ID

    def __init__(
        self,
        max_side: int = PROC_MAX_SIDE,
        grid_fps: float = DEFAULT_GRID_FPS,
        cache: ArrayCache | None = None,
    ) -> None:
        if max_side < 64:
            raise ValueError(f"max_side must be at least 64 pixels, got {max_side}")
        if not 0.1 <= grid_fps <= 30.0:
            raise ValueError(f"grid_fps must be within [0.1, 30], got {grid_fps}")
        self.max_side = int(max_side)
        self.grid_fps = float(grid_fps)
        self.cache = cache

    @classmethod
    def from_config(cls, config: Config) -> MotionScorer:
        """The scorer for a configuration (the grid is at least as dense as ``sample_fps``)."""
        return cls(grid_fps=_grid_fps(config), cache=_cache_of(config))

    def analyse(self, source: FrameSource) -> tuple[SceneModel, Activity]:
        """The (cached) scene model and activity pass of ``source``."""
        p = perceive(source, self.max_side, self.grid_fps, self.cache)
        return p.scene, p.activity

    def score(
        self,
        source: FrameSource,
        t_s: Sequence[float],
        phrases: Sequence[str] | None = None,
    ) -> ScoreResult:
        """Scores at ``t_s`` (returned in ascending time order).

        Args:
            source: The video.
            t_s: Times in seconds; they are sorted, and clipped to the video for interpolation.
            phrases: Optional descriptions of the anomaly sought; they re-weight the families
                in the overall score (see the class docstring).

        Returns:
            The curve (overall score and one curve per family) and what was used.
        """
        times = np.sort(np.asarray([float(t) for t in t_s], dtype=np.float64))
        if times.size and not np.all(np.isfinite(times)):
            raise ValueError("t_s must be finite numbers of seconds")
        scene, act = self.analyse(source)
        weights = family_weights(phrases)
        fam = {f: np.interp(times, act.t_s, act.scores[f]) for f in FAMILIES}
        overall = np.interp(times, act.t_s, act.overall(weights))

        def clean(x: np.ndarray) -> list[float]:
            return [round(float(v), 4) for v in np.clip(x, 0.0, 1.0)]

        curve = ScoreCurve(
            t_s=[float(t) for t in times],
            score=clean(overall),
            families={f: clean(v) for f, v in fam.items()},
        )
        details: dict[str, float | str] = {
            "grid_fps": self.grid_fps,
            "max_side": float(self.max_side),
            "typical_speed_px_s": round(act.typical_speed_px_s, 2),
            "typical_speed_body_lengths_s": round(act.typical_speed_bl_s, 3),
            "dominant_direction_deg": (
                round(act.dominant_direction_deg, 1)
                if act.dominant_direction_deg is not None
                else "none"
            ),
            "foreground_threshold": round(scene.threshold, 1),
            "foreground_share": round(act.foreground_share, 3),
            "reliability": round(act.reliability, 2),
            "weights": ",".join(f"{f}={w:g}" for f, w in weights.items()),
            "analysis_seconds": round(act.seconds, 3),
        }
        return ScoreResult(curve=curve, model_id=self.model_id, details=details)


def _words(phrase: str) -> set[str]:
    return {w.rstrip("s") if len(w) > 3 else w for w in re.findall(r"[a-z][a-z-]*", phrase.lower())}


def _wanted(phrases: Sequence[str]) -> dict[str, str]:
    """Which blob labels the phrases ask for, mapped to the box label to use: the phrase that
    asked, or the blob label itself when no phrase names a person or an object."""
    want: dict[str, str] = {}
    person = {w.rstrip("s") if len(w) > 3 else w for w in PERSON_WORDS}
    objects = {w.rstrip("s") if len(w) > 3 else w for w in OBJECT_WORDS}
    for p in phrases:
        ws = _words(p)
        if ws & person:
            want.setdefault("person", p)
        if ws & objects:
            want.setdefault("object", p)
    return want or {"person": "person", "object": "object"}


@dataclass(frozen=True)
class GroundedBlob:
    """A foreground blob at one moment with the cues the grounder ranks it by."""

    blob: Blob
    label: str  # "person" or "object" (SceneModel.label)
    speed_bl_s: float | None  # body lengths per second; None when it could not be measured
    still_fraction: float  # share of its pixels unchanged for 0.6 s before or after


class MotionGrounder:
    """Foreground blobs at a moment, as boxes labelled ``person`` or ``object``.

    Foreground = difference from the background model (median of frames spread over the video)
    OR three-frame differencing (the frame differs from both the frame ~0.2 s before and the one
    ~0.2 s after), cleaned and split into connected blobs. A still part of a blob (unchanged for
    0.6 s before or after) is also returned on its own when it differs from every blob, so a bag
    just put down is found while its owner still stands beside it. Labels follow the rule in
    ``SceneModel.label``: person-like when the area is 0.3-4x the scene's typical blob and the
    long side at least 0.6x the typical one (upright or lying), otherwise object.

    Phrases select labels: person words (``PERSON_WORDS``) -> person blobs, object/bag/item
    words (``OBJECT_WORDS``) -> object blobs, anything else -> both. A box is labelled with the
    phrase that selected it (or its blob label when no phrase named a label). The score
    combines the blob's contrast against the background and how well its size fits its label;
    when the phrases also name a kind of motion (``FAMILY_WORDS``: "running" -> speed,
    "lying"/"abandoned" -> stillness), blobs that show it measurably (fast; still or lying)
    keep their score and the others drop to half, so "a running person" puts the runner first.
    Boxes come best first, at most ``max_boxes``.
    """

    name = "motion"
    model_id = MODEL_ID

    def __init__(
        self,
        max_side: int = PROC_MAX_SIDE,
        max_boxes: int = 10,
        grid_fps: float = DEFAULT_GRID_FPS,
        cache: ArrayCache | None = None,
    ) -> None:
        if max_side < 64:
            raise ValueError(f"max_side must be at least 64 pixels, got {max_side}")
        self.max_side = int(max_side)
        self.max_boxes = int(max_boxes)
        self.grid_fps = float(grid_fps)
        self.cache = cache
        # The planner often grounds one moment with several phrases: keep recent moments.
        self._recent: OrderedDict[tuple[str, int], tuple[SceneModel, float, list[GroundedBlob]]]
        self._recent = OrderedDict()

    @classmethod
    def from_config(cls, config: Config) -> MotionGrounder:
        """Shares the scorer's pass of that configuration (same grid, same cache)."""
        return cls(grid_fps=_grid_fps(config), cache=_cache_of(config))

    def blobs(
        self, source: FrameSource, t_s: float
    ) -> tuple[SceneModel, float, list[GroundedBlob]]:
        """The scene model, the exact frame time and the foreground blobs at ``t_s``.

        Raises:
            ValueError: When ``t_s`` lies outside the video or its frame cannot be decoded.
        """
        from vadetective.tools.video.sampling import nearest_indices

        _check_time(source, t_s)
        scene = perceive(source, self.max_side, self.grid_fps, self.cache).scene
        i = int(nearest_indices(source, [t_s])[0])
        key = (source.info.content_hash, i)
        if key in self._recent:
            self._recent.move_to_end(key)
            return self._recent[key]
        ts = source.timestamps
        dt = scene.dt_frames
        near = [j for j in (i - 3 * dt, i - dt, i + dt, i + 3 * dt) if 0 <= j < len(ts)]
        frames = read_frames(source, [i, *near], self.max_side)
        if i not in frames:
            raise ValueError(f"the frame at {t_s:.2f} s could not be decoded")
        f, t = frames[i], float(ts[i])
        changed = {
            j: (scene.difference(f, frames[j]) > scene.threshold).astype(np.uint8)
            for j in near
            if j in frames
        }
        # Three-frame differencing: what differs from both the frame before and the one after.
        pair = [changed[j] for j in (i - dt, i + dt) if j in changed]
        moving = pair[0] & pair[-1] if pair else None
        fg = scene.foreground(f, t, extra=moving)
        still = np.zeros_like(fg.mask)
        for side in ((i - 3 * dt, i - dt), (i + dt, i + 3 * dt)):
            if all(j in changed for j in side):
                still |= fg.mask & (1 - (changed[side[0]] | changed[side[1]]))
        partner = next((j for j in (i - dt, i + dt) if j in frames), None)
        out: list[GroundedBlob] = []
        for b in fg.blobs:
            x1, y1, x2, y2 = b.xyxy
            own = fg.labels[y1:y2, x1:x2] == b.label_id
            speed = None
            if partner is not None:
                v = blob_velocity(
                    scene,
                    f,
                    frames[partner],
                    fg.labels,
                    b,
                    float(ts[partner] - t),
                    scene.background_at(t),
                )
                speed = None if v is None else float(np.hypot(*v)) / scene.body_length(b)
            frac = float(still[y1:y2, x1:x2][own].mean()) if own.any() else 0.0
            out.append(GroundedBlob(b, scene.label(b), speed, frac))
        if still.any():
            for b in scene.blobs_of(still, fg.diff).blobs:
                if b.area >= 0.05 * scene.person_area and all(
                    b.iou(o.blob.xyxy) < 0.6 for o in out
                ):
                    out.append(GroundedBlob(b, scene.label(b), 0.0, 1.0))
        self._recent[key] = (scene, t, out)
        while len(self._recent) > 16:
            self._recent.popitem(last=False)
        return scene, t, out

    def ground(self, source: FrameSource, t_s: float, phrases: Sequence[str]) -> list[Box]:
        """Boxes (original pixels) of the blobs the phrases ask for, best first.

        Args:
            source: The video.
            t_s: Time in seconds (the nearest frame is used).
            phrases: What to look for; see the class docstring for how they select and rank
                blobs.

        Returns:
            Up to ``max_boxes`` boxes with scores in [0, 1].

        Raises:
            ValueError: When ``t_s`` lies outside the video or its frame cannot be decoded.
        """
        scene, t, found = self.blobs(source, t_s)
        clean = [p.strip() for p in phrases if isinstance(p, str) and p.strip()]
        want = _wanted(clean)
        weights = family_weights(clean)
        cues = [
            f for f in ("speed", "stillness") if weights[f] == 1.0 and min(weights.values()) < 1.0
        ]
        res = source.info.resolution_wh
        boxes: list[Box] = []
        for g in found:
            if g.label not in want:
                continue
            b = g.blob
            saliency = min(1.0, b.contrast / (2.5 * scene.threshold))
            ref = 0.6 * scene.person_area if g.label == "person" else 0.08 * scene.person_area
            score = 0.2 + 0.8 * float(np.sqrt(saliency * min(1.0, b.area / ref)))
            if cues:
                shows = 0.0
                if "speed" in cues and g.speed_bl_s is not None:
                    shows = max(shows, float(np.clip((g.speed_bl_s - 1.0) / 1.0, 0.0, 1.0)))
                if "stillness" in cues:
                    lying = g.label == "person" and b.width >= 1.4 * b.height
                    shows = max(shows, g.still_fraction, 1.0 if lying else 0.0)
                score *= 0.5 + 0.5 * shows
            boxes.append(
                Box(
                    t_s=t,
                    xyxy=scene.to_original(b.xyxy, res, inset=0.4),
                    label=want[g.label],
                    score=round(float(np.clip(score, 0.0, 1.0)), 3),
                )
            )
        boxes.sort(key=lambda bx: -bx.score)
        return boxes[: self.max_boxes]


class MeasureInspector:
    """Measured facts about a box; the answer is one sentence of them (see ``motion_measure``).

    Facts (all scalars): ``matched``/``match_iou`` (the foreground blob under the box),
    ``label``, ``width_px``, ``height_px``, ``aspect_hw``, ``posture`` (upright / lying /
    crouched or partly hidden), ``size_vs_person``, ``speed_px_s``, ``speed_body_lengths_s``,
    ``speed_vs_typical``, ``typical_speed_px_s``, ``moving``, ``static_for_s``,
    ``direction_deg`` (image coordinates: 0 = right, 90 = down), ``angle_to_flow_deg``,
    ``against_flow``, ``direction_rarity``, ``appeared_suddenly``/``appeared_at_s``,
    ``entered_from_edge``, ``separated_from_person`` (an object left by a person),
    ``tracked_s``. Relative speeds and the dominant flow come from the video's activity pass,
    shared with the scorer (computed on first use when the scorer has not run).
    """

    name = "measure"
    model_id = MODEL_ID

    def __init__(
        self,
        max_side: int = PROC_MAX_SIDE,
        grid_fps: float = DEFAULT_GRID_FPS,
        margin: float = 0.25,
        cache: ArrayCache | None = None,
    ) -> None:
        if max_side < 64:
            raise ValueError(f"max_side must be at least 64 pixels, got {max_side}")
        self.max_side = int(max_side)
        self.grid_fps = float(grid_fps)
        self.margin = float(margin)
        self.cache = cache

    @classmethod
    def from_config(cls, config: Config) -> MeasureInspector:
        """Uses the same analysis grid as the scorer of that configuration (shared pass)."""
        return cls(grid_fps=_grid_fps(config), cache=_cache_of(config))

    def inspect(self, source: FrameSource, t_s: float, box: Box, question: str) -> Inspection:
        """Measure the blob under ``box`` at ``t_s`` and answer ``question`` with the facts.

        Args:
            source: The video.
            t_s: Time in seconds.
            box: The box in original pixels (clipped to the frame).
            question: What the planner wants to know; it orders the facts in the answer.

        Returns:
            The answer, the facts, a confidence and the RGB crop (box plus a context margin).

        Raises:
            ValueError: When ``t_s`` lies outside the video or the box lies outside the frame.
        """
        from vadetective.tools.backends.motion.measure import measure, summarize

        _check_time(source, t_s)
        res = source.info.resolution_wh
        if not box.inside(res, tolerance_px=max(res) * 0.05):
            raise ValueError(f"box {list(box.xyxy)} lies outside the {res[0]}x{res[1]} frame")
        box = box.clipped(res)
        p = perceive(source, self.max_side, self.grid_fps, self.cache)
        facts, confidence, track = measure(p.scene, p.activity, source, t_s, box)
        return Inspection(
            answer=summarize(facts, question or ""),
            measured=MeasuredFacts.model_validate(facts),
            confidence=confidence,
            crop=self._crop(source, t_s, box),
            track=track,
        )

    def _crop(self, source: FrameSource, t_s: float, box: Box) -> np.ndarray | None:
        """The box plus a margin, cut from the measured frame at full resolution."""
        from vadetective.tools.video.sampling import nearest_indices

        i = int(nearest_indices(source, [t_s])[0])
        batch = source.read([i], max_side=None)
        if len(batch) == 0:
            return None
        frame = batch.frames[0]
        h, w = frame.shape[:2]
        x1, y1, x2, y2 = box.xyxy
        mx = max(8.0, self.margin * (x2 - x1))
        my = max(8.0, self.margin * (y2 - y1))
        a, b = int(max(0, x1 - mx)), int(max(0, y1 - my))
        c, d = int(min(w, np.ceil(x2 + mx))), int(min(h, np.ceil(y2 + my)))
        return np.ascontiguousarray(frame[b:d, a:c]) if c > a and d > b else None
