"""``RUN/report.html``: one self-contained page over a whole batch run.

From top to bottom: what ran (dataset and split, profile, question, configuration fingerprint)
and any warning about mixed configurations; the metrics with the protocol they follow; ROC and
precision-recall curves of the pooled frames; per-class AUC; explanation scores per reference
level; the worst misses and false alarms with a frame each; a sortable table of every video
(thumbnail, truth, verdict, score, outcome, spans, time) whose rows link to each video's own
report (``traces/<video_id>/report.html``, written when missing); and the run's provenance.

Everything is inline (thumbnails as ``data:`` JPEGs, charts as SVG, one script allowed by
hash); all text from results and datasets is escaped.
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vadetective.agent.core.errors import VadetectiveError
from vadetective.agent.core.io import atomic_write_text
from vadetective.agent.core.types import Trace
from vadetective.agent.core.vocabulary import RunFolder
from vadetective.agent.datasets import Dataset
from vadetective.agent.eval.evaluate import Metrics, eval_items, pooled_frames
from vadetective.agent.eval.runs import (
    Outcome,
    RunResult,
    VideoRow,
    dataset_from_run,
    read_record,
    read_results,
    video_rows,
    worst,
)
from vadetective.agent.eval.table import headline_rows
from vadetective.agent.report.charts import curve_svg, pr_curve_of, roc_curve_of
from vadetective.agent.report.html import render_report
from vadetective.agent.report.images import ImageEmbedder, frame_refs
from vadetective.agent.report.pages import num, page, pct, redact, sort_value

logger = logging.getLogger(__name__)

_e = html.escape
PAGE_NAME = RunFolder.PAGE
_THUMB_PX = 192


def _trace_dir(run_dir: Path, video_id: str) -> Path:
    return run_dir / RunFolder.TRACES / video_id


def video_report(run_dir: Path, result: RunResult, dataset: Dataset | None) -> str | None:
    """The relative link of the video's own report, written when missing or older than its
    trace; None when the video has no trace."""
    trace_dir = _trace_dir(run_dir, result.video_id)
    trace_json = trace_dir / "trace.json"
    if not trace_json.is_file():
        return None
    out = trace_dir / "report.html"
    if not out.is_file() or out.stat().st_mtime < trace_json.stat().st_mtime:
        gt = dataset.get(result.video_id) if dataset is not None else None
        truth = gt.time_spans(result.video.fps) if gt is not None and gt.is_anomalous else None
        try:
            render_report(Trace.load(trace_json), trace_dir, out, ground_truth=truth)
        except (ValueError, OSError, VadetectiveError) as exc:
            logger.warning("no report for %s: %s", result.video_id, exc)
            return None
    return f"{RunFolder.TRACES}/{quote(result.video_id)}/report.html"


def thumbnail(run_dir: Path, row: VideoRow, resolution_wh: tuple[int, int]) -> str | None:
    """A data URI of the trace frame nearest the video's peak score, or None."""
    trace_dir = _trace_dir(run_dir, row.video_id)
    try:
        trace = Trace.load(trace_dir / "trace.json")
    except (FileNotFoundError, ValueError):
        return None
    refs = frame_refs(trace)
    if not refs:
        return None
    t = row.peak_t_s if row.peak_t_s is not None else 0.0
    ref = min(refs, key=lambda r: abs((r.t_s or 0.0) - t))
    return ImageEmbedder(trace_dir, resolution_wh).embed(ref, boxes=[], max_side=_THUMB_PX).data_uri


# ------------------------------------------------------------------------------- sections


def _header(run_dir: Path, record: dict[str, Any], metrics: Metrics | None, n: int) -> str:
    ds = record.get("dataset") or {}
    prov = record.get("provenance") or {}
    split = (metrics.dataset_split if metrics else None) or (prov.get("dataset_split") or {}).get(
        "split"
    )
    bits = [
        ("dataset", f"{ds.get('kind', '?')}" + (f", {split} split" if split else "")),
        ("videos", str(n)),
        ("profile", str(record.get("profile", "?"))),
        ("graph", str(record.get("graph", "?"))),
        ("configuration", str(prov.get("config_sha", "not recorded"))),
        ("started", str(record.get("started_at", "?"))),
    ]
    kv = "".join(f"<span><b>{_e(k)}</b> {_e(v)}</span>" for k, v in bits)
    question = record.get("question")
    return f'<h1>Run {_e(run_dir.name)}</h1><div class="meta kv">{kv}</div>' + (
        f'<div class="meta"><b>question</b> {_e(str(question))}</div>' if question else ""
    )


def _warnings(metrics: Metrics | None) -> str:
    if metrics is None:
        return '<div class="warn-box">No metrics: the run has no ground truth to score.</div>'
    items = "".join(f"<li>{_e(w)}</li>" for w in metrics.warnings)
    return f'<div class="warn-box"><b>Warning</b><ul>{items}</ul></div>' if items else ""


def _metrics_table(m: Metrics) -> str:
    p = m.protocol
    rows = [(label, pct(v), about) for label, v, about in headline_rows(m)]
    body = "".join(
        f'<tr><td>{_e(a)}</td><td class="num">{_e(b)}</td><td class="meta">{_e(c)}</td></tr>'
        for a, b, c in rows
    )
    c = m.counts
    protocol = (
        f"Protocol: frame scores {p.expansion}"
        + (
            f" ({p.snippet}-frame snippets, UCF-Crime convention)"
            if p.expansion == "snippet"
            else ""
        )
        + f"; smoothing {m.smoothing}; headline AP {p.headline_ap}; {c.videos} videos "
        f"({c.anomalous} anomalous, {c.normal} normal), {c.frames} frames"
        + (f", {c.missing_results} dataset videos without a result" if c.missing_results else "")
    )
    notes = "".join(f"<li>{_e(n)}</li>" for n in m.notes)
    return (
        '<h2 id="metrics">Metrics</h2><table class="metrics"><thead><tr><th>metric</th>'
        f"<th>value (%)</th><th>what it is</th></tr></thead><tbody>{body}</tbody></table>"
        f'<p class="meta">{_e(protocol)}</p>' + (f'<ul class="meta">{notes}</ul>' if notes else "")
    )


def _per_class(m: Metrics) -> str:
    if not m.per_class_auc:
        return ""
    rows = "".join(
        f'<tr><td>{_e(k)}</td><td class="num" data-v="{sort_value(v)}">{pct(v)}</td>'
        f'<td><span class="bar" style="width:{0 if v is None else round(160 * v)}px"></span></td></tr>'
        for k, v in sorted(m.per_class_auc.items())
    )
    return (
        '<h2 id="per-class">Per-class AUC</h2><p class="meta">Each class\'s videos pooled with '
        'every normal video.</p><table class="sortable"><thead><tr><th data-key="cls">class'
        '</th><th data-key="auc" data-type="num">AUC (%)</th><th></th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _explanation(m: Metrics) -> str:
    x = m.explanation
    if x is None:
        return ""
    rows = []
    for what, table in (("justification", x.justification), ("answer", x.answer)):
        for level, s in table.items():
            rows.append(
                f'<tr><td>{_e(what)}</td><td>{_e(level)}</td><td class="num">{x.videos.get(level, 0)}</td>'
                f'<td class="num">{pct(s.bleu4)}</td><td class="num">{pct(s.meteor)}</td>'
                f'<td class="num">{pct(s.rouge_l)}</td><td class="num">{num(s.cider)}</td>'
                f"<td>{'WordNet' if s.meteor_synonyms else 'exact + stem only'}</td></tr>"
            )
    return (
        '<h2 id="explanations">Explanations</h2><table><thead><tr><th>text</th><th>references'
        "</th><th>videos</th><th>BLEU-4</th><th>METEOR</th><th>ROUGE-L</th><th>CIDEr</th>"
        f"<th>METEOR synonyms</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<p class="meta">{_e(x.protocol)}</p>'
    )


def _curves(results: list[RunResult], dataset: Dataset | None, m: Metrics | None) -> str:
    if dataset is None:
        return ""
    labels, scores = pooled_frames(eval_items(results, dataset), m.protocol if m else None)
    roc = roc_curve_of(labels, scores, "frames")
    pr = pr_curve_of(labels, scores, "frames")
    return (
        '<h2 id="curves">ROC and precision-recall</h2><div class="charts">'
        + curve_svg([roc] if roc else [], "ROC (pooled frames)", "false positive rate",
                    "true positive rate", diagonal=True)
        + curve_svg([pr] if pr else [], "Precision-recall (pooled frames)", "recall", "precision")
        + "</div>"
    )  # fmt: skip


def _thumb_html(uri: str | None, alt: str) -> str:
    if uri is None:
        return '<div class="thumb-missing" title="no frame in the trace"></div>'
    return f'<img class="thumb" src="{uri}" alt="{_e(alt)}">'


def _link(link: str | None, text: str) -> str:
    return f'<a href="{_e(link)}">{_e(text)}</a>' if link else _e(text)


def _spans(spans: list[tuple[float, float]]) -> str:
    return ", ".join(f"{a:.1f}–{b:.1f}" for a, b in spans[:3]) + (" …" if len(spans) > 3 else "")


def _worst(
    rows: list[VideoRow], thumbs: dict[str, str | None], links: dict[str, str | None]
) -> str:
    parts = ['<h2 id="worst">Worst misses and false alarms</h2>']
    sections: tuple[tuple[Outcome, str], ...] = (
        ("miss", "Misses: anomalous videos scored low"),
        ("false alarm", "False alarms: normal videos scored high"),
    )
    for outcome, what in sections:
        chosen = worst(rows, outcome)
        if not chosen:
            parts.append(f'<p class="meta">{_e(what)}: none.</p>')
            continue
        figs = "".join(
            f"<figure>{_thumb_html(thumbs.get(r.video_id), r.video_id)}<figcaption>"
            f"{_link(links.get(r.video_id), r.video_id)} — score {num(r.score)}"
            f"{' (' + _e(r.category) + ')' if r.category else ''}<br>{_e(r.justification[:140])}"
            "</figcaption></figure>"
            for r in chosen
        )
        parts.append(f'<h3>{_e(what)}</h3><div class="worst">{figs}</div>')
    return "".join(parts)


_COLUMNS = (
    ("thumb", "", "str"),
    ("video", "video", "str"),
    ("truth", "truth", "str"),
    ("category", "category", "str"),
    ("verdict", "verdict", "str"),
    ("predicted", "said", "str"),
    ("score", "score", "num"),
    ("outcome", "outcome", "str"),
    ("badness", "how wrong", "num"),
    ("spans", "verdict spans (s)", "str"),
    ("truth_spans", "truth spans (s)", "str"),
    ("seconds", "time (s)", "num"),
    ("frames", "frames decoded", "num"),
    ("fps", "fps", "num"),
)


def _table(
    rows: list[VideoRow], thumbs: dict[str, str | None], links: dict[str, str | None]
) -> str:
    head = "".join(
        (f'<th data-key="{k}" data-type="{t}">{_e(label)}</th>' if k != "thumb" else "<th></th>")
        for k, label, t in _COLUMNS
    )
    truth_txt = {True: "anomalous", False: "normal", None: "?"}
    body = []
    for r in sorted(rows, key=lambda r: -r.badness):
        verdict = {True: "anomalous", False: "normal", None: "undecided"}[r.predicted]
        fps_title = f' title="{_e(r.fps_source)}"' if r.fps_source else ""
        cells = [
            f"<td>{_thumb_html(thumbs.get(r.video_id), r.video_id)}</td>",
            f'<td data-v="{_e(r.video_id)}">{_link(links.get(r.video_id), r.video_id)}</td>',
            f'<td data-v="{truth_txt[r.truth]}">{truth_txt[r.truth]}</td>',
            f'<td data-v="{_e(r.category or "")}">{_e(r.category or "")}</td>',
            f'<td data-v="{verdict}">{verdict}{" (forced)" if r.forced else ""}</td>',
            f'<td data-v="{_e(r.predicted_category or "")}">{_e(r.predicted_category or "")}</td>',
            f'<td class="num" data-v="{sort_value(r.score)}">{num(r.score)}</td>',
            f'<td data-v="{_e(r.outcome)}" class="outcome-{r.outcome.replace(" ", "-")}">'
            f"{_e(r.outcome)}</td>",
            f'<td class="num" data-v="{sort_value(r.badness)}">{num(r.badness)}</td>',
            f'<td data-v="{r.spans[0][0] if r.spans else ""}">{_spans(r.spans)}</td>',
            f'<td data-v="{r.truth_spans[0][0] if r.truth_spans else ""}">{_spans(r.truth_spans)}</td>',
            f'<td class="num" data-v="{sort_value(r.seconds)}">{num(r.seconds, 1)}</td>',
            f'<td class="num" data-v="{r.frames_decoded}">{r.frames_decoded}</td>',
            f'<td class="num" data-v="{sort_value(r.fps)}"{fps_title}>{num(r.fps, 1)}</td>',
        ]
        body.append(f'<tr id="video-{_e(r.video_id)}">{"".join(cells)}</tr>')
    return (
        f'<h2 id="videos">Every video ({len(rows)})</h2><p class="meta">Worst first (a confident '
        "miss or false alarm on top); click a header to sort; each video links to its report."
        f'</p><table class="sortable videos"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _provenance(record: dict[str, Any]) -> str:
    prov = record.get("provenance")
    if not prov:
        return (
            '<h2 id="provenance">Provenance</h2><p class="meta">run.json records no provenance '
            "(a run written before model revisions were recorded).</p>"
        )
    models = "".join(
        f"<tr><td>{_e(role)}</td><td>{_e(str(m.get('backend')))}</td>"
        f"<td>{_e(str(m.get('model') or '–'))}</td><td>{_e(str(m.get('revision') or '–'))}"
        f"{(' <span class=meta>(' + _e(m['note']) + ')</span>') if m.get('note') else ''}</td></tr>"
        for role, m in (prov.get("model_revisions") or {}).items()
    )
    packages = ", ".join(f"{_e(k)} {_e(str(v))}" for k, v in (prov.get("packages") or {}).items())
    config = json.dumps(redact(record.get("config", {})), indent=2, ensure_ascii=False)
    return (
        '<h2 id="provenance">Provenance</h2><table><thead><tr><th>role</th><th>backend</th>'
        f"<th>model</th><th>revision</th></tr></thead><tbody>{models}</tbody></table>"
        f'<p class="meta"><b>packages</b> {packages}</p>'
        f'<p class="meta"><b>dataset</b> {_e(json.dumps(prov.get("dataset_split", {})))}</p>'
        f"<details><summary>configuration</summary><pre>{_e(config)}</pre></details>"
    )


# ------------------------------------------------------------------------------- the page


def run_page_html(
    run_dir: str | Path,
    dataset: Dataset | None = None,
    metrics: Metrics | None = None,
    *,
    reports: bool = True,
) -> str:
    """The run page's HTML (see the module docstring).

    Args:
        run_dir: a batch run folder.
        dataset: the ground truth; default: the dataset in ``run.json`` (without it the page
            shows the verdicts but no metrics or curves).
        metrics: the run's metrics; default: ``metrics.json`` when present.
        reports: write each video's missing report so its row can link to it.
    """
    run_dir = Path(run_dir)
    results = read_results(run_dir)
    record = read_record(run_dir)
    if dataset is None:
        try:
            dataset = dataset_from_run(run_dir)
        except VadetectiveError as exc:
            logger.warning("run page of %s without ground truth: %s", run_dir, exc)
    if metrics is None and (run_dir / RunFolder.METRICS).is_file():
        metrics = Metrics.load(run_dir / RunFolder.METRICS)
    rows = video_rows(results, dataset)
    by_id = {r.video_id: r for r in results}
    links = {r.video_id: video_report(run_dir, r, dataset) if reports else None for r in results}
    thumbs = {
        row.video_id: thumbnail(run_dir, row, by_id[row.video_id].video.resolution_wh)
        for row in rows
    }
    body = [
        _header(run_dir, record, metrics, len(results)),
        _warnings(metrics),
        _metrics_table(metrics) if metrics is not None else "",
        _curves(results, dataset, metrics),
        _per_class(metrics) if metrics is not None else "",
        _explanation(metrics) if metrics is not None else "",
        _worst(rows, thumbs, links) if dataset is not None else "",
        _table(rows, thumbs, links),
        _provenance(record),
    ]
    return page(f"vadetective run {run_dir.name}", "".join(body))


def render_run_page(
    run_dir: str | Path,
    dataset: Dataset | None = None,
    metrics: Metrics | None = None,
    *,
    out: str | Path | None = None,
    reports: bool = True,
) -> Path:
    """Write ``RUN/report.html`` (or ``out``) and return its path (see ``run_page_html``)."""
    run_dir = Path(run_dir)
    path = Path(out) if out is not None else run_dir / PAGE_NAME
    text = run_page_html(run_dir, dataset, metrics, reports=reports)
    atomic_write_text(path, text)
    logger.info("run page written to %s (%d kB)", path, len(text) // 1024)
    return path
