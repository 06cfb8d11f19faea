"""What the run page and the comparison page share: the page frame (one inline style, one
script allowed by hash in the Content Security Policy), sortable tables, number formatting and
the redaction of secrets.

The script sorts a table when its header is clicked (``th[data-key]``, cells carry their sort
value in ``data-v``), and on load when the address ends in ``#sort=<key>`` or
``#sort=<key>:asc`` so a link (and a test) can ask for an order.
"""

from __future__ import annotations

import html

from vadetective.agent.eval.runs import redact
from vadetective.agent.report.assets import CSS, csp

__all__ = ["PAGE_CSS", "SORT_SCRIPT", "num", "page", "pct", "redact", "sort_value"]

_e = html.escape

SORT_SCRIPT = """
(function () {
  function sortBy(table, th, dir) {
    var idx = th.cellIndex, num = th.getAttribute("data-type") === "num";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[idx].getAttribute("data-v"), y = b.cells[idx].getAttribute("data-v");
      if (num) { x = parseFloat(x); y = parseFloat(y); if (isNaN(x)) { x = -1e18; } if (isNaN(y)) { y = -1e18; } }
      return (x < y ? -1 : x > y ? 1 : 0) * (dir === "asc" ? 1 : -1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    table.querySelectorAll("th").forEach(function (o) { o.removeAttribute("data-dir"); });
    th.setAttribute("data-dir", dir);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.sortable th[data-key]").forEach(function (th) {
      th.addEventListener("click", function () {
        var table = th.closest("table");
        sortBy(table, th, th.getAttribute("data-dir") === "desc" ? "asc" : "desc");
      });
    });
    var m = /^#sort=([A-Za-z_]+)(?::(asc|desc))?$/.exec(location.hash);
    if (m) {
      document.querySelectorAll('table.sortable th[data-key="' + m[1] + '"]').forEach(function (th) {
        sortBy(th.closest("table"), th, m[2] || "desc");
      });
    }
  });
})();
"""

PAGE_CSS = (
    CSS
    + """
main { max-width:1320px; }
table.sortable th[data-key] { cursor:pointer; user-select:none; white-space:nowrap; }
table.sortable th[data-dir="asc"]::after { content:" \\25B2"; font-size:10px; }
table.sortable th[data-dir="desc"]::after { content:" \\25BC"; font-size:10px; }
table.videos td { vertical-align:middle; }
table.videos img.thumb { width:96px; height:auto; display:block; border-radius:3px; }
.thumb-missing { width:96px; height:54px; background:#eef0f3; border-radius:3px; }
.outcome-miss, .outcome-false-alarm { color:var(--bad); font-weight:600; }
.outcome-hit, .outcome-correct-rejection { color:var(--good); }
.charts { display:flex; flex-wrap:wrap; gap:16px; }
svg.chart { background:var(--card); border:1px solid var(--line); border-radius:6px; }
.warn-box { background:#fff4e5; border:1px solid #f0c27b; color:#7a4a00; border-radius:6px;
  padding:8px 12px; margin:10px 0; }
.worst { display:flex; flex-wrap:wrap; gap:10px; }
.worst figure { width:220px; } .worst figure img { width:208px; }
.bar { display:inline-block; height:9px; background:var(--accent); border-radius:2px;
  vertical-align:middle; }
td.delta-up { color:var(--good); } td.delta-down { color:var(--bad); }
pre.diff .add { color:#1e7d32; } pre.diff .del { color:#b3261e; }
"""
)


def pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}"


def num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def sort_value(x: float | None) -> str:
    return "" if x is None else f"{x:.6f}"


def page(title: str, body: str) -> str:
    """A complete, self-contained page around ``body``."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(csp(SORT_SCRIPT))}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{PAGE_CSS}</style></head><body><main>"
        f"{body}<footer>Written by vadetective. Self-contained: nothing is fetched.</footer>"
        f"</main><script>{SORT_SCRIPT}</script></body></html>\n"
    )
