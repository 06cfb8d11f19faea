"""Operations on score curves shared by tools, graphs and evaluation: smoothing, spans above a
threshold, peaks and families inside a span."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from vadetective.agent.core.types import ScoreCurve, TimeSpan


def gaussian_smooth(x: ArrayLike, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Gaussian filter (``scipy.ndimage.gaussian_filter1d``, edges by the nearest value).

    Args:
        x: The values, evenly spaced.
        sigma: Standard deviation in samples; ``<= 0`` returns a copy of the input.
        truncate: Kernel radius in standard deviations (scipy's default 4; the timeline tool
            uses 3).
    """
    from scipy.ndimage import gaussian_filter1d

    arr = np.asarray(x, dtype=np.float64)
    if sigma <= 0 or arr.size == 0:
        return arr.copy()
    return np.asarray(gaussian_filter1d(arr, sigma=sigma, mode="nearest", truncate=truncate))


def mean_smooth(x: ArrayLike, width: int) -> np.ndarray:
    """Centred moving average of ``width`` samples (``uniform_filter1d``, edges by nearest value)."""
    from scipy.ndimage import uniform_filter1d

    arr = np.asarray(x, dtype=np.float64)
    if width <= 1 or arr.size == 0:
        return arr.copy()
    return np.asarray(uniform_filter1d(arr, size=int(width), mode="nearest"))


def spans_from_curve(
    curve: ScoreCurve,
    threshold: float,
    min_gap_s: float = 1.0,
    min_len_s: float = 0.0,
    top_k: int | None = None,
) -> list[TimeSpan]:
    """Merge the moments of ``curve`` at or above ``threshold`` into spans with their mean
    score, best first. Runs separated by less than ``min_gap_s`` are joined."""
    t = np.asarray(curve.t_s, dtype=float)
    s = np.asarray(curve.score, dtype=float)
    if t.size == 0:
        return []
    step = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    above = s >= threshold
    spans: list[tuple[int, int]] = []
    i = 0
    while i < t.size:
        if not above[i]:
            i += 1
            continue
        j = i
        while j + 1 < t.size and above[j + 1]:
            j += 1
        if spans and t[i] - t[spans[-1][1]] <= min_gap_s:
            spans[-1] = (spans[-1][0], j)
        else:
            spans.append((i, j))
        i = j + 1
    out: list[TimeSpan] = []
    for a, b in spans:
        start = max(0.0, float(t[a]) - step / 2)
        end = float(t[b]) + step / 2
        if end - start < min_len_s:
            continue
        out.append(
            TimeSpan(start_s=start, end_s=end, score=float(np.clip(s[a : b + 1].mean(), 0, 1)))
        )
    out.sort(key=lambda sp: -(sp.score or 0.0))
    return out[:top_k] if top_k else out


def candidate_spans(curve: ScoreCurve, threshold: float, top_k: int = 3) -> list[TimeSpan]:
    """Top spans of a curve: above ``threshold`` if any, else around the relative peaks."""
    spans = spans_from_curve(curve, threshold, min_gap_s=1.0, top_k=top_k)
    if spans or not curve.score:
        return spans
    s = np.asarray(curve.score)
    relative = float(s.max() - 0.5 * (s.max() - np.median(s)))
    return spans_from_curve(curve, relative, min_gap_s=1.0, top_k=top_k)


def dominant_family(curve: ScoreCurve) -> str | None:
    """The family whose curve peaks highest, if the scorer reports families."""
    if not curve.families or not curve.score:
        return None
    return max(curve.families, key=lambda k: max(curve.families[k]))


def peak_in(curve: ScoreCurve, span: TimeSpan) -> tuple[float, float]:
    """(time, score) of the highest point of ``curve`` inside ``span`` (the span's middle and
    its own score when no sample falls inside)."""
    t = np.asarray(curve.t_s)
    s = np.asarray(curve.score)
    inside = (t >= span.start_s) & (t <= span.end_s)
    if not inside.any():
        return (span.start_s + span.end_s) / 2, float(span.score or 0.0)
    i = int(np.argmax(np.where(inside, s, -1)))
    return float(t[i]), float(s[i])


def family_in(curve: ScoreCurve, span: TimeSpan) -> str | None:
    """The family whose curve is highest inside ``span`` (None without family curves)."""
    if not curve.families:
        return None
    t = np.asarray(curve.t_s)
    inside = (t >= span.start_s) & (t <= span.end_s)
    if not inside.any():
        return None
    return max(curve.families, key=lambda k: float(np.asarray(curve.families[k])[inside].max()))
