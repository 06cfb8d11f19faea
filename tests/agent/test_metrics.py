"""Metrics against hand-computed values and against scikit-learn."""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from vadetective.agent.core.errors import MissingExtraError
from vadetective.agent.core.types import Box, ScoreCurve, TimeSpan
from vadetective.agent.eval import captions as C
from vadetective.agent.eval import frame as F
from vadetective.agent.eval import localisation as L

# --------------------------------------------------------------------------- frame-level, by hand


@pytest.mark.parametrize(
    ("fn", "labels", "scores", "expected"),
    [
        # 4 positive-negative pairs: (0.35 > 0.1), (0.35 < 0.4), (0.8 > both) -> 3/4.
        (F.frame_auc, [[0, 0, 1, 1]], [[0.1, 0.4, 0.35, 0.8]], 0.75),
        # Pooled across videos, not averaged: the same frames split in two videos.
        (F.frame_auc, [[0, 0], [1, 1]], [[0.1, 0.4], [0.35, 0.8]], 0.75),
        (F.frame_auc, [[1, 1, 1]], [[0.2, 0.3, 0.4]], None),
        (F.frame_auc, [], [], None),
        # PR points (recall, precision): (0,1) (.5,1) (.5,.5) (1,2/3); trapezoids .5 + 0 + .5*(.5+2/3)/2.
        (F.frame_ap, [[1, 0, 1]], [[0.9, 0.8, 0.7]], 0.5 + 0.25 * (0.5 + 2 / 3)),
        # Step-wise: .5 * 1 + .5 * 2/3.
        (F.frame_ap_sklearn, [[1, 0, 1]], [[0.9, 0.8, 0.7]], 0.5 + 0.5 * 2 / 3),
        (F.frame_ap, [[0, 0]], [[0.9, 0.8]], None),
        (F.frame_ap_sklearn, [[0, 0]], [[0.9, 0.8]], None),
    ],
)
def test_pooled_frame_metrics_by_hand(
    fn: Any, labels: Any, scores: Any, expected: float | None
) -> None:
    got = fn(labels, scores)
    assert got == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pooled_frame_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 60, size=6)
    labels = [(rng.random(n) < 0.3).astype(int) for n in lengths]
    scores = [np.round(rng.random(n), 2) for n in lengths]  # rounded: ties on purpose
    y, s = np.concatenate(labels), np.concatenate(scores)
    assert F.frame_auc(labels, scores) == pytest.approx(roc_auc_score(y, s))
    p, r, _ = precision_recall_curve(y, s)
    assert F.frame_ap(labels, scores) == pytest.approx(auc(r, p))
    assert F.frame_ap_sklearn(labels, scores) == pytest.approx(average_precision_score(y, s))
    keep = [i for i in range(6) if i % 2 == 0]
    flags = [i % 2 == 0 for i in range(6)]
    yk = np.concatenate([labels[i] for i in keep])
    sk = np.concatenate([scores[i] for i in keep])
    assert F.auc_abnormal_only(labels, scores, flags) == pytest.approx(roc_auc_score(yk, sk))
    per_video = [
        roc_auc_score(a, b) for a, b in zip(labels, scores, strict=True) if 0 < a.sum() < a.size
    ]
    assert F.macro_auc(labels, scores) == pytest.approx(np.mean(per_video))


MACRO_LABELS = [[0, 1], [0, 0, 1, 1], [0, 0]]
MACRO_SCORES = [[0.2, 0.6], [0.5, 0.1, 0.2, 0.9], [0.3, 0.7]]


@pytest.mark.parametrize(
    ("single_class", "expected"),
    [
        # Video AUCs 1 and 3/4; the one-class video is skipped.
        ("skip", (1.0 + 0.75) / 2),
        # UBnormal pads each video with a 0 scored 0 and a 1 scored 1: AUCs 1, 8/9, 1.
        ("pad", (1.0 + 8 / 9 + 1.0) / 3),
    ],
)
def test_macro_auc_by_hand(single_class: Any, expected: float) -> None:
    assert F.macro_auc(MACRO_LABELS, MACRO_SCORES, single_class) == pytest.approx(expected)


def test_macro_auc_undefined() -> None:
    assert F.macro_auc([[0, 0], [1]], [[0.1, 0.2], [0.3]]) is None


@pytest.mark.parametrize(
    ("scores", "flags", "threshold", "expected"),
    [
        ([[0.2, 0.5], [0.7, 0.1], [0.9, 0.9]], [False, False, True], 0.5, 0.25),  # 0.5 is no alarm
        ([[0.2, 0.5], [0.7, 0.1], [0.9, 0.9]], [False, False, True], 0.49, 0.5),
        ([[0.9]], [True], 0.5, None),
    ],
)
def test_far_normal(
    scores: Any, flags: list[bool], threshold: float, expected: float | None
) -> None:
    assert F.far_normal(scores, flags, threshold) == expected


def test_per_class_auc_uses_class_plus_all_normals() -> None:
    labels = [[0, 1], [0, 1], [0, 0]]
    scores = [[0.1, 0.9], [0.8, 0.2], [0.5, 0.3]]
    got = F.per_class_auc(labels, scores, ["Abuse", "Arson", "Normal"], [True, True, False])
    # Abuse: positives {0.9} vs negatives {0.1, 0.5, 0.3} -> 1. Arson: {0.2} vs {0.8, 0.5, 0.3} -> 0.
    assert got == {"Abuse": pytest.approx(1.0), "Arson": pytest.approx(0.0)}
    assert list(got) == ["Abuse", "Arson"]


# --------------------------------------------------------------------------- smoothing, expansion


@pytest.mark.parametrize(
    ("x", "width", "expected"),
    [
        ([0, 0, 3, 0, 0], 3, [0, 1, 1, 1, 0]),
        ([3, 0, 0], 3, [2, 1, 0]),  # edges repeat the nearest value
        ([1, 2, 3], 1, [1, 2, 3]),
    ],
)
def test_mean_smooth_by_hand(x: list[float], width: int, expected: list[float]) -> None:
    assert F.mean_smooth(x, width).tolist() == pytest.approx(expected)


def test_gaussian_smooth_properties() -> None:
    impulse = np.zeros(81)
    impulse[40] = 1.0
    out = F.gaussian_smooth(impulse, sigma=5)
    assert out.sum() == pytest.approx(1.0, abs=1e-6)
    assert out[40] == pytest.approx(1 / (5 * math.sqrt(2 * math.pi)), rel=1e-3)
    assert out[35] == pytest.approx(out[45]) and out[35] < out[40]
    assert F.gaussian_smooth(np.full(10, 0.3), 3).tolist() == pytest.approx([0.3] * 10)
    assert F.gaussian_smooth([1.0, 2.0], 0).tolist() == [1.0, 2.0]


def test_smoothing_spec() -> None:
    assert F.Smoothing().describe() == "none"
    assert F.Smoothing(method="gaussian", size=10).describe() == "gaussian(sigma=10)"
    assert F.Smoothing(method="mean", size=3).apply([0, 0, 3, 0, 0]).tolist() == pytest.approx(
        [0, 1, 1, 1, 0]
    )
    with pytest.raises(ValueError, match="needs size > 0"):
        F.Smoothing(method="gaussian")
    with pytest.raises(ValueError, match="whole number"):
        F.Smoothing(method="mean", size=2.5)


def test_expand_to_frames_interpolates_and_holds_ends() -> None:
    curve = ScoreCurve(t_s=[0.25, 1.0], score=[0.0, 0.6])
    got = F.expand_to_frames(curve, fps=4.0, frame_count=6)  # frames at 0, .25, .5, .75, 1, 1.25
    assert got.tolist() == pytest.approx([0.0, 0.0, 0.2, 0.4, 0.6, 0.6])
    with pytest.raises(ValueError, match="empty"):
        F.expand_to_frames(ScoreCurve(t_s=[], score=[]), 4.0, 3)


def test_ucf_snippet_convention() -> None:
    frames = np.r_[np.zeros(16), np.ones(16), np.full(5, 0.5)]
    snip = F.to_snippets(frames)
    assert snip.tolist() == pytest.approx([0.0, 1.0, 0.5])
    assert F.repeat_snippets(snip, 37).tolist() == pytest.approx(frames.tolist())
    assert F.repeat_snippets([0.2, 0.4], 35).tolist()[-3:] == pytest.approx([0.4] * 3)  # extended
    assert F.repeat_snippets([0.2, 0.4], 20).tolist() == pytest.approx([0.2] * 16 + [0.4] * 4)
    curve = ScoreCurve(t_s=[0.0, 3.1], score=[0.0, 1.0])  # 10 fps, 32 frames
    expected = [np.mean(np.arange(0, 16) / 10 / 3.1), np.mean(np.arange(16, 32) / 10 / 3.1)]
    assert F.snippet_expand(curve, 10.0, 32).tolist() == pytest.approx(expected)


# --------------------------------------------------------------------------- span AP


def _s(a: float, b: float, score: float | None = None) -> TimeSpan:
    return TimeSpan(start_s=a, end_s=b, score=score)


GT = [[_s(0, 10)], [_s(20, 30)]]
PRED = [[_s(0, 10, 0.9), _s(0, 5, 0.8)], [_s(25, 35, 0.7)]]


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        # Ranked: hit (tIoU 1), duplicate on a used truth (FP), hit (tIoU 1/3):
        # precision 1, .5, 2/3 at recall .5, .5, 1 -> .5 * 1 + .5 * 2/3.
        (0.1, 0.5 + 0.5 * 2 / 3),
        (0.3, 0.5 + 0.5 * 2 / 3),
        # tIoU 1/3 < 0.4: only the first is a hit -> .5.
        (0.4, 0.5),
        (0.5, 0.5),
    ],
)
def test_span_ap_by_hand(threshold: float, expected: float) -> None:
    assert L.span_ap(PRED, GT, threshold) == pytest.approx(expected)


def test_span_ap_edge_cases_and_map() -> None:
    assert L.span_ap([[]], [[]], 0.5) is None
    assert L.span_ap([[]], [[_s(0, 1)]], 0.5) == 0.0
    # A false positive on a normal video ranked first halves the precision of the hit.
    assert L.span_ap([[_s(0, 10, 0.5)], [_s(1, 2, 0.9)]], [[_s(0, 10)], []], 0.5) == pytest.approx(
        0.5
    )
    # The best-overlapping truth is matched first; the second prediction takes the other one.
    two = [[_s(0, 4), _s(5, 9)]]
    assert L.span_ap([[_s(0, 4.5, 0.9), _s(4.5, 9, 0.8)]], two, 0.5) == pytest.approx(1.0)
    mean, per = L.span_map(PRED, GT)
    assert list(per) == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert mean == pytest.approx(np.mean([per[t] for t in per]))
    assert mean == pytest.approx((3 * (0.5 + 1 / 3) + 2 * 0.5) / 5)


# --------------------------------------------------------------------------- boxes


def _b(t: float, xyxy: tuple[float, float, float, float], score: float = 1.0) -> Box:
    return Box(t_s=t, xyxy=xyxy, score=score)


@pytest.mark.parametrize(
    ("preds", "mean_iou", "tiou"),
    [
        # Nearest predicted time 1.1 (within 0.5 s): a perfect low-confidence box and a half box.
        ([_b(1.1, (0, 0, 10, 10), 0.4), _b(1.1, (0, 0, 5, 10), 0.9)], 1.0, 0.5),
        # One box, confident: TIoU equals its IoU.
        ([_b(1.0, (0, 0, 5, 10), 0.5)], 0.5, 0.5),
        # One box under the threshold: TIoU 0, mean IoU still counts it.
        ([_b(1.0, (0, 0, 5, 10), 0.49)], 0.5, 0.0),
        # Boxes at the nearest time only: the better box at t=1.4 is not a candidate.
        ([_b(1.05, (0, 0, 2, 10)), _b(1.4, (0, 0, 10, 10))], 0.2, 0.2),
        # Too far in time.
        ([_b(1.6, (0, 0, 10, 10))], 0.0, 0.0),
        ([], 0.0, 0.0),
    ],
)
def test_box_scores_by_hand(preds: list[Box], mean_iou: float, tiou: float) -> None:
    got = L.box_scores([preds], [[_b(1.0, (0, 0, 10, 10))]])
    assert got.mean_iou == pytest.approx(mean_iou)
    assert got.tiou == pytest.approx(tiou)
    assert got.n_annotated == 1


def test_box_scores_average_over_annotated_boxes() -> None:
    gts = [[_b(0, (0, 0, 10, 10)), _b(2, (0, 0, 10, 10))], [_b(5, (0, 0, 4, 4))]]
    preds = [[_b(0, (0, 0, 10, 10), 0.9)], [_b(5, (0, 0, 2, 4), 0.8)]]
    got = L.box_scores(preds, gts)
    assert (got.mean_iou, got.tiou) == (
        pytest.approx((1 + 0 + 0.5) / 3),
        pytest.approx((1 + 0 + 0.5) / 3),
    )
    assert got.n_matched_in_time == 2
    assert L.box_scores([[]], [[]]).mean_iou is None


# --------------------------------------------------------------------------- captions


def test_cider_d_by_hand() -> None:
    # Identical two-word captions in a corpus of two: cosine 1 for unigrams and bigrams, 0 for
    # 3- and 4-grams (empty vectors), no length penalty -> 10 * (1 + 1 + 0 + 0) / 4.
    assert C.cider_d([["a b"], ["c d"]], ["a b", "c d"]) == pytest.approx(5.0)
    # Hypothesis "a b c" vs "a b": unigram cosine 2/sqrt(6), bigram 1/sqrt(2), length (bigram
    # count) differs by one -> penalty exp(-1 / 72).
    first = 10 / 4 * (2 / math.sqrt(6) + 1 / math.sqrt(2)) * math.exp(-1 / 72)
    assert C.cider_d([["a b"], ["c d"]], ["a b c", "c d"]) == pytest.approx((first + 5.0) / 2)
    assert C.cider_d([["a b"], ["c d"]], ["x y", "z"]) == 0.0
    # Every IDF weight is 0 in a corpus of one.
    assert C.cider_d([["a man runs"]], ["a man runs"]) == 0.0


class _FakeWordNet:
    """Just enough of WordNet for METEOR: 'sprint' has the synonym 'run' (METEOR looks up the
    stems left unmatched by its exact and stem stages)."""

    class _Lemma:
        def __init__(self, name: str) -> None:
            self._name = name

        def name(self) -> str:
            return self._name

    class _Synset:
        def __init__(self, names: list[str]) -> None:
            self._names = names

        def lemmas(self) -> list[Any]:
            return [_FakeWordNet._Lemma(n) for n in self._names]

    def synsets(self, word: str) -> list[Any]:
        return [self._Synset(["run", "sprint"])] if word == "sprint" else []


def test_caption_metrics_by_hand() -> None:
    # BLEU-1: 3/3 precision, brevity penalty exp(1 - 4/3). ROUGE-L: LCS 3, P 1, R .75.
    got = C.caption_metrics([["A man runs fast."]], ["a man runs"], wordnet=C._NoWordNet())
    assert got.bleu1 == pytest.approx(math.exp(1 - 4 / 3))
    assert got.rouge_l == pytest.approx(2 * 1 * 0.75 / 1.75)
    # METEOR exact matches: P 1, R 3/4, fmean = PR / (.9P + .1R), one chunk: penalty .5 (1/3)^3.
    fmean = 0.75 / (0.9 + 0.075)
    assert got.meteor == pytest.approx(fmean * (1 - 0.5 * (1 / 3) ** 3))
    assert got.meteor_synonyms is False and got.n == 1


def test_meteor_uses_synonyms_when_wordnet_is_there() -> None:
    refs, hyp = [["the man runs"]], ["the man sprints"]
    without = C.caption_metrics(refs, hyp, wordnet=C._NoWordNet()).meteor
    with_syn = C.caption_metrics(refs, hyp, wordnet=_FakeWordNet())
    # Without synonyms: 2 of 3 words match, in one chunk: frag 1/2.
    assert without == pytest.approx((2 / 3) * (1 - 0.5 * 0.5**3))
    # With 'sprints' ~ 'runs': all 3 words in one chunk, frag 1/3.
    assert with_syn.meteor == pytest.approx(1 - 0.5 * (1 / 3) ** 3)
    assert with_syn.meteor_synonyms is True


def test_caption_metrics_need_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rouge_score.rouge_scorer", None)
    with pytest.raises(MissingExtraError, match=r"'rouge-score' package.*vadetective\[captions\]"):
        C.caption_metrics([["a"]], ["a"])


def test_caption_metrics_input_errors() -> None:
    with pytest.raises(ValueError, match="1 reference sets but 2"):
        C.caption_metrics([["a"]], ["a", "b"])
    with pytest.raises(ValueError, match="each with a reference"):
        C.caption_metrics([[]], ["a"])
