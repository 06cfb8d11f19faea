"""Verdicts: checking a submitted draft, turning it into a ``Verdict``, and deciding from the
evidence alone when the planner could not.
"""

from __future__ import annotations

import numpy as np

from vadetective.agent.core.types import Box, ScoreCurve, TimeSpan, Verdict
from vadetective.agent.core.vocabulary import (
    CATEGORY_FAMILIES,
    Category,
    TimelineFacts,
    asked_categories,
)
from vadetective.graphs.state import DetectiveState, timeline_evidence
from vadetective.tools.verdict import SpanArg, VerdictDraft

#: A forced verdict stays undecided when the timeline's peak is this close to the threshold.
UNDECIDED_MARGIN = 0.15


def verdict_problems(draft: VerdictDraft, state: DetectiveState) -> list[str]:
    """Why a submitted verdict cannot be accepted (empty when it can)."""
    video = state["video"]
    ids = {e.id for e in state["evidence"]}
    problems: list[str] = []
    if not draft.answer.strip():
        problems.append("the answer is empty")
    if not draft.justification.strip():
        problems.append("the justification is empty: explain why, citing evidence ids")
    if not 0.0 <= draft.confidence <= 1.0:
        problems.append(f"confidence must be in [0, 1], got {draft.confidence}")
    unknown = [i for i in draft.evidence_ids if i not in ids]
    if unknown:
        problems.append(
            f"evidence ids {unknown} do not exist (known: {', '.join(sorted(ids, key=_id_num))})"
        )
    if not draft.evidence_ids:
        problems.append("evidence_ids is empty: cite the evidence the verdict rests on")
    uncited = [i for i in draft.evidence_ids if i in ids and i not in draft.justification]
    if draft.justification.strip() and uncited:
        problems.append(
            f"the justification does not cite {', '.join(uncited)}: mention each evidence id it rests on"
        )
    for s in draft.spans:
        if not (0 <= s.start_s < s.end_s <= video.duration_s + 1e-6):
            problems.append(
                f"span {s.start_s:.2f}-{s.end_s:.2f} s is not inside the video (0 to {video.duration_s:.2f} s)"
            )
    w, h = video.resolution_wh
    for b in draft.boxes:
        x = b.xyxy
        if len(x) != 4 or not (0 <= x[0] < x[2] <= w + 1 and 0 <= x[1] < x[3] <= h + 1):
            problems.append(f"box {x} is not inside the {w}x{h} frame")
        if not 0 <= b.t_s <= video.duration_s + 1e-6:
            problems.append(f"box time {b.t_s:.2f} s is outside the video")
    return problems


def _id_num(i: str) -> int:
    return int(i[1:]) if i[1:].isdigit() else 0


def frame_scores(
    state: DetectiveState,
    verdict_spans: list[TimeSpan],
    is_anomalous: bool | None,
    confidence: float,
) -> ScoreCurve | None:
    """Per-frame scores for benchmarks: the timeline, raised inside confirmed spans and lowered
    inside candidate spans the verdict refuted."""
    timeline = timeline_evidence(state)
    if timeline is None or timeline.curve is None or not timeline.curve.t_s:
        return None
    t = np.asarray(timeline.curve.t_s)
    s = np.asarray(timeline.curve.score, dtype=float).copy()
    confirmed = np.zeros_like(s, dtype=bool)
    if is_anomalous:
        for sp in verdict_spans:
            confirmed |= (t >= sp.start_s) & (t <= sp.end_s)
        s[confirmed] = np.maximum(s[confirmed], 0.5 + 0.5 * confidence)
    if is_anomalous is not None:
        for sp in timeline.spans:
            inside = (t >= sp.start_s) & (t <= sp.end_s) & ~confirmed
            s[inside] *= 1.0 - 0.5 * confidence
    return ScoreCurve(
        t_s=t.tolist(), score=np.clip(s, 0, 1).tolist(), families=timeline.curve.families
    )


def to_verdict(draft: VerdictDraft, state: DetectiveState, forced: bool = False) -> Verdict:
    """The ``Verdict`` of an accepted (or forced) draft, with its per-frame scores."""
    spans = [TimeSpan(start_s=s.start_s, end_s=s.end_s) for s in draft.spans]
    boxes = [
        Box(
            t_s=b.t_s,
            xyxy=(float(b.xyxy[0]), float(b.xyxy[1]), float(b.xyxy[2]), float(b.xyxy[3])),
            label=b.label,
            score=min(1.0, max(0.0, b.score)),
        )
        for b in draft.boxes
    ]
    return Verdict(
        question=state["question"],
        answer=draft.answer,
        is_anomalous=draft.is_anomalous,
        confidence=draft.confidence,
        category=draft.category,
        spans=spans,
        boxes=boxes,
        justification=draft.justification,
        evidence_ids=draft.evidence_ids,
        frame_scores=frame_scores(state, spans, draft.is_anomalous, draft.confidence),
        forced=forced,
    )


def asked_answer(
    question: str, families: dict[str, list[float]], threshold: float
) -> tuple[str, Category | None] | None:
    """An answer to what a specific question asks ("Is anyone running?"), read from the score
    families that measure it, and the category when the answer is yes; None for a general
    question or when the scorer has no such family."""
    for cat in sorted(asked_categories(question), key=str):
        fams = [f for f in CATEGORY_FAMILIES.get(cat, ()) if str(f) in families]
        if not fams:
            continue
        peak, fam = max((max(families[str(f)] or [0.0]), f) for f in fams)
        if peak >= threshold:
            return f"Probably yes ({cat}): the {fam} cue peaks at {peak:.2f}.", cat
        return f"Probably not ({cat}): the {fam} cue stays at or below {peak:.2f}.", None
    return None


def forced_draft(state: DetectiveState, threshold: float, cause: str) -> VerdictDraft:
    """A verdict from the evidence alone, when the planner did not produce an acceptable one.

    Decided only when the timeline is clear on either side of the threshold; otherwise
    ``is_anomalous`` stays None.

    Args:
        state: The case file.
        threshold: The anomaly threshold of the configuration.
        cause: Why the verdict is forced ("the planner's budget ran out", the planner's error),
            stated in the justification.
    """
    timeline = timeline_evidence(state)
    ids = [timeline.id] if timeline is not None else []
    if timeline is None or timeline.curve is None or not timeline.curve.score:
        return VerdictDraft(
            answer="Undecided: the video could not be scored.",
            is_anomalous=None,
            confidence=0.0,
            justification=f"Forced because {cause}; no usable evidence was gathered.",
            evidence_ids=[],
        )
    peak = max(timeline.curve.score)
    decided: bool | None = None if abs(peak - threshold) < UNDECIDED_MARGIN else peak >= threshold
    spans = (
        [SpanArg(start_s=s.start_s, end_s=s.end_s) for s in timeline.spans[:2]] if decided else []
    )
    why = f"the timeline peaks at {peak:.2f} against a threshold of {threshold:.2f} ({timeline.id})"
    scored = timeline.scored or TimelineFacts()
    category = scored.category()
    answer = {
        True: "Probably yes: the anomaly score is high.",
        False: "Probably not: the anomaly score stays low.",
        None: "Undecided: the evidence is inconclusive.",
    }[decided]
    asked = asked_answer(state["question"], timeline.curve.families, threshold)
    if asked is not None:
        answer, asked_category = asked
        category = asked_category if asked_category is not None else category
    return VerdictDraft(
        answer=answer,
        is_anomalous=decided,
        confidence=round(min(1.0, abs(peak - threshold) + 0.5), 3) if decided is not None else 0.5,
        category=(str(category) if category else scored.dominant_family) if decided else None,
        spans=spans,
        justification=f"Forced because {cause}: {why}.",
        evidence_ids=ids,
    )
