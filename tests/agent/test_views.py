"""Notebook figures on a real classical run: what they draw, not how the pixels look."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.core.types import Box, TimeSpan, Trace, Verdict
from vadetective.agent.report.images import select_keyframes
from vadetective.agent.report.views import (
    InlineFigure,
    keyframes_figure,
    run_timelines,
    timeline_figure,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Run:
    """A one-video batch run of the classical profile over a generated fall scene."""

    def __init__(self, root: Path) -> None:
        from vadetective.agent.batch.runner import run_dataset
        from vadetective.agent.synth.scene import generate_suite

        (self.truth,) = generate_suite(root / "suite", kinds=["fall"], seeds=[0], duration_s=10.0)
        self.dir = root / "run"
        summary = run_dataset(root / "suite" / "manifest.jsonl", self.dir, profile="classical")
        assert summary.done == 1, summary.outcomes
        self.video_id = summary.outcomes[0].video_id
        self.trace_dir = self.dir / "traces" / self.video_id
        self.trace = Trace.load(self.trace_dir / "trace.json")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return Run(tmp_path_factory.mktemp("views"))


def _bars(fig: Figure) -> list[list[tuple[float, float]]]:
    """The (start, end) extents of each span lane drawn in the timeline's lower axes."""
    lanes = fig.axes[1]
    out = []
    for coll in lanes.collections:
        assert isinstance(coll, PolyCollection)
        spans = []
        for path in coll.get_paths():
            xs = np.asarray(path.vertices)[:, 0]
            spans.append((round(float(xs.min()), 3), round(float(xs.max()), 3)))
        out.append(sorted(spans))
    return out


def _texts(fig: Figure) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def test_the_run_is_a_real_detection(run: Run) -> None:
    """The fixture's trace holds what the figures draw: a curve, candidates, a verdict span."""
    verdict = run.trace.verdict
    assert verdict is not None and verdict.spans and verdict.boxes
    assert any(ev.curve is not None for ev in run.trace.evidence)
    assert run.truth.spans


def test_timeline_figure_draws_curves_spans_and_truth(run: Run) -> None:
    trace, verdict = run.trace, run.trace.verdict
    assert verdict is not None
    fig = timeline_figure(trace, ground_truth=run.truth.spans)
    assert isinstance(fig, InlineFigure)
    assert len(fig.axes) == 2
    scores, lanes = fig.axes
    main = max((ev.curve for ev in trace.evidence if ev.curve is not None), key=len)
    labels = [str(line.get_label()) for line in scores.lines]
    assert "anomaly score (E1)" in labels
    assert sum(lbl.startswith("family: ") for lbl in labels) == len(main.families) > 0
    assert ("verdict frame scores" in labels) == (verdict.frame_scores is not None)
    (score_line,) = [ln for ln in scores.lines if ln.get_label() == "anomaly score (E1)"]
    assert np.asarray(score_line.get_xdata()).tolist() == main.t_s
    assert np.asarray(score_line.get_ydata()).tolist() == main.score
    shaded = [p for p in scores.patches if isinstance(p, Rectangle)]
    assert len(shaded) == len(verdict.spans), "one shaded band per verdict span"
    # Lanes top to bottom: truth, verdict, candidates.
    truth_bars, verdict_bars, candidate_bars = _bars(fig)
    assert truth_bars == [(round(s.start_s, 3), round(s.end_s, 3)) for s in run.truth.spans]
    assert verdict_bars == sorted((round(s.start_s, 3), round(s.end_s, 3)) for s in verdict.spans)
    assert candidate_bars
    assert [t.get_text() for t in lanes.get_yticklabels()] == ["candidates", "verdict", "truth"]
    (markers,) = [ln for ln in lanes.lines if ln.get_label() == "verdict boxes"]
    assert np.asarray(markers.get_xdata()).tolist() == [b.t_s for b in verdict.boxes]
    assert trace.question in fig.get_suptitle()
    assert fig._repr_png_().startswith(PNG_MAGIC), "displays itself inline in Jupyter"


def test_ground_truth_from_a_truth_file_equals_the_spans(run: Run) -> None:
    from_file = timeline_figure(run.trace, ground_truth=str(run.truth.truth_path))
    from_list = timeline_figure(run.trace, ground_truth=run.truth.spans)
    assert _bars(from_file) == _bars(from_list)
    without = timeline_figure(run.trace, title="no truth")
    assert len(_bars(without)) == len(_bars(from_list)) - 1, "the truth lane is empty"
    assert without.get_suptitle() == "no truth"


def test_timeline_figure_rejects_a_bad_truth_file(run: Run, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no ground-truth file"):
        timeline_figure(run.trace, ground_truth=tmp_path / "missing.truth.json")


def test_timeline_figure_with_nothing_to_plot() -> None:
    fig = timeline_figure(Trace(question="anything?"))
    assert len(fig.axes) == 1 and not fig.axes[0].lines
    assert "nothing to plot" in _texts(fig)


def test_keyframes_figure_shows_the_verdict_frames_with_boxes(run: Run) -> None:
    trace, video = run.trace, run.trace.video
    assert video is not None and trace.verdict is not None
    expected = select_keyframes(trace)
    assert expected and all(kf.ref is not None for kf in expected)
    fig = keyframes_figure(trace, run.trace_dir)
    assert isinstance(fig, InlineFigure)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == len(expected)
    w, h = video.resolution_wh
    for ax, kf in zip(shown, expected, strict=True):
        (image,) = ax.images
        assert isinstance(image, AxesImage)
        rows, cols, channels = np.asarray(image.get_array()).shape
        assert channels == 3 and abs(cols / rows - w / h) < 0.02, "the whole frame, unstretched"
        assert kf.ref is not None and f"frame at {kf.ref.t_s:.2f} s" in ax.get_title()
        for box in kf.boxes:
            assert box.label in ax.get_xlabel()
    assert "Keyframes" in fig.get_suptitle()
    assert fig._repr_png_().startswith(PNG_MAGIC)


def test_keyframes_figure_caps_the_number_of_frames(run: Run) -> None:
    assert run.trace.verdict is not None
    # Without boxes a span is illustrated by the frames nearest its start, middle and end.
    spans_only = run.trace.verdict.model_copy(update={"boxes": []})
    trace = run.trace.model_copy(update={"verdict": spans_only})
    n = len(select_keyframes(trace))
    assert n >= 2

    def shown(fig: Figure) -> int:
        return sum(1 for ax in fig.axes if ax.images)

    assert shown(keyframes_figure(trace, run.trace_dir)) == n
    assert shown(keyframes_figure(trace, run.trace_dir, max_frames=n - 1)) == n - 1
    with pytest.raises(ValueError, match="max_frames must be at least 1"):
        keyframes_figure(trace, run.trace_dir, max_frames=0)


def test_keyframes_figure_says_why_an_image_is_missing(run: Run, tmp_path: Path) -> None:
    copy = tmp_path / "trace"
    shutil.copytree(run.trace_dir, copy)
    shutil.rmtree(copy / "frames")
    fig = keyframes_figure(run.trace, copy)
    assert not any(ax.images for ax in fig.axes)
    assert "missing file frames/" in _texts(fig)


def test_keyframes_figure_without_anything_to_illustrate(run: Run) -> None:
    no_verdict = Trace(question="anything?")
    assert "no keyframes: no verdict" in _texts(keyframes_figure(no_verdict, "."))
    bare = Verdict(question="q", answer="no", is_anomalous=False)
    quiet = run.trace.model_copy(update={"verdict": bare})
    assert "the verdict has no span or box" in _texts(keyframes_figure(quiet, run.trace_dir))


def test_keyframes_figure_for_boxes_far_from_any_frame(run: Run) -> None:
    """A box with no stored frame near it still gets a panel, captioned with the distance."""
    assert run.trace.verdict is not None and run.trace.video is not None
    far = Box(t_s=0.0, xyxy=(1.0, 1.0, 20.0, 40.0), label="far away", score=0.9)
    verdict = run.trace.verdict.model_copy(
        update={"spans": [TimeSpan(start_s=0.0, end_s=0.5)], "boxes": [far]}
    )
    fig = keyframes_figure(run.trace.model_copy(update={"verdict": verdict}), run.trace_dir)
    (ax,) = [ax for ax in fig.axes if ax.images]
    assert " s from 0.00 s" in ax.get_title()
    assert "far away 0.90" in ax.get_xlabel()


def test_run_timelines_draws_every_video_with_its_truth(run: Run) -> None:
    figures = run_timelines(run.dir)
    assert list(figures) == [run.video_id]
    fig = figures[run.video_id]
    assert run.video_id in fig.get_suptitle() and "truth: fall" in fig.get_suptitle()
    truth_bars = _bars(fig)[0]
    assert truth_bars == [(round(s.start_s, 3), round(s.end_s, 3)) for s in run.truth.spans]


def test_run_timelines_skips_missing_videos_and_survives_a_lost_dataset(
    run: Run, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run.dir, copy)
    (copy / "run.json").write_text('{"dataset": {"kind": "manifest", "root": "/nowhere"}}')
    with caplog.at_level(logging.WARNING, logger="vadetective.agent.report.views"):
        figures = run_timelines(copy, video_ids=["not_a_video", run.video_id])
    assert list(figures) == [run.video_id]
    assert "no finished trace for video not_a_video" in caplog.text
    assert "no ground truth" in caplog.text
    verdict_only = _bars(figures[run.video_id])
    assert len(verdict_only) == len(_bars(run_timelines(run.dir)[run.video_id])) - 1
