"""The rule planner: a deterministic policy with no model.

It reads the typed case file and walks the same loop a model planner would: take the top
candidate spans of the timeline, look at frames there, ground people and objects at the peak,
inspect the strongest boxes with the ``measure`` inspector, then decide with explicit
thresholds and write a justification from the measured facts, citing evidence ids. Used by the
``classical`` profile and as a safety net.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from langchain_core.messages import AIMessage
from langchain_core.tools import StructuredTool

from vadetective.agent.core.config import Config
from vadetective.agent.core.types import Box, Evidence, TimeSpan
from vadetective.agent.core.vocabulary import (
    FAMILY_CATEGORY,
    Category,
    ScoreFamily,
    TimelineFacts,
    ToolName,
    asked_categories,
)
from vadetective.graphs.planners.rules.facts import Finding, read_facts
from vadetective.graphs.state import DetectiveState, timeline_evidence
from vadetective.tools.curves import family_in, peak_in

#: Spans whose peak score is below this are not worth a look.
LOOK_THRESHOLD = 0.3
#: Boxes inspected per span (the strongest first).
BOXES_PER_SPAN = 3
#: Candidate spans examined.
SPANS_EXAMINED = 2


def _rescored(evidence: Sequence[Evidence]) -> Evidence | None:
    """The last timeline scored for the question's own phrases, if any."""
    return next(
        (
            e
            for e in reversed(evidence)
            if e.tool == ToolName.SCORE_TIMELINE and e.args.get("phrases")
        ),
        None,
    )


def _timelines(
    state: DetectiveState, evidence: Sequence[Evidence], asked: set[Category]
) -> list[Evidence]:
    """The timelines to act on: the question-specific one first (when the question is
    specific), then the general one from perception, so an anomaly the question did not ask
    about is still reported."""
    perception = timeline_evidence(state)
    specific = _rescored(evidence) if asked else None
    out = [t for t in (specific, perception) if t is not None and t.ok and t.curve is not None]
    return out or ([perception] if perception is not None else [])


def phrases_for(question: str) -> list[str]:
    """What to ground, from the question's words (people and objects by default)."""
    q = question.lower()
    out = ["person"]
    if re.search(r"\b(bag|object|item|package|box|luggage|left|abandon)", q):
        out.append("bag")
    if "object" not in out and "bag" not in out:
        out.append("object")
    return out


class RulesPlanner:
    """See the module docstring."""

    name = "rules"
    model_id = "rules-v1"

    def __init__(self, config: Config) -> None:
        self.threshold = config.anomaly_threshold

    @classmethod
    def from_config(cls, config: Config) -> RulesPlanner:
        return cls(config)

    # -------------------------------------------------------------- the loop
    def decide(
        self, state: DetectiveState, tools: Sequence[StructuredTool], final: bool
    ) -> AIMessage:
        evidence: list[Evidence] = list(state["evidence"])
        asked = asked_categories(state["question"])
        timelines = _timelines(state, evidence, asked)
        if not final and asked and not _rescored(evidence):
            return _call(
                ToolName.SCORE_TIMELINE,
                {"phrases": [state["question"]]},
                f"the question asks about {' or '.join(sorted(asked))}: re-scoring the timeline for it",
                len(state["steps"]),
            )
        if not final:
            nxt = self._next_action(state, evidence, timelines)
            if nxt is not None:
                tool, args, why = nxt
                return _call(tool, args, why, len(state["steps"]))
        return _call(
            ToolName.SUBMIT_VERDICT,
            self.verdict_args(state, evidence, timelines),
            "deciding from the evidence",
            len(state["steps"]),
        )

    @staticmethod
    def _targets(timelines: Sequence[Evidence]) -> list[tuple[TimeSpan, Evidence]]:
        """The candidate spans worth a look, highest peak first, each with the timeline it
        came from; of overlapping spans, the one with the higher peak is kept."""
        found = [
            (_peak(tl, span)[1], i, span, tl)
            for i, tl in enumerate(timelines)
            if tl.curve is not None and not tl.error
            for span in tl.spans
        ]
        found.sort(key=lambda x: (-x[0], x[1]))
        out: list[tuple[TimeSpan, Evidence]] = []
        for peak, _, span, tl in found:
            if peak >= LOOK_THRESHOLD and not any(span.tiou(o) > 0.3 for o, _ in out):
                out.append((span, tl))
        return out[:SPANS_EXAMINED]

    def _next_action(
        self, state: DetectiveState, evidence: list[Evidence], timelines: Sequence[Evidence]
    ) -> tuple[str, dict[str, Any], str] | None:
        done = [(e.tool, e.args) for e in evidence]

        def was_called(tool: str, **args: Any) -> bool:
            return any(
                t == tool and all(_same(a.get(k), v) for k, v in args.items()) for t, a in done
            )

        video = state["video"]
        targets = self._targets(timelines)
        if not timelines or all(t.error for t in timelines):
            return None
        if not targets:
            if not was_called(ToolName.SAMPLE_FRAMES):
                return (
                    ToolName.SAMPLE_FRAMES,
                    {"start_s": 0.0, "end_s": round(video.duration_s * 0.999, 3), "count": 4},
                    "the timeline is flat; a look at the whole video before deciding",
                )
            return None
        phrases = phrases_for(state["question"])
        for span, timeline in targets:
            t_peak, _ = _peak(timeline, span)
            start, end = round(span.start_s, 3), round(min(span.end_s, video.duration_s * 0.999), 3)
            if not was_called(ToolName.SAMPLE_FRAMES, start_s=start, end_s=end):
                return (
                    ToolName.SAMPLE_FRAMES,
                    {"start_s": start, "end_s": end, "count": 4},
                    f"the score peaks at {t_peak:.1f} s; looking at {start:.1f}-{end:.1f} s",
                )
            grounds = [
                e
                for e in evidence
                if e.tool == ToolName.GROUND and span.contains(float(e.args.get("t_s", -1)))
            ]
            if not grounds:
                return (
                    ToolName.GROUND,
                    {"t_s": round(t_peak, 3), "phrases": phrases},
                    f"who or what is there at {t_peak:.1f} s",
                )
            boxes = [b for e in grounds if e.ok for b in e.boxes]
            if not boxes:
                t_mid = round((span.start_s + span.end_s) / 2, 3)
                if len(grounds) < 2 and not was_called(ToolName.GROUND, t_s=t_mid):
                    return (
                        ToolName.GROUND,
                        {"t_s": t_mid, "phrases": phrases},
                        "nothing found at the peak; trying mid-span",
                    )
                continue
            for box in boxes[:BOXES_PER_SPAN]:
                xyxy = [round(v, 1) for v in box.xyxy]
                if not was_called(ToolName.INSPECT_CROP, t_s=box.t_s, box_xyxy=xyxy):
                    return (
                        ToolName.INSPECT_CROP,
                        {
                            "t_s": box.t_s,
                            "box_xyxy": xyxy,
                            "question": _inspect_question(state["question"], box),
                        },
                        f"measuring the {box.label or 'blob'} at {box.t_s:.1f} s",
                    )
        return None

    # -------------------------------------------------------------- the decision
    def verdict_args(
        self, state: DetectiveState, evidence: list[Evidence], timelines: Sequence[Evidence]
    ) -> dict[str, Any]:
        """The arguments of ``submit_verdict`` from the evidence so far (explicit thresholds)."""
        video = state["video"]
        timeline = timelines[0] if timelines else None
        if timeline is None or timeline.curve is None or not timeline.curve.score:
            return {
                "answer": "Undecided: the video could not be scored.",
                "is_anomalous": None,
                "confidence": 0.0,
                "justification": "The timeline could not be computed"
                + (f" ({timeline.id})." if timeline else "."),
                "evidence_ids": [timeline.id] if timeline else [],
            }
        global_peak = max(timeline.curve.score)
        findings = [
            f
            for f in (
                self._finding(e) for e in evidence if e.tool == ToolName.INSPECT_CROP and e.ok
            )
            if f is not None
        ]
        best_by_span: list[tuple[TimeSpan, float, float, Finding | None, Evidence]] = []
        for span, tl in self._targets(timelines):
            t_peak, peak = _peak(tl, span)
            inside = [f for f in findings if span.contains(f.box.t_s)]
            best = max(inside, key=lambda f: f.strength, default=None)
            best_by_span.append((span, t_peak, peak, best, tl))
        looked = [e.id for e in evidence if e.tool == ToolName.SAMPLE_FRAMES and e.ok][:2]
        if not best_by_span:
            conf = round(float(np.clip(0.5 + (self.threshold - global_peak), 0.5, 0.95)), 3)
            cite = [timeline.id, *looked]
            return {
                "answer": "No: nothing in the video stands out from its normal activity.",
                "is_anomalous": False,
                "confidence": conf,
                "category": None,
                "justification": f"The anomaly score never rose above {global_peak:.2f} ({timeline.id})"
                + (
                    f", and the frames looked at show ordinary activity ({', '.join(looked)})."
                    if looked
                    else "."
                ),
                "evidence_ids": cite,
            }

        def support(item: tuple[TimeSpan, float, float, Finding | None, Evidence]) -> float:
            _, _, peak, f, _ = item
            return peak + (0.25 * f.strength if f is not None and f.strength > 0 else 0.0)

        best_by_span.sort(key=support, reverse=True)
        span, t_peak, peak, finding, timeline = best_by_span[0]
        supported = finding is not None and finding.strength >= 1.0
        anomalous = (peak >= self.threshold and (supported or peak >= self.threshold + 0.2)) or (
            supported and peak >= self.threshold - 0.1
        )
        family = (family_in(timeline.curve, span) if timeline.curve is not None else None) or (
            timeline.scored or TimelineFacts()
        ).dominant_family
        category = (
            (finding.category if finding and finding.category else None)
            or _family_category(family)
            or Category.UNUSUAL_MOTION
        )
        # Erratic motion also reads as bursts of speed and counterflow when measured over a
        # few seconds; the timeline's family over the span tells them apart.
        if family == ScoreFamily.ERRATIC and category in (Category.RUNNING, Category.COUNTERFLOW):
            category = Category.ERRATIC
        cites = [timeline.id]
        sample = next(
            (
                e
                for e in evidence
                if e.tool == ToolName.SAMPLE_FRAMES and e.spans and e.spans[0].tiou(span) > 0.5
            ),
            None,
        )
        if sample:
            cites.append(sample.id)
        ground_ev = next(
            (
                e
                for e in evidence
                if e.tool == ToolName.GROUND
                and e.ok
                and e.boxes
                and span.contains(float(e.args.get("t_s", -1)))
            ),
            None,
        )
        if ground_ev:
            cites.append(ground_ev.id)
        if finding:
            cites.append(finding.evidence.id)
        cites = list(dict.fromkeys(cites))
        when = f"between {span.start_s:.1f} s and {span.end_s:.1f} s"
        if anomalous:
            conf = float(
                np.clip(
                    0.45 + 0.5 * (peak - self.threshold) + (0.15 if supported else 0.0), 0.5, 0.97
                )
            )
            what = (
                (f"{_article(finding.label)} " + " and ".join(finding.reasons))
                if finding and finding.reasons
                else f"the scene's motion departs from its normal pattern ({category})"
            )
            asked = asked_categories(state["question"])
            if asked and category not in asked:
                answer = f"No {' or '.join(sorted(asked))} was seen, but something else is abnormal: {category} {when}."
            else:
                answer = f"Yes: {category} {when}."
            just = f"{when[0].upper()}{when[1:]} the anomaly score peaked at {peak:.2f} at {t_peak:.1f} s ({timeline.id}); {what} ({', '.join(cites[1:]) or timeline.id})."
            boxes = (
                _verdict_boxes(finding, span, category)
                if finding
                else (
                    [
                        {"t_s": b.t_s, "xyxy": list(b.xyxy), "label": b.label, "score": b.score}
                        for b in ground_ev.boxes[:1]
                    ]
                    if ground_ev
                    else []
                )
            )
            return {
                "answer": answer,
                "is_anomalous": True,
                "confidence": round(conf, 3),
                "category": category,
                "spans": [
                    {
                        "start_s": round(span.start_s, 3),
                        "end_s": round(min(span.end_s, video.duration_s), 3),
                    }
                ],
                "boxes": boxes,
                "justification": just,
                "evidence_ids": cites,
            }
        conf = float(
            np.clip(
                0.5
                + 0.5 * (self.threshold - peak)
                + (0.1 if finding is not None and not supported else 0.0),
                0.5,
                0.9,
            )
        )
        measured = (
            f"; the closest look found nothing abnormal ({finding.evidence.id})"
            if finding and not supported
            else ""
        )
        return {
            "answer": f"No: the strongest moment ({when}) looks like ordinary activity.",
            "is_anomalous": False,
            "confidence": round(conf, 3),
            "category": None,
            "justification": f"The anomaly score peaks at only {peak:.2f} {when} ({timeline.id}){measured}.",
            "evidence_ids": [timeline.id]
            + ([finding.evidence.id] if finding and not supported else []),
        }

    @staticmethod
    def _finding(ev: Evidence) -> Finding | None:
        if not ev.boxes:
            return None
        strength, category, reasons = read_facts(ev.measured)
        return Finding(ev, ev.boxes[0], strength, category, reasons)


def _family_category(family: str | None) -> Category | None:
    try:
        return FAMILY_CATEGORY.get(ScoreFamily(family or ""))
    except ValueError:
        return None


def _article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def _inspect_question(question: str, box: Box) -> str:
    return f"What is this {box.label or 'blob'} doing, and how does its motion compare with the rest of the scene? ({question})"


def _verdict_boxes(finding: Finding, span: TimeSpan, label: str) -> list[dict[str, Any]]:
    """The inspected box first (the most reliable: the grounder's own box), then the
    inspector's track of the same object inside the span, in time order."""
    score = round(min(1.0, 0.5 + 0.25 * finding.strength), 3)
    out = [{"t_s": finding.box.t_s, "xyxy": list(finding.box.xyxy), "label": label, "score": score}]
    for b in finding.evidence.boxes[1:]:
        if span.contains(b.t_s) and abs(b.t_s - finding.box.t_s) > 1e-3:
            out.append({"t_s": b.t_s, "xyxy": list(b.xyxy), "label": label, "score": score})
    return out


def _peak(timeline: Evidence, span: TimeSpan) -> tuple[float, float]:
    """(time, score) of the highest point of the timeline inside ``span``."""
    assert timeline.curve is not None
    return peak_in(timeline.curve, span)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b)) < 1e-3
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _call(tool: str, args: dict[str, Any], why: str, n: int) -> AIMessage:
    return AIMessage(
        content=why, tool_calls=[{"name": tool, "args": args, "id": f"rules_{n}_{tool}"}]
    )
