"""The report page's inline style, script and Content Security Policy.

The script only opens a collapsed step when a link points into it and wires the expand/collapse
buttons; the page reads fine without it. The policy forbids every fetch (images only from
``data:``) and allows that one script by hash, so injected markup could never run one.
"""

from __future__ import annotations

import base64
import hashlib

SCRIPT = """
(function () {
  function reveal(id) {
    var el = id ? document.getElementById(id) : null;
    for (var p = el; p; p = p.parentElement) {
      if (p.tagName === "DETAILS") { p.open = true; }
    }
    return el;
  }
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest ? ev.target.closest('a[href^="#"]') : null;
    if (a) { reveal(decodeURIComponent(a.getAttribute("href").slice(1))); }
  });
  document.addEventListener("DOMContentLoaded", function () {
    if (location.hash) {
      var el = reveal(decodeURIComponent(location.hash.slice(1)));
      if (el) { el.scrollIntoView({block: "start"}); }
    }
    document.querySelectorAll("[data-toggle-all]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var open = btn.getAttribute("data-toggle-all") === "open";
        document.querySelectorAll("details.step").forEach(function (d) { d.open = open; });
      });
    });
  });
})();
"""

CSS = """
:root { --fg:#1d2330; --muted:#5d6675; --line:#d9dee7; --bg:#f6f7f9; --card:#fff;
  --bad:#c0392b; --good:#2e8b57; --undecided:#7f8c8d; --accent:#1f4e79; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
  font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
main { max-width:1180px; margin:0 auto; padding:20px 24px 48px; }
h1 { font-size:20px; margin:0 0 2px; } h2 { font-size:16px; margin:28px 0 10px; }
.meta { color:var(--muted); font-size:13px; } .meta b { color:var(--fg); font-weight:600; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 18px; }
.verdict { border-left:6px solid var(--undecided); margin-top:14px; }
.verdict.anomalous { border-left-color:var(--bad); } .verdict.normal { border-left-color:var(--good); }
.answer { font-size:18px; font-weight:600; margin:6px 0 8px; white-space:pre-wrap; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600;
  color:#fff; background:var(--undecided); vertical-align:middle; }
.badge.anomalous, .badge.error { background:var(--bad); } .badge.normal, .badge.ok { background:var(--good); }
.badge.warn { background:#b9770e; } .badge.kind { background:var(--accent); }
.kind-plan .badge.kind { background:#6c3483; } .kind-check .badge.kind { background:#117a65; }
.kind-verdict .badge.kind { background:#943126; } .kind-perceive .badge.kind { background:#2471a3; }
.kind-note .badge.kind { background:#7f8c8d; }
.conf { display:inline-block; width:120px; height:8px; background:var(--line); border-radius:4px;
  vertical-align:middle; overflow:hidden; } .conf > span { display:block; height:100%; background:var(--accent); }
.kv { display:flex; flex-wrap:wrap; gap:6px 22px; margin:6px 0; }
.justification { white-space:pre-wrap; margin:8px 0; }
a.ref { font-family:ui-monospace,Menlo,Consolas,monospace; font-weight:600; color:var(--accent); }
.missing-ref { font-family:ui-monospace,Menlo,Consolas,monospace; color:var(--bad);
  text-decoration:line-through dotted; }
.costline { margin-top:10px; color:var(--muted); font-size:13px; }
svg.timeline { width:100%; height:auto; display:block; }
.legend span.chip { display:inline-block; width:12px; height:12px; border-radius:2px; margin:0 4px 0 12px;
  vertical-align:-1px; }
table { border-collapse:collapse; font-size:13px; margin:6px 0; }
th, td { border-bottom:1px solid var(--line); padding:3px 10px 3px 0; text-align:left; vertical-align:top; }
th { color:var(--muted); font-weight:600; }
td.num { font-variant-numeric:tabular-nums; text-align:right; }
.gallery { display:flex; flex-wrap:wrap; gap:10px; margin:8px 0; }
figure { margin:0; background:var(--card); border:1px solid var(--line); border-radius:6px; padding:6px; }
figure img { display:block; max-width:100%; height:auto; border-radius:3px; }
.keyframes figure img { width:460px; } .gallery.small figure img { width:300px; }
figcaption { font-size:12px; color:var(--muted); margin-top:4px; max-width:460px; }
.gallery.small figcaption { max-width:300px; }
.placeholder { width:300px; height:169px; display:flex; align-items:center; justify-content:center;
  text-align:center; padding:8px; background:repeating-linear-gradient(45deg,#eef0f3,#eef0f3 8px,#e2e5ea 8px,#e2e5ea 16px);
  color:var(--bad); font-size:12px; border-radius:3px; word-break:break-all; }
.keyframes .placeholder { width:460px; height:259px; }
details.step { background:var(--card); border:1px solid var(--line); border-radius:6px; margin:6px 0; }
details.step > summary { cursor:pointer; padding:7px 12px; list-style-position:inside; }
details.step > summary .tool { font-family:ui-monospace,Menlo,Consolas,monospace; font-weight:600; }
details.step > summary .sum { color:var(--muted); }
details.step > summary .dur { float:right; color:var(--muted); font-variant-numeric:tabular-nums; }
details.step.has-error { border-left:4px solid var(--bad); }
.stepbody { padding:2px 14px 12px 30px; border-top:1px solid var(--line); }
.planner { white-space:pre-wrap; background:#f4f0fa; border-radius:4px; padding:8px 10px; margin:8px 0; }
pre { background:#f3f5f8; border-radius:4px; padding:8px 10px; overflow-x:auto; margin:6px 0;
  font:12px/1.45 ui-monospace,Menlo,Consolas,monospace; white-space:pre-wrap; word-break:break-word; }
.error-box { background:#fdecea; color:#922b21; border-radius:4px; padding:6px 10px; margin:6px 0;
  white-space:pre-wrap; }
.evidence { border:1px solid var(--line); border-radius:6px; padding:8px 12px; margin:8px 0; background:#fbfcfd; }
.evidence h4 { margin:0 0 4px; font-size:13px; }
.toolbar button { font:inherit; font-size:12px; padding:2px 10px; margin-left:6px; border:1px solid var(--line);
  border-radius:4px; background:var(--card); cursor:pointer; }
.note { color:var(--muted); font-style:italic; }
footer { margin-top:30px; color:var(--muted); font-size:12px; }
"""


def csp(script: str) -> str:
    """The page's Content Security Policy, allowing exactly ``script`` (by its hash)."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    # Only inline data: images, the page's own style, and exactly this script (by hash): no
    # fetch of any kind can happen, and injected markup could never run a script.
    return (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )
