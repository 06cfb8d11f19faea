"""The events page of a watch: one self-contained HTML file, every alert with its keyframe.

Like the per-video report, the page fetches nothing: keyframes are embedded as ``data:`` URIs,
the Content Security Policy forbids every fetch and script, and all text from the record
(justifications, categories, the source URL) is escaped.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from pathlib import Path

from vadetective.agent.core.io import atomic_write_text
from vadetective.agent.core.types import Alert, StreamGap
from vadetective.agent.report.assets import CSS
from vadetective.agent.report.images import encode_data_uri

log = logging.getLogger(__name__)

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_EXTRA_CSS = """
.event { display:grid; grid-template-columns: 340px 1fr; gap:16px; margin:12px 0; }
.event img { width:100%; border-radius:6px; border:1px solid var(--line); }
.event .nokf { color:var(--muted); font-style:italic; }
.event h3 { margin:0 0 4px; font-size:15px; }
.event ul { margin:6px 0 0 18px; padding:0; color:var(--muted); font-size:12.5px; }
table.gaps td, table.gaps th { padding:2px 10px; text-align:left; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fmt_clock(t_s: float) -> str:
    m, s = divmod(max(0.0, t_s), 60.0)
    h, m = divmod(int(m), 60)
    return f"{h:d}:{m:02d}:{s:04.1f}" if h else f"{m:d}:{s:04.1f}"


def _keyframe(folder: Path, alert: Alert) -> str:
    if not alert.keyframe:
        return '<div class="nokf">no keyframe</div>'
    import cv2

    path = folder / alert.keyframe
    img = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
    if img is None:
        return f'<div class="nokf">keyframe missing: {_e(alert.keyframe)}</div>'
    return f'<img alt="keyframe of {_e(alert.id)}" src="{encode_data_uri(img, max_side=640)}">'


def _card(folder: Path, a: Alert) -> str:
    badge = "anomalous" if a.status != "closed" else "warn"
    boxes = "; ".join(
        f"{_e(b.label or 'box')} at {_fmt_clock(b.t_s)} [{', '.join(f'{v:.0f}' for v in b.xyxy)}]"
        for b in a.boxes[:4]
    )
    evidence = "".join(f"<li>{_e(line)}</li>" for line in a.evidence[:12])
    return (
        f'<section class="card event" id="{_e(a.id)}"><div>{_keyframe(folder, a)}</div><div>'
        f"<h3>{_e(a.category or 'anomaly')} "
        f'<span class="badge {badge}">{_e(a.status)}</span> '
        f'<span class="badge kind">{_e(a.confirmed_by)}</span></h3>'
        f'<div class="meta"><b>{_fmt_clock(a.start_s)} – {_fmt_clock(a.end_s)}</b> on the stream '
        f"clock · emitted {_e(a.emitted_at.isoformat(timespec='seconds'))} · confidence "
        f"{a.confidence:.2f} · <code>{_e(a.id)}</code> r{a.revision}</div>"
        f"<p>{_e(a.justification)}</p>"
        + (f'<div class="meta">where: {boxes}</div>' if boxes else "")
        + (f"<ul>{evidence}</ul>" if evidence else "")
        + "</div></section>"
    )


def events_html(
    alerts: Sequence[Alert],
    folder: Path,
    title: str = "vadetective · events",
    gaps: Sequence[StreamGap] = (),
    note: str = "",
) -> str:
    """The page as a string: alerts newest first, then the stream's gaps.

    Args:
        alerts: the alerts to show (latest revision of each).
        folder: the record folder that keyframe paths are relative to.
        title: the page title.
        gaps: stretches with no frames, listed at the end.
        note: one line under the title (what was searched, which source).
    """
    cards = "".join(
        _card(folder, a) for a in sorted(alerts, key=lambda a: a.emitted_at, reverse=True)
    )
    if not cards:
        cards = '<p class="meta">No alerts.</p>'
    gap_rows = "".join(
        f"<tr><td>{_fmt_clock(g.start_s)}</td><td>{_fmt_clock(g.end_s)}</td>"
        f"<td>{g.end_s - g.start_s:.1f} s</td><td>{_e(g.reason)}</td></tr>"
        for g in gaps
    )
    gaps_html = (
        '<h2>Gaps in the stream</h2><table class="gaps"><tr><th>from</th><th>to</th>'
        f"<th>length</th><th>why</th></tr>{gap_rows}</table>"
        if gap_rows
        else ""
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}{_EXTRA_CSS}</style></head><body><main>"
        f'<h1>{_e(title)}</h1><div class="meta">{_e(note)} · {len(alerts)} alert(s)</div>'
        f"<h2>Alerts</h2>{cards}{gaps_html}</main></body></html>\n"
    )


def render_events_page(
    alerts: Sequence[Alert],
    folder: str | Path,
    out: str | Path | None = None,
    gaps: Sequence[StreamGap] = (),
    note: str = "",
) -> Path:
    """Write the events page (default ``folder/events.html``) and return its path."""
    folder = Path(folder)
    path = Path(out) if out is not None else folder / "events.html"
    atomic_write_text(path, events_html(alerts, folder, gaps=gaps, note=note))
    log.info("events page written to %s", path)
    return path


__all__ = ["events_html", "render_events_page"]
