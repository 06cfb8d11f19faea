"""Figures for notebooks: a trace's timeline, its keyframes, and the timelines of a batch run.

    import vadetective as vd
    d = vd.Detective("clip.mp4", profile="classical")
    d.ask("Is anyone falling?")
    vd.timeline_figure(d.last_trace, ground_truth="clip.truth.json")   # shows itself inline
    vd.keyframes_figure(d.last_trace, d.out)

Everything is drawn on bare ``matplotlib.figure.Figure`` objects, never through pyplot, so no
global figure state is created or leaked, whatever backend the session selected. The figures
are ``InlineFigure``: a ``Figure`` that also renders itself as PNG in Jupyter, so it displays
inline with or without ``%matplotlib inline`` (when the inline backend is active, IPython's
own Figure formatter takes precedence and the result is the same picture).

The data comes from the report's own helpers (``timeline_data``, ``select_keyframes``,
``ImageEmbedder``), so a notebook shows exactly what ``report.html`` shows.
"""

from __future__ import annotations

import base64
import io
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from vadetective.agent.core.errors import VadetectiveError
from vadetective.agent.core.io import loads_json
from vadetective.agent.core.types import TimeSpan, Trace
from vadetective.agent.core.vocabulary import RunFolder
from vadetective.agent.datasets import Dataset, DatasetSpec, load_spec
from vadetective.agent.eval.evaluate import read_results
from vadetective.agent.report.html import load_ground_truth
from vadetective.agent.report.images import ImageEmbedder, KeyFrame, select_keyframes
from vadetective.agent.report.plot import draw_timeline, timeline_data

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes


logger = logging.getLogger(__name__)

__all__ = ["InlineFigure", "keyframes_figure", "run_timelines", "timeline_figure"]

_MAX_TITLE_CHARS = 90


class InlineFigure(Figure):
    """A matplotlib ``Figure`` that displays itself as a PNG in Jupyter (no pyplot needed)."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=self.dpi)
        return buf.getvalue()


def _short(text: str, limit: int = _MAX_TITLE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _verdict_label(trace: Trace) -> str:
    v = trace.verdict
    if v is None:
        return "no verdict"
    flag = {True: "anomalous", False: "normal", None: "undecided"}[v.is_anomalous]
    return f"{flag} ({v.confidence:.2f})" + (f", {v.category}" if v.category else "")


def _message_figure(text: str, figsize: tuple[float, float] = (8.0, 1.2)) -> InlineFigure:
    """A figure holding one line of text, for when there is nothing to draw."""
    fig = InlineFigure(figsize=figsize, dpi=100)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10, wrap=True)
    return fig


# ---------------------------------------------------------------------------- timeline


def timeline_figure(
    trace: Trace,
    ground_truth: list[TimeSpan] | Path | str | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """The trace's timeline: score curves, candidate spans, verdict spans and ground truth.

    The upper axes hold the anomaly score of the whole-video pass (thick), its per-family
    curves (thin), other score evidence (dotted) and the verdict's per-frame scores (dashed),
    with the verdict's spans shaded; the lower axes have one lane each for the ground truth,
    the verdict's spans and the candidate spans, with a marker at each verdict box's time.

    Args:
        trace: The analysed question (e.g. ``Detective.last_trace`` or ``Trace.load(path)``).
        ground_truth: Ground-truth spans, or a ``*.truth.json`` / JSON span file holding them.
        title: The figure's title; default: the question and the verdict.

    Returns:
        A figure with two axes (one with a message when the trace holds nothing to plot).

    Raises:
        DatasetError: ``ground_truth`` names a missing or malformed file.
    """

    truth = load_ground_truth(ground_truth) if ground_truth is not None else []
    data = timeline_data(trace, truth)
    if data.empty:
        return _message_figure(
            f"nothing to plot: no score curve, span or verdict in {trace.question!r}"
        )
    fig = InlineFigure(figsize=(11.0, 4.3), dpi=100, layout="constrained")
    draw_timeline(fig, data)
    if title is None:
        title = f"{_short(trace.question)} — {_verdict_label(trace)}"
    fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    return fig


# ---------------------------------------------------------------------------- keyframes


def keyframes_figure(trace: Trace, trace_dir: Path | str, max_frames: int = 6) -> Figure:
    """Keyframes of the verdict's spans with the verdict's boxes drawn and labelled.

    The frames are the trace's own frame images (``select_keyframes``, as in the HTML report),
    read from ``trace_dir`` and checked like the report does: a missing or unreadable image
    becomes a panel stating why, never an exception.

    Args:
        trace: The analysed question.
        trace_dir: The folder the trace's image paths are relative to (the Detective's ``out``,
            or the folder holding ``trace.json``).
        max_frames: Show at most this many keyframes (in span order, then time order).

    Returns:
        A figure with one axes per keyframe (one with a message when the verdict has no span
        or box to illustrate).

    Raises:
        ValueError: ``max_frames`` is less than 1.
    """
    if max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    resolution = trace.video.resolution_wh if trace.video is not None else None
    embedder = ImageEmbedder(Path(trace_dir), resolution)
    keyframes = select_keyframes(trace, pixels=embedder.pixel_count)[:max_frames]
    if not keyframes:
        why = "no verdict" if trace.verdict is None else "the verdict has no span or box"
        return _message_figure(f"no keyframes: {why}")
    cols = min(3, len(keyframes))
    rows = math.ceil(len(keyframes) / cols)
    w, h = resolution or (16, 9)
    panel_w = 4.2
    panel_h = panel_w * h / w + 0.5  # room for the caption
    fig = InlineFigure(figsize=(panel_w * cols, panel_h * rows), dpi=100, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, kf in zip(axes, keyframes, strict=False):
        _draw_keyframe(ax, kf, embedder)
    for ax in axes[len(keyframes) :]:
        ax.set_axis_off()
    fig.suptitle(f"Keyframes — {_verdict_label(trace)}", fontsize=11, x=0.01, ha="left")
    return fig


def _draw_keyframe(ax: Axes, kf: KeyFrame, embedder: ImageEmbedder) -> None:
    where = f"{kf.span.start_s:.2f}–{kf.span.end_s:.2f} s" if kf.span is not None else "boxes"
    ax.set_xticks([])
    ax.set_yticks([])
    if kf.ref is None:
        ax.text(0.5, 0.5, f"no frame image near {kf.t_s:.2f} s", ha="center", va="center")
        ax.set_title(where, fontsize=9)
        return
    emb = embedder.embed(kf.ref, boxes=kf.boxes, max_side=720)
    caption = [where, f"frame at {kf.ref.t_s:.2f} s" if kf.ref.t_s is not None else kf.ref.path]
    off = kf.offset_s
    if off is not None and off > 1.0:
        caption.append(f"{off:.1f} s from {kf.t_s:.2f} s")
    if not emb.hash_ok:
        caption.append("hash mismatch")
    ax.set_title(" · ".join(caption), fontsize=9)
    if emb.data_uri is None:
        ax.text(0.5, 0.5, emb.problem or "no image", ha="center", va="center", wrap=True)
        return
    ax.imshow(_decode_data_uri(emb.data_uri))
    if kf.boxes:
        labels = ", ".join(f"{b.label or 'box'} {b.score:.2f}" for b in kf.boxes)
        ax.set_xlabel(_short(labels, 60), fontsize=8)


def _decode_data_uri(uri: str) -> np.ndarray:
    """RGB pixels of a ``data:image/...;base64,...`` URI made by ``ImageEmbedder``."""
    import cv2
    import numpy as np

    raw = base64.b64decode(uri.split(",", 1)[1])
    bgr = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:  # pragma: no cover - the embedder only encodes images OpenCV decoded
        raise ValueError("the embedded image could not be decoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------------------- batch runs


def _run_dataset(run_dir: Path) -> Dataset | None:
    """The dataset recorded in ``run.json``, or None (with a warning) when it cannot be read."""
    from pydantic import ValidationError

    path = run_dir / RunFolder.RUN
    try:
        spec = loads_json(path.read_text(encoding="utf-8")).get("dataset")
        return load_spec(DatasetSpec.model_validate(spec))
    except (OSError, ValueError, AttributeError, ValidationError, VadetectiveError) as exc:
        logger.warning(
            "no ground truth for %s: cannot load the dataset of %s (%s)", run_dir, path, exc
        )
        return None


def run_timelines(
    run_dir: Path | str,
    dataset: Dataset | None = None,
    video_ids: Sequence[str] | None = None,
) -> dict[str, Figure]:
    """The timeline of every finished video of a batch run, with its ground truth.

    Args:
        run_dir: A ``run_dataset`` output folder (``results/`` and ``traces/<video_id>/``).
        dataset: The ground truth; default: the dataset recorded in the run's ``run.json``
            (no ground truth is drawn, with a warning, when it cannot be loaded).
        video_ids: Only these videos (in this order); default: every finished video, by id.

    Returns:
        Figures by video id. Videos whose trace is missing are left out (with a warning).

    Raises:
        RunFormatError: ``run_dir`` has no ``results/`` folder or holds a malformed result.
    """

    run_dir = Path(run_dir)
    results = {r.video_id: r for r in read_results(run_dir)}
    if dataset is None:
        dataset = _run_dataset(run_dir)
    wanted = list(video_ids) if video_ids is not None else sorted(results)
    figures: dict[str, Figure] = {}
    for video_id in wanted:
        result = results.get(video_id)
        trace_path = run_dir / RunFolder.TRACES / video_id / "trace.json"
        if result is None or not trace_path.is_file():
            logger.warning("run %s has no finished trace for video %s", run_dir, video_id)
            continue
        trace = Trace.load(trace_path)
        labelled = dataset.get(video_id) if dataset is not None else None
        truth = labelled.time_spans(result.video.fps) if labelled is not None else []
        title = f"{video_id} — {_verdict_label(trace)}"
        if labelled is not None and labelled.is_anomalous is not None:
            title += f"; truth: {labelled.category or ('anomalous' if labelled.is_anomalous else 'normal')}"
        figures[video_id] = timeline_figure(trace, truth, title=title)
    return figures
