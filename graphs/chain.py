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
from vadetective.graphs import nodes, prompts
from vadetective.graphs.nodes import Runtime, State
from vadetective.graphs.planners.base import ChatPlanner, image_block, inline_images
from vadetective.graphs.planners.rules.policy import RulesPlanner, phrases_for
from vadetective.graphs.state import DetectiveState

_FAMILY_TAGS = {
    "speed": ["running person"],
    "stillness": ["person lying on the ground", "abandoned object"],
    "appearance": ["object that suddenly appeared"],
    "erratic": ["person moving erratically"],
    "counterflow": ["person walking against the crowd"],
    "loiter": ["person loitering"],
}


def _timeline(state: State) -> Evidence | None:
    return next((e for e in state.get("evidence", []) if e.id == state.get("timeline_id")), None)


def _peak_time(state: State) -> float | None:
    tl = _timeline(state)
    if tl is None or tl.curve is None or not tl.curve.score:
        return None
    span = tl.spans[0] if tl.spans else None
    t = np.asarray(tl.curve.t_s)
    s = np.asarray(tl.curve.score)
    if span is not None:
        s = np.where((t >= span.start_s) & (t <= span.end_s), s, -1)
    return float(t[int(np.argmax(s))])


def _run(state: State, rt: Runtime, name: str, args: dict[str, Any]) -> dict[str, Any]:
    started, t0 = utcnow(), time.perf_counter()
    ev = nodes.run_tool(rt, name, args)
    ev = ev.model_copy(update={"id": f"E{len(state.get('evidence', [])) + 1}"})
    step = nodes.tool_step(state, 0, ev, started, time.perf_counter() - t0)
    return {"evidence": [ev], "steps": [step], "tool_calls": int(state.get("tool_calls", 0)) + 1}


def localize(state: State, rt: Runtime) -> dict[str, Any]:
    """Look at the top candidate span (or the whole video when nothing stands out)."""
    tl = _timeline(state)
    dur = state["video"].duration_s
    span = tl.spans[0] if tl is not None and tl.spans else None
    start, end = (span.start_s, min(span.end_s, dur * 0.999)) if span else (0.0, dur * 0.999)
    return _run(
        state, rt, "sample_frames", {"start_s": round(start, 3), "end_s": round(end, 3), "count": 4}
    )


def tag(state: State, rt: Runtime) -> dict[str, Any]:
    """Short anomaly tags for the top span: from the model when there is one, else from the
    timeline's strongest cue."""
    tl = _timeline(state)
    family = str(tl.facts.get("dominant_family")) if tl is not None else ""
    tags = list(_FAMILY_TAGS.get(family, [])) or phrases_for(state["question"])[:1]
    text = f"tags from the timeline's strongest cue ({family or 'none'})"
    update: dict[str, Any] = {}
    if isinstance(rt.planner, ChatPlanner):
        frames = [e for e in state.get("evidence", []) if e.tool == "sample_frames" and e.ok]
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
        update["planner_calls"] = int(state.get("planner_calls", 0)) + 1
        update["steps"] = [
            nodes._step(
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
            nodes._step(
                state,
                0,
                kind="plan",
                text=text,
                summary=f"tags: {', '.join(tags)}",
                started_at=utcnow(),
            )
        ]
    update["messages"] = [HumanMessage(f"Anomaly tags: {json.dumps(tags)}")]
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


def _tags(state: State) -> list[str]:
    for m in reversed(state.get("messages", [])):
        if (
            isinstance(m, HumanMessage)
            and isinstance(m.content, str)
            and m.content.startswith("Anomaly tags: ")
        ):
            return list(json.loads(m.content[len("Anomaly tags: ") :]))
    return []


def ground(state: State, rt: Runtime) -> dict[str, Any]:
    """Ground the tags (and people) at the peak of the top span."""
    t = _peak_time(state)
    if t is None:
        return {}
    phrases = list(dict.fromkeys([*_tags(state), "person"]))
    return _run(state, rt, "ground", {"t_s": round(t, 3), "phrases": phrases})


def inspect(state: State, rt: Runtime) -> dict[str, Any]:
    """Inspect the best box, with the tags as the prior."""
    g = next(
        (e for e in reversed(state.get("evidence", [])) if e.tool == "ground" and e.ok and e.boxes),
        None,
    )
    if g is None:
        return {}
    box = g.boxes[0]
    q = f"The video could contain: {', '.join(_tags(state)) or 'an anomaly'}. Is this region involved, and what is it doing?"
    return _run(
        state,
        rt,
        "inspect_crop",
        {"t_s": box.t_s, "box_xyxy": [round(v, 1) for v in box.xyxy], "question": q},
    )


def explain(state: State, rt: Runtime) -> dict[str, Any]:
    """Write the verdict from the tags, boxes and facts (the model writes it when there is one)."""
    evidence: list[Evidence] = list(state.get("evidence", []))
    rules = RulesPlanner(rt.config)
    tl = _timeline(state)
    draft_args = rules.verdict_args(state, evidence, [tl] if tl is not None else [])
    update: dict[str, Any] = {}
    if isinstance(rt.planner, ChatPlanner):
        listing = "\n".join(f"- {prompts.render_evidence(e)}" for e in evidence)
        msg = HumanMessage(
            f"Question: {state['question']}\nAnomaly tags: {_tags(state)}\nEvidence:\n{listing}\n"
            "Call submit_verdict now, citing evidence ids."
        )
        started, t0 = utcnow(), time.perf_counter()
        try:
            reply = rt.planner.decide(
                {**state, "messages": [*state.get("messages", []), msg]},
                [rt.tools["submit_verdict"]],
                True,
            )
            call = next((c for c in reply.tool_calls if c["name"] == "submit_verdict"), None)
            if call is not None:
                draft = rt.tools["submit_verdict"].invoke(dict(call["args"]))
                if not nodes.verdict_problems(draft, state):
                    draft_args = draft.model_dump()
            err = None
        except Exception as exc:  # noqa: BLE001 — a failed explanation falls back to the measured one
            err = f"{type(exc).__name__}: {exc}"
            reply = AIMessage(content="")
        update["planner_calls"] = int(state.get("planner_calls", 0)) + 1
        update["steps"] = [
            nodes._step(
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
    draft = rt.tools["submit_verdict"].invoke(draft_args)
    verdict = nodes.to_verdict(draft, state)
    n = len(update.get("steps", []))
    update["steps"] = [
        *update.get("steps", []),
        nodes._step(state, n, kind="verdict", summary=verdict.answer, started_at=utcnow()),
    ]
    update["verdict"] = verdict
    return update


def build_chain_graph(runtime: Runtime, checkpointer: Any | None = None) -> Any:
    """Compile the chain graph around one runtime."""
    g = StateGraph(DetectiveState)
    g.add_node("perceive", partial(nodes.perceive, rt=runtime))
    g.add_node("localize", partial(localize, rt=runtime))
    g.add_node("tag", partial(tag, rt=runtime))
    g.add_node("ground", partial(ground, rt=runtime))
    g.add_node("inspect", partial(inspect, rt=runtime))
    g.add_node("explain", partial(explain, rt=runtime))
    g.add_edge(START, "perceive")
    g.add_edge("perceive", "localize")
    g.add_edge("localize", "tag")
    g.add_edge("tag", "ground")
    g.add_edge("ground", "inspect")
    g.add_edge("inspect", "explain")
    g.add_edge("explain", END)
    return g.compile(checkpointer=checkpointer)
