"""One self-contained HTML file that shows why the agent decided what it decided.

``render_report(trace, trace_dir)`` writes a page with the verdict at the top, a timeline plot
(score curves, candidate spans, verdict spans, ground truth), keyframes of each verdict span
with the boxes drawn, every step of the run (collapsible, with the planner's words, the tool
arguments, the evidence with its frames and crops, errors and timings) and the cost.

Everything is inline: images as ``data:`` URIs, the plot as inline SVG, one ``<style>`` and one
small ``<script>`` (it opens a collapsed step when a link points into it). A Content Security
Policy in the page forbids any network fetch, so the file opens the same offline as online.
All text from the trace is escaped.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.core.io import atomic_write_text, loads_json
from vadetective.agent.core.types import Box, Evidence, ImageRef, TimeSpan, Trace, TraceStep
from vadetective.agent.report.assets import CSS, SCRIPT, csp
from vadetective.agent.report.images import (
    EmbeddedImage,
    ImageEmbedder,
    KeyFrame,
    label_color_hex,
    select_keyframes,
)
from vadetective.agent.report.plot import COLORS, timeline_data, timeline_svg

logger = logging.getLogger(__name__)

__all__ = ["load_ground_truth", "render_report", "report_html"]

_e = html.escape


def load_ground_truth(source: list[TimeSpan] | Path | str) -> list[TimeSpan]:
    """Ground-truth spans from a list, or from a JSON file.

    The file is a ``*.truth.json`` (an object whose ``"spans"`` list holds ``{"start_s": ..,
    "end_s": ..}`` objects or ``[start_s, end_s]`` pairs), or a bare JSON list of either.

    Args:
        source: Spans, or the path of such a file.

    Returns:
        The spans, sorted by start.

    Raises:
        DatasetError: The file is missing or not in one of those forms.
    """
    if not isinstance(source, (str, Path)):
        return sorted(source, key=lambda s: s.start_s)
    path = Path(source)
    try:
        data = loads_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DatasetError(f"no ground-truth file at {path}") from exc
    except IsADirectoryError:
        raise DatasetError(f"ground truth {path} is a folder: pass a *.truth.json file") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"ground truth {path} is not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"ground truth {path} is not valid JSON ({exc.msg} at line {exc.lineno})"
        ) from exc
    raw = data.get("spans") if isinstance(data, dict) else data
    if not isinstance(raw, list):
        raise DatasetError(
            f'ground truth {path} must hold a "spans" list of {{"start_s", "end_s"}} objects'
        )
    spans: list[TimeSpan] = []
    for i, item in enumerate(raw):
        try:
            if isinstance(item, (list, tuple)) and len(item) == 2:
                spans.append(TimeSpan(start_s=float(item[0]), end_s=float(item[1])))
            elif isinstance(item, dict):
                fields = {k: item[k] for k in ("start_s", "end_s", "score", "label") if k in item}
                spans.append(TimeSpan.model_validate(fields))
            else:
                raise ValueError(f"expected an object or a [start_s, end_s] pair, got {item!r}")
        except (ValueError, TypeError) as exc:
            raise DatasetError(f"ground truth {path}: span {i} is invalid: {exc}") from exc
    return sorted(spans, key=lambda s: s.start_s)


def render_report(
    trace: Trace,
    trace_dir: Path,
    out: Path | None = None,
    ground_truth: list[TimeSpan] | Path | None = None,
) -> Path:
    """Write the trace's self-contained HTML report and return its path.

    Args:
        trace: The analysis to show.
        trace_dir: The folder the trace's image paths are relative to (where trace.json is).
        out: Where to write; default ``trace_dir / "report.html"``.
        ground_truth: Ground-truth spans, or a ``*.truth.json`` file holding them, drawn on
            the timeline.

    Returns:
        The path of the written file.

    Raises:
        DatasetError: The ground-truth file is missing or malformed.
    """
    trace_dir = Path(trace_dir)
    out = Path(out) if out is not None else trace_dir / "report.html"
    truth = load_ground_truth(ground_truth) if ground_truth is not None else []
    page = report_html(trace, trace_dir, truth)
    atomic_write_text(out, page)
    logger.info("report written to %s (%d kB)", out, len(page) // 1024)
    return out


# ---------------------------------------------------------------------------- page


def _anchor(prefix: str, ident: str) -> str:
    return f"{prefix}-{re.sub(r'[^A-Za-z0-9_-]', '_', ident)}"


def _fmt_s(t: float | None) -> str:
    return "–" if t is None else f"{t:.2f} s"


def _fmt_span(span: TimeSpan) -> str:
    return f"{span.start_s:.2f}–{span.end_s:.2f} s"


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


class _Page:
    """Builds the HTML of one report; holds what several sections share."""

    def __init__(self, trace: Trace, trace_dir: Path, truth: list[TimeSpan]) -> None:
        self.trace = trace
        self.truth = truth
        res = trace.video.resolution_wh if trace.video is not None else None
        self.images = ImageEmbedder(trace_dir, res)
        self.evidence_ids = {ev.id for ev in trace.evidence}
        self.cited = set(trace.verdict.evidence_ids) if trace.verdict is not None else set()
        self.step_of_evidence = {
            s.evidence_id: s.index for s in trace.steps if s.evidence_id is not None
        }
        known = sorted(self.evidence_ids | self.cited, key=len, reverse=True)
        self._ref_re = (
            re.compile(r"(?<![\w-])(" + "|".join(re.escape(k) for k in known) + r")(?![\w-])")
            if known
            else None
        )

    # -- small pieces

    def ref_link(self, evidence_id: str) -> str:
        """A link to the evidence (inside its step), or a struck-out id if the trace lacks it."""
        if evidence_id in self.evidence_ids:
            return (
                f'<a class="ref" href="#{_anchor("evidence", evidence_id)}">{_e(evidence_id)}</a>'
            )
        return f'<span class="missing-ref" title="not in this trace">{_e(evidence_id)}</span>'

    def linkify(self, text: str) -> str:
        """Escape ``text`` and turn the evidence ids it mentions into links."""
        if self._ref_re is None:
            return _e(text)
        parts: list[str] = []
        last = 0
        for m in self._ref_re.finditer(text):
            parts.append(_e(text[last : m.start()]))
            parts.append(self.ref_link(m.group(1)))
            last = m.end()
        parts.append(_e(text[last:]))
        return "".join(parts)

    def figure(self, emb: EmbeddedImage, caption: str) -> str:
        notes = ""
        if not emb.hash_ok:
            notes = ' <span class="badge warn" title="the file changed since the run">hash mismatch</span>'
        if emb.data_uri is None:
            body = f'<div class="placeholder">image unavailable: {_e(emb.problem or "")}</div>'
        else:
            body = f'<img src="{emb.data_uri}" alt="{_e(caption)}" loading="lazy">'
        return f"<figure>{body}<figcaption>{_e(caption)}{notes}</figcaption></figure>"

    def image_caption(self, ref: ImageRef) -> str:
        bits: list[str] = [ref.kind]
        if ref.t_s is not None:
            bits.append(f"t = {ref.t_s:.2f} s")
        if ref.boxes:
            labels = ", ".join(sorted({b.label or "box" for b in ref.boxes}))
            bits.append(f"{len(ref.boxes)} box{'es' if len(ref.boxes) > 1 else ''}: {labels}")
        bits.append(ref.path)
        return " · ".join(bits)

    def gallery(self, refs: Iterable[ImageRef]) -> str:
        figs = [
            self.figure(self.images.embed(r, max_side=480), self.image_caption(r)) for r in refs
        ]
        return f'<div class="gallery small">{"".join(figs)}</div>' if figs else ""

    # -- sections

    def header(self) -> str:
        t, v = self.trace, self.trace.video
        meta: list[str] = []
        if v is not None:
            meta.append(
                f"<b>video</b> {_e(Path(v.path).name)} "
                f'<span title="{_e(v.path)}">({_e(v.path)})</span>'
            )
            meta.append(
                f"{v.duration_s:.1f} s · {v.fps:.2f} fps · {v.frame_count} frames · "
                f"{v.resolution_wh[0]}×{v.resolution_wh[1]}"
            )
            if v.truncated_at_s is not None:
                meta.append(
                    f'<span class="badge warn">decoding stopped at {v.truncated_at_s:.2f} s</span>'
                )
        meta.append(f"<b>profile</b> {_e(t.profile or '–')} · <b>graph</b> {_e(t.graph)}")
        if t.models:
            meta.append(
                "<b>models</b> "
                + ", ".join(f"{_e(k)}: {_e(val)}" for k, val in sorted(t.models.items()))
            )
        meta.append(f"<b>started</b> {_e(t.started_at.isoformat(timespec='seconds'))}")
        return f'<h1>{_e(t.question)}</h1><div class="meta">{"<br>".join(meta)}</div>'

    def verdict(self) -> str:
        v = self.trace.verdict
        if v is None:
            return (
                '<section class="card verdict" id="verdict"><div class="answer">No verdict</div>'
                '<p class="note">This trace ends without a verdict (the run stopped early); '
                "its steps are below.</p></section>"
            )
        cls, label = (
            ("anomalous", "ANOMALOUS")
            if v.is_anomalous
            else ("normal", "NORMAL")
            if v.is_anomalous is False
            else ("undecided", "UNDECIDED")
        )
        kv = [
            f'<span class="badge {cls}">{label}</span>',
            f'<span>confidence <span class="conf"><span style="width:{v.confidence * 100:.0f}%">'
            f"</span></span> {v.confidence:.2f}</span>",
            f"<span><b>category</b> {_e(v.category or '–')}</span>",
        ]
        if v.forced:
            kv.append(
                '<span class="badge warn" title="the step budget ran out">forced verdict</span>'
            )
        parts = [
            f'<section class="card verdict {cls}" id="verdict">',
            f'<div class="answer">{_e(v.answer)}</div>',
            f'<div class="kv">{"".join(kv)}</div>',
        ]
        if v.justification:
            parts.append(f'<div class="justification">{self.linkify(v.justification)}</div>')
        if v.evidence_ids:
            parts.append(
                "<div><b>evidence</b> "
                + ", ".join(self.ref_link(i) for i in v.evidence_ids)
                + "</div>"
            )
        if v.spans:
            parts.append(
                "<div><b>when</b> "
                + ", ".join(
                    _e(_fmt_span(s) + (f" ({s.label})" if s.label else "")) for s in v.spans
                )
                + "</div>"
            )
        if v.boxes:
            parts.append(self.box_table(v.boxes))
        parts.append(f'<div class="costline">{self.cost_line()}</div></section>')
        return "".join(parts)

    def cost_line(self) -> str:
        c = self.trace.cost
        stages = ", ".join(f"{_e(k)} {sec:.2f} s" for k, sec in c.seconds_by_stage.items())
        return (
            f"<b>cost</b> {c.planner_calls} planner calls · {c.tool_calls} tool calls · "
            f"{c.frames_decoded} frames decoded · {c.frames_shown} frames shown · "
            f"{c.seconds_total:.2f} s total" + (f" ({stages})" if stages else "")
        )

    def timeline(self) -> str:
        data = timeline_data(self.trace, self.truth)
        svg = timeline_svg(data)
        if svg is None:
            return '<h2>Timeline</h2><p class="note">No score curve or span in this trace.</p>'
        legend = "".join(
            f'<span class="chip" style="background:{COLORS[key]}"></span>{name}'
            for key, name, shown in (
                ("truth", "ground truth", bool(data.truth)),
                ("verdict", "verdict spans", bool(data.verdict_spans)),
                ("candidate", "candidate spans", bool(data.candidates)),
            )
            if shown
        )
        rows: list[str] = []
        for span in data.truth:
            rows.append(
                f"<tr><td>ground truth</td><td>{_e(_fmt_span(span))}</td><td></td><td></td></tr>"
            )
        for span in data.verdict_spans:
            rows.append(
                f"<tr><td>verdict</td><td>{_e(_fmt_span(span))}</td>"
                f"<td>{'' if span.score is None else f'{span.score:.2f}'}</td>"
                f"<td>{_e(span.label or '')}</td></tr>"
            )
        for eid, span in data.candidates:
            rows.append(
                f"<tr><td>candidate ({self.ref_link(eid)})</td><td>{_e(_fmt_span(span))}</td>"
                f"<td>{'' if span.score is None else f'{span.score:.2f}'}</td>"
                f"<td>{_e(span.label or '')}</td></tr>"
            )
        table = (
            "<details><summary>spans</summary><table><tr><th>source</th><th>span</th>"
            f"<th>score</th><th>label</th></tr>{''.join(rows)}</table></details>"
            if rows
            else ""
        )
        truth_note = (
            f' <span class="badge ok" id="truth-legend">ground truth: {len(data.truth)} span'
            f"{'s' if len(data.truth) != 1 else ''}</span>"
            if data.truth
            else ""
        )
        return (
            f'<h2>Timeline{truth_note}</h2><section class="card">{svg}'
            f'<div class="legend meta">{legend}</div>{table}</section>'
        )

    def keyframes(self) -> str:
        v = self.trace.verdict
        if v is None or not (v.spans or v.boxes):
            return ""
        kfs = select_keyframes(self.trace, pixels=self.images.pixel_count)
        figs = [self.keyframe_figure(k) for k in kfs]
        return (
            '<h2>Keyframes of the verdict</h2><section class="keyframes">'
            f'<div class="gallery">{"".join(figs)}</div></section>'
        )

    def keyframe_figure(self, kf: KeyFrame) -> str:
        where = _fmt_span(kf.span) if kf.span is not None else "boxes"
        if kf.ref is None:
            return (
                f'<figure><div class="placeholder">no frame image in this trace near '
                f"{kf.t_s:.2f} s</div><figcaption>{_e(where)}</figcaption></figure>"
            )
        emb = self.images.embed(kf.ref, boxes=kf.boxes, max_side=720)
        bits = [where, f"frame at {_fmt_s(kf.ref.t_s)}"]
        if kf.boxes:
            labels = ", ".join(f"{b.label or 'box'} {b.score:.2f}" for b in kf.boxes)
            bits.append(labels)
        off = kf.offset_s
        if off is not None and off > 1.0:
            bits.append(f"nearest frame is {off:.1f} s from {kf.t_s:.2f} s")
        return self.figure(emb, " · ".join(bits))

    def box_table(self, boxes: list[Box]) -> str:
        rows = "".join(
            f'<tr><td class="num">{b.t_s:.2f}</td>'
            f'<td><span style="color:{label_color_hex(b.label)}">■</span> {_e(b.label)}</td>'
            f'<td class="num">{b.score:.2f}</td>'
            f"<td>{', '.join(f'{x:.0f}' for x in b.xyxy)}</td></tr>"
            for b in boxes
        )
        return (
            "<table><tr><th>t (s)</th><th>label</th><th>score</th><th>xyxy (px)</th></tr>"
            f"{rows}</table>"
        )

    def evidence_card(
        self, ev: Evidence, step_args: dict[str, Any] | None, step_error: str | None = None
    ) -> str:
        status = (
            '<span class="badge ok">ok</span>'
            if ev.ok
            else '<span class="badge error">error</span>'
        )
        cited = (
            ' <span class="badge kind">cited by the verdict</span>' if ev.id in self.cited else ""
        )
        parts = [
            f'<div class="evidence" id="{_anchor("evidence", ev.id)}">',
            f"<h4>{_e(ev.id)} · {_e(ev.tool)} {status}{cited}</h4>",
        ]
        if ev.summary:
            parts.append(f"<div>{self.linkify(ev.summary)}</div>")
        if ev.error and ev.error != step_error:
            parts.append(f'<div class="error-box">{_e(ev.error)}</div>')
        if ev.args and ev.args != step_args:
            parts.append(f"<pre>{_e(_json(ev.args))}</pre>")
        if ev.curve is not None and len(ev.curve):
            c = ev.curve
            peak = max(range(len(c)), key=lambda i: c.score[i])
            fam = f" · families: {_e(', '.join(c.families))}" if c.families else ""
            parts.append(
                f'<div class="meta">score curve: {len(c)} points, max {c.score[peak]:.2f} at '
                f"{c.t_s[peak]:.2f} s{fam}</div>"
            )
        if ev.spans:
            parts.append(
                '<div class="meta">spans: '
                + ", ".join(
                    _e(_fmt_span(s) + (f" ({s.score:.2f})" if s.score is not None else ""))
                    for s in ev.spans
                )
                + "</div>"
            )
        if ev.boxes:
            parts.append(self.box_table(ev.boxes))
        facts = ev.all_facts()
        if facts:
            rows = "".join(
                f"<tr><td>{_e(k)}</td><td>{_e(str(val))}</td></tr>" for k, val in facts.items()
            )
            parts.append(f"<table><tr><th>fact</th><th>value</th></tr>{rows}</table>")
        parts.append(self.gallery(ev.images))
        parts.append("</div>")
        return "".join(parts)

    def step(self, step: TraceStep) -> str:
        ev = self.trace.evidence_by_id(step.evidence_id) if step.evidence_id else None
        error = step.error or (ev.error if ev is not None else None)
        is_open = bool(error) or step.kind == "verdict" or (ev is not None and ev.id in self.cited)
        classes = f"step kind-{_e(step.kind)}" + (" has-error" if error else "")
        head = [
            f'<span class="badge kind">{_e(step.kind)}</span>',
            f'<span class="tool">{_e(step.tool)}</span>' if step.tool else "",
            f'<span class="sum">{_e(step.summary)}</span>' if step.summary else "",
            '<span class="badge error">error</span>' if error else "",
            f'<span class="dur">#{step.index} · {step.duration_s:.2f} s</span>',
        ]
        body: list[str] = []
        if step.text:
            body.append(f'<div class="planner">{self.linkify(step.text)}</div>')
        if step.args:
            body.append(f"<pre>{_e(_json(step.args))}</pre>")
        if step.error:
            body.append(f'<div class="error-box">{_e(step.error)}</div>')
        if ev is not None:
            body.append(self.evidence_card(ev, step.args, step.error))
        elif step.evidence_id:
            body.append(f'<p class="note">evidence {_e(step.evidence_id)} is not in this trace</p>')
        shown = {r.path for r in ev.images} if ev is not None else set()
        body.append(self.gallery(r for r in step.images if r.path not in shown))
        body.append(
            f'<div class="meta">started {_e(step.started_at.isoformat(timespec="milliseconds"))}'
            f" · took {step.duration_s:.3f} s</div>"
        )
        return (
            f'<details class="{classes}" id="{_anchor("step", str(step.index))}"'
            f"{' open' if is_open else ''}><summary>{' '.join(h for h in head if h)}</summary>"
            f'<div class="stepbody">{"".join(body)}</div></details>'
        )

    def steps(self) -> str:
        toolbar = (
            '<span class="toolbar"><button type="button" data-toggle-all="open">expand all</button>'
            '<button type="button" data-toggle-all="close">collapse all</button></span>'
        )
        items = [self.step(s) for s in self.trace.steps]
        orphans = [e for e in self.trace.evidence if e.id not in self.step_of_evidence]
        if orphans:
            items.append("<h2>Evidence not attached to a step</h2>")
            items.extend(self.evidence_card(e, None) for e in orphans)
        if not self.trace.steps:
            items.insert(0, '<p class="note">This trace has no steps.</p>')
        return f"<h2>Steps ({len(self.trace.steps)}){toolbar}</h2>{''.join(items)}"

    def cost(self) -> str:
        c = self.trace.cost
        rows = "".join(
            f'<tr><td>{_e(k)}</td><td class="num">{sec:.3f}</td></tr>'
            for k, sec in c.seconds_by_stage.items()
        )
        stages = f"<table><tr><th>stage</th><th>seconds</th></tr>{rows}</table>" if rows else ""
        return f'<h2>Cost</h2><section class="card" id="cost">{self.cost_line()}{stages}</section>'

    def render(self) -> str:
        from vadetective import __version__

        body = "".join(
            [
                self.header(),
                self.verdict(),
                self.timeline(),
                self.keyframes(),
                self.steps(),
                self.cost(),
                f"<footer>vadetective {_e(__version__)} · trace format "
                f"{self.trace.format_version}</footer>",
            ]
        )
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{csp(SCRIPT)}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>vadetective · {_e(self.trace.question)}</title>"
            f"<style>{CSS}</style><script>{SCRIPT}</script></head>"
            f"<body><main>{body}</main></body></html>\n"
        )


def report_html(trace: Trace, trace_dir: Path, truth: list[TimeSpan] | None = None) -> str:
    """The report as an HTML string (what ``render_report`` writes).

    Args:
        trace: The analysis to show.
        trace_dir: The folder the trace's image paths are relative to.
        truth: Ground-truth spans to draw on the timeline.

    Returns:
        A complete, self-contained HTML document.
    """
    return _Page(trace, Path(trace_dir), list(truth or [])).render()
