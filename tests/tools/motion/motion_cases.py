"""Cases shared by the motion tests and their conftest: which scenes, and how they are scored.

``evaluate`` scores a scene at every frame (unsmoothed scores interpolated from the scorer's
4/s grid), computes the frame ROC-AUC of the truth span, and grounds ~12 frames spread over the
span twice: with a plain phrase ("person", or "bag" for the left object: does any box find the
actor?) and with a phrase naming the motion (``MOTION_PHRASES``: is the actor the top box?).
``RESULTS`` collects them for the table that ``conftest.pytest_terminal_summary`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vadetective.agent.core.types import Box
from vadetective.agent.synth.truth import SceneTruth

ASSERTED = ("sprint", "fall", "left_object", "sudden_appearance")
REPORTED = ("loiter", "wrong_way", "erratic")
SEEDS = (0, 1)
DURATION_S = 16.0
GROUND_FRAMES = 12
MOTION_PHRASES = {
    "sprint": "a person running",
    "fall": "a person lying on the ground",
    "left_object": "an abandoned bag",
    "sudden_appearance": "a person standing still",
    "loiter": "a person standing still",
}


@dataclass(frozen=True)
class SceneResult:
    """What the motion backends achieved on one synthetic scene."""

    truth: SceneTruth
    frame_t: np.ndarray
    frame_score: np.ndarray
    families: dict[str, np.ndarray]
    auc: float | None  # None for the normal scene
    peak: float
    hit_rate: float | None  # share of grounded frames with a box of IoU >= 0.3
    top1_rate: float | None  # share where the top box (plain phrase) is the actor
    top1_motion_rate: float | None  # the same with the phrase naming the motion
    mean_iou: float | None
    hit_labels: tuple[str, ...]


RESULTS: dict[tuple[str, int], SceneResult] = {}


def span_labels(truth: SceneTruth, t: np.ndarray) -> np.ndarray:
    inside = np.zeros(t.size, bool)
    for span in truth.spans:
        inside |= (t >= span.start_s) & (t <= span.end_s)
    return inside


def evaluate(truth: SceneTruth) -> SceneResult:
    from sklearn.metrics import roc_auc_score

    from vadetective.tools.backends.motion.backends import MotionGrounder, MotionScorer
    from vadetective.tools.video.sources import open_video

    scorer, grounder = MotionScorer(), MotionGrounder()
    with open_video(truth.video_path) as src:
        frame_t = np.asarray(src.timestamps, dtype=float)
        res = scorer.score(src, frame_t.tolist())
        score = np.asarray(res.curve.score)
        labels = span_labels(truth, frame_t)
        auc = float(roc_auc_score(labels, score)) if labels.any() else None
        hits = top1 = top1_motion = 0
        ious: list[float] = []
        hit_labels: list[str] = []
        picks: list[Box] = []
        if truth.boxes:
            step = max(1, len(truth.boxes) // GROUND_FRAMES)
            picks = truth.boxes[::step][:GROUND_FRAMES]
        phrase = "bag" if truth.kind == "left_object" else "person"
        for want in picks:
            got = grounder.ground(src, want.t_s, [phrase])
            best = max(got, key=want.iou, default=None)
            iou = want.iou(best) if best is not None else 0.0
            ious.append(iou)
            if best is not None and iou >= 0.3:
                hits += 1
                hit_labels.append(best.label)
            top1 += bool(got) and want.iou(got[0]) >= 0.3
            if truth.kind in MOTION_PHRASES:
                got = grounder.ground(src, want.t_s, [MOTION_PHRASES[truth.kind]])
                top1_motion += bool(got) and want.iou(got[0]) >= 0.3
    n = len(picks)
    return SceneResult(
        truth=truth,
        frame_t=frame_t,
        frame_score=score,
        families={k: np.asarray(v) for k, v in res.curve.families.items()},
        auc=auc,
        peak=float(score.max()),
        hit_rate=hits / n if n else None,
        top1_rate=top1 / n if n else None,
        top1_motion_rate=top1_motion / n if n and truth.kind in MOTION_PHRASES else None,
        mean_iou=float(np.mean(ious)) if ious else None,
        hit_labels=tuple(hit_labels),
    )
