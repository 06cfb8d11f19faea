"""The detective's nodes: perceive, plan, act, check, force.

Each node is a plain function of (state, runtime) returning a partial ``DetectiveState``. The
runtime holds what must not live in a checkpoint: the opened video's toolbox, the tools and the
planner. How a draft verdict is checked and turned into a ``Verdict`` is in ``verdicts.py``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import StructuredTool
from pydantic import ValidationError

from vadetective.agent.core.config import Config
from vadetective.agent.core.types import Evidence, TraceStep, utcnow
from vadetective.agent.core.vocabulary import IMAGE_TOOLS, StepKind, ToolName
from vadetective.graphs import prompts
from vadetective.graphs.planners.base import PLANNER_ERROR_KEY, Planner, image_block
from vadetective.graphs.state import DetectiveState, add_stage, new_step, with_id
from vadetective.graphs.verdicts import forced_draft, to_verdict, verdict_problems
from vadetective.tools.toolbox import Toolbox

log = logging.getLogger(__name__)

#: The investigating tools the budget line reminds the planner of until it has used them.
HINTED_TOOLS = (ToolName.GROUND, ToolName.INSPECT_CROP)


@dataclass
class Runtime:
    """Live objects the nodes use; rebuilt (not checkpointed) when a run resumes."""

    toolbox: Toolbox
    tools: dict[str, StructuredTool]
    planner: Planner
    config: Config


def budget_left(state: DetectiveState, config: Config) -> int:
    """Tool calls the planner may still make."""
    return max(0, config.max_steps - state["tool_calls"])


def frames_left(state: DetectiveState, config: Config) -> int:
    """Images that may still be shown to the planner."""
    return max(0, config.max_frames_shown - state["frames_shown"])


# --------------------------------------------------------------------------- perceive
def perceive(state: DetectiveState, rt: Runtime) -> DetectiveState:
    """Score the whole video cheaply before any planner call, and brief the planner."""
    started, t0 = utcnow(), time.perf_counter()
    ev = with_id(state, rt.toolbox.score_timeline())
    dt = time.perf_counter() - t0
    step = tool_step(state, 0, ev, started, dt, kind="perceive")
    briefing = prompts.render_case_file(
        state["question"],
        state["video"],
        [ev],
        budget_left(state, rt.config),
        frames_left(state, rt.config),
    )
    return {
        "evidence": [ev],
        "steps": [step],
        "timeline_id": ev.id,
        "messages": [SystemMessage(prompts.SYSTEM_PROMPT), HumanMessage(briefing)],
        "stage_seconds": add_stage(state, "perceive", dt),
    }


# --------------------------------------------------------------------------- plan
def plan(state: DetectiveState, rt: Runtime) -> DetectiveState:
    """Ask the planner for the next action (only submit_verdict once the budget is spent).

    A planner reports a failure either by raising or by returning an ``AIMessage`` without tool
    calls whose ``response_metadata[PLANNER_ERROR_KEY]`` says why; both end in a forced verdict
    whose trace names the error.
    """
    budget_out = (
        state["planner_calls"] >= rt.config.max_planner_calls or budget_left(state, rt.config) == 0
    )
    final = budget_out or state["final_asked"]
    update: DetectiveState = {}
    extra: list[Any] = []
    last = state["messages"][-1] if state["messages"] else None
    if final and not state["final_asked"]:
        extra.append(HumanMessage(prompts.FINAL_PROMPT))
        update["final_asked"] = True
    elif isinstance(last, AIMessage) and not last.tool_calls:
        extra.append(HumanMessage(prompts.NUDGE_PROMPT))
    view: DetectiveState = {**state, "messages": [*state["messages"], *extra]}
    started, t0 = utcnow(), time.perf_counter()
    error: str | None
    try:
        msg = rt.planner.decide(view, list(rt.tools.values()), final)
        reported = (msg.response_metadata or {}).get(PLANNER_ERROR_KEY)
        error = str(reported) if reported else None
    except Exception as exc:  # noqa: BLE001 — any planner failure (HTTP, parsing, model) forces a verdict
        log.warning("planner failed: %s", exc)
        msg = AIMessage(content="")
        error = f"{type(exc).__name__}: {exc}"
    dt = time.perf_counter() - t0
    calls = ", ".join(
        f"{c['name']}({json.dumps(c['args'], default=str)[:120]})" for c in msg.tool_calls
    )
    step = new_step(
        state,
        kind="plan",
        text=str(msg.content) if msg.content else None,
        summary=f"calls {calls}" if calls else "no tool call",
        started_at=started,
        duration_s=dt,
        error=error,
        meta={**plan_meta(msg), "final": final},
    )
    update.update(
        {
            "messages": [*extra, msg],
            "steps": [step],
            "planner_calls": state["planner_calls"] + 1,
            "planner_error": error if not msg.tool_calls else None,
            "stage_seconds": add_stage(state, "plan", dt),
        }
    )
    return update


#: ``response_metadata`` keys of a planner reply that the plan step records.
PLAN_META_KEYS = ("protocol", "attempts", "requests", "request_seconds", "text_only")


def plan_meta(msg: AIMessage) -> dict[str, Any]:
    """What a plan step records about how the planner answered: protocol, attempts, requests
    and token counts (when the planner reports them)."""
    meta = {k: msg.response_metadata[k] for k in PLAN_META_KEYS if k in msg.response_metadata}
    usage = msg.usage_metadata
    if usage:
        meta["prompt_tokens"] = usage.get("input_tokens", 0)
        meta["completion_tokens"] = usage.get("output_tokens", 0)
        cached = (usage.get("input_token_details") or {}).get("cache_read")
        if cached is not None:
            meta["cached_prompt_tokens"] = cached
    return meta


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
    state: DetectiveState,
    offset: int,
    ev: Evidence,
    started: datetime,
    duration_s: float,
    kind: StepKind = "tool",
) -> TraceStep:
    """The trace step of one tool call."""
    return new_step(
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


def act(state: DetectiveState, rt: Runtime) -> DetectiveState:
    """Run the planner's tool calls; each result becomes evidence with an id."""
    msg = state["messages"][-1]
    assert isinstance(msg, AIMessage)
    new_ev: list[Evidence] = []
    steps: list[TraceStep] = []
    replies: list[Any] = []
    images: list[Any] = []
    keys = list(state["call_keys"])
    frames_shown = state["frames_shown"]
    tool_calls = state["tool_calls"]
    t_all = time.perf_counter()
    for call in msg.tool_calls:
        name, args, call_id = call["name"], dict(call["args"]), call.get("id") or ""
        started = utcnow()
        t0 = time.perf_counter()
        key = _call_key(name, args)
        refusal = None
        if name not in rt.tools or name == ToolName.SUBMIT_VERDICT:
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
                new_step(
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
        ev = with_id(state, run_tool(rt, name, args), len(new_ev))
        new_ev.append(ev)
        shown = []
        if ev.images and ev.tool in IMAGE_TOOLS:
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
    used = {e.tool for e in [*state["evidence"], *new_ev] if not e.error}
    budget = prompts.render_budget(
        max(0, rt.config.max_steps - tool_calls),
        max(0, rt.config.max_frames_shown - frames_shown),
        [t for t in HINTED_TOOLS if t not in used],
    )
    follow = (
        [HumanMessage([{"type": "text", "text": f"{prompts.IMAGES_FOLLOW} {budget}"}, *images])]
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
        "stage_seconds": add_stage(state, "act", time.perf_counter() - t_all),
    }


# --------------------------------------------------------------------------- check
def check(state: DetectiveState, rt: Runtime) -> DetectiveState:
    """Accept a submitted verdict, or send the reasons back to the planner."""
    msg = state["messages"][-1]
    assert isinstance(msg, AIMessage)
    started = utcnow()
    replies: list[Any] = []
    submit = next(c for c in msg.tool_calls if c["name"] == ToolName.SUBMIT_VERDICT)
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
        draft = rt.tools[ToolName.SUBMIT_VERDICT].invoke(dict(submit["args"]))
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
            new_step(
                state,
                kind="check",
                tool=ToolName.SUBMIT_VERDICT,
                args=dict(submit["args"]),
                summary="verdict accepted",
                started_at=started,
            ),
            new_step(state, 1, kind="verdict", summary=verdict.answer, started_at=utcnow()),
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
    step = new_step(
        state,
        kind="check",
        tool=ToolName.SUBMIT_VERDICT,
        args=dict(submit["args"]),
        summary="verdict rejected",
        started_at=started,
        error=reason,
    )
    return {"messages": replies, "steps": [step], "rejections": state["rejections"] + 1}


# --------------------------------------------------------------------------- force
def force(state: DetectiveState, rt: Runtime) -> DetectiveState:
    """Decide from the evidence when the planner ran out of budget, failed, or kept submitting
    verdicts that do not pass the checks; the verdict and the trace say which."""
    error = state["planner_error"]
    if error:
        cause = f"the planner failed ({error})"
    elif state["rejections"] > rt.config.max_verdict_retries:
        cause = f"the planner's verdict was rejected {state['rejections']} times"
    else:
        cause = (
            f"the planner made {state['planner_calls']} calls (limit "
            f"{rt.config.max_planner_calls}) and {state['tool_calls']} tool calls (limit "
            f"{rt.config.max_steps}) without an accepted verdict"
        )
    draft = forced_draft(state, rt.config.anomaly_threshold, cause)
    verdict = to_verdict(draft, state, forced=True)
    return {
        "verdict": verdict,
        "steps": [
            new_step(
                state,
                kind="verdict",
                summary=f"forced ({cause}): {verdict.answer}",
                started_at=utcnow(),
                error=error,
            )
        ],
    }
