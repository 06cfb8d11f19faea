"""evaluate() on hand-made verdicts, and evaluate_run() on hand-written run folders."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from scipy.ndimage import gaussian_filter1d
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from vadetective.agent.cli.runs import evaluate_run_cli
from vadetective.agent.core.errors import DatasetError, MissingExtraError
from vadetective.agent.core.types import Box, Cost, ScoreCurve, TimeSpan, Verdict, VideoInfo
from vadetective.agent.datasets import Dataset, FrameBox, FrameSpan, LabeledVideo, load_dataset
from vadetective.agent.eval.evaluate import (
    EvalItem,
    EvalProtocol,
    Metrics,
    RunFormatError,
    evaluate,
    evaluate_run,
)
from vadetective.agent.eval.frame import Smoothing
from vadetective.agent.eval.table import format_metrics_table

FPS, N = 10.0, 40
T = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
CURVES = {
    "abuse": [0.1, 0.2, 0.8, 0.9, 0.4, 0.2, 0.1, 0.1],
    "arson": [0.7, 0.6, 0.3, 0.2, 0.2, 0.1, 0.3, 0.2],
    "street": [0.2, 0.1, 0.1, 0.6, 0.2, 0.1, 0.1, 0.0],
    "park": [0.3, 0.2, 0.1, 0.1, 0.5, 0.5, 0.2, 0.1],
}
TRUTH = {"abuse": (10, 20), "arson": (0, 8)}


def _video(name: str) -> LabeledVideo:
    span = TRUTH.get(name)
    return LabeledVideo(
        video_id=name,
        path=f"/data/{name}.mp4",
        dataset="test",
        category=name.capitalize() if span else "Normal",
        is_anomalous=span is not None,
        frame_spans=[FrameSpan(start_frame=span[0], stop_frame=span[1])] if span else [],
        frame_boxes=[FrameBox(frame_idx=15, xyxy=(0, 0, 10, 10))] if name == "abuse" else [],
    )


def _verdict(name: str, **kw: object) -> Verdict:
    base: dict[str, object] = {
        "question": "anything unusual?",
        "answer": "yes" if name in TRUTH else "no",
        "is_anomalous": {"abuse": True, "arson": True, "street": False, "park": None}[name],
        "confidence": 0.8,
        "frame_scores": ScoreCurve(t_s=T, score=CURVES[name]),
    }
    if name == "abuse":
        base["spans"] = [TimeSpan(start_s=1.0, end_s=2.0, score=0.9)]
        base["boxes"] = [Box(t_s=1.5, xyxy=(0, 0, 10, 5), score=0.8)]
    if name == "street":  # spans on a verdict that says normal are not claims of an anomaly
        base["spans"] = [TimeSpan(start_s=0.0, end_s=1.0, score=0.9)]
    base.update(kw)
    return Verdict.model_validate(base)


def _items() -> list[EvalItem]:
    return [EvalItem(_video(n), _verdict(n), FPS, N) for n in CURVES]


def _expected_arrays() -> tuple[list[np.ndarray], list[np.ndarray]]:
    t = np.arange(N) / FPS
    labels, scores = [], []
    for name, curve in CURVES.items():
        y = np.zeros(N, dtype=int)
        if name in TRUTH:
            y[TRUTH[name][0] : TRUTH[name][1]] = 1
        labels.append(y)
        scores.append(np.interp(t, T, curve))
    return labels, scores


def test_evaluate_matches_sklearn_on_interpolated_frames() -> None:
    m = evaluate(_items())
    labels, scores = _expected_arrays()
    y, s = np.concatenate(labels), np.concatenate(scores)
    assert m.frame_auc == pytest.approx(roc_auc_score(y, s))
    p, r, _ = precision_recall_curve(y, s)
    assert m.frame_ap == pytest.approx(auc(r, p))
    assert m.frame_ap_sklearn == pytest.approx(average_precision_score(y, s))
    assert m.auc_abnormal_only == pytest.approx(roc_auc_score(y[: 2 * N], s[: 2 * N]))
    assert m.macro_auc == pytest.approx(
        np.mean([roc_auc_score(labels[i], scores[i]) for i in (0, 1)])
    )
    assert m.far_normal == pytest.approx(np.mean(s[2 * N :] > 0.5))
    normal_y, normal_s = y[2 * N :], s[2 * N :]
    assert m.per_class_auc == {
        "Abuse": pytest.approx(
            roc_auc_score(np.r_[labels[0], normal_y], np.r_[scores[0], normal_s])
        ),
        "Arson": pytest.approx(
            roc_auc_score(np.r_[labels[1], normal_y], np.r_[scores[1], normal_s])
        ),
    }
    # abuse, arson and street right; park undecided counts as wrong.
    assert m.video_accuracy == pytest.approx(0.75)
    # One of two truth spans found exactly, nothing else predicted: AP .5 at every tIoU.
    assert m.span_ap == {k: pytest.approx(0.5) for k in ("0.1", "0.2", "0.3", "0.4", "0.5")}
    assert m.span_map == pytest.approx(0.5)
    assert (m.box_mean_iou, m.box_tiou, m.box_annotated) == (
        pytest.approx(0.5),
        pytest.approx(0.5),
        1,
    )
    c = m.counts
    assert (c.videos, c.anomalous, c.normal, c.frames, c.anomalous_frames) == (4, 2, 2, 4 * N, 18)
    assert (c.undecided, c.scored_from_spans, c.videos_with_boxes) == (1, 0, 1)
    assert m.captions is None and m.smoothing == "none" and m.notes == []
    assert m.ap == m.frame_ap


def test_snippet_protocol_and_smoothing() -> None:
    labels, scores = _expected_arrays()
    y = np.concatenate(labels)
    snip = EvalProtocol(expansion="snippet", smoothing=Smoothing(method="mean", size=3))
    m = evaluate(_items(), protocol=snip)
    # Per video: means of frames 0-15, 16-31, 32-39; mean filter of 3 (edges repeat); repeated.
    expected = []
    for s in scores:
        k = np.array([s[0:16].mean(), s[16:32].mean(), s[32:40].mean()])
        k = np.array([(k[0] + k[0] + k[1]) / 3, k.mean(), (k[1] + k[2] + k[2]) / 3])
        expected.append(np.repeat(k, 16)[:N])
    assert m.frame_auc == pytest.approx(roc_auc_score(y, np.concatenate(expected)))
    assert m.smoothing == "mean(width=3) on 16-frame snippets"
    gauss = EvalProtocol(
        smoothing=Smoothing(method="gaussian", size=4), headline_ap="average_precision"
    )
    g = evaluate(_items(), protocol=gauss)
    smoothed = np.concatenate([gaussian_filter1d(s, 4, mode="nearest") for s in scores])
    assert g.frame_auc == pytest.approx(roc_auc_score(y, smoothed))
    assert g.frame_auc != pytest.approx(evaluate(_items()).frame_auc)
    assert g.ap == g.frame_ap_sklearn and g.protocol.smoothing.size == 4


def test_verdicts_without_curves_and_videos_without_temporal_labels() -> None:
    items = _items()
    # abuse: no curve -> its span at 0.9 inside, 0 elsewhere.
    items[0] = items[0]._replace(verdict=_verdict("abuse", frame_scores=None))
    bare = LabeledVideo(video_id="bare", path="/b.mp4", dataset="t", is_anomalous=True)
    unl = LabeledVideo(video_id="unl", path="/u.mp4", dataset="t")
    items += [EvalItem(bare, _verdict("arson"), FPS, N), EvalItem(unl, _verdict("street"), FPS, N)]
    m = evaluate(items)
    labels, scores = _expected_arrays()
    t = np.arange(N) / FPS
    scores[0] = np.where((t >= 1.0) & (t <= 2.0), 0.9, 0.0)
    assert m.frame_auc == pytest.approx(
        roc_auc_score(np.concatenate(labels), np.concatenate(scores))
    )
    c = m.counts
    assert (c.scored_from_spans, c.without_temporal_labels, c.unlabelled, c.frame_level_videos) == (
        1,
        1,
        1,
        4,
    )
    assert m.video_accuracy == pytest.approx(4 / 5)  # bare is judged on is_anomalous only
    assert len(m.notes) == 3 and any("no frame_scores" in n for n in m.notes)


def test_undefined_metrics_are_none() -> None:
    m = evaluate([EvalItem(_video("street"), _verdict("street"), FPS, N)])
    assert m.frame_auc is None and m.frame_ap is None and m.span_map is None and m.box_tiou is None
    assert m.far_normal is not None and m.per_class_auc == {}


def test_table_renders_every_headline_number() -> None:
    m = evaluate(_items())
    console = Console(record=True, width=160)
    console.print(format_metrics_table(m))
    text = console.export_text()
    assert f"{100 * m.frame_auc:.2f}" in text  # type: ignore[operator]
    for label in (
        "frame AUC",
        "frame AP (sklearn)",
        "span mAP",
        "AP@0.3",
        "box TIoU",
        "AUC Abuse",
        "4 videos",
    ):
        assert label in text


# --------------------------------------------------------------------------- run folders


def _write_run(tmp_path: Path, with_captions: bool = False) -> Path:
    data = tmp_path / "data"
    (data / "videos").mkdir(parents=True)
    lines = []
    for name in CURVES:
        (data / "videos" / f"{name}.mp4").write_bytes(b"x")
        span = TRUTH.get(name)
        rec: dict[str, object] = {
            "path": f"videos/{name}.mp4",
            "label": name if span else "normal",
            "spans": [[span[0] / FPS, span[1] / FPS]] if span else [],
        }
        if with_captions and span:
            rec["description"] = f"someone commits {name} in the scene"
        lines.append(json.dumps(rec))
    (data / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    ds = load_dataset("manifest", data)
    run = tmp_path / "run"
    (run / "results").mkdir(parents=True)
    (run / "run.json").write_text(
        json.dumps({"dataset": ds.spec.model_dump(), "profile": "classical"})
    )
    for name in CURVES:
        info = VideoInfo(
            path=str(data / "videos" / f"{name}.mp4"),
            fps=FPS,
            frame_count=N,
            duration_s=N / FPS,
            resolution_wh=(64, 48),
            content_hash="h",
        )
        verdict = _verdict(name, justification=f"a person commits {name} here")
        rec = {
            "video_id": name,
            "path": info.path,
            "verdict": json.loads(verdict.model_dump_json()),
            "video": json.loads(info.model_dump_json()),
            "timing_s": 1.5,
            "cost": json.loads(Cost(planner_calls=2).model_dump_json()),
        }
        (run / "results" / f"{name}.json").write_text(json.dumps(rec))
    return run


def test_evaluate_run_reads_results_and_run_json(tmp_path: Path) -> None:
    run = _write_run(tmp_path)
    m = evaluate_run(run)
    saved = Metrics.load(run / "metrics.json")
    assert saved == m
    # Manifest spans in seconds give the same frame labels as the frame spans above.
    assert m.frame_auc == pytest.approx(evaluate(_items()).frame_auc)
    assert m.counts.videos == 4 and m.counts.missing_results == 0
    assert not list((run).glob(".metrics.json.*"))  # no temporary file left behind
    # A failed video (no result) and a stray result are counted, not hidden.
    (run / "results" / "park.json").rename(run / "results" / "stray.json")
    stray = json.loads((run / "results" / "stray.json").read_text())
    stray["video_id"] = "stray"
    (run / "results" / "stray.json").write_text(json.dumps(stray))
    m2 = evaluate_run(run, write=False)
    assert (m2.counts.videos, m2.counts.missing_results, m2.counts.unmatched_results) == (3, 1, 1)
    assert any("1 dataset videos have no result" in n for n in m2.notes)


def test_evaluate_run_with_captions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _write_run(tmp_path, with_captions=True)
    m = evaluate_run(run, write=False)
    assert m.captions is not None and m.captions.n == 2 and m.counts.videos_with_references == 2
    assert 0 < m.captions.bleu1 <= 1 and m.captions.cider >= 0
    monkeypatch.setitem(sys.modules, "nltk.translate.bleu_score", None)
    skipped = evaluate_run(run, write=False)
    assert skipped.captions is None and any("caption metrics skipped" in n for n in skipped.notes)
    with pytest.raises(MissingExtraError, match="captions"):
        evaluate_run(run, write=False, captions=True)


def test_evaluate_run_errors(tmp_path: Path) -> None:
    run = _write_run(tmp_path)
    bad = run / "results" / "abuse.json"
    rec = json.loads(bad.read_text())
    rec["verdict"]["confidence"] = 3
    bad.write_text(json.dumps(rec))
    with pytest.raises(
        RunFormatError, match=r"abuse.json is not a valid result file: verdict.confidence"
    ):
        evaluate_run(run)
    rec["verdict"]["confidence"] = 0.5
    rec["video_id"] = "arson"
    bad.write_text(json.dumps(rec))
    with pytest.raises(RunFormatError, match="holds video_id 'arson', not 'abuse'"):
        evaluate_run(run)
    bad.unlink()
    (run / "run.json").unlink()
    with pytest.raises(RunFormatError, match=r"no run.json"):
        evaluate_run(run)
    # The ground truth can be given instead of run.json.
    ds = load_dataset("manifest", tmp_path / "data")
    assert evaluate_run(run, ds.spec, write=False).counts.missing_results == 1
    with pytest.raises(RunFormatError, match="no results/ folder"):
        evaluate_run(tmp_path)
    other = Dataset(kind="folder", root="/elsewhere", videos=[_video("elsewhere")])
    with pytest.raises(RunFormatError, match="none of the 3 results"):
        evaluate_run(run, other, write=False)


def test_eval_cli_helper_prints_and_writes(tmp_path: Path) -> None:
    run = _write_run(tmp_path)
    console = Console(record=True, width=160)
    m = evaluate_run_cli(run, dataset=["manifest", str(tmp_path / "data")], console=console)
    text = console.export_text()
    assert "frame AUC" in text and f"wrote {run / 'metrics.json'}" in text
    assert Metrics.load(run / "metrics.json") == m
    with pytest.raises(DatasetError, match="--dataset takes KIND and ROOT"):
        evaluate_run_cli(run, dataset=["manifest"], console=console)
    with pytest.raises(DatasetError, match="--annotations needs --dataset"):
        evaluate_run_cli(run, annotations="a.txt", console=console)
