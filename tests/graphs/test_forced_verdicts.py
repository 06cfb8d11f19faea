"""Forced verdicts state their real cause and still answer the question that was asked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import StructuredTool

from vadetective.agent.core.config import Config
from vadetective.agent.session import Detective
from vadetective.graphs.planners.json_actions import failure_message
from vadetective.graphs.planners.scripted import ScriptedChatModel
from vadetective.graphs.state import DetectiveState
from vadetective.tools.backends.vlm.server import ServerUnreachableError
from vadetective.tools.toolbox import Backends

TIMEOUT = (
    "the server at http://127.0.0.1:8080/v1 did not answer within 120 s: check that it is "
    "running and not overloaded, or raise --server-timeout (VADETECTIVE_SERVER_TIMEOUT_S)"
)


class RaisingPlanner:
    """A planner whose server stops answering mid-run."""

    name = "server"
    model_id = "qwen"

    def __init__(self) -> None:
        self.calls = 0

    def decide(
        self, state: DetectiveState, tools: Sequence[StructuredTool], final: bool
    ) -> AIMessage:
        self.calls += 1
        raise ServerUnreachableError(TIMEOUT)


def failing() -> AIMessage:
    return failure_message("7 + 3", "no valid tool call after a repair retry: malformed", "json")


@pytest.mark.parametrize(
    ("question", "peak", "answer", "category"),
    [
        (
            "Is anyone running?",
            0.9,
            "Probably yes (running): the speed cue peaks at {peak:.2f}.",
            "running",
        ),
        (
            "Is anyone running?",
            0.2,
            "Probably not (running): the speed cue stays at or below {peak:.2f}.",
            None,
        ),
        (None, 0.9, "Probably yes: the anomaly score is high.", "running"),
    ],
)
def test_a_forced_verdict_answers_the_question_asked(
    small_video: Path,
    config: Config,
    make: Any,
    tmp_path: Path,
    question: str | None,
    peak: float,
    answer: str,
    category: str | None,
) -> None:
    model = ScriptedChatModel(actions=[failing()])
    d = Detective(
        small_video, config=config, out=tmp_path / "r", planner=model, backends=make.backends(peak)
    )
    v = d.ask(question)
    assert v.forced
    trace = d.last_trace
    assert trace is not None and trace.evidence[0].curve is not None
    measured = max(trace.evidence[0].curve.families["speed"])  # the peak the scorer sampled
    assert v.answer == answer.format(peak=measured)
    assert v.category == category
    assert v.is_anomalous is (peak > 0.5)  # still "something abnormal happens", for batch scores


def test_a_server_that_stops_answering_is_named_in_the_verdict(
    small_video: Path, config: Config, fakes: Backends, tmp_path: Path
) -> None:
    planner = RaisingPlanner()
    d = Detective(small_video, config=config, out=tmp_path / "r", planner=planner, backends=fakes)
    v = d.ask("Is anyone running?")
    assert v.forced and planner.calls == 1  # forced at once, not re-asked until the budget ends
    assert v.justification.startswith(
        "Forced because the planner failed (ServerUnreachableError: the server at "
        "http://127.0.0.1:8080/v1 did not answer within 120 s"
    )
    assert "budget" not in v.justification
    assert v.answer.startswith("Probably yes (running)")


def test_an_exhausted_budget_says_which_limits(
    small_video: Path, fakes: Backends, tmp_path: Path
) -> None:
    config = Config(profile="classical", max_steps=2, max_planner_calls=10)
    actions = [
        ("sample_frames", {"start_s": float(i), "end_s": float(i) + 1, "count": 1})
        for i in range(6)
    ]
    model = ScriptedChatModel(actions=actions)
    d = Detective(small_video, config=config, out=tmp_path / "r", planner=model, backends=fakes)
    v = d.ask()
    assert v.forced
    assert v.justification.startswith(
        "Forced because the planner made 3 calls (limit 10) and 2 tool calls (limit 2) without "
        "an accepted verdict"
    )
