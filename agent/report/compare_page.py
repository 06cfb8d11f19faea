"""The comparison page of two runs: metrics side by side, both runs' ROC and PR curves, the
videos whose outcome flipped or whose score moved most, cost, and every configuration, model
revision, package and prompt difference. Self-contained like the run page; text is escaped.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

from vadetective.agent.core.errors import VadetectiveError
from vadetective.agent.core.io import atomic_write_text
from vadetective.agent.eval.compare import Comparison, MetricDiff, compare_runs
from vadetective.agent.eval.evaluate import EvalProtocol, eval_items, pooled_frames
from vadetective.agent.eval.runs import dataset_from_run, read_results
from vadetective.agent.report.charts import Curve, curve_svg, pr_curve_of, roc_curve_of
from vadetective.agent.report.pages import num, page, pct, sort_value

logger = logging.getLogger(__name__)

_e = html.escape


def _delta_cell(m: MetricDiff) -> str:
    d = m.delta
    cls = {True: "delta-up", False: "delta-down", None: ""}[m.better]
    text = "–" if d is None else f"{100 * d:+.1f}"
    return f'<td class="num {cls}" data-v="{sort_value(d)}">{text}</td>'


def _metrics(c: Comparison) -> str:
    rows = "".join(
        f'<tr><td>{_e(m.label)}</td><td class="num">{pct(m.a)}</td><td class="num">{pct(m.b)}</td>'
        f'{_delta_cell(m)}<td class="meta">{"lower is better" if m.lower_is_better else ""}</td></tr>'
        for m in c.metrics
    )
    cost = "".join(
        f'<tr><td>{_e(k)}</td><td class="num">{num(a, 1)}</td><td class="num">{num(b, 1)}</td>'
        f'<td class="num">{num(b - a, 1)}</td><td></td></tr>'
        for k, (a, b) in c.cost.items()
    )
    return (
        f'<h2 id="metrics">Metrics</h2><table><thead><tr><th>metric (%)</th><th>{_e(c.name_a)}'
        f"</th><th>{_e(c.name_b)}</th><th>B − A</th><th></th></tr></thead>"
        f"<tbody>{rows}{cost}</tbody></table>"
    )


def _curves(run_dirs: tuple[Path, Path], names: tuple[str, str]) -> str:
    rocs: list[Curve] = []
    prs: list[Curve] = []
    for run_dir, name in zip(run_dirs, names, strict=True):
        try:
            items = eval_items(read_results(run_dir), dataset_from_run(run_dir))
        except VadetectiveError as exc:
            logger.warning("no curves for %s: %s", run_dir, exc)
            continue
        labels, scores = pooled_frames(items, EvalProtocol())
        for curves, make in ((rocs, roc_curve_of), (prs, pr_curve_of)):
            curve = make(labels, scores, name)
            if curve is not None:
                curves.append(curve)
    return (
        '<h2 id="curves">ROC and precision-recall</h2><div class="charts">'
        + curve_svg(rocs, "ROC (pooled frames)", "false positive rate", "true positive rate",
                    diagonal=True)
        + curve_svg(prs, "Precision-recall (pooled frames)", "recall", "precision")
        + '</div><p class="meta">Both runs\' frame scores interpolated to every frame, no '
        "smoothing.</p>"
    )  # fmt: skip


def _videos(c: Comparison, limit: int = 200) -> str:
    body = []
    for d in c.videos[:limit]:
        a, b = d.a, d.b
        cells = [
            f'<td data-v="{_e(d.video_id)}">{_e(d.video_id)}</td>',
            f'<td data-v="{_e(a.outcome if a else "")}">{_e(a.outcome) if a else "–"}</td>',
            f'<td data-v="{_e(b.outcome if b else "")}">{_e(b.outcome) if b else "–"}</td>',
            f'<td class="num" data-v="{sort_value(a.score if a else None)}">{num(a.score if a else None)}</td>',
            f'<td class="num" data-v="{sort_value(b.score if b else None)}">{num(b.score if b else None)}</td>',
            f'<td class="num" data-v="{sort_value(d.score_delta)}">{num(d.score_delta)}</td>',
            f'<td data-v="{int(d.flipped)}">{"yes" if d.flipped else ""}</td>',
        ]
        body.append(f"<tr>{''.join(cells)}</tr>")
    more = len(c.videos) - limit
    return (
        f'<h2 id="videos">Per video ({len(c.videos)})</h2><p class="meta">Flipped outcomes '
        "first, then the largest score changes"
        + (f"; {more} more not shown" if more > 0 else "")
        + '.</p><table class="sortable"><thead><tr><th data-key="video">video</th>'
        f'<th data-key="outcome_a">{_e(c.name_a)}</th><th data-key="outcome_b">{_e(c.name_b)}</th>'
        f'<th data-key="score_a" data-type="num">score A</th>'
        f'<th data-key="score_b" data-type="num">score B</th>'
        '<th data-key="delta" data-type="num">B − A</th><th data-key="flipped" data-type="num">'
        f"flipped</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _config(c: Comparison) -> str:
    if not c.config:
        rows = '<tr><td colspan="3" class="meta">no difference</td></tr>'
    else:
        rows = "".join(
            f"<tr><td><code>{_e(d.key)}</code></td><td><code>{_e(d.a)}</code></td>"
            f"<td><code>{_e(d.b)}</code></td></tr>"
            for d in c.config
        )
    prompts = "".join(
        f"<h3>prompt: {_e(k)}</h3><pre class=\"diff\">"
        + "\n".join(
            f'<span class="add">{_e(line)}</span>' if line.startswith("+")
            else f'<span class="del">{_e(line)}</span>' if line.startswith("-")
            else _e(line)
            for line in diff.splitlines()
        )
        + "</pre>"
        for k, diff in c.prompts.items()
    )  # fmt: skip
    return (
        '<h2 id="config">Configuration differences</h2><table><thead><tr><th>setting</th>'
        f"<th>{_e(c.name_a)}</th><th>{_e(c.name_b)}</th></tr></thead><tbody>{rows}</tbody></table>"
        + (prompts or '<p class="meta">The prompts are the same.</p>')
    )


def compare_page_html(
    run_a: str | Path, run_b: str | Path, comparison: Comparison | None = None
) -> str:
    """The comparison page's HTML."""
    c = comparison or compare_runs(run_a, run_b)
    warn = "".join(f"<li>{_e(w)}</li>" for w in c.warnings)
    body = (
        f"<h1>{_e(c.name_a)} vs {_e(c.name_b)}</h1>"
        + (f'<div class="warn-box"><b>Warning</b><ul>{warn}</ul></div>' if warn else "")
        + _metrics(c)
        + _curves((Path(run_a), Path(run_b)), (c.name_a, c.name_b))
        + _videos(c)
        + _config(c)
    )
    return page(f"vadetective: {c.name_a} vs {c.name_b}", body)


def render_compare_page(
    run_a: str | Path,
    run_b: str | Path,
    out: str | Path | None = None,
    comparison: Comparison | None = None,
) -> Path:
    """Write the comparison page (default ``RUN_B/compare-<RUN_A name>.html``) and return it."""
    path = Path(out) if out is not None else Path(run_b) / f"compare-{Path(run_a).name or 'a'}.html"
    text = compare_page_html(run_a, run_b, comparison)
    atomic_write_text(path, text)
    logger.info("comparison page written to %s", path)
    return path
