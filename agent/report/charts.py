"""Small inline SVG charts for the run and comparison pages: ROC and precision-recall curves.

Hand-written SVG (no matplotlib): a few hundred points per curve, axes from 0 to 1, one
polyline per run, so a page with two runs' curves stays a few kilobytes and needs no script.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_e = html.escape

#: Line colours of the first and second run.
RUN_COLORS = ("#1f4e79", "#c0392b", "#2e8b57")
_MAX_POINTS = 400


@dataclass(frozen=True)
class Curve:
    """One curve: x and y in [0, 1], its label (e.g. "AUC 0.812") and the run it belongs to."""

    x: np.ndarray
    y: np.ndarray
    label: str


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most ``_MAX_POINTS`` points, always keeping the first and last."""
    if x.size <= _MAX_POINTS:
        return x, y
    idx = np.unique(np.linspace(0, x.size - 1, _MAX_POINTS).round().astype(int))
    return x[idx], y[idx]


def roc_curve_of(labels: np.ndarray, scores: np.ndarray, label: str) -> Curve | None:
    """The ROC curve of pooled frames (None with one class)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    if labels.size == 0 or labels.min() == labels.max():
        return None
    fpr, tpr, _ = roc_curve(labels, scores)
    auc = float(roc_auc_score(labels, scores))
    return Curve(*_thin(fpr, tpr), label=f"{label} (AUC {100 * auc:.1f})")


def pr_curve_of(labels: np.ndarray, scores: np.ndarray, label: str) -> Curve | None:
    """The precision-recall curve of pooled frames (None without positives)."""
    from sklearn.metrics import auc, precision_recall_curve

    if labels.size == 0 or not labels.any():
        return None
    precision, recall, _ = precision_recall_curve(labels, scores)
    area = float(auc(recall, precision))
    return Curve(*_thin(recall[::-1], precision[::-1]), label=f"{label} (AP {100 * area:.1f})")


def curve_svg(
    curves: Sequence[Curve],
    title: str,
    x_label: str,
    y_label: str,
    diagonal: bool = False,
    size_px: int = 300,
) -> str:
    """A square chart of curves in [0, 1] x [0, 1] as inline SVG markup."""
    pad_l, pad_b, pad_t, pad_r = 44, 38, 26, 10
    w = h = size_px
    pw, ph = w - pad_l - pad_r, h - pad_t - pad_b

    def px(x: float, y: float) -> str:
        return f"{pad_l + x * pw:.1f},{pad_t + (1 - y) * ph:.1f}"

    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" '
        f'width="{w}" height="{h}" role="img" aria-label="{_e(title)}">',
        f'<text x="{w / 2:.0f}" y="16" text-anchor="middle" font-size="13" '
        f'font-weight="600">{_e(title)}</text>',
        f'<rect x="{pad_l}" y="{pad_t}" width="{pw}" height="{ph}" fill="#fff" stroke="#9aa3b2"/>',
    ]
    for v in (0.25, 0.5, 0.75):
        parts.append(
            f'<line x1="{pad_l + v * pw:.1f}" y1="{pad_t}" x2="{pad_l + v * pw:.1f}" '
            f'y2="{pad_t + ph}" stroke="#e4e7ec"/>'
            f'<line x1="{pad_l}" y1="{pad_t + (1 - v) * ph:.1f}" x2="{pad_l + pw}" '
            f'y2="{pad_t + (1 - v) * ph:.1f}" stroke="#e4e7ec"/>'
        )
    for v in (0.0, 0.5, 1.0):
        parts.append(
            f'<text x="{pad_l + v * pw:.1f}" y="{pad_t + ph + 14}" font-size="10" '
            f'text-anchor="middle">{v:g}</text>'
            f'<text x="{pad_l - 5}" y="{pad_t + (1 - v) * ph + 3:.1f}" font-size="10" '
            f'text-anchor="end">{v:g}</text>'
        )
    parts.append(
        f'<text x="{pad_l + pw / 2:.0f}" y="{h - 6}" font-size="11" text-anchor="middle">'
        f"{_e(x_label)}</text>"
        f'<text transform="translate(12,{pad_t + ph / 2:.0f}) rotate(-90)" font-size="11" '
        f'text-anchor="middle">{_e(y_label)}</text>'
    )
    if diagonal:
        parts.append(
            f'<line x1="{pad_l}" y1="{pad_t + ph}" x2="{pad_l + pw}" y2="{pad_t}" '
            'stroke="#b0b7c3" stroke-dasharray="4 3"/>'
        )
    for i, c in enumerate(curves):
        color = RUN_COLORS[i % len(RUN_COLORS)]
        pts = " ".join(px(float(x), float(y)) for x, y in zip(c.x, c.y, strict=True))
        parts.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>'
            f'<text x="{pad_l + pw - 4}" y="{pad_t + ph - 8 - 14 * i}" font-size="10.5" '
            f'text-anchor="end" fill="{color}">{_e(c.label)}</text>'
        )
    if not curves:
        parts.append(
            f'<text x="{pad_l + pw / 2:.0f}" y="{pad_t + ph / 2:.0f}" font-size="11" '
            'text-anchor="middle" fill="#7f8c8d">undefined: one class only</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
