"""The detective's nodes: perceive, plan, act, check, force.

Each node is a plain function of (state, runtime) returning a partial state update. The
runtime holds what must not live in a checkpoint: the opened video's toolbox, the tools and the
planner.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import StructuredTool
from pydantic import ValidationError

from vadetective.agent.core.config import Config
from vadetective.agent.core.types import (
    Box,
    Evidence,
    ScoreCurve,
    TimeSpan,
    TraceStep,
    Verdict,
    utcnow,
)
from vadetective.graphs import prompts
from vadetective.graphs.planners.base import Planner, image_block
from vadetective.tools.planner_tools import VerdictDraft
from vadetective.tools.toolbox import Toolbox

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Live objects the nodes use; rebuilt (not checkpointed) when a run resumes."""

    toolbox: Toolbox
    tools: dict[str, StructuredTool]
    planner: Planner
    config: Config


State = Mapping[str, Any]


def _step(state: State, offset: int, **kw: Any) -> TraceStep:
    return TraceStep(index=len(state.get("steps", [])) + offset, **kw)


def _with_id(state: State, ev: Evidence, offset: int = 0) -> Evidence:
    return ev.model_copy(update={"id": f"E{len(state.get('evidence', [])) + offset + 1}"})


def _stage(state: State, name: str, seconds: float) -> dict[str, float]:
    out = dict(state.get("stage_seconds") or {})
    out[name] = out.get(name, 0.0) + seconds
    return out


def _budget_left(state: State, config: Config) -> int:
    return max(0, config.max_steps - int(state.get("tool_calls", 0)))


def _frames_left(state: State, config: Config) -> int:
    return max(0, config.max_frames_shown - int(state.get("frames_shown", 0)))


# --------------------------------------------------------------------------- perceive
def perceive(state: State, rt: Runtime) -> dict[str, Any]:
    """Score the whole video cheaply before any planner call, and brief the planner."""
    started, t0 = utcnow(), time.perf_counter()
    ev = _with_id(state, rt.toolbox.score_timeline())
    dt = time.perf_counter() - t0
    step = tool_step(state, 0, ev, started, dt, kind="perceive")
    video = state["video"]
    briefing = prompts.render_case_file(
        state["question"],
        video,
        [ev],
        _budget_left(state, rt.config),
        _frames_left(state, rt.config),
    )
    return {
        "evidence": [ev],
        "steps": [step],
        "timeline_id": ev.id,
        "messages": [SystemMessage(prompts.SYSTEM_PROMPT), HumanMessage(briefing)],
        "stage_seconds": _stage(state, "perceive", dt),
    }


# --------------------------------------------------------------------------- plan
def plan(state: State, rt: Runtime) -> dict[str, Any]:
    """Ask the planner for the next action (only submit_verdict once the budget is spent)."""
    budget_out = (
        int(state.get("planner_calls", 0)) >= rt.config.max_planner_calls
        or _budget_left(state, rt.config) == 0
    )
    final = budget_out or bool(state.get("final_asked"))
    update: dict[str, Any] = {}
    extra: list[Any] = []
    last = state["messages"][-1] if state.get("messages") else None
    if final and not state.get("final_asked"):
        extra.append(HumanMessage(prompts.FINAL_PROMPT))
        update["final_asked"] = True
    elif isinstance(last, AIMessage) and not last.tool_calls:
        extra.append(HumanMessage(prompts.NUDGE_PROMPT))
    view = {**state, "messages": [*state.get("messages", []), *extra]}
    started, t0 = utcnow(), time.perf_counter()
    try:
        msg = rt.planner.decide(view, list(rt.tools.values()), final)
        error = msg.response_metadata.get("error") if msg.response_metadata else None
    except Exception as exc:  # noqa: BLE001 — any planner failure (HTTP, parsing, model) forces a verdict
        log.warning("planner failed: %s", exc)
        msg = AIMessage(content="")
        error = f"{type(exc).__name__}: {exc}"
    dt = time.perf_counter() - t0
    calls = ", ".join(
        f"{c['name']}({json.dumps(c['args'], default=str)[:120]})" for c in msg.tool_calls
    )
    step = _step(
        state,
        0,
        kind="plan",
        text=str(msg.content) if msg.content else None,
        summary=f"calls {calls}" if calls else "no tool call",
        started_at=started,
        duration_s=dt,
        error=error,
    )
    update.update(
        {
            "messages": [*extra, msg],
            "steps": [step],
            "planner_calls": int(state.get("planner_calls", 0)) + 1,
            "planner_error": error if not msg.tool_calls else None,
            "stage_seconds": _stage(state, "plan", dt),
        }
    )
    return update


# --------------------------------------------------------------------------- act
def _call_key(name: str, args: Mapping[str, Any]) -> str:
    return name + json.dumps(args, sort_keys=True, default=str)


def run_tool(rt: Runtime, name: str, args: dict[str, Any]) -> Evidence:
    """Call one tool by name; arguments that do not fit its schema become error evidence."""
    try:
        ev = rt.tools[name].invoke(args)
    except (ValidationError, TypeError, ValueError) as exc:
        ev = Evidence(
            id="",
            tool=name,
            args=args,
            summary=f"{name} failed",
            error=f"invalid arguments: {exc}".splitlines()[0],
        )
    assert isinstance(ev, Evidence)
    return ev


def tool_step(
    state: State, offset: int, ev: Evidence, started: Any, duration_s: float, kind: str = "tool"
) -> TraceStep:
    """The trace step of one tool call."""
    return _step(
        state,
        offset,
        kind=kind,
        tool=ev.tool,
        args=ev.args,
        summary=ev.summary,
        evidence_id=ev.id,
        images=ev.images,
        started_at=started,
        duration_s=duration_s,
        error=ev.error,
    )


def act(state: State, rt: Runtime) -> dict[str, Any]:
    """Run the planner's tool calls; each result becomes evidence with an id."""
    msg = state["messages"][-1]
    assert isinstance(msg, AIMessage)
    new_ev: list[Evidence] = []
    steps: list[TraceStep] = []
    replies: list[Any] = []
    images: list[Any] = []
    keys = list(state.get("call_keys", []))
    frames_shown = int(state.get("frames_shown", 0))
    tool_calls = int(state.get("tool_calls", 0))
    t_all = time.perf_counter()
    for call in msg.tool_calls:
        name, args, call_id = call["name"], dict(call["args"]), call.get("id") or ""
        started, t0 = utcnow(), time.perf_counter()
        key = _call_key(name, args)
        refusal = None
        if name not in rt.tools or name == "submit_verdict":
            refusal = ("refused", f"unknown tool {name!r}: use one of {', '.join(rt.tools)}")
        elif key in keys:
            refusal = (
                "refused: repeated call",
                f"refused: {name} was already called with exactly these arguments; "
                "use that evidence or ask something different",
            )
        if refusal is not None:
            summary, text = refusal
            replies.append(ToolMessage(text, tool_call_id=call_id, status="error"))
            steps.append(
                _step(
                    state,
                    len(steps),
                    kind="tool",
                    tool=name,
                    args=args,
                    summary=summary,
                    started_at=started,
                    error=text,
                )
            )
            continue
        keys.append(key)
        tool_calls += 1
        ev = _with_id(state, run_tool(rt, name, args), len(new_ev))
        new_ev.append(ev)
        shown = []
        if ev.images and ev.tool in ("sample_frames", "inspect_crop"):
            room = max(0, rt.config.max_frames_shown - frames_shown)
            shown = ev.images[:room]
            frames_shown += len(shown)
        text = prompts.render_evidence(ev)
        if ev.images and len(shown) < len(ev.images):
            text += f"\n(only {len(shown)} of {len(ev.images)} images shown: the frame budget is used up)"
        replies.append(
            ToolMessage(text, tool_call_id=call_id, status="error" if ev.error else "success")
        )
        for ref in shown:
            images.append(image_block(rt.toolbox.run_dir / ref.path))
        steps.append(tool_step(state, len(steps), ev, started, time.perf_counter() - t0))
    budget = prompts.render_budget(
        max(0, rt.config.max_steps - tool_calls), max(0, rt.config.max_frames_shown - frames_shown)
    )
    follow = (
        [
            HumanMessage(
                [{"type": "text", "text": f"Images from the last tool calls. {budget}"}, *images]
            )
        ]
        if images
        else [HumanMessage(budget)]
    )
    return {
        "messages": [*replies, *follow],
        "evidence": new_ev,
        "steps": steps,
        "call_keys": keys,
        "tool_calls": tool_calls,
        "frames_shown": frames_shown,
        "stage_seconds": _stage(state, "act", time.perf_counter() - t_all),
    }


# --------------------------------------------------------------------------- check
def verdict_problems(draft: VerdictDraft, state: State) -> list[str]:
    """Why a submitted verdict cannot be accepted (empty when it can)."""
    video = state["video"]
    ids = {e.id for e in state.get("evidence", [])}
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
    state: State, verdict_spans: list[TimeSpan], is_anomalous: bool | None, confidence: float
) -> ScoreCurve | None:
    """Per-frame scores for benchmarks: the timeline, raised inside confirmed spans and lowered
    inside candidate spans the verdict refuted."""
    timeline = next(
        (e for e in state.get("evidence", []) if e.id == state.get("timeline_id")), None
    )
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


def to_verdict(draft: VerdictDraft, state: State, forced: bool = False) -> Verdict:
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


def check(state: State, rt: Runtime) -> dict[str, Any]:
    """Accept a submitted verdict, or send the reasons back to the planner."""
    msg = state["messages"][-1]
    assert isinstance(msg, AIMessage)
    started = utcnow()
    replies: list[Any] = []
    submit = next(c for c in msg.tool_calls if c["name"] == "submit_verdict")
    for c in msg.tool_calls:
        if c is not submit:
            replies.append(
                ToolMessage(
                    "not run: submit_verdict ends the turn",
                    tool_call_id=c.get("id") or "",
                    status="error",
                )
            )
    try:
        draft = rt.tools["submit_verdict"].invoke(dict(submit["args"]))
        problems = verdict_problems(draft, state)
    except (ValidationError, TypeError, ValueError) as exc:
        draft, problems = (
            None,
            [f"the arguments do not fit submit_verdict: {str(exc).splitlines()[0]}"],
        )
    if draft is not None and not problems:
        verdict = to_verdict(draft, state)
        replies.append(ToolMessage("verdict accepted", tool_call_id=submit.get("id") or ""))
        steps = [
            _step(
                state,
                0,
                kind="check",
                tool="submit_verdict",
                args=dict(submit["args"]),
                summary="verdict accepted",
                started_at=started,
            ),
            _step(state, 1, kind="verdict", summary=verdict.answer, started_at=utcnow()),
        ]
        return {"messages": replies, "steps": steps, "verdict": verdict}
    reason = "; ".join(problems)
    replies.append(
        ToolMessage(
            f"verdict rejected: {reason}. Fix it and call submit_verdict again.",
            tool_call_id=submit.get("id") or "",
            status="error",
        )
    )
    step = _step(
        state,
        0,
        kind="check",
        tool="submit_verdict",
        args=dict(submit["args"]),
        summary="verdict rejected",
        started_at=started,
        error=reason,
    )
    return {"messages": replies, "steps": [step], "rejections": int(state.get("rejections", 0)) + 1}


# --------------------------------------------------------------------------- force
def forced_draft(state: State, threshold: float) -> VerdictDraft:
    """A verdict from the evidence alone, when the planner did not produce an acceptable one.

    Decided only when the timeline is clear on either side of the threshold; otherwise
    ``is_anomalous`` stays None.
    """
    from vadetective.tools.planner_tools import SpanArg

    timeline = next(
        (e for e in state.get("evidence", []) if e.id == state.get("timeline_id")), None
    )
    ids = [timeline.id] if timeline is not None else []
    if timeline is None or timeline.curve is None or not timeline.curve.score:
        return VerdictDraft(
            answer="Undecided: the video could not be scored.",
            is_anomalous=None,
            confidence=0.0,
            justification="No usable evidence was gathered.",
            evidence_ids=[],
        )
    peak = max(timeline.curve.score)
    margin = 0.15
    decided: bool | None = None if abs(peak - threshold) < margin else peak >= threshold
    spans = (
        [SpanArg(start_s=s.start_s, end_s=s.end_s) for s in timeline.spans[:2]] if decided else []
    )
    why = f"the timeline peaks at {peak:.2f} against a threshold of {threshold:.2f} ({timeline.id})"
    answer = {
        True: "Probably yes: the anomaly score is high.",
        False: "Probably not: the anomaly score stays low.",
        None: "Undecided: the evidence is inconclusive.",
    }[decided]
    return VerdictDraft(
        answer=answer,
        is_anomalous=decided,
        confidence=round(min(1.0, abs(peak - threshold) + 0.5), 3) if decided is not None else 0.5,
        category=str(timeline.facts.get("dominant_family"))
        if decided and timeline.facts.get("dominant_family")
        else None,
        spans=spans,
        justification=f"Forced when the planner's budget ran out: {why}.",
        evidence_ids=ids,
    )


def force(state: State, rt: Runtime) -> dict[str, Any]:
    """Decide from the evidence when the planner ran out of budget or failed."""
    draft = forced_draft(state, rt.config.anomaly_threshold)
    verdict = to_verdict(draft, state, forced=True)
    why = state.get("planner_error") or "budget used up"
    return {
        "verdict": verdict,
        "steps": [
            _step(
                state,
                0,
                kind="verdict",
                summary=f"forced ({why}): {verdict.answer}",
                started_at=utcnow(),
                error=state.get("planner_error"),
            )
        ],
    }
