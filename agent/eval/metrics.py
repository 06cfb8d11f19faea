"""Evaluation metrics with the field's protocols (numpy + scikit-learn).

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

A metric that is undefined on its input (one class only, no positives) returns None.

Also here: score smoothing (``Smoothing``), frame expansion of a ``ScoreCurve`` (interpolated to
every frame, or the UCF 16-frame snippet convention), span AP/mAP at tIoU thresholds
(ActivityNet style), box mean IoU and TIoU, and caption metrics (``captions`` extra).
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from vadetective.agent.core.errors import MissingExtraError
from vadetective.agent.core.types import Box, Frozen, ScoreCurve, TimeSpan

ArrayLike = Sequence[float] | Sequence[int] | np.ndarray
TIOU_THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)
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


def gaussian_smooth(x: ArrayLike, sigma: float) -> np.ndarray:
    """Gaussian filter (``scipy.ndimage.gaussian_filter1d``, edges by nearest value)."""
    from scipy.ndimage import gaussian_filter1d

    arr = np.asarray(x, dtype=np.float64)
    if sigma <= 0 or arr.size == 0:
        return arr.copy()
    return np.asarray(gaussian_filter1d(arr, sigma=sigma, mode="nearest"))


def mean_smooth(x: ArrayLike, width: int) -> np.ndarray:
    """Centred moving average of ``width`` samples (``uniform_filter1d``, edges by nearest value)."""
    from scipy.ndimage import uniform_filter1d

    arr = np.asarray(x, dtype=np.float64)
    if width <= 1 or arr.size == 0:
        return arr.copy()
    return np.asarray(uniform_filter1d(arr, size=int(width), mode="nearest"))


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


# ---------------------------------------------------------------------------------------------
# Caption metrics (the ``captions`` extra: nltk, rouge-score)


class CaptionScores(Frozen):
    """Text metrics of explanations against reference descriptions (0..1; CIDEr 0..10)."""

    bleu1: float
    bleu2: float
    bleu3: float
    bleu4: float
    rouge_l: float
    meteor: float
    cider: float
    meteor_synonyms: bool = Field(
        description="False when WordNet was not installed and METEOR matched exact words and stems only"
    )
    n: int


_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens, punctuation dropped (close to COCO's PTB tokenizer + filter)."""
    return _TOKEN.findall(text.lower())


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(
        tuple(tokens[i : i + k]) for k in range(1, n + 1) for i in range(len(tokens) - k + 1)
    )


def cider_d(
    references: Sequence[Sequence[str]], hypotheses: Sequence[str], n: int = 4, sigma: float = 6.0
) -> float:
    """CIDEr-D as the COCO caption evaluation computes it (the score it reports as "CIDEr").

    TF-IDF n-gram vectors (n = 1..4) with document frequencies over the reference sets of this
    corpus; per n, the cosine between hypothesis and each reference with the hypothesis counts
    clipped to the reference's, times a Gaussian length penalty ``exp(-delta^2 / (2 sigma^2))``;
    averaged over n and references, times 10, then averaged over the corpus. Like the original,
    it needs a corpus: with a single item every IDF weight is 0. Pure Python, no extra needed.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} reference sets but {len(hypotheses)} hypotheses")
    if not hypotheses:
        raise ValueError("no hypotheses to score")
    refs_ng = [[_ngrams(tokenize(r), n) for r in refs] for refs in references]
    hyps_ng = [_ngrams(tokenize(h), n) for h in hypotheses]
    df: Counter[tuple[str, ...]] = Counter()
    for refs in refs_ng:
        df.update({g for r in refs for g in r})
    log_n = math.log(float(len(refs_ng)))

    def vec(
        c: Counter[tuple[str, ...]],
    ) -> tuple[list[dict[tuple[str, ...], float]], list[float], int]:
        v: list[dict[tuple[str, ...], float]] = [{} for _ in range(n)]
        norm = [0.0] * n
        length = 0
        for g, tf in c.items():
            k = len(g) - 1
            v[k][g] = tf * (log_n - math.log(max(1.0, df[g])))
            norm[k] += v[k][g] ** 2
            if k == 1:  # the reference code measures length in bigrams; kept for parity
                length += tf
        return v, [math.sqrt(x) for x in norm], length

    scores = []
    for h, refs in zip(hyps_ng, refs_ng, strict=True):
        if not refs:
            raise ValueError("every hypothesis needs at least one reference")
        vh, nh, lh = vec(h)
        total = np.zeros(n)
        for r in refs:
            vr, nr, lr = vec(r)
            penalty = math.exp(-((lh - lr) ** 2) / (2 * sigma**2))
            for k in range(n):
                val = sum(min(w, vr[k].get(g, 0.0)) * vr[k].get(g, 0.0) for g, w in vh[k].items())
                if nh[k] != 0 and nr[k] != 0:
                    val /= nh[k] * nr[k]
                total[k] += val * penalty
        scores.append(float(np.mean(total)) / len(refs) * 10.0)
    return float(np.mean(scores))


class _NoWordNet:
    """Stands in for WordNet when its corpus is not installed: no synonyms."""

    def synsets(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []


def _wordnet() -> tuple[Any, bool]:
    from nltk.corpus import wordnet

    try:
        wordnet.ensure_loaded()
    except LookupError:
        return _NoWordNet(), False
    return wordnet, True


def caption_metrics(
    references: Sequence[Sequence[str]], hypotheses: Sequence[str], wordnet: Any | None = None
) -> CaptionScores:
    """BLEU-1..4, ROUGE-L, METEOR and CIDEr of hypotheses against reference texts.

    BLEU: nltk ``corpus_bleu`` (no smoothing) on ``tokenize``d text. ROUGE-L: rouge-score's
    ``rougeL`` F-measure with the best reference, averaged. METEOR: nltk ``meteor_score``
    (best reference, averaged); synonym matching needs the WordNet corpus
    (``python -m nltk.downloader wordnet``), without it exact and stem matches only and
    ``meteor_synonyms`` is False. CIDEr: ``cider_d`` (the COCO formula).

    Args:
        references: per item, one or more reference texts.
        hypotheses: per item, the generated text.
        wordnet: a WordNet reader to use for METEOR (default: nltk's, if installed).

    Raises:
        MissingExtraError: nltk or rouge-score is not installed (``vadetective[captions]``).
    """
    try:
        from nltk.translate.bleu_score import corpus_bleu
        from nltk.translate.meteor_score import meteor_score
    except ImportError as exc:
        raise MissingExtraError("nltk", "captions", "caption metrics (BLEU, METEOR)") from exc
    try:
        from rouge_score.rouge_scorer import RougeScorer
    except ImportError as exc:
        raise MissingExtraError("rouge-score", "captions", "caption metrics (ROUGE-L)") from exc
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} reference sets but {len(hypotheses)} hypotheses")
    if not hypotheses or any(not refs for refs in references):
        raise ValueError("caption metrics need at least one item, each with a reference")
    ref_tok = [[tokenize(r) for r in refs] for refs in references]
    hyp_tok = [tokenize(h) for h in hypotheses]
    bleu: list[float] = []
    with warnings.catch_warnings():
        # nltk warns when a higher-order n-gram has no match; the score is then 0, as in COCO.
        warnings.simplefilter("ignore", UserWarning)
        for k in range(1, 5):
            weights = tuple([1.0 / k] * k)
            bleu.append(float(corpus_bleu(ref_tok, hyp_tok, weights=weights)))
    scorer = RougeScorer(["rougeL"], use_stemmer=False)
    rouge = [
        scorer.score_multi(list(refs), hyp)["rougeL"].fmeasure
        for refs, hyp in zip(references, hypotheses, strict=True)
    ]
    if wordnet is None:
        wordnet, synonyms = _wordnet()
    else:
        synonyms = not isinstance(wordnet, _NoWordNet)
    meteor = [
        meteor_score(refs, hyp, wordnet=wordnet) for refs, hyp in zip(ref_tok, hyp_tok, strict=True)
    ]
    return CaptionScores(
        bleu1=bleu[0],
        bleu2=bleu[1],
        bleu3=bleu[2],
        bleu4=bleu[3],
        rouge_l=float(np.mean(rouge)),
        meteor=float(np.mean(meteor)),
        cider=cider_d(references, hypotheses),
        meteor_synonyms=synonyms,
        n=len(hypotheses),
    )
