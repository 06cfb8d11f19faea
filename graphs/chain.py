"""The chain graph: one hypothesis passed through fixed stages, no loop.

    START -> perceive -> localize -> tag -> ground -> inspect -> explain -> END

Score the timeline, take the top span and look at it, extract short anomaly tags, ground the
tags at the peak, inspect the best box with the tags as a prior, and write the explanation from
the tags, boxes and facts. The baseline the detective must beat, and the cheapest mode: at most
two planner calls with a model planner (tags and explanation), none with the rule planner.
"""

from __future__ import annotations

import json
import re
import time
from functools import partial
from typing import Any

import numpy as np
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END, START, StateGraph

from vadetective.agent.core.types import Evidence, utcnow
from vadetective.agent.core.vocabulary import FAMILY_TAGS, ScoreFamily, ToolName
from vadetective.graphs import prompts
from vadetective.graphs.nodes import Runtime, perceive, run_tool, tool_step
from vadetective.graphs.planners.base import ChatPlanner, image_block, inline_images
from vadetective.graphs.planners.rules.policy import RulesPlanner, phrases_for
from vadetective.graphs.state import DetectiveState, new_step, timeline_evidence, with_id
from vadetective.graphs.verdicts import to_verdict, verdict_problems


def _family_tags(family: str | None) -> list[str]:
    try:
        return list(FAMILY_TAGS.get(ScoreFamily(family or ""), ()))
    except ValueError:
        return []


def _peak_time(state: DetectiveState) -> float | None:
    tl = timeline_evidence(state)
    if tl is None or tl.curve is None or not tl.curve.score:
        return None
    span = tl.spans[0] if tl.spans else None
    t = np.asarray(tl.curve.t_s)
    s = np.asarray(tl.curve.score)
    if span is not None:
        s = np.where((t >= span.start_s) & (t <= span.end_s), s, -1)
    return float(t[int(np.argmax(s))])


def _run(state: DetectiveState, rt: Runtime, name: str, args: dict[str, Any]) -> DetectiveState:
    started, t0 = utcnow(), time.perf_counter()
    ev = with_id(state, run_tool(rt, name, args))
    step = tool_step(state, 0, ev, started, time.perf_counter() - t0)
    return {"evidence": [ev], "steps": [step], "tool_calls": state["tool_calls"] + 1}


def localize(state: DetectiveState, rt: Runtime) -> DetectiveState:
    """Look at the top candidate span (or the whole video when nothing stands out)."""
    tl = timeline_evidence(state)
    dur = state["video"].duration_s
    span = tl.spans[0] if tl is not None and tl.spans else None
    start, end = (span.start_s, min(span.end_s, dur * 0.999)) if span else (0.0, dur * 0.999)
    return _run(
        state,
        rt,
        ToolName.SAMPLE_FRAMES,
        {"start_s": round(start, 3), "end_s": round(end, 3), "count": 4},
    )


def tag(state: DetectiveState, rt: Runtime) -> DetectiveState:
    """Short anomaly tags for the top span: from the model when there is one, else from the
    timeline's strongest cue."""
    tl = timeline_evidence(state)
    family = (tl.scored.dominant_family if tl is not None and tl.scored else None) or ""
    tags = _family_tags(family) or phrases_for(state["question"])[:1]
    text = f"tags from the timeline's strongest cue ({family or 'none'})"
    update: DetectiveState = {}
    if isinstance(rt.planner, ChatPlanner):
        frames = [e for e in state["evidence"] if e.tool == ToolName.SAMPLE_FRAMES and e.ok]
        blocks: list[Any] = [
            {
                "type": "text",
                "text": (
                    f"Question: {state['question']}\nThese frames come from the most suspicious part of the video. "
                    'Answer with JSON only: {"tags": ["<2-5 word description of the anomaly>", ...]} (1 to 3 tags).'
                ),
            }
        ]
        blocks += [image_block(rt.toolbox.run_dir / r.path) for e in frames for r in e.images]
        started, t0 = utcnow(), time.perf_counter()
        try:
            reply = rt.planner.model.invoke(inline_images([HumanMessage(blocks)]))
            found = _parse_tags(str(reply.content))
            if found:
                tags, text = found, f"tags from the planner: {found}"
            err = None
        except Exception as exc:  # noqa: BLE001 — a failed tag call falls back to the timeline's tags
            err = f"{type(exc).__name__}: {exc}"
        update["planner_calls"] = state["planner_calls"] + 1
        update["steps"] = [
            new_step(
                state,
                0,
                kind="plan",
                text=text,
                summary=f"tags: {', '.join(tags)}",
                started_at=started,
                duration_s=time.perf_counter() - t0,
                error=err,
            )
        ]
    else:
        update["steps"] = [
            new_step(
                state,
                0,
                kind="plan",
                text=text,
                summary=f"tags: {', '.join(tags)}",
                started_at=utcnow(),
            )
        ]
    update["tags"] = tags
    return update


def _parse_tags(text: str) -> list[str]:
    m = re.search(r"\{.*\}", text, re.S)
    if not m:
        return []
    try:
        tags = json.loads(m.group(0)).get("tags", [])
    except (json.JSONDecodeError, AttributeError):
        return []
    return [str(t).strip() for t in tags if str(t).strip()][:3]


def ground(state: DetectiveState, rt: Runtime) -> DetectiveState:
    """Ground the tags (and people) at the peak of the top span."""
    t = _peak_time(state)
    if t is None:
        return {}
    phrases = list(dict.fromkeys([*state["tags"], "person"]))
    return _run(state, rt, ToolName.GROUND, {"t_s": round(t, 3), "phrases": phrases})


def inspect(state: DetectiveState, rt: Runtime) -> DetectiveState:
    """Inspect the best box, with the tags as the prior."""
    g = next(
        (e for e in reversed(state["evidence"]) if e.tool == ToolName.GROUND and e.ok and e.boxes),
        None,
    )
    if g is None:
        return {}
    box = g.boxes[0]
    q = f"The video could contain: {', '.join(state['tags']) or 'an anomaly'}. Is this region involved, and what is it doing?"
    return _run(
        state,
        rt,
        ToolName.INSPECT_CROP,
        {"t_s": box.t_s, "box_xyxy": [round(v, 1) for v in box.xyxy], "question": q},
    )


def explain(state: DetectiveState, rt: Runtime) -> DetectiveState:
    """Write the verdict from the tags, boxes and facts (the model writes it when there is one)."""
    evidence: list[Evidence] = list(state["evidence"])
    rules = RulesPlanner(rt.config)
    tl = timeline_evidence(state)
    draft_args = rules.verdict_args(state, evidence, [tl] if tl is not None else [])
    update: DetectiveState = {}
    if isinstance(rt.planner, ChatPlanner):
        listing = "\n".join(f"- {prompts.render_evidence(e)}" for e in evidence)
        msg = HumanMessage(
            f"Question: {state['question']}\nAnomaly tags: {state['tags']}\nEvidence:\n{listing}\n"
            "Call submit_verdict now, citing evidence ids."
        )
        started, t0 = utcnow(), time.perf_counter()
        try:
            reply = rt.planner.decide(
                {**state, "messages": [*state["messages"], msg]},
                [rt.tools[ToolName.SUBMIT_VERDICT]],
                True,
            )
            call = next((c for c in reply.tool_calls if c["name"] == ToolName.SUBMIT_VERDICT), None)
            if call is not None:
                draft = rt.tools[ToolName.SUBMIT_VERDICT].invoke(dict(call["args"]))
                if not verdict_problems(draft, state):
                    draft_args = draft.model_dump()
            err = None
        except Exception as exc:  # noqa: BLE001 — a failed explanation falls back to the measured one
            err = f"{type(exc).__name__}: {exc}"
            reply = AIMessage(content="")
        update["planner_calls"] = state["planner_calls"] + 1
        update["steps"] = [
            new_step(
                state,
                0,
                kind="plan",
                text=str(reply.content) or None,
                summary="explanation",
                started_at=started,
                duration_s=time.perf_counter() - t0,
                error=err,
            )
        ]
    draft = rt.tools[ToolName.SUBMIT_VERDICT].invoke(draft_args)
    verdict = to_verdict(draft, state)
    n = len(update.get("steps", []))
    update["steps"] = [
        *update.get("steps", []),
        new_step(state, n, kind="verdict", summary=verdict.answer, started_at=utcnow()),
    ]
    update["verdict"] = verdict
    return update


def build_chain_graph(runtime: Runtime, checkpointer: Any | None = None) -> Any:
    """Compile the chain graph around one runtime."""
    g = StateGraph(DetectiveState)
    g.add_node("perceive", partial(perceive, rt=runtime))
    g.add_node("localize", partial(localize, rt=runtime))
    g.add_node("tag", partial(tag, rt=runtime))
    g.add_node(ToolName.GROUND, partial(ground, rt=runtime))
    g.add_node("inspect", partial(inspect, rt=runtime))
    g.add_node("explain", partial(explain, rt=runtime))
    g.add_edge(START, "perceive")
    g.add_edge("perceive", "localize")
    g.add_edge("localize", "tag")
    g.add_edge("tag", ToolName.GROUND)
    g.add_edge(ToolName.GROUND, "inspect")
    g.add_edge("inspect", "explain")
    g.add_edge("explain", END)
    return g.compile(checkpointer=checkpointer)
