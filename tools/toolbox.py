"""The tools the planner calls, as typed methods that return ``Evidence``.

A ``Toolbox`` binds one opened video, a configuration and a run folder to the backends chosen
by the profile. Every tool takes primitives (seconds, phrases, pixel boxes), returns
``Evidence`` and turns its own failures into ``Evidence(error=...)`` so the planner can react;
nothing raises out of a tool. Evidence ids are assigned by the graph when the case file
receives them, so tools return ``id=""``.

Backends are built lazily, once per toolbox; a ``Detective`` keeps one toolbox per video so a
second question reuses decoded frames, score curves (also cached on disk) and loaded models.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vadetective.agent.core.config import Config
from vadetective.agent.core.errors import VadetectiveError
from vadetective.agent.core.io import atomic_write_bytes, sha256_bytes
from vadetective.agent.core.types import Box, Evidence, ImageRef, ScoreCurve, TimeSpan
from vadetective.tools.base import (
    FrameSource,
    Grounder,
    Inspector,
    TemporalScorer,
    spans_from_curve,
)

log = logging.getLogger(__name__)

#: Most frames one ``sample_frames`` call may return (the planner's context is finite).
MAX_FRAMES_PER_CALL = 8


@dataclass
class Backends:
    """The profile's backends, built on first use and kept for the session."""

    config: Config
    _scorer: TemporalScorer | None = None
    _grounder: Grounder | None = None
    _inspector: Inspector | None = None

    @property
    def scorer(self) -> TemporalScorer:
        if self._scorer is None:
            from vadetective.tools.registry import build_scorer

            self._scorer = build_scorer(self.config)
        return self._scorer

    @property
    def grounder(self) -> Grounder:
        if self._grounder is None:
            from vadetective.tools.registry import build_grounder

            self._grounder = build_grounder(self.config)
        return self._grounder

    @property
    def inspector(self) -> Inspector:
        if self._inspector is None:
            from vadetective.tools.registry import build_inspector

            self._inspector = build_inspector(self.config)
        return self._inspector

    def model_ids(self) -> dict[str, str]:
        """Model ids of the backends built so far (for the trace)."""
        out: dict[str, str] = {}
        for role, backend in (
            ("scorer", self._scorer),
            ("grounder", self._grounder),
            ("inspector", self._inspector),
        ):
            if backend is not None:
                out[role] = (
                    f"{backend.name}:{backend.model_id}" if backend.model_id else backend.name
                )
        return out


def gaussian_smooth(values: np.ndarray, sigma_samples: float) -> np.ndarray:
    """Gaussian smoothing with edge padding; ``sigma_samples <= 0`` returns the input."""
    if sigma_samples <= 0 or values.size < 3:
        return values.astype(float)
    radius = max(1, round(3 * sigma_samples))
    x = np.arange(-radius, radius + 1, dtype=float)
    kernel = np.exp(-0.5 * (x / sigma_samples) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(values.astype(float), radius, mode="edge")
    return np.convolve(padded, kernel, mode="valid")


@dataclass
class Toolbox:
    """The planner's tools over one video. See the module docstring."""

    source: FrameSource
    config: Config
    run_dir: Path
    backends: Backends | None = None
    _curves: dict[tuple[Any, ...], tuple[ScoreCurve, ScoreCurve, str]] = field(default_factory=dict)
    _images: dict[str, ImageRef] = field(default_factory=dict)
    _grounded: list[Box] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        if self.backends is None:
            self.backends = Backends(self.config)

    # ------------------------------------------------------------------ helpers
    @property
    def _b(self) -> Backends:
        assert self.backends is not None
        return self.backends

    @property
    def duration_s(self) -> float:
        return self.source.info.duration_s

    def _check_time(self, name: str, t_s: float) -> None:
        if not 0.0 <= t_s <= self.duration_s:
            raise ValueError(
                f"{name}={t_s:.2f} s is outside the video (0 to {self.duration_s:.2f} s): pick a time inside it"
            )

    def _run(self, tool: str, args: dict[str, Any], body: Callable[[], Evidence]) -> Evidence:
        """Run a tool body; any failure becomes evidence the planner can read."""
        try:
            return body()
        except (ValueError, VadetectiveError, OSError, RuntimeError, ImportError) as exc:
            log.info("tool %s failed: %s", tool, exc)
            return Evidence(id="", tool=tool, args=args, summary=f"{tool} failed", error=str(exc))

    def save_image(
        self, rgb: np.ndarray, kind: str, t_s: float | None, boxes: Sequence[Box] = ()
    ) -> ImageRef:
        """Write an RGB image once as JPEG under the run folder; return its reference."""
        import cv2

        ok, buf = cv2.imencode(
            ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88]
        )
        if not ok:
            raise RuntimeError("could not encode a frame as JPEG")
        data = buf.tobytes()
        digest = sha256_bytes(data)
        folder = "frames" if kind == "frame" else "crops"
        rel = f"{folder}/{digest[:16]}.jpg"
        if rel not in self._images:
            target = self.run_dir / rel
            if not target.exists():
                atomic_write_bytes(target, data)
        ref = ImageRef(path=rel, sha256=digest, kind=kind, t_s=t_s, boxes=list(boxes))  # type: ignore[arg-type]
        self._images[rel] = ref
        return ref

    def timeline(self, phrases: Sequence[str] | None = None) -> tuple[ScoreCurve, ScoreCurve, str]:
        """(raw curve, smoothed curve, model id) over the whole video, computed once.

        Cached in memory for the session and on disk by (video hash, backend, model, sampling,
        phrases), so a later question or a later run on the same video costs no re-scoring.
        """
        from vadetective.tools.cache import ArrayCache
        from vadetective.tools.video.sources import indices_at_fps

        key_phrases = tuple(phrases or ())
        mem_key = (self.config.scorer, self.config.sample_fps, key_phrases)
        if mem_key in self._curves:
            return self._curves[mem_key]
        scorer = self._b.scorer
        idx = indices_at_fps(self.source, self.config.sample_fps)
        t_s = [float(t) for t in self.source.timestamps[idx]]
        cache = ArrayCache(
            Path(self.config.cache_dir) / "arrays" if self.config.cache_dir else None
        )
        key = cache.key(
            kind="timeline",
            video=self.source.info.content_hash,
            backend=scorer.name,
            model=scorer.model_id,
            fps=self.config.sample_fps,
            max_side=self.config.max_side,
            phrases=list(key_phrases),
        )
        hit = cache.get(key)
        if hit is not None and "t_s" in hit and len(hit["t_s"]) == len(t_s):
            families = {k[4:]: hit[k].tolist() for k in hit if k.startswith("fam_")}
            raw = ScoreCurve(
                t_s=hit["t_s"].tolist(), score=hit["score"].tolist(), families=families
            )
        else:
            raw = scorer.score(self.source, t_s, phrases=list(key_phrases) or None).curve
            arrays = {"t_s": np.asarray(raw.t_s), "score": np.asarray(raw.score)}
            arrays.update({f"fam_{k}": np.asarray(v) for k, v in raw.families.items()})
            cache.put(key, arrays)
        step = 1.0 / self.config.sample_fps
        sigma = self.config.smoothing_sigma_s / step
        smooth = ScoreCurve(
            t_s=raw.t_s,
            score=np.clip(gaussian_smooth(np.asarray(raw.score), sigma), 0, 1).tolist(),
            families={
                k: np.clip(gaussian_smooth(np.asarray(v), sigma), 0, 1).tolist()
                for k, v in raw.families.items()
            },
        )
        self._curves[mem_key] = (raw, smooth, scorer.model_id)
        return self._curves[mem_key]

    # ------------------------------------------------------------------ tools
    def sample_frames(self, start_s: float, end_s: float, count: int = 4) -> Evidence:
        """Frames from a span of the video, saved as images the planner can look at."""
        args = {"start_s": start_s, "end_s": end_s, "count": count}

        def body() -> Evidence:
            from vadetective.tools.video.sources import indices_in_span

            self._check_time("start_s", start_s)
            self._check_time("end_s", end_s)
            if end_s < start_s:
                raise ValueError(f"end_s ({end_s}) must not be before start_s ({start_s})")
            if not 1 <= count <= MAX_FRAMES_PER_CALL:
                raise ValueError(f"count must be between 1 and {MAX_FRAMES_PER_CALL}, got {count}")
            span = TimeSpan(start_s=start_s, end_s=max(end_s, start_s + 1e-3))
            idx = indices_in_span(self.source, span, count)
            batch = self.source.read([int(i) for i in idx], max_side=self.config.max_side)
            refs = [
                self.save_image(f, "frame", float(t))
                for f, t in zip(batch.frames, batch.t_s, strict=True)
            ]
            times = ", ".join(f"{float(t):.1f}" for t in batch.t_s)
            return Evidence(
                id="",
                tool="sample_frames",
                args=args,
                summary=f"{len(refs)} frames between {start_s:.1f} s and {end_s:.1f} s (at {times} s)",
                spans=[span],
                images=refs,
            )

        return self._run("sample_frames", args, body)

    def score_timeline(
        self,
        phrases: Sequence[str] | None = None,
        start_s: float | None = None,
        end_s: float | None = None,
        top_k: int = 3,
    ) -> Evidence:
        """Anomaly score per sampled frame, a smoothed curve and the top candidate spans."""
        args: dict[str, Any] = {
            "phrases": list(phrases) if phrases else None,
            "start_s": start_s,
            "end_s": end_s,
        }

        def body() -> Evidence:
            if phrases is not None and not [p for p in phrases if p.strip()]:
                raise ValueError(
                    "phrases is empty: pass at least one description, or omit it to use the built-in prompt bank"
                )
            lo = 0.0 if start_s is None else start_s
            hi = self.duration_s if end_s is None else end_s
            self._check_time("start_s", lo)
            self._check_time("end_s", hi)
            if hi <= lo:
                raise ValueError(f"end_s ({hi}) must be greater than start_s ({lo})")
            clean = [p.strip() for p in phrases if p.strip()] if phrases else None
            _raw, smooth, _model = self.timeline(clean)
            keep = [i for i, t in enumerate(smooth.t_s) if lo <= t <= hi]
            curve = ScoreCurve(
                t_s=[smooth.t_s[i] for i in keep],
                score=[smooth.score[i] for i in keep],
                families={k: [v[i] for i in keep] for k, v in smooth.families.items()},
            )
            spans = candidate_spans(curve, self.config.anomaly_threshold, top_k=top_k)
            if curve.score:
                peak_i = int(np.argmax(curve.score))
                peak = f"peak {curve.score[peak_i]:.2f} at {curve.t_s[peak_i]:.1f} s"
            else:
                peak = "no frames in range"
            fam = dominant_family(curve)
            facts: dict[str, Any] = {
                "peak_score": max(curve.score) if curve.score else 0.0,
                "median_score": float(np.median(curve.score)) if curve.score else 0.0,
                "dominant_family": fam,
            }
            span_txt = (
                "; ".join(f"{s.start_s:.1f}-{s.end_s:.1f} s (mean {s.score:.2f})" for s in spans)
                or "none"
            )
            return Evidence(
                id="",
                tool="score_timeline",
                args=args,
                summary=f"{len(curve)} frames scored, {peak}, median {facts['median_score']:.2f}; candidate spans: {span_txt}"
                + (f"; strongest cue: {fam}" if fam else ""),
                spans=spans,
                curve=curve,
                facts=facts,
            )

        return self._run("score_timeline", args, body)

    def ground(self, t_s: float, phrases: Sequence[str]) -> Evidence:
        """Boxes for text phrases at one moment, in pixels of the original frame."""
        args = {"t_s": t_s, "phrases": list(phrases)}

        def body() -> Evidence:
            clean = [p.strip() for p in phrases if p and p.strip()]
            if not clean:
                raise ValueError("phrases is empty: name what to look for, e.g. ['person', 'bag']")
            self._check_time("t_s", t_s)
            boxes = self._b.grounder.ground(self.source, t_s, clean)
            res = self.source.info.resolution_wh
            boxes = [b.clipped(res) for b in boxes]
            self._grounded.extend(boxes)
            desc = "; ".join(
                f"{b.label or '?'} {b.score:.2f} at [{', '.join(f'{v:.0f}' for v in b.xyxy)}]"
                for b in boxes[:6]
            )
            return Evidence(
                id="",
                tool="ground",
                args=args,
                summary=f"{len(boxes)} box(es) at {t_s:.1f} s" + (f": {desc}" if boxes else ""),
                boxes=boxes,
            )

        return self._run("ground", args, body)

    def inspect_crop(self, t_s: float, box_xyxy: Sequence[float], question: str) -> Evidence:
        """Zoom on a box with context and answer a targeted question about it."""
        args = {"t_s": t_s, "box_xyxy": list(box_xyxy), "question": question}

        def body() -> Evidence:
            self._check_time("t_s", t_s)
            if len(box_xyxy) != 4:
                raise ValueError(
                    f"box_xyxy must have 4 numbers (x1, y1, x2, y2), got {len(box_xyxy)}"
                )
            box = Box(
                t_s=t_s,
                xyxy=(
                    float(box_xyxy[0]),
                    float(box_xyxy[1]),
                    float(box_xyxy[2]),
                    float(box_xyxy[3]),
                ),
                label=self._label_of(t_s, box_xyxy),
            )
            w, h = self.source.info.resolution_wh
            if not box.inside((w, h), tolerance_px=2.0):
                raise ValueError(
                    f"box {list(box_xyxy)} lies outside the {w}x{h} frame: use pixel coordinates of the frame"
                )
            if not question.strip():
                raise ValueError("question is empty: ask something specific about the box")
            result = self._b.inspector.inspect(self.source, t_s, box, question)
            images = (
                [self.save_image(result.crop, "crop", t_s, [box])]
                if result.crop is not None
                else []
            )
            facts = dict(result.facts)
            if result.confidence is not None:
                facts.setdefault("answer_confidence", round(float(result.confidence), 4))
            return Evidence(
                id="",
                tool="inspect_crop",
                args=args,
                summary=result.answer,
                boxes=[box, *(b.clipped(self.source.info.resolution_wh) for b in result.track)],
                images=images,
                facts=facts,
            )

        return self._run("inspect_crop", args, body)

    def _label_of(self, t_s: float, xyxy: Sequence[float]) -> str:
        """The label a grounding call gave this box, if one did (else empty)."""
        for box in self._grounded:
            if abs(box.t_s - t_s) < 0.05 and all(
                abs(a - b) < 1.0 for a, b in zip(box.xyxy, xyxy, strict=False)
            ):
                return box.label
        return ""


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
