"""Score verdicts against a dataset's ground truth with the field's protocols.

``evaluate`` takes (LabeledVideo, Verdict, fps, frame_count) items; ``evaluate_run`` reads them
from a batch run folder (``results/<video_id>.json``, ground truth from ``run.json`` or a given
dataset) and writes ``metrics.json`` atomically. Every metric, the protocol used (frame expansion,
smoothing, headline AP flavour, thresholds) and the counts behind the numbers are in one frozen
``Metrics`` model; ``table.format_metrics_table`` renders it for the CLI.

The result files and ``run.json`` of a run folder are read by ``runs.py``; ``evaluate_run``
also records which dataset and split it scored and warns when the results of one folder mix
configurations.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
from pydantic import Field

from vadetective.agent.core.io import atomic_write_text
from vadetective.agent.core.types import Box, Frozen, TimeSpan, Verdict
from vadetective.agent.core.vocabulary import RunFolder
from vadetective.agent.datasets import Dataset, DatasetSpec, LabeledVideo, load_spec
from vadetective.agent.eval import captions as C
from vadetective.agent.eval import explain as X
from vadetective.agent.eval import frame as F
from vadetective.agent.eval import localisation as L
from vadetective.agent.eval.runs import (
    RunFormatError,
    RunResult,
    dataset_from_run,
    mixed_configurations,
    read_record,
    read_results,
)

logger = logging.getLogger(__name__)

METRICS_FILE = RunFolder.METRICS


class EvalItem(NamedTuple):
    """One evaluated video: its ground truth, the verdict, and its decoded fps and frame count."""

    video: LabeledVideo
    verdict: Verdict
    fps: float
    frame_count: int


class EvalProtocol(Frozen):
    """How scores are turned into metrics; saved with the metrics."""

    expansion: Literal["interpolate", "snippet"] = Field(
        default="interpolate",
        description="interpolate: frame_scores linearly interpolated to every frame; snippet: "
        "mean per 16-frame snippet repeated over its frames (the UCF-Crime convention)",
    )
    snippet: int = 16
    smoothing: F.Smoothing = Field(default_factory=F.Smoothing)
    headline_ap: Literal["pr_auc", "average_precision"] = Field(
        default="pr_auc", description="which AP the table shows first; both are always computed"
    )
    far_threshold: float = 0.5
    macro_single_class: Literal["skip", "pad"] = "skip"
    tiou_thresholds: tuple[float, ...] = L.TIOU_THRESHOLDS
    box_conf_threshold: float = 0.5
    box_time_tolerance_s: float = 0.5

    def describe_smoothing(self) -> str:
        unit = f"{self.snippet}-frame snippets" if self.expansion == "snippet" else "frames"
        s = self.smoothing.describe()
        return s if s == "none" else f"{s} on {unit}"


class EvalCounts(Frozen):
    """How many videos and frames stand behind the numbers."""

    videos: int = 0
    anomalous: int = 0
    normal: int = 0
    unlabelled: int = 0
    frame_level_videos: int = Field(default=0, description="videos in the frame-level metrics")
    frames: int = 0
    anomalous_frames: int = 0
    without_temporal_labels: int = Field(default=0, description="anomalous, but no spans/mask")
    scored_from_spans: int = Field(default=0, description="verdicts without frame_scores")
    undecided: int = Field(default=0, description="verdicts with is_anomalous None")
    videos_with_boxes: int = 0
    videos_with_references: int = 0
    missing_results: int = Field(default=0, description="dataset videos with no result")
    unmatched_results: int = Field(default=0, description="results of videos not in the dataset")


class Metrics(Frozen):
    """Every metric of an evaluation, the protocol used and the counts."""

    frame_auc: float | None = None
    frame_ap: float | None = Field(
        default=None, description="area under the PR curve (XD official)"
    )
    frame_ap_sklearn: float | None = Field(
        default=None, description="sklearn average_precision_score"
    )
    macro_auc: float | None = None
    auc_abnormal_only: float | None = None
    far_normal: float | None = None
    per_class_auc: dict[str, float | None] = Field(default_factory=dict)
    video_accuracy: float | None = Field(
        default=None, description="is_anomalous right (undecided = wrong)"
    )
    span_map: float | None = None
    span_ap: dict[str, float | None] = Field(default_factory=dict, description="tIoU -> AP")
    box_mean_iou: float | None = None
    box_tiou: float | None = None
    box_annotated: int = 0
    captions: C.CaptionScores | None = Field(
        default=None, description="justifications against video-level descriptions"
    )
    explanation: X.ExplanationScores | None = Field(
        default=None, description="justifications and answers against every reference level"
    )
    protocol: EvalProtocol = Field(default_factory=EvalProtocol)
    smoothing: str = "none"
    ap_flavour: str = (
        "frame_ap = auc(precision_recall_curve); frame_ap_sklearn = average_precision_score"
    )
    counts: EvalCounts = Field(default_factory=EvalCounts)
    notes: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(
        default_factory=list, description="why these numbers may mislead (mixed configurations)"
    )
    dataset_kind: str | None = None
    dataset_split: str | None = Field(default=None, description="the official split scored")

    @property
    def ap(self) -> float | None:
        """The headline AP chosen by the protocol."""
        return self.frame_ap if self.protocol.headline_ap == "pr_auc" else self.frame_ap_sklearn

    def save(self, path: str | Path) -> Path:
        """Write as JSON, atomically."""
        return atomic_write_text(Path(path), self.model_dump_json(indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Metrics:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------


def _frame_scores(item: EvalItem, n_frames: int, protocol: EvalProtocol) -> tuple[np.ndarray, bool]:
    """Per-frame scores of a verdict, and whether they came from its frame_scores curve."""
    v = item.verdict
    if v.frame_scores is not None and len(v.frame_scores) > 0:
        if protocol.expansion == "snippet":
            snip = F.snippet_expand(v.frame_scores, item.fps, n_frames, protocol.snippet)
            return F.repeat_snippets(
                protocol.smoothing.apply(snip), n_frames, protocol.snippet
            ), True
        return protocol.smoothing.apply(
            F.expand_to_frames(v.frame_scores, item.fps, n_frames)
        ), True
    # No curve: the verdict's own claims, inside its spans at their score, elsewhere 0; a verdict
    # without spans gets one video-level score for every frame.
    p = 0.5 if v.is_anomalous is None else (v.confidence if v.is_anomalous else 1.0 - v.confidence)
    if not v.spans or v.is_anomalous is False:
        return np.full(n_frames, p), False
    out = np.zeros(n_frames)
    t = np.arange(n_frames) / item.fps
    for s in v.spans:
        inside = (t >= s.start_s) & (t <= s.end_s)
        out[inside] = np.maximum(out[inside], s.score if s.score is not None else v.confidence)
    return out, False


def _merge(spans: list[TimeSpan]) -> list[TimeSpan]:
    out: list[TimeSpan] = []
    for s in sorted(spans, key=lambda s: s.start_s):
        if out and s.start_s <= out[-1].end_s:
            if s.end_s > out[-1].end_s:
                out[-1] = TimeSpan(start_s=out[-1].start_s, end_s=s.end_s)
        else:
            out.append(TimeSpan(start_s=s.start_s, end_s=s.end_s))
    return out


def _predicted_spans(v: Verdict) -> list[TimeSpan]:
    if v.is_anomalous is False:
        return []
    return [
        s if s.score is not None else s.model_copy(update={"score": v.confidence}) for s in v.spans
    ]


def evaluate(
    results: Iterable[tuple[LabeledVideo, Verdict, float, int]],
    *,
    protocol: EvalProtocol | None = None,
    captions: bool | None = None,
    missing_results: int = 0,
    unmatched_results: int = 0,
) -> Metrics:
    """Compute every metric over (ground truth, verdict, fps, frame_count) items.

    Args:
        results: one item per video (``EvalItem`` or a plain tuple); ``fps`` and ``frame_count``
            are the decoded video's (from its ``VideoInfo``).
        protocol: frame expansion, smoothing and thresholds (default ``EvalProtocol()``).
        captions: compute caption metrics; None: when some videos have reference texts and the
            ``captions`` extra is installed (otherwise a note says why they are absent); True:
            raise ``MissingExtraError`` if the extra is missing.
        missing_results: dataset videos that have no result (recorded in the counts).
        unmatched_results: results whose video is not in the dataset (recorded in the counts).

    Returns:
        The metrics; a metric that is undefined on these videos (e.g. AUC with one class) is None.
    """
    protocol = protocol or EvalProtocol()
    items = [EvalItem(*r) for r in results]
    notes: list[str] = []
    labels: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    anomalous: list[bool] = []
    categories: list[str | None] = []
    span_pred: list[list[TimeSpan]] = []
    span_true: list[list[TimeSpan]] = []
    box_pred: list[list[Box]] = []
    box_true: list[list[Box]] = []
    explained: list[tuple[LabeledVideo, Verdict]] = []
    c = dict.fromkeys(EvalCounts.model_fields, 0)
    correct = 0
    decided_pool = 0
    for it in items:
        gt, v = it.video, it.verdict
        c["videos"] += 1
        if gt.is_anomalous is None:
            c["unlabelled"] += 1
            continue
        c["anomalous" if gt.is_anomalous else "normal"] += 1
        decided_pool += 1
        if v.is_anomalous is None:
            c["undecided"] += 1
        elif v.is_anomalous == gt.is_anomalous:
            correct += 1
        if gt.descriptions or gt.timed_descriptions:
            explained.append((gt, v))
        gt_boxes = gt.time_boxes(it.fps)
        if gt_boxes:
            c["videos_with_boxes"] += 1
            box_true.append(gt_boxes)
            box_pred.append(list(v.boxes))
        if not gt.has_temporal_labels:
            c["without_temporal_labels"] += 1
            continue
        y = gt.frame_labels(it.frame_count, it.fps)
        s, from_curve = _frame_scores(it, y.size, protocol)
        if not from_curve:
            c["scored_from_spans"] += 1
        labels.append(y)
        scores.append(s)
        anomalous.append(bool(gt.is_anomalous))
        categories.append(gt.category)
        span_true.append(_merge(gt.time_spans(it.fps)))
        span_pred.append(_predicted_spans(v))
        c["frame_level_videos"] += 1
        c["frames"] += int(y.size)
        c["anomalous_frames"] += int(y.sum())
    c["missing_results"] = missing_results
    c["unmatched_results"] = unmatched_results
    counts = EvalCounts(**c)

    if counts.unlabelled:
        notes.append(f"{counts.unlabelled} videos have no labels and are not scored")
    if counts.without_temporal_labels:
        notes.append(
            f"{counts.without_temporal_labels} anomalous videos have no temporal annotation: "
            "video-level accuracy only"
        )
    if counts.scored_from_spans:
        notes.append(
            f"{counts.scored_from_spans} verdicts had no frame_scores: their frame scores come "
            "from their spans and confidence"
        )
    if missing_results:
        notes.append(f"{missing_results} dataset videos have no result (failed or not run)")
    if unmatched_results:
        notes.append(f"{unmatched_results} results are for videos not in the dataset (ignored)")

    span_mean, span_per = L.span_map(span_pred, span_true, protocol.tiou_thresholds)
    boxes = L.box_scores(
        box_pred, box_true, protocol.box_conf_threshold, protocol.box_time_tolerance_s
    )
    explanation = X.explanation_scores(explained, captions, notes)
    cap = explanation.justification.get(X.VIDEO_LEVEL) if explanation is not None else None
    return Metrics(
        frame_auc=F.frame_auc(labels, scores),
        frame_ap=F.frame_ap(labels, scores),
        frame_ap_sklearn=F.frame_ap_sklearn(labels, scores),
        macro_auc=F.macro_auc(labels, scores, protocol.macro_single_class),
        auc_abnormal_only=F.auc_abnormal_only(labels, scores, anomalous),
        far_normal=F.far_normal(scores, anomalous, protocol.far_threshold),
        per_class_auc=F.per_class_auc(labels, scores, categories, anomalous),
        video_accuracy=correct / decided_pool if decided_pool else None,
        span_map=span_mean,
        span_ap={f"{t:g}": ap for t, ap in span_per.items()},
        box_mean_iou=boxes.mean_iou,
        box_tiou=boxes.tiou,
        box_annotated=boxes.n_annotated,
        captions=cap,
        explanation=explanation,
        protocol=protocol,
        smoothing=protocol.describe_smoothing(),
        counts=counts.model_copy(update={"videos_with_references": len(explained)}),
        notes=notes,
    )


# ---------------------------------------------------------------------------------------------


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def eval_items(results: Sequence[RunResult], dataset: Dataset) -> list[EvalItem]:
    """The results whose video is in the dataset, with their decoded fps and frame count."""
    by_id = {v.video_id: v for v in dataset}
    return [
        EvalItem(by_id[r.video_id], r.verdict, r.video.fps, r.video.frame_count)
        for r in results
        if r.video_id in by_id
    ]


def pooled_frames(
    items: Iterable[EvalItem], protocol: EvalProtocol | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Every labelled frame's label and score, pooled as the frame-level metrics pool them."""
    protocol = protocol or EvalProtocol()
    labels: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for it in items:
        if not it.video.has_temporal_labels:
            continue
        y = it.video.frame_labels(it.frame_count, it.fps)
        labels.append(y.astype(np.int64))
        scores.append(_frame_scores(it, y.size, protocol)[0])
    if not labels:
        return np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(labels), np.concatenate(scores)


def evaluate_run(
    run_dir: str | Path,
    dataset: Dataset | DatasetSpec | None = None,
    *,
    protocol: EvalProtocol | None = None,
    captions: bool | None = None,
    write: bool = True,
) -> Metrics:
    """Evaluate a batch run folder and write ``<run_dir>/metrics.json``.

    Args:
        run_dir: the folder with ``results/`` (and ``run.json``).
        dataset: the ground truth; default: the dataset recorded in ``run.json``.
        protocol: see ``evaluate``.
        captions: see ``evaluate``.
        write: write ``metrics.json`` (atomically) into ``run_dir``.

    Returns:
        The metrics.

    Raises:
        RunFormatError: a missing/malformed ``run.json`` or result file, or no result matching
            the dataset.
        DatasetError: the recorded dataset cannot be loaded.
    """
    run_dir = Path(run_dir)
    results = read_results(run_dir)
    if isinstance(dataset, DatasetSpec):
        dataset = load_spec(dataset)
    elif dataset is None:
        dataset = dataset_from_run(run_dir)
    items = eval_items(results, dataset)
    by_id = {v.video_id for v in dataset}
    unmatched = sum(1 for r in results if r.video_id not in by_id)
    if not items:
        raise RunFormatError(
            f"none of the {len(results)} results in {run_dir / 'results'} belongs to the dataset "
            f"({dataset.summary()})"
        )
    done = {r.video_id for r in results}
    metrics = evaluate(
        items,
        protocol=protocol,
        captions=captions,
        missing_results=sum(1 for v in dataset if v.video_id not in done),
        unmatched_results=unmatched,
    )
    warnings = mixed_configurations(read_record(run_dir), results)
    for w in warnings:
        logger.warning("%s: %s", run_dir, w)
    metrics = metrics.model_copy(
        update={
            "warnings": warnings,
            "dataset_kind": dataset.kind,
            "dataset_split": dataset.split or _str_or_none(dataset.options.get("split")),
        }
    )
    if write:
        metrics.save(run_dir / METRICS_FILE)
        logger.info("wrote %s", run_dir / METRICS_FILE)
    return metrics
