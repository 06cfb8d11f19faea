"""The timeline plot: score curves and spans on one time axis, as inline SVG for the report
(``timeline_svg``) and on a notebook figure (``draw_timeline``, used by ``views``).

Drawn on a bare ``matplotlib.figure.Figure`` (never pyplot), so no global figure state is
created or leaked between calls, whatever backend the user's session has selected.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vadetective.agent.core.types import Evidence, ScoreCurve, TimeSpan, Trace
from vadetective.agent.core.vocabulary import ToolName

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Colours shared by the plot and the page's legend chips.
COLORS = {
    "score": "#1f4e79",
    "candidate": "#e69f00",
    "verdict": "#c0392b",
    "truth": "#2e8b57",
    "frame_scores": "#555555",
}
_FAMILY_COLORS = ("#8e44ad", "#16a085", "#d35400", "#2c3e50", "#7f8c8d", "#b7950b")
_MAX_EXTRA_CURVES = 4


@dataclass(frozen=True)
class TimelineData:
    """What the timeline shows, gathered from a trace.

    Attributes:
        duration_s: Length of the time axis (the video's duration when known).
        main: The whole-video score curve (the score evidence with the most points).
        main_id: Id of the evidence holding ``main``.
        extra: Other evidence curves (e.g. a finer re-scoring of one span), by evidence id.
        frame_scores: The verdict's per-frame anomaly scores, when present.
        candidates: Candidate spans of the score evidence, with the id of their evidence.
        verdict_spans: Spans of the verdict.
        truth: Ground-truth spans (empty when not given).
        box_times: Times of the verdict's boxes.
    """

    duration_s: float
    main: ScoreCurve | None
    main_id: str | None
    extra: list[tuple[str, ScoreCurve]]
    frame_scores: ScoreCurve | None
    candidates: list[tuple[str, TimeSpan]]
    verdict_spans: list[TimeSpan]
    truth: list[TimeSpan]
    box_times: list[float]

    @property
    def empty(self) -> bool:
        return (
            self.main is None
            and self.frame_scores is None
            and not self.candidates
            and not self.verdict_spans
            and not self.truth
        )


def _is_score_evidence(ev: Evidence) -> bool:
    return ev.ok and (ev.curve is not None or ev.tool == ToolName.SCORE_TIMELINE)


def timeline_data(trace: Trace, truth: list[TimeSpan]) -> TimelineData:
    """Gather curves and spans for the timeline from a trace and optional ground truth.

    Args:
        trace: The trace (score evidence, verdict, video duration).
        truth: Ground-truth spans to draw; may be empty.

    Returns:
        The data to plot.
    """
    scored = [ev for ev in trace.evidence if _is_score_evidence(ev)]
    curves = [(ev.id, ev.curve) for ev in scored if ev.curve is not None and len(ev.curve) > 0]
    main_id: str | None = None
    main: ScoreCurve | None = None
    if curves:
        # The most points wins; among equals the earliest (the whole-video perception pass).
        main_id, main = max(curves, key=lambda ic: len(ic[1]))
    extra = [(i, c) for i, c in curves if i != main_id][:_MAX_EXTRA_CURVES]
    candidates = [(ev.id, span) for ev in scored for span in ev.spans]
    verdict = trace.verdict
    frame_scores = verdict.frame_scores if verdict is not None else None
    if frame_scores is not None and len(frame_scores) == 0:
        frame_scores = None
    verdict_spans = list(verdict.spans) if verdict is not None else []
    box_times = [b.t_s for b in verdict.boxes] if verdict is not None else []
    ends: list[float] = [0.0]
    if trace.video is not None:
        ends.append(trace.video.duration_s)
    for c in [main, frame_scores, *(c for _, c in extra)]:
        if c is not None and c.t_s:
            ends.append(c.t_s[-1])
    ends += [s.end_s for _, s in candidates] + [s.end_s for s in verdict_spans + truth]
    ends += box_times
    return TimelineData(
        duration_s=max(ends),
        main=main,
        main_id=main_id,
        extra=extra,
        frame_scores=frame_scores,
        candidates=candidates,
        verdict_spans=verdict_spans,
        truth=list(truth),
        box_times=box_times,
    )


def timeline_svg(data: TimelineData) -> str | None:
    """Draw the timeline (``draw_timeline``) as an inline ``<svg>`` element (no XML prolog, no
    metadata).

    Args:
        data: From ``timeline_data``.

    Returns:
        The SVG markup, or None when there is nothing to draw.
    """
    if data.empty:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 3.9), dpi=100, layout="constrained")
    draw_timeline(fig, data)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return _inline_svg(buf.getvalue())


def draw_timeline(fig: Figure, data: TimelineData) -> tuple[Axes, Axes]:
    """Draw the timeline on ``fig``: the report's plot and the notebooks' ``timeline_figure``.

    The upper panel holds the anomaly score (thick), its per-family curves (thin), other score
    evidence (dotted) and the verdict's per-frame scores (dashed), with verdict spans shaded;
    the lower panel has one lane each for ground truth, the verdict and the candidate spans,
    and a marker at each verdict box's time.

    Args:
        fig: An empty figure (a bare ``Figure``, never pyplot's).
        data: From ``timeline_data``.

    Returns:
        The score axes and the lanes axes, sharing the time axis.
    """
    ax, lanes = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3.0, 1.0]})
    _draw_scores(ax, data)
    _draw_lanes(lanes, data)
    return ax, lanes


def _plain(text: str) -> str:
    """Trace text as matplotlib text: ``$…$`` would be parsed as mathtext (and a malformed
    formula raises while the figure is drawn), a leading ``_`` hides a legend entry."""
    return text.replace("$", r"\$").lstrip("_") or "?"


def _draw_scores(ax: Axes, data: TimelineData) -> None:
    for span in data.verdict_spans:
        ax.axvspan(span.start_s, span.end_s, color=COLORS["verdict"], alpha=0.10, lw=0)
    if data.main is not None:
        main = data.main
        for k, (name, values) in enumerate(sorted(main.families.items())):
            color = _FAMILY_COLORS[k % len(_FAMILY_COLORS)]
            ax.plot(
                main.t_s, values, lw=1.0, alpha=0.85, color=color, label=_plain(f"family: {name}")
            )
        label = _plain(f"anomaly score ({data.main_id})")
        ax.plot(main.t_s, main.score, lw=2.2, color=COLORS["score"], label=label)
    for eid, curve in data.extra:
        ax.plot(
            curve.t_s, curve.score, lw=1.3, ls=":", color="#34495e", label=_plain(f"score ({eid})")
        )
    if data.frame_scores is not None:
        fs = data.frame_scores
        color = COLORS["frame_scores"]
        ax.plot(fs.t_s, fs.score, lw=1.2, ls="--", color=color, label="verdict frame scores")
    ax.set_xlim(0.0, max(data.duration_s, 1e-3))
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("score")
    ax.grid(True, alpha=0.25)
    ax.spines[["top", "right"]].set_visible(False)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8, ncols=4, frameon=False)


def _draw_lanes(lanes: Axes, data: TimelineData) -> None:
    rows = [
        ("truth", [(s.start_s, s.end_s) for s in data.truth], COLORS["truth"]),
        ("verdict", [(s.start_s, s.end_s) for s in data.verdict_spans], COLORS["verdict"]),
        ("candidates", [(s.start_s, s.end_s) for _, s in data.candidates], COLORS["candidate"]),
    ]
    for row, (name, spans, color) in enumerate(rows):
        y = len(rows) - 1 - row
        if spans:
            bars = [(a, b - a) for a, b in spans]
            lanes.broken_barh(bars, (y - 0.35, 0.7), facecolors=color, alpha=0.8, label=name)
    if data.box_times:
        ys = [1.0] * len(data.box_times)
        lanes.plot(data.box_times, ys, "v", color="black", ms=4, label="verdict boxes")
    lanes.set_yticks(range(len(rows)), [name for name, _, _ in reversed(rows)])
    lanes.set_ylim(-0.6, len(rows) - 0.4)
    lanes.set_xlabel("time (s)")
    lanes.grid(True, axis="x", alpha=0.25)
    lanes.spines[["top", "right"]].set_visible(False)


def _inline_svg(svg: str) -> str:
    """Matplotlib's SVG document as an element fit to inline in HTML, scaling to its box."""
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)

    def _responsive(match: re.Match[str]) -> str:
        tag = re.sub(r'\s(width|height)="[^"]*"', "", match.group(0))
        return tag.replace("<svg", '<svg class="timeline" role="img" aria-label="timeline"', 1)

    return re.sub(r"<svg\b[^>]*>", _responsive, svg, count=1)
