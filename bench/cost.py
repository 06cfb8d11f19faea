"""Planner (VLM) calls per minute of video against detection quality, for four strategies,
with a simulated VLM whose answers come from the synthetic ground truth with controlled noise,
so that the search strategy is what is measured, not a model.

Strategies (every one starts from the same cheap timeline: the classical motion scorer):

- ``detective``: the detective graph driven by :class:`SimulatedVLM`. Like a VLM planner it
  reads the timeline's candidate spans and looks at them in score order (``sample_frames``, 4
  frames per look, one planner call each) until one look shows an anomaly (at most
  ``MAX_LOOKS``), then calls ``submit_verdict`` with the span it confirmed, or "not anomalous".
- ``chain``: the chain graph with the same simulated VLM as its chat model: it looks at the top
  candidate span only; its two nominal VLM calls are the tag call (answered with a fixed neutral
  tag: tags steer grounding, which this benchmark does not score) and the explanation call
  (``submit_verdict`` from what the look showed).
- ``dense``: the published agentic systems' way: one VLM call per 5 s clip (frames at 1 fps);
  the clip scores 1 if it shows the anomaly, else 0; positive clips are the predicted spans.
- ``timeline_only``: no VLM at all: the smoothed motion timeline as frame scores, its top
  candidate span as the prediction when the peak reaches the anomaly threshold.

The simulated VLM "perceives" a look through the truth: a look (the frames of one
``sample_frames`` call, or one dense clip) shows the anomaly when one of its frame times lies
inside a truth span; its answer is that, flipped with probability ``p_noise``. The flips use
common random numbers (one uniform draw per video and look span, or per video and clip), so a
higher noise level flips a superset of the looks a lower one flips, and the detective and the
chain looking at the same span get the same answer.

Reported per strategy and noise level: planner calls per minute of video, frames shown to the
VLM per minute, frame AUC (pooled over every frame of every scene, ``agent.metrics.frame_auc``;
the verdict's ``frame_scores`` interpolated to the frames, no extra smoothing), mean span tIoU
over the anomalous scenes (tIoU of the union of predicted spans with the truth span; 0 when
nothing is predicted), detection rate on anomalous scenes and false alarms on normal scenes.

    python -m bench.cost             # every kind + normal, seeds 0 and 1, 20 s scenes, p = 0, 0.1, 0.2
    python -m bench.cost --quick     # sprint, fall, normal; seed 0; 8 s scenes; p = 0, 0.2
    python -m bench.cost --seeds 0,1,2 --noise 0,0.05,0.1,0.2,0.3 --suite-dir /tmp/suite

The JSON goes to stdout (and to ``--out``); a short table goes to stderr.
"""

from __future__ import annotations

import hashlib
import logging
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import StructuredTool

from bench._common import (
    QUICK_KINDS,
    Stopwatch,
    base_parser,
    emit,
    format_table,
    frame_arrays,
    fresh_cache,
    labeled,
    machine_info,
    make_suite,
    mean_or_none,
    rounded,
    union_tiou,
)
from vadetective.agent.core.config import config_for
from vadetective.agent.core.types import Evidence, ScoreCurve, TimeSpan
from vadetective.agent.datasets import LabeledVideo
from vadetective.agent.synth.truth import SCENE_KINDS, SceneTruth
from vadetective.graphs.planners.base import ChatPlanner

log = logging.getLogger(__name__)

#: Candidate spans the simulated detective looks at before deciding "not anomalous".
MAX_LOOKS = 3
#: Frames per look (the rule planner's count too).
FRAMES_PER_LOOK = 4
#: The dense baseline's clip length and frame rate (one VLM call per clip).
CLIP_S = 5.0
CLIP_FPS = 1.0
#: The simulated VLM's confidence in its verdicts.
CONFIDENCE = 0.8
MARK = "Simulated VLM"
STRATEGIES = ("timeline_only", "detective", "chain", "dense")


# ----------------------------------------------------------------------------- the simulated VLM


def noise_draw(*key: object) -> float:
    """A uniform number in [0, 1) fixed by ``key`` (common random numbers across noise levels)."""
    digest = hashlib.blake2b("|".join(map(str, key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def shows_anomaly(times_s: Sequence[float], truth: SceneTruth) -> bool:
    """Whether frames at these times show the truth's anomaly (one lies inside a truth span)."""
    return any(s.start_s <= t <= s.end_s for t in times_s for s in truth.spans)


class _TagModel(BaseChatModel):
    """The chat model behind :class:`SimulatedVLM`: answers the chain's tag call with a fixed,
    neutral tag. Tool-calling decisions go through ``SimulatedVLM.decide`` instead."""

    @property
    def _llm_type(self) -> str:
        return "simulated-vlm"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(
            generations=[
                ChatGeneration(message=AIMessage(content='{"tags": ["unusual activity"]}'))
            ]
        )


class SimulatedVLM(ChatPlanner):
    """A planner that searches like a VLM and perceives through the ground truth with noise.

    It is a ``ChatPlanner`` (so the chain graph makes its tag and explanation calls) whose
    decisions read the typed case file, as the rule planner does.

    Args:
        truth: The scene's ground truth.
        p_noise: Probability that one look's answer is flipped.
        noise_seed: Seed of the common random numbers.
        max_looks: Candidate spans examined before deciding "not anomalous".
    """

    def __init__(
        self, truth: SceneTruth, p_noise: float, noise_seed: int = 0, max_looks: int = MAX_LOOKS
    ) -> None:
        super().__init__(
            _TagModel(), name="simulated-vlm", model_id=f"truth-with-noise(p={p_noise:g})"
        )
        self.truth = truth
        self.p_noise = p_noise
        self.noise_seed = noise_seed
        self.max_looks = max_looks
        self.video_id = Path(truth.video_path).stem

    def set_noise(self, p_noise: float) -> None:
        """Change the noise level (and the model id the trace records)."""
        self.p_noise = p_noise
        self.model_id = f"truth-with-noise(p={p_noise:g})"

    def perceive(self, look: Evidence) -> bool:
        """What the VLM answers about the frames of one ``sample_frames`` call."""
        times = [r.t_s for r in look.images if r.t_s is not None]
        a, b = float(look.args["start_s"]), float(look.args["end_s"])
        flip = (
            noise_draw(self.noise_seed, self.video_id, "look", f"{a:.2f}", f"{b:.2f}")
            < self.p_noise
        )
        return shows_anomaly(times, self.truth) != flip

    def decide(
        self, state: Mapping[str, Any], tools: Sequence[StructuredTool], final: bool
    ) -> AIMessage:
        evidence: list[Evidence] = list(state.get("evidence", []))
        timeline = next((e for e in evidence if e.id == state.get("timeline_id")), None)
        looks = [e for e in evidence if e.tool == "sample_frames" and e.ok and e.images]
        confirmed = next((e for e in looks if self.perceive(e)), None)
        n = len(state.get("steps", []))
        if confirmed is None and not final and timeline is not None:
            looked = {
                (round(float(e.args["start_s"]), 3), round(float(e.args["end_s"]), 3))
                for e in looks
            }
            end_max = round(state["video"].duration_s * 0.999, 3)
            for span in timeline.spans[: self.max_looks]:
                a, b = round(span.start_s, 3), round(min(span.end_s, end_max), 3)
                if (a, b) not in looked:
                    args = {"start_s": a, "end_s": b, "count": FRAMES_PER_LOOK}
                    return _call(
                        "sample_frames", args, f"looking at candidate {a:.1f}-{b:.1f} s", n
                    )
        return _call("submit_verdict", self._verdict(timeline, looks, confirmed), "deciding", n)

    def _verdict(
        self, timeline: Evidence | None, looks: list[Evidence], confirmed: Evidence | None
    ) -> dict[str, Any]:
        base = [timeline.id] if timeline is not None else []
        if confirmed is not None:
            a, b = float(confirmed.args["start_s"]), float(confirmed.args["end_s"])
            ids = [*base, confirmed.id]
            return {
                "answer": f"Yes: the frames between {a:.1f} s and {b:.1f} s show an anomaly.",
                "is_anomalous": True,
                "confidence": CONFIDENCE,
                "category": "anomaly",
                "spans": [{"start_s": a, "end_s": b}],
                "justification": f"{MARK}: the frames looked at show it ({', '.join(ids)}).",
                "evidence_ids": ids,
            }
        ids = [*base, *(e.id for e in looks)]
        if not ids:
            return {
                "answer": "Undecided.",
                "is_anomalous": None,
                "confidence": 0.5,
                "justification": f"{MARK}: nothing to go on.",
                "evidence_ids": [],
            }
        return {
            "answer": "No: the frames looked at show ordinary activity.",
            "is_anomalous": False,
            "confidence": CONFIDENCE,
            "justification": f"{MARK}: nothing abnormal in the frames looked at ({', '.join(ids)}).",
            "evidence_ids": ids,
        }


def _call(tool: str, args: dict[str, Any], why: str, n: int) -> AIMessage:
    return AIMessage(
        content=why, tool_calls=[{"name": tool, "args": args, "id": f"sim_{n}_{tool}"}]
    )


# ----------------------------------------------------------------------------- strategies


@dataclass
class Outcome:
    """One strategy on one video at one noise level."""

    video_id: str
    kind: str
    strategy: str
    p_noise: float | None
    planner_calls: int
    frames_shown: int
    is_anomalous: bool | None
    spans: list[TimeSpan]
    labels: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)
    simulated_verdict: bool = True


def dense_baseline(
    truth: SceneTruth, video: LabeledVideo, p_noise: float, noise_seed: int
) -> Outcome:
    """One simulated VLM call per ``CLIP_S`` clip; score 1/0 per clip from the noisy truth."""
    n, fps, dur = truth.frame_count, truth.fps, truth.duration_s
    n_clips = max(1, math.ceil(dur / CLIP_S - 1e-9))
    vid = Path(truth.video_path).stem
    clip_scores = np.zeros(n_clips)
    frames = 0
    for k in range(n_clips):
        a, b = k * CLIP_S, min((k + 1) * CLIP_S, dur)
        times = list(np.arange(a + 0.5 / CLIP_FPS, b, 1.0 / CLIP_FPS))
        frames += len(times)
        flip = noise_draw(noise_seed, vid, "clip", k) < p_noise
        clip_scores[k] = float(shows_anomaly(times, truth) != flip)
    t = np.arange(n) / fps
    scores = clip_scores[np.minimum((t // CLIP_S).astype(int), n_clips - 1)]
    spans: list[TimeSpan] = []
    for j in np.flatnonzero(clip_scores).tolist():
        a, b = j * CLIP_S, min((j + 1) * CLIP_S, dur)
        if spans and abs(spans[-1].end_s - a) < 1e-9:
            spans[-1] = TimeSpan(start_s=spans[-1].start_s, end_s=b)
        else:
            spans.append(TimeSpan(start_s=a, end_s=b))
    return Outcome(
        vid,
        truth.kind,
        "dense",
        p_noise,
        n_clips,
        frames,
        bool(spans),
        spans,
        video.frame_labels(n, fps),
        scores,
    )


def timeline_only(
    truth: SceneTruth, video: LabeledVideo, timeline: Evidence, threshold: float
) -> Outcome:
    """The cheap timeline alone: its curve as scores, its top span when the peak is high."""
    curve: ScoreCurve | None = timeline.curve
    labels, scores = frame_arrays(video, curve, truth.fps, truth.frame_count)
    peak = max(curve.score) if curve is not None and curve.score else 0.0
    spans = (
        [TimeSpan(start_s=timeline.spans[0].start_s, end_s=timeline.spans[0].end_s)]
        if peak >= threshold and timeline.spans
        else []
    )
    return Outcome(
        video.video_id, truth.kind, "timeline_only", None, 0, 0, bool(spans), spans, labels, scores
    )


def run_video(
    truth: SceneTruth, noise: Sequence[float], noise_seed: int, run_dir: Path, threshold: float
) -> list[Outcome]:
    """Every strategy at every noise level on one video (one session: the timeline is computed once)."""
    from vadetective.agent.session import Detective

    video = labeled(truth)
    planner = SimulatedVLM(truth, 0.0, noise_seed)
    out: list[Outcome] = []
    with Detective(
        truth.video_path, profile="classical", out=run_dir / video.video_id, planner=planner
    ) as d:
        for p in noise:
            planner.set_noise(p)
            for graph in ("detective", "chain"):
                v = d.ask(graph=graph, save=False)
                trace = d.last_trace
                assert trace is not None
                labels, scores = frame_arrays(video, v.frame_scores, d.info.fps, d.info.frame_count)
                shown = trace.cost.frames_shown
                if graph == "chain":  # the tag call is shown the frames of the look
                    shown = sum(
                        len(e.images) for e in trace.evidence if e.tool == "sample_frames" and e.ok
                    )
                out.append(
                    Outcome(
                        video.video_id,
                        truth.kind,
                        graph,
                        p,
                        trace.cost.planner_calls,
                        shown,
                        v.is_anomalous,
                        list(v.spans),
                        labels,
                        scores,
                        simulated_verdict=v.justification.startswith(MARK),
                    )
                )
            out.append(dense_baseline(truth, video, p, noise_seed))
        trace = d.last_trace
        assert trace is not None
        timeline = next(e for e in trace.evidence if e.tool == "score_timeline")
        out.append(timeline_only(truth, video, timeline, threshold))
    return out


# ----------------------------------------------------------------------------- summary


def summarize(outcomes: Sequence[Outcome], truths: Sequence[SceneTruth]) -> list[dict[str, Any]]:
    """One row per (strategy, noise level)."""
    from vadetective.agent.eval.frame import frame_auc

    minutes = sum(t.duration_s for t in truths) / 60.0
    truth_spans = {Path(t.video_path).stem: list(t.spans) for t in truths}
    keys = sorted(
        {(o.strategy, o.p_noise) for o in outcomes},
        key=lambda k: (STRATEGIES.index(k[0]), k[1] or 0.0),
    )
    rows = []
    for strategy, p in keys:
        group = [o for o in outcomes if o.strategy == strategy and o.p_noise == p]
        anomalous = [o for o in group if o.kind != "normal"]
        normal = [o for o in group if o.kind == "normal"]
        auc = frame_auc([o.labels for o in group], [o.scores for o in group])
        tious = [
            union_tiou(o.spans if o.is_anomalous else [], truth_spans[o.video_id])
            for o in anomalous
        ]
        rows.append(
            {
                "strategy": strategy,
                "p_noise": p,
                "videos": len(group),
                "planner_calls": sum(o.planner_calls for o in group),
                "planner_calls_per_min": rounded(sum(o.planner_calls for o in group) / minutes, 2),
                "vlm_frames_per_min": rounded(sum(o.frames_shown for o in group) / minutes, 1),
                "frame_auc": rounded(auc),
                "mean_span_tiou": rounded(mean_or_none(tious)),
                "detected": f"{sum(1 for o in anomalous if o.is_anomalous)}/{len(anomalous)}",
                "false_alarms": f"{sum(1 for o in normal if o.is_anomalous)}/{len(normal)}",
                "verdicts_not_from_the_simulated_vlm": sum(
                    1 for o in group if not o.simulated_verdict
                ),
            }
        )
    return rows


def run(
    kinds: Sequence[str],
    seeds: Sequence[int],
    duration_s: float,
    noise: Sequence[float],
    noise_seed: int,
    suite_dir: Path,
    work: Path,
) -> dict[str, Any]:
    with Stopwatch() as sw_gen:
        truths = make_suite(suite_dir, kinds, seeds, duration_s)
    threshold = config_for("classical").anomaly_threshold
    outcomes: list[Outcome] = []
    with Stopwatch() as sw_run, fresh_cache():
        for t in truths:
            outcomes += run_video(t, noise, noise_seed, work, threshold)
    rows = summarize(outcomes, truths)
    return {
        "benchmark": "cost",
        "machine": machine_info(),
        "measured": (
            "planner (VLM) calls per minute of video and detection quality per search strategy, "
            "with a simulated VLM answering from the ground truth, each look flipped with probability p_noise"
        ),
        "suite": {
            "kinds": list(kinds),
            "seeds": list(seeds),
            "duration_s": duration_s,
            "videos": len(truths),
            "minutes_of_video": rounded(sum(t.duration_s for t in truths) / 60.0, 3),
            "generate_s": rounded(sw_gen.seconds, 2),
        },
        "settings": {
            "noise_levels": list(noise),
            "noise_seed": noise_seed,
            "max_looks": MAX_LOOKS,
            "frames_per_look": FRAMES_PER_LOOK,
            "dense_clip_s": CLIP_S,
            "dense_clip_fps": CLIP_FPS,
            "timeline": "classical motion scorer (sample_fps 2, gaussian smoothing sigma 1 s)",
            "frame_scores": "verdict frame_scores interpolated to every frame, no extra smoothing",
            "chain_tag_call": "answered with a fixed neutral tag (not scored here)",
            "span_tiou": "tIoU of the union of predicted spans with the truth span; 0 if none predicted",
        },
        "run_s": rounded(sw_run.seconds, 2),
        "results": rows,
        "videos": [
            {
                "video": o.video_id,
                "strategy": o.strategy,
                "p_noise": o.p_noise,
                "planner_calls": o.planner_calls,
                "is_anomalous": o.is_anomalous,
                "spans": [[round(s.start_s, 3), round(s.end_s, 3)] for s in o.spans],
            }
            for o in outcomes
        ],
    }


def table(report: dict[str, Any]) -> str:
    s = report["suite"]
    head = f"{s['videos']} scenes, {s['minutes_of_video']} min of video; kinds {', '.join(s['kinds'])}; seeds {s['seeds']}"
    cols = [
        "strategy",
        "p_noise",
        "calls/min",
        "frames/min",
        "frame AUC",
        "span tIoU",
        "detected",
        "false alarms",
    ]
    rows = [
        [
            r["strategy"],
            r["p_noise"],
            r["planner_calls_per_min"],
            r["vlm_frames_per_min"],
            r["frame_auc"],
            r["mean_span_tiou"],
            r["detected"],
            r["false_alarms"],
        ]
        for r in report["results"]
    ]
    return head + "\n" + format_table(cols, rows)


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser("python -m bench.cost", __doc__)
    parser.add_argument(
        "--seeds", default=None, help="comma-separated scene seeds (default 0,1; --quick 0)"
    )
    parser.add_argument(
        "--noise", default=None, help="comma-separated p_noise levels (default 0,0.1,0.2)"
    )
    parser.add_argument(
        "--noise-seed", type=int, default=0, help="seed of the simulated VLM's mistakes"
    )
    parser.add_argument(
        "--duration", type=float, default=None, help="scene length in seconds (default 20)"
    )
    parser.add_argument(
        "--suite-dir", type=Path, default=None, help="keep (and reuse) the generated scenes here"
    )
    args = parser.parse_args(argv)
    kinds = list(QUICK_KINDS) if args.quick else list(SCENE_KINDS)
    seeds = [int(x) for x in (args.seeds or ("0" if args.quick else "0,1")).split(",")]
    noise = _floats(args.noise or ("0,0.2" if args.quick else "0,0.1,0.2"))
    if not all(0.0 <= p <= 1.0 for p in noise):
        parser.error(f"--noise levels must lie in [0, 1], got {noise}")
    duration = args.duration or (8.0 if args.quick else 20.0)
    with tempfile.TemporaryDirectory(prefix="vadetective-bench-cost-") as tmp:
        suite_dir = args.suite_dir or Path(tmp) / "suite"
        report = run(kinds, seeds, duration, noise, args.noise_seed, suite_dir, Path(tmp) / "runs")
    report["quick"] = args.quick
    emit(report, args.out, table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
