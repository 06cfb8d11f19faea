"""Frame-level metrics with the field's protocols (numpy + scikit-learn), score smoothing and
frame expansion.

Frame-level metrics take one label array and one score array per video (same length, one value
per native frame) and say how they pool them:

- ``frame_auc``: ROC-AUC pooled over every frame of every video (the UCF-Crime protocol).
- ``frame_ap``: area under the precision-recall curve, ``auc(recall, precision)`` over
  ``precision_recall_curve`` (XD-Violence's official code); ``frame_ap_sklearn``: scikit-learn's
  ``average_precision_score`` (a step-wise sum, what some papers report). They differ slightly.
- ``macro_auc``: the mean of per-video AUCs (UBnormal style).
- ``auc_abnormal_only``: pooled AUC over the anomalous videos only.
- ``far_normal``: share of frames of normal videos scored above a threshold (0.5).
- ``per_class_auc``: per anomaly class, pooled AUC over that class's videos plus all normal videos.

A metric that is undefined on its input (one class only, no positives) returns None. Also here:
score smoothing (``Smoothing``) and frame expansion of a ``ScoreCurve`` (interpolated to every
frame, or the UCF 16-frame snippet convention).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import model_validator

from vadetective.agent.core.types import Frozen, ScoreCurve
from vadetective.tools.curves import gaussian_smooth, mean_smooth

ArrayLike = Sequence[float] | Sequence[int] | np.ndarray
UCF_SNIPPET = 16


# ---------------------------------------------------------------------------------------------
# Frame-level metrics


def _pool(
    labels: Sequence[ArrayLike], scores: Sequence[ArrayLike]
) -> tuple[np.ndarray, np.ndarray]:
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} label arrays but {len(scores)} score arrays")
    ys, ss = [], []
    for i, (y, s) in enumerate(zip(labels, scores, strict=True)):
        y_arr = np.asarray(y, dtype=np.int64).ravel()
        s_arr = np.asarray(s, dtype=np.float64).ravel()
        if y_arr.shape != s_arr.shape:
            raise ValueError(f"video {i}: {y_arr.size} labels but {s_arr.size} scores")
        ys.append(y_arr)
        ss.append(s_arr)
    if not ys:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    return np.concatenate(ys), np.concatenate(ss)


def _roc_auc(y: np.ndarray, s: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if y.size == 0 or y.min() == y.max():  # one class: AUC undefined
        return None
    return float(roc_auc_score(y, s))


def frame_auc(labels: Sequence[ArrayLike], scores: Sequence[ArrayLike]) -> float | None:
    """ROC-AUC pooled over all frames of all videos (UCF-Crime protocol); None with one class."""
    return _roc_auc(*_pool(labels, scores))


def frame_ap(labels: Sequence[ArrayLike], scores: Sequence[ArrayLike]) -> float | None:
    """Area under the precision-recall curve, pooled over frames, as XD-Violence's official code
    computes it: ``auc(recall, precision)`` on ``precision_recall_curve``. None without positives.
    """
    from sklearn.metrics import auc, precision_recall_curve

    y, s = _pool(labels, scores)
    if y.size == 0 or not y.any():
        return None
    precision, recall, _ = precision_recall_curve(y, s)
    return float(auc(recall, precision))


def frame_ap_sklearn(labels: Sequence[ArrayLike], scores: Sequence[ArrayLike]) -> float | None:
    """scikit-learn's ``average_precision_score`` pooled over frames; None without positives."""
    from sklearn.metrics import average_precision_score

    y, s = _pool(labels, scores)
    if y.size == 0 or not y.any():
        return None
    return float(average_precision_score(y, s))


def macro_auc(
    labels: Sequence[ArrayLike],
    scores: Sequence[ArrayLike],
    single_class: Literal["skip", "pad"] = "skip",
) -> float | None:
    """The mean of per-video frame AUCs (UBnormal's "macro" AUC).

    Args:
        labels: per-video 0/1 frame labels.
        scores: per-video frame scores.
        single_class: what to do with a video whose frames are all one class: ``skip`` it, or
            ``pad`` it with one extra normal frame scored 0 and one anomalous frame scored 1,
            as UBnormal's ``compute_auc_score.py`` does for every video.

    Returns:
        The mean AUC, or None when no video has both classes (``skip``) or there is no video.
    """
    aucs: list[float] = []
    for y, s in zip(labels, scores, strict=True):
        y_arr = np.asarray(y, dtype=np.int64).ravel()
        s_arr = np.asarray(s, dtype=np.float64).ravel()
        if single_class == "pad":
            y_arr = np.concatenate([[0], y_arr, [1]])
            s_arr = np.concatenate([[0.0], s_arr, [1.0]])
        a = _roc_auc(y_arr, s_arr)
        if a is not None:
            aucs.append(a)
    return float(np.mean(aucs)) if aucs else None


def auc_abnormal_only(
    labels: Sequence[ArrayLike], scores: Sequence[ArrayLike], is_anomalous: Sequence[bool]
) -> float | None:
    """Pooled frame AUC over the anomalous videos only (how well the anomaly is placed inside
    the videos that have one)."""
    keep = [i for i, a in enumerate(is_anomalous) if a]
    return frame_auc([labels[i] for i in keep], [scores[i] for i in keep])


def far_normal(
    scores: Sequence[ArrayLike], is_anomalous: Sequence[bool], threshold: float = 0.5
) -> float | None:
    """False-alarm rate: the share of frames of normal videos with ``score > threshold``.

    Strictly above: a score of exactly 0.5 is "undecided", not an alarm. None when there is no
    normal frame.
    """
    normal = [
        np.asarray(s, dtype=np.float64).ravel()
        for s, a in zip(scores, is_anomalous, strict=True)
        if not a
    ]
    frames = np.concatenate(normal) if normal else np.zeros(0)
    if frames.size == 0:
        return None
    return float(np.mean(frames > threshold))


def per_class_auc(
    labels: Sequence[ArrayLike],
    scores: Sequence[ArrayLike],
    categories: Sequence[str | None],
    is_anomalous: Sequence[bool],
) -> dict[str, float | None]:
    """Pooled frame AUC per anomaly class, over that class's anomalous videos plus every normal
    video (so each class is scored against the same normal frames). Anomalous videos without a
    category are left out; the result is sorted by class name."""
    normal = [i for i, a in enumerate(is_anomalous) if not a]
    classes = sorted({c for c, a in zip(categories, is_anomalous, strict=True) if a and c})
    out: dict[str, float | None] = {}
    for c in classes:
        idx = [
            i for i, (k, a) in enumerate(zip(categories, is_anomalous, strict=True)) if a and k == c
        ]
        idx += normal
        out[c] = frame_auc([labels[i] for i in idx], [scores[i] for i in idx])
    return out


# ---------------------------------------------------------------------------------------------
# Smoothing and frame expansion


class Smoothing(Frozen):
    """Explicit score smoothing, applied per video before pooling.

    ``size`` is the Gaussian sigma or the mean-filter width, in the unit the scores are in when
    it is applied: per frame with interpolated expansion, per 16-frame snippet with the snippet
    protocol (published UCF pipelines: Gaussian sigma 10 or mean width 10 on snippets).
    """

    method: Literal["none", "gaussian", "mean"] = "none"
    size: float = 0.0

    @model_validator(mode="after")
    def _valid(self) -> Smoothing:
        if self.method != "none" and not self.size > 0:
            raise ValueError(f"{self.method} smoothing needs size > 0, got {self.size}")
        if self.method == "mean" and not float(self.size).is_integer():
            raise ValueError(f"the mean filter width must be a whole number, got {self.size}")
        return self

    def apply(self, x: ArrayLike) -> np.ndarray:
        if self.method == "gaussian":
            return gaussian_smooth(x, self.size)
        if self.method == "mean":
            return mean_smooth(x, int(self.size))
        return np.asarray(x, dtype=np.float64).copy()

    def describe(self) -> str:
        if self.method == "gaussian":
            return f"gaussian(sigma={self.size:g})"
        if self.method == "mean":
            return f"mean(width={int(self.size)})"
        return "none"


def expand_to_frames(curve: ScoreCurve, fps: float, frame_count: int) -> np.ndarray:
    """Scores at every native frame: frame ``i`` at ``i / fps`` gets the curve linearly
    interpolated there, held constant before the first and after the last sample."""
    if not (fps > 0) or frame_count < 0:
        raise ValueError(f"need fps > 0 and frame_count >= 0, got {fps} and {frame_count}")
    if len(curve) == 0:
        raise ValueError("the score curve is empty")
    t = np.arange(frame_count, dtype=np.float64) / fps
    return np.interp(t, np.asarray(curve.t_s, np.float64), np.asarray(curve.score, np.float64))


def to_snippets(frame_scores: ArrayLike, snippet: int = UCF_SNIPPET) -> np.ndarray:
    """Mean score of each run of ``snippet`` frames (the last one may be shorter)."""
    arr = np.asarray(frame_scores, dtype=np.float64)
    n = math.ceil(arr.size / snippet)
    return np.array([arr[k * snippet : (k + 1) * snippet].mean() for k in range(n)])


def repeat_snippets(
    snippet_scores: ArrayLike, frame_count: int, snippet: int = UCF_SNIPPET
) -> np.ndarray:
    """The UCF-Crime convention: each snippet score repeated over its ``snippet`` frames,
    cut (or extended with the last value) to ``frame_count``."""
    arr = np.asarray(snippet_scores, dtype=np.float64)
    if arr.size == 0:
        return np.zeros(frame_count)
    out = np.repeat(arr, snippet)[:frame_count]
    if out.size < frame_count:
        out = np.concatenate([out, np.full(frame_count - out.size, arr[-1])])
    return out


def snippet_expand(
    curve: ScoreCurve, fps: float, frame_count: int, snippet: int = UCF_SNIPPET
) -> np.ndarray:
    """Per-snippet scores of a curve: the mean of its interpolated frame scores per ``snippet``
    frames (the analogue of one model output per 16-frame clip)."""
    return to_snippets(expand_to_frames(curve, fps, frame_count), snippet)
