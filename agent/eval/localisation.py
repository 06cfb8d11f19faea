"""Localisation metrics: span AP at tIoU thresholds (ActivityNet style), box mean IoU and the
field's TIoU."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from vadetective.agent.core.types import Box, Frozen, TimeSpan

TIOU_THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)


# ---------------------------------------------------------------------------------------------
# Temporal localisation: span AP at tIoU thresholds (ActivityNet style)


def _interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    mprec = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    idx = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def span_ap(
    predictions: Sequence[Sequence[TimeSpan]],
    ground_truth: Sequence[Sequence[TimeSpan]],
    tiou_threshold: float,
) -> float | None:
    """Average precision of predicted spans at one tIoU threshold, over all videos.

    Predictions of all videos are ranked by ``score`` (None counts as 0); each is a true
    positive when it overlaps a not-yet-matched ground-truth span of its video with tIoU >=
    the threshold (the best-overlapping one first), as in ActivityNet's detection evaluation;
    AP is the area under the interpolated precision-recall curve. None without ground truth.
    """
    if len(predictions) != len(ground_truth):
        raise ValueError(f"{len(predictions)} prediction lists but {len(ground_truth)} truth lists")
    n_pos = sum(len(g) for g in ground_truth)
    if n_pos == 0:
        return None
    flat = [(v, p) for v, preds in enumerate(predictions) for p in preds]
    if not flat:
        return 0.0
    order = np.argsort([-(p.score or 0.0) for _, p in flat], kind="stable")
    used = [np.zeros(len(g), dtype=bool) for g in ground_truth]
    tp = np.zeros(len(flat))
    for rank, k in enumerate(order):
        v, p = flat[k]
        gts = ground_truth[v]
        if not gts:
            continue
        tious = np.array([p.tiou(g) for g in gts])
        for j in np.argsort(-tious, kind="stable"):
            if tious[j] < tiou_threshold:
                break
            if used[v][j]:
                continue
            used[v][j] = True
            tp[rank] = 1.0
            break
    ctp = np.cumsum(tp)
    recall = ctp / n_pos
    precision = ctp / np.arange(1, len(flat) + 1)
    return _interpolated_ap(precision, recall)


def span_map(
    predictions: Sequence[Sequence[TimeSpan]],
    ground_truth: Sequence[Sequence[TimeSpan]],
    thresholds: Sequence[float] = TIOU_THRESHOLDS,
) -> tuple[float | None, dict[float, float | None]]:
    """Span AP at each tIoU threshold and their mean (None without ground truth)."""
    per = {float(t): span_ap(predictions, ground_truth, t) for t in thresholds}
    vals = [v for v in per.values() if v is not None]
    return (float(np.mean(vals)) if vals else None), per


# ---------------------------------------------------------------------------------------------
# Spatial localisation


class BoxScores(Frozen):
    """Box localisation over annotated boxes (one per annotated frame in UCF-Crime)."""

    mean_iou: float | None = Field(description="mean best IoU per annotated box, any confidence")
    tiou: float | None = Field(
        description="mean IoU counted only for boxes with confidence >= threshold"
    )
    n_annotated: int = 0
    n_matched_in_time: int = Field(
        default=0, description="annotated boxes with a prediction near in time"
    )


def box_scores(
    predictions: Sequence[Sequence[Box]],
    ground_truth: Sequence[Sequence[Box]],
    conf_threshold: float = 0.5,
    time_tolerance_s: float = 0.5,
) -> BoxScores:
    """Mean IoU and TIoU of predicted boxes against annotated boxes.

    For each annotated box, the predictions of its video at the predicted time nearest to the
    annotated frame (within ``time_tolerance_s``) are its candidates. ``mean_iou`` averages the
    best candidate IoU; ``tiou`` averages the best IoU among candidates whose ``score`` is >=
    ``conf_threshold`` (0 when there is none), the field's TIoU: with one predicted box per
    frame this is "IoU counted only when the box's confidence >= 0.5, else 0". An annotated box
    without a candidate counts 0 in both. Both are None when nothing is annotated.
    """
    if len(predictions) != len(ground_truth):
        raise ValueError(f"{len(predictions)} prediction lists but {len(ground_truth)} truth lists")
    ious: list[float] = []
    tious: list[float] = []
    near = 0
    for preds, gts in zip(predictions, ground_truth, strict=True):
        times = np.array(sorted({p.t_s for p in preds}))
        for g in gts:
            if times.size == 0:
                ious.append(0.0)
                tious.append(0.0)
                continue
            t_best = times[int(np.argmin(np.abs(times - g.t_s)))]
            if abs(t_best - g.t_s) > time_tolerance_s:
                ious.append(0.0)
                tious.append(0.0)
                continue
            near += 1
            cands = [p for p in preds if p.t_s == t_best]
            ious.append(max(p.iou(g) for p in cands))
            tious.append(max([p.iou(g) for p in cands if p.score >= conf_threshold], default=0.0))
    if not ious:
        return BoxScores(mean_iou=None, tiou=None)
    return BoxScores(
        mean_iou=float(np.mean(ious)),
        tiou=float(np.mean(tious)),
        n_annotated=len(ious),
        n_matched_in_time=near,
    )
