r"""The detective graph: perceive, then plan and act in a loop until a verdict is accepted.

START -> perceive -> plan --(tool calls)--> act --> plan
                      |  \--(submit_verdict)--> check --(accepted)--> END
                      |                            \--(rejected, retries left)--> plan
                      \--(budget spent / planner failed)--> force --> END
check --(rejected too often)--> force
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

from langchain_core.messages import AIMessage
from langgraph.graph import END, START, StateGraph

from vadetective.agent.core.vocabulary import ToolName
from vadetective.graphs import nodes
from vadetective.graphs.nodes import Runtime
from vadetective.graphs.state import DetectiveState


def route_after_plan(state: DetectiveState) -> Literal["act", "check", "force", "plan"]:
    """Where the planner's answer leads."""
    msg = state["messages"][-1]
    calls = msg.tool_calls if isinstance(msg, AIMessage) else []
    if any(c["name"] == ToolName.SUBMIT_VERDICT for c in calls):
        return "check"
    if state["planner_error"] or state["final_asked"]:
        return "force"
    if calls:
        return "act"
    return "plan"


def route_after_check(state: DetectiveState, max_retries: int) -> Literal["end", "plan", "force"]:
    """Accepted verdicts end the run; rejected ones go back to the planner a bounded number of times."""
    if state["verdict"] is not None:
        return "end"
    if state["rejections"] > max_retries:
        return "force"
    return "plan"


def build_detective_graph(runtime: Runtime, checkpointer: Any | None = None) -> Any:
    """Compile the detective graph around one runtime (toolbox, tools, planner, config)."""
    g = StateGraph(DetectiveState)
    g.add_node("perceive", partial(nodes.perceive, rt=runtime))
    g.add_node("plan", partial(nodes.plan, rt=runtime))
    g.add_node("act", partial(nodes.act, rt=runtime))
    g.add_node("check", partial(nodes.check, rt=runtime))
    g.add_node("force", partial(nodes.force, rt=runtime))

    g.add_edge(START, "perceive")
    g.add_edge("perceive", "plan")
    g.add_conditional_edges(
        "plan", route_after_plan, {"act": "act", "check": "check", "force": "force", "plan": "plan"}
    )
    g.add_edge("act", "plan")
    g.add_conditional_edges(
        "check",
        partial(route_after_check, max_retries=runtime.config.max_verdict_retries),
        {"end": END, "plan": "plan", "force": "force"},
    )
    g.add_edge("force", END)
    return g.compile(checkpointer=checkpointer)
