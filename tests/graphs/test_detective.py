"""The detective loop with scripted and rule planners over fake backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from vadetective.agent.core.config import Config
from vadetective.agent.session import Detective
from vadetective.graphs.planners.json_actions import failure_message
from vadetective.graphs.planners.scripted import ScriptedChatModel
from vadetective.tools.toolbox import Backends

GOOD_VERDICT = {
    "answer": "Yes, someone sprints.",
    "is_anomalous": True,
    "confidence": 0.8,
    "category": "running",
    "spans": [{"start_s": 4.0, "end_s": 6.0}],
    "boxes": [{"t_s": 5.0, "xyxy": [50, 40, 70, 70], "label": "person", "score": 0.8}],
    "justification": "The score peaks between 4 and 6 s (E1) and the person moves fast (E4).",
    "evidence_ids": ["E1", "E4"],
}


def _session(
    video: Path, config: Config, fakes: Backends, actions: list[Any], tmp_path: Path, **kw: Any
) -> tuple[Detective, ScriptedChatModel]:
    model = ScriptedChatModel(actions=actions)
    d = Detective(video, config=config, out=tmp_path / "run", planner=model, backends=fakes, **kw)
    return d, model


def test_scripted_loop_produces_the_verdict_and_a_complete_trace(
    small_video: Path, config: Config, fakes: Backends, tmp_path: Path
) -> None:
    actions = [
        ("sample_frames", {"start_s": 4.0, "end_s": 6.0, "count": 2}),
        ("ground", {"t_s": 5.0, "phrases": ["person"]}),
        ("inspect_crop", {"t_s": 5.0, "box_xyxy": [50, 40, 70, 70], "question": "is it running?"}),
        ("submit_verdict", GOOD_VERDICT),
    ]
    d, model = _session(small_video, config, fakes, actions, tmp_path)
    v = d.ask("Is anyone running?")
    assert v.is_anomalous is True and v.category == "running" and not v.forced
    assert [(s.start_s, s.end_s) for s in v.spans] == [(4.0, 6.0)]
    assert v.boxes[0].xyxy == (50.0, 40.0, 70.0, 70.0)
    trace = d.last_trace
    assert trace is not None
    kinds = [s.kind for s in trace.steps]
    assert kinds == [
        "perceive",
        "plan",
        "tool",
        "plan",
        "tool",
        "plan",
        "tool",
        "plan",
        "check",
        "verdict",
    ]
    assert [s.tool for s in trace.steps if s.kind in ("perceive", "tool")] == [
        "score_timeline",
        "sample_frames",
        "ground",
        "inspect_crop",
    ]
    assert [e.id for e in trace.evidence] == ["E1", "E2", "E3", "E4"]
    assert all(i in v.justification for i in v.evidence_ids)
    assert trace.cost.planner_calls == 4 and trace.cost.tool_calls == 4
    # The planner was shown the sampled frames as images (data URIs), after the sample_frames call.
    shown = [
        b
        for m in model.seen[1]
        if isinstance(m, HumanMessage) and isinstance(m.content, list)
        for b in m.content
        if isinstance(b, dict) and b.get("type") == "image_url"
    ]
    assert len(shown) == 2 and shown[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    # Frame scores: the timeline raised inside the confirmed span.
    assert v.frame_scores is not None
    inside = [
        s for t, s in zip(v.frame_scores.t_s, v.frame_scores.score, strict=True) if 4.0 <= t <= 6.0
    ]
    assert min(inside) >= 0.9
    # Files: verdict and trace, frames referenced by relative path and present on disk.
    assert (tmp_path / "run" / "verdict.json").exists()
    for step in trace.steps:
        for img in step.images:
            assert (tmp_path / "run" / img.path).exists()


def test_rules_planner_uses_several_tools_and_cites_evidence(
    small_video: Path, config: Config, fakes: Backends, tmp_path: Path
) -> None:
    d = Detective(small_video, config=config, out=tmp_path / "run", backends=fakes)
    v = d.ask()
    trace = d.last_trace
    assert trace is not None
    tools = [s.tool for s in trace.steps if s.kind == "tool"]
    assert {"sample_frames", "ground", "inspect_crop"} <= set(tools)
    assert v.is_anomalous is True
    assert v.spans and v.spans[0].tiou(type(v.spans[0])(start_s=4.0, end_s=6.0)) >= 0.5
    assert v.boxes and v.boxes[0].label == "running"
    assert "4.2x" in v.justification
    ids = {e.id for e in trace.evidence}
    assert v.evidence_ids and set(v.evidence_ids) <= ids
    assert all(i in v.justification for i in v.evidence_ids)
    assert trace.steps[-2].kind == "check" and trace.steps[-2].tool == "submit_verdict"


def test_rules_planner_says_no_on_a_flat_timeline(
    small_video: Path, config: Config, make: Any, tmp_path: Path
) -> None:
    flat = make.backends(peak=0.1)
    d = Detective(small_video, config=config, out=tmp_path / "run", backends=flat)
    v = d.ask()
    assert v.is_anomalous is False and v.spans == []
    assert d.last_trace is not None and any(s.tool == "sample_frames" for s in d.last_trace.steps)


def test_budget_exhaustion_asks_once_more_then_forces(
    small_video: Path, fakes: Backends, tmp_path: Path
) -> None:
    config = Config(profile="classical", max_steps=2, max_planner_calls=10)
    actions = [
        ("sample_frames", {"start_s": float(i), "end_s": float(i) + 1, "count": 1})
        for i in range(6)
    ]
    d, model = _session(small_video, config, fakes, actions, tmp_path)
    v = d.ask()
    assert v.forced is True
    assert v.is_anomalous is True  # the fake timeline peaks at 0.9, clearly above 0.5
    assert model.bound_tools[-1] == ["submit_verdict"]  # the last call could only submit
    trace = d.last_trace
    assert trace is not None and sum(1 for s in trace.steps if s.kind == "tool") == 2
    assert trace.steps[-1].kind == "verdict" and "forced" in trace.steps[-1].summary


def test_undecided_forced_verdict_is_null(
    small_video: Path, config: Config, make: Any, tmp_path: Path
) -> None:
    middling = make.backends(peak=0.55)
    d, _ = _session(
        small_video,
        config.model_copy(update={"max_planner_calls": 1}),
        middling,
        [AIMessage(content="hmm")],
        tmp_path,
    )
    v = d.ask()
    assert v.forced and v.is_anomalous is None


def test_repeated_identical_calls_are_refused(
    small_video: Path, config: Config, fakes: Backends, tmp_path: Path
) -> None:
    call = ("ground", {"t_s": 5.0, "phrases": ["person"]})
    d, _model = _session(
        small_video,
        config,
        fakes,
        [
            call,
            call,
            (
                "submit_verdict",
                {**GOOD_VERDICT, "justification": "E1 and E2", "evidence_ids": ["E1", "E2"]},
            ),
        ],
        tmp_path,
    )
    v = d.ask()
    assert v.is_anomalous is True
    trace = d.last_trace
    assert trace is not None
    refused = [
        s for s in trace.steps if s.kind == "tool" and s.error and "already called" in s.error
    ]
    assert len(refused) == 1
    assert fakes.grounder.calls == 1  # type: ignore[attr-defined]
    assert [e.id for e in trace.evidence] == ["E1", "E2"]


def test_rejected_verdict_goes_back_with_the_reason(
    small_video: Path, config: Config, fakes: Backends, tmp_path: Path
) -> None:
    bad = {
        **GOOD_VERDICT,
        "evidence_ids": ["E9"],
        "justification": "trust me (E9)",
        "spans": [{"start_s": 8.0, "end_s": 99.0}],
        "boxes": [{"t_s": 5, "xyxy": [0, 0, 999, 50]}],
    }
    good = {**GOOD_VERDICT, "justification": "The score peaks (E1).", "evidence_ids": ["E1"]}
    d, model = _session(
        small_video, config, fakes, [("submit_verdict", bad), ("submit_verdict", good)], tmp_path
    )
    v = d.ask()
    assert not v.forced and v.evidence_ids == ["E1"]
    trace = d.last_trace
    assert trace is not None
    checks = [s for s in trace.steps if s.kind == "check"]
    assert len(checks) == 2 and checks[0].error and not checks[1].error
    for fragment in ("E9", "not inside the video", "not inside the 160x120 frame"):
        assert fragment in checks[0].error
    # the planner saw the rejection reason
    assert any("verdict rejected" in str(m.content) for m in model.seen[1])


def test_too_many_rejections_force_a_verdict(
    small_video: Path, config: Config, fakes: Backends, tmp_path: Path
) -> None:
    empty = {**GOOD_VERDICT, "justification": "", "evidence_ids": []}
    d, _ = _session(small_video, config, fakes, [("submit_verdict", empty)] * 5, tmp_path)
    v = d.ask()
    assert v.forced
    trace = d.last_trace
    assert (
        trace is not None
        and sum(1 for s in trace.steps if s.kind == "check") == config.max_verdict_retries + 1
    )


def test_tool_error_mid_loop_is_evidence(
    small_video: Path, config: Config, fakes: Backends, tmp_path: Path
) -> None:
    actions = [
        ("ground", {"t_s": 5.0, "phrases": []}),
        ("sample_frames", {"start_s": 50.0, "end_s": 60.0}),
        ("inspect_crop", {"t_s": 5.0, "box_xyxy": [0, 0, 500, 500], "question": "?"}),
        ("submit_verdict", {**GOOD_VERDICT, "justification": "(E1)", "evidence_ids": ["E1"]}),
    ]
    d, model = _session(small_video, config, fakes, actions, tmp_path)
    v = d.ask()
    assert v.is_anomalous is True
    trace = d.last_trace
    assert trace is not None
    errors = [e.error for e in trace.evidence if e.error]
    assert len(errors) == 3
    assert "phrases is empty" in errors[0]
    assert "outside the video" in errors[1]
    assert "outside the 160x120 frame" in errors[2]
    assert any("ERROR: phrases is empty" in str(m.content) for m in model.seen[1])


def test_a_failing_planner_forces_a_verdict(
    small_video: Path, config: Config, fakes: Backends, tmp_path: Path
) -> None:
    class Broken(ScriptedChatModel):
        def _generate(self, *a: Any, **k: Any) -> Any:
            raise ConnectionError("endpoint down")

    d = Detective(
        small_video, config=config, out=tmp_path / "run", planner=Broken(), backends=fakes
    )
    v = d.ask()
    assert v.forced
    trace = d.last_trace
    assert trace is not None and "endpoint down" in (trace.steps[-1].error or "")


def test_a_planner_that_reports_a_failure_forces_a_verdict_at_once(
    small_video: Path, config: Config, fakes: Backends, tmp_path: Path
) -> None:
    """A planner that returns a failure (the JSON-action and chat planners do, without raising)
    is forced after its first call, and the trace names the error it reported."""
    failure = failure_message(
        '{"tool": "ground", "args": {"t_s": 79.5 + 10.0}}',
        "no valid tool call after a repair retry: invalid JSON",
        "json_actions",
    )
    model = ScriptedChatModel(actions=[failure, failure, failure])
    d = Detective(small_video, config=config, out=tmp_path / "run", planner=model, backends=fakes)
    v = d.ask()
    trace = d.last_trace
    assert trace is not None
    assert v.forced and len(model.seen) == 1  # not nudged and re-asked until the budget ran out
    plan_steps = [s for s in trace.steps if s.kind == "plan"]
    assert [s.error for s in plan_steps] == [
        "no valid tool call after a repair retry: invalid JSON"
    ]
    last = trace.steps[-1]
    assert last.kind == "verdict" and "invalid JSON" in (last.error or "")
    assert "the planner failed" in v.justification and "invalid JSON" in v.justification


def test_second_question_reuses_perception(
    small_video: Path, config: Config, fakes: Backends, tmp_path: Path
) -> None:
    d = Detective(small_video, config=config, out=tmp_path / "run", backends=fakes)
    d.ask("first?")
    decoded_first = d.last_trace.cost.frames_decoded  # type: ignore[union-attr]
    d.ask("second?")
    assert fakes.scorer.calls == 1  # type: ignore[attr-defined]
    assert (tmp_path / "run" / "verdict-2.json").exists() and (
        tmp_path / "run" / "trace-2.json"
    ).exists()
    assert d.last_trace.cost.frames_decoded <= decoded_first  # type: ignore[union-attr]


def test_timeline_is_cached_on_disk_across_sessions(
    small_video: Path, config: Config, make: Any, tmp_path: Path
) -> None:
    first, second = make.backends(), make.backends()
    Detective(small_video, config=config, out=tmp_path / "a", backends=first).ask()
    Detective(small_video, config=config, out=tmp_path / "b", backends=second).ask()
    assert first.scorer.calls == 1 and second.scorer.calls == 0


def test_resume_from_sqlite_checkpoint(
    small_video: Path, config: Config, fakes: Backends, tmp_path: Path
) -> None:
    db = tmp_path / "ckpt.sqlite"
    actions: list[Any] = [
        ("sample_frames", {"start_s": 4.0, "end_s": 6.0, "count": 2}),
        ("ground", {"t_s": 5.0, "phrases": ["person"]}),
        ("inspect_crop", {"t_s": 5.0, "box_xyxy": [50, 40, 70, 70], "question": "fast?"}),
        ("submit_verdict", GOOD_VERDICT),
    ]

    class Interrupting(ScriptedChatModel):
        def _generate(self, messages: Any, *a: Any, **k: Any) -> Any:
            if len(self.seen) == 2:  # the third planner call: simulate Ctrl-C mid-run
                self.seen.append(list(messages))
                raise KeyboardInterrupt
            return super()._generate(messages, *a, **k)

    d = Detective(
        small_video,
        config=config,
        out=tmp_path / "run",
        planner=Interrupting(actions=actions),
        backends=fakes,
    )
    with pytest.raises(KeyboardInterrupt):
        d.ask("Is anyone running?", checkpoint=db)
    assert fakes.grounder.calls == 1  # type: ignore[attr-defined]
    # Resume with a fresh session; the scripted planner continues from its third action.
    resumed_model = ScriptedChatModel(actions=actions[2:])
    d2 = Detective(
        small_video, config=config, out=tmp_path / "run", planner=resumed_model, backends=fakes
    )
    v = d2.ask("Is anyone running?", checkpoint=db)
    assert v.is_anomalous is True and not v.forced
    trace = d2.last_trace
    assert trace is not None
    assert [s.tool for s in trace.steps if s.kind in ("perceive", "tool")] == [
        "score_timeline",
        "sample_frames",
        "ground",
        "inspect_crop",
    ]
    assert fakes.grounder.calls == 1 and fakes.scorer.calls == 1  # type: ignore[attr-defined]


def test_chain_graph_runs_the_fixed_stages(
    small_video: Path, config: Config, fakes: Backends, tmp_path: Path
) -> None:
    d = Detective(small_video, config=config, out=tmp_path / "run", backends=fakes)
    v = d.ask(graph="chain")
    trace = d.last_trace
    assert trace is not None and trace.graph == "chain"
    assert [s.tool for s in trace.steps if s.kind in ("perceive", "tool")] == [
        "score_timeline",
        "sample_frames",
        "ground",
        "inspect_crop",
    ]
    assert trace.cost.planner_calls == 0
    assert v.is_anomalous is True and v.spans and v.boxes


def test_chain_graph_with_a_chat_model_asks_for_tags_and_explanation(
    small_video: Path, config: Config, fakes: Backends, tmp_path: Path
) -> None:
    actions = [
        AIMessage(content='{"tags": ["person sprinting"]}'),
        ("submit_verdict", GOOD_VERDICT),
    ]
    d, _model = _session(small_video, config, fakes, actions, tmp_path)
    v = d.ask(graph="chain")
    trace = d.last_trace
    assert trace is not None and trace.cost.planner_calls == 2
    ground = next(e for e in trace.evidence if e.tool == "ground")
    assert ground.args["phrases"][0] == "person sprinting"
    assert v.answer == GOOD_VERDICT["answer"]


def test_a_model_that_fails_to_load_is_evidence_not_a_crash(
    small_video: Path, config: Config, make: Any, tmp_path: Path
) -> None:
    missing = str(tmp_path / "no-such-model")
    cfg = config.model_copy(
        update={"grounder": "grounding-dino", "models": {"grounding-dino": missing}}
    )
    fakes = make.backends()
    backends = Backends(cfg, _scorer=fakes.scorer, _inspector=fakes.inspector)  # the real grounder
    actions = [
        ("ground", {"t_s": 5.0, "phrases": ["person"]}),
        ("submit_verdict", {**GOOD_VERDICT, "justification": "(E1)", "evidence_ids": ["E1"]}),
    ]
    d = Detective(
        small_video,
        config=cfg,
        out=tmp_path / "run",
        planner=ScriptedChatModel(actions=actions),
        backends=backends,
    )
    v = d.ask()
    assert not v.forced
    trace = d.last_trace
    assert trace is not None
    err = trace.evidence[1].error or ""
    assert "no-such-model" in err and "vadetective models pull" in err
