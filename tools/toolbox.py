"""The tools the planner calls, defined once: typed methods whose docstrings are the schema.

A ``Toolbox`` binds one opened video, a configuration and a run folder to the backends chosen
by the profile. Each tool method's signature and Google-style docstring are what the planner
sees (``Toolbox.planner_tools`` wraps the bound methods as LangChain ``StructuredTool``s, as
smolagents' ``@tool`` does), and the same method is what the graph calls, so the schema and the
code cannot drift apart. Every tool takes primitives (seconds, phrases, pixel boxes), returns
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
from typing import TYPE_CHECKING, Any

import numpy as np

from vadetective.agent.core.config import Config
from vadetective.agent.core.errors import VadetectiveError
from vadetective.agent.core.io import atomic_write_bytes, sha256_bytes
from vadetective.agent.core.types import Box, Evidence, ImageRef, ScoreCurve, TimeSpan
from vadetective.agent.core.vocabulary import TimelineFacts, ToolName
from vadetective.tools.base import FrameSource, Grounder, Inspector, TemporalScorer
from vadetective.tools.cache import ArrayCache, all_finite
from vadetective.tools.curves import candidate_spans, dominant_family, gaussian_smooth
from vadetective.tools.registry import build_grounder, build_inspector, build_scorer
from vadetective.tools.verdict import BoxArg, SpanArg, VerdictDraft
from vadetective.tools.video.sampling import indices_at_fps, indices_in_span

if TYPE_CHECKING:
    from langchain_core.tools import StructuredTool

log = logging.getLogger(__name__)

#: Most frames one ``sample_frames`` call may return (the planner's context is finite).
MAX_FRAMES_PER_CALL = 8
#: Candidate spans a ``score_timeline`` call reports.
TOP_SPANS = 3


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
            self._scorer = build_scorer(self.config)
        return self._scorer

    @property
    def grounder(self) -> Grounder:
        if self._grounder is None:
            self._grounder = build_grounder(self.config)
        return self._grounder

    @property
    def inspector(self) -> Inspector:
        if self._inspector is None:
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
        expected = np.asarray(t_s, dtype=np.float64)

        def plausible(arrays: dict[str, np.ndarray]) -> str | None:
            """A cached curve must be finite, in [0, 1] and on this video's sample times."""
            if problem := all_finite(arrays):
                return problem
            times = arrays.get("t_s")
            if times is None or times.shape != expected.shape:
                return "its times do not match the video's samples"
            if not np.allclose(times, expected, atol=1e-6):
                return "its times do not match the video's samples"
            curves = [v for k, v in arrays.items() if k == "score" or k.startswith("fam_")]
            if "score" not in arrays or any(v.shape != expected.shape for v in curves):
                return "its scores do not match its times"
            if any(np.any((v < 0) | (v > 1)) for v in curves):
                return "its scores lie outside [0, 1]"
            return None

        hit = cache.get(key, plausible)
        if hit is not None:
            families = {k[4:]: hit[k].tolist() for k in hit if k.startswith("fam_")}
            raw = ScoreCurve(
                t_s=hit["t_s"].tolist(), score=hit["score"].tolist(), families=families
            )
        else:
            raw = scorer.score(self.source, t_s, phrases=list(key_phrases) or None).curve
            arrays = {"t_s": np.asarray(raw.t_s), "score": np.asarray(raw.score)}
            arrays.update({f"fam_{k}": np.asarray(v) for k, v in raw.families.items()})
            if (problem := plausible(arrays)) is None:
                cache.put(key, arrays)
            else:  # never store what would be rejected (and re-scored) on every later question
                log.warning("not caching the %s timeline (%s)", scorer.name, problem)
        step = 1.0 / self.config.sample_fps
        sigma = self.config.smoothing_sigma_s / step
        smooth = ScoreCurve(
            t_s=raw.t_s,
            score=np.clip(gaussian_smooth(raw.score, sigma, truncate=3.0), 0, 1).tolist(),
            families={
                k: np.clip(gaussian_smooth(v, sigma, truncate=3.0), 0, 1).tolist()
                for k, v in raw.families.items()
            },
        )
        self._curves[mem_key] = (raw, smooth, scorer.model_id)
        return self._curves[mem_key]

    # ------------------------------------------------------------------ tools
    # Each method below is one tool. Its signature and docstring are the planner's schema
    # (see ``planner_tools``): keep the Args section in step with the parameters.

    def sample_frames(self, start_s: float, end_s: float, count: int = 4) -> Evidence:
        """Look at frames from a span of the video; they are shown to you as images.

        Args:
            start_s: Start of the span, in seconds from the beginning of the video.
            end_s: End of the span, in seconds (at least start_s).
            count: How many frames to take, evenly spread over the span (1 to 8).
        """
        args = {"start_s": start_s, "end_s": end_s, "count": count}

        def body() -> Evidence:
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
                tool=ToolName.SAMPLE_FRAMES,
                args=args,
                summary=f"{len(refs)} frames between {start_s:.1f} s and {end_s:.1f} s (at {times} s)",
                spans=[span],
                images=refs,
            )

        return self._run(ToolName.SAMPLE_FRAMES, args, body)

    def score_timeline(
        self,
        phrases: list[str] | None = None,
        start_s: float | None = None,
        end_s: float | None = None,
    ) -> Evidence:
        """Score how anomalous each moment of the video is and list the top candidate spans.

        Args:
            phrases: Optional concrete descriptions of the anomaly to look for, such as
                "a person lying on the ground"; omit to use the built-in prompt bank.
            start_s: Optional start of the part to report, in seconds.
            end_s: Optional end of the part to report, in seconds.
        """
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
            spans = candidate_spans(curve, self.config.anomaly_threshold, top_k=TOP_SPANS)
            if curve.score:
                peak_i = int(np.argmax(curve.score))
                peak = f"peak {curve.score[peak_i]:.2f} at {curve.t_s[peak_i]:.1f} s"
            else:
                peak = "no frames in range"
            fam = dominant_family(curve)
            scored = TimelineFacts(
                peak_score=max(curve.score) if curve.score else 0.0,
                median_score=float(np.median(curve.score)) if curve.score else 0.0,
                dominant_family=fam,
            )
            span_txt = (
                "; ".join(f"{s.start_s:.1f}-{s.end_s:.1f} s (mean {s.score:.2f})" for s in spans)
                or "none"
            )
            return Evidence(
                id="",
                tool=ToolName.SCORE_TIMELINE,
                args=args,
                summary=f"{len(curve)} frames scored, {peak}, median {scored.median_score:.2f}; candidate spans: {span_txt}"
                + (f"; strongest cue: {fam}" if fam else ""),
                spans=spans,
                curve=curve,
                scored=scored,
            )

        return self._run(ToolName.SCORE_TIMELINE, args, body)

    def ground(self, t_s: float, phrases: list[str]) -> Evidence:
        """Find boxes for text phrases in the frame at one moment.

        Args:
            t_s: Time of the frame, in seconds.
            phrases: What to look for, for example ["person", "bag"].
        """
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
                tool=ToolName.GROUND,
                args=args,
                summary=f"{len(boxes)} box(es) at {t_s:.1f} s" + (f": {desc}" if boxes else ""),
                boxes=boxes,
            )

        return self._run(ToolName.GROUND, args, body)

    def inspect_crop(self, t_s: float, box_xyxy: list[float], question: str) -> Evidence:
        """Zoom on a box (with some context around it) and answer a targeted question about it.

        Args:
            t_s: Time of the frame, in seconds.
            box_xyxy: The box [x1, y1, x2, y2] in pixels of the original frame.
            question: A specific question, such as "is this person lying on the ground?".
        """
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
                tool=ToolName.INSPECT_CROP,
                args=args,
                summary=result.answer,
                boxes=[box, *(b.clipped(self.source.info.resolution_wh) for b in result.track)],
                images=images,
                facts=facts,
                measured=result.measured,
            )

        return self._run(ToolName.INSPECT_CROP, args, body)

    def submit_verdict(
        self,
        answer: str,
        is_anomalous: bool | None,
        confidence: float,
        justification: str,
        evidence_ids: list[str],
        category: str | None = None,
        spans: list[SpanArg] | None = None,
        boxes: list[BoxArg] | None = None,
    ) -> VerdictDraft:
        """Submit your final answer. It ends the investigation once it passes the checks.

        Args:
            answer: A direct answer to the question, in one or two sentences.
            is_anomalous: True if something abnormal happens, False if not, null if undecided.
            confidence: Your confidence in the answer, from 0 to 1.
            justification: Why, citing the evidence ids it rests on, e.g. "(E2, E4)".
            evidence_ids: The evidence ids cited in the justification.
            category: A short name for what happened, e.g. "fall" or "fighting".
            spans: When it happens: a list of {"start_s", "end_s"} in seconds.
            boxes: Where: a list of {"t_s", "xyxy", "label", "score"} in pixels of the frame.
        """
        return VerdictDraft(
            answer=answer,
            is_anomalous=is_anomalous,
            confidence=confidence,
            category=category,
            spans=spans or [],
            boxes=boxes or [],
            justification=justification,
            evidence_ids=evidence_ids,
        )

    def planner_tools(self) -> dict[str, StructuredTool]:
        """The tools as LangChain ``StructuredTool``s over these bound methods, by name: the
        schema bound to a chat model and the callable the graph invokes are one object."""
        from langchain_core.tools import StructuredTool

        return {
            str(name): StructuredTool.from_function(getattr(self, name), parse_docstring=True)
            for name in ToolName
        }

    def _label_of(self, t_s: float, xyxy: Sequence[float]) -> str:
        """The label a grounding call gave this box, if one did (else empty)."""
        for box in self._grounded:
            if abs(box.t_s - t_s) < 0.05 and all(
                abs(a - b) < 1.0 for a, b in zip(box.xyxy, xyxy, strict=False)
            ):
                return box.label
        return ""
