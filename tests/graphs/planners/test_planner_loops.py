"""The server and local planners driving the real detective loop over fake vision backends:
real HTTP to a scripted server, and a tiny VLM with scripted generations."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from vadetective.agent.core.config import Config, ServerSettings
from vadetective.agent.session import Detective
from vadetective.graphs.planners.local import LocalVLMChatModel
from vadetective.graphs.planners.server import build_server_planner
from vadetective.tools.toolbox import Backends

VERDICT = {
    "answer": "Yes, a square moves across the scene.",
    "is_anomalous": True,
    "confidence": 0.7,
    "spans": [{"start_s": 4.0, "end_s": 6.0}],
    "justification": "The score peaks between 4 and 6 s (E1).",
    "evidence_ids": ["E1"],
}


def test_json_action_planner_runs_the_loop(
    small_video: Path,
    config: Config,
    fakes: Backends,
    fake_server: Any,
    vlm_kit: ModuleType,
    tmp_path: Path,
) -> None:
    reply = vlm_kit.Reply
    fake_server.push(
        reply.text(
            "```json\n"
            + json.dumps(
                {
                    "thought": "look at the peak",
                    "tool": "sample_frames",
                    "args": {"start_s": 4, "end_s": 6, "count": 2},
                }
            )
            + "\n```"
        ),
        reply.text("I think it is anomalous."),  # malformed: repaired on the next request
        reply.text(json.dumps({"thought": "enough", "tool": "submit_verdict", "args": VERDICT})),
    )
    settings = ServerSettings(base_url=fake_server.base_url, model="fake-vlm", max_retries=0)
    planner = build_server_planner(settings)
    detective = Detective(
        small_video, config=config, out=tmp_path / "run", planner=planner, backends=fakes
    )
    verdict = detective.ask("Is anything unusual happening?")
    assert verdict.is_anomalous is True and not verdict.forced
    assert [(s.start_s, s.end_s) for s in verdict.spans] == [(4.0, 6.0)]
    trace = detective.last_trace
    assert trace is not None
    assert [s.tool for s in trace.steps if s.kind == "tool"] == ["sample_frames"]
    assert len(fake_server.requests) == 3
    # The frames sampled in the first turn reached the server as images in the later turns.
    later = fake_server.requests[1]
    images = [
        p["image_url"]["url"]
        for m in later["messages"]
        if isinstance(m.get("content"), list)
        for p in m["content"]
        if p.get("type") == "image_url"
    ]
    assert len(images) >= 2 and all(u.startswith("data:image/jpeg;base64,") for u in images)
    assert all("tools" not in body for body in fake_server.requests)
    # Each turn was constrained to one action; the repair sampled warmer than the first try.
    assert all(b["response_format"]["type"] == "json_schema" for b in fake_server.requests)
    assert [b["temperature"] for b in fake_server.requests] == [0.0, 0.0, 0.7]
    # Each request extends the previous one: the server can reuse its prompt as a cached prefix.
    first, second, repair = (b["messages"] for b in fake_server.requests)
    assert second[: len(first)] == first and repair[: len(second)] == second
    assert len(second) == len(first) + 3  # the action, its observation, the frames+budget line
    plans = [s for s in trace.steps if s.kind == "plan"]
    assert [s.meta["protocol"] for s in plans] == ["json_schema", "json_schema"]
    assert [s.meta["requests"] for s in plans] == [1, 2]
    assert trace.cost.prompt_tokens == 3 * 11 and trace.cost.completion_tokens == 3 * 7


def test_native_tool_calling_planner_runs_the_loop(
    small_video: Path,
    config: Config,
    fakes: Backends,
    fake_server: Any,
    vlm_kit: ModuleType,
    tmp_path: Path,
) -> None:
    reply = vlm_kit.Reply
    fake_server.push(
        reply.calls(
            ("sample_frames", {"start_s": 4, "end_s": 6, "count": 2}), content="look at the peak"
        ),
        reply.calls(("submit_verdict", VERDICT), content="enough"),
    )
    planner = build_server_planner(
        ServerSettings(
            base_url=fake_server.base_url, model="fake-vlm", max_retries=0, native_tools=True
        )
    )
    detective = Detective(
        small_video, config=config, out=tmp_path / "run", planner=planner, backends=fakes
    )
    verdict = detective.ask("Is anything unusual happening?")
    assert verdict.is_anomalous is True and not verdict.forced
    first, second = fake_server.requests
    assert "tools" in first and "tools" in second
    roles = [m["role"] for m in second["messages"]]
    # The assistant's call is answered by a tool message right after it, as the API requires.
    i = roles.index("assistant")
    assert second["messages"][i]["tool_calls"][0]["function"]["name"] == "sample_frames"
    assert roles[i + 1] == "tool"
    assert second["messages"][i + 1]["tool_call_id"] == second["messages"][i]["tool_calls"][0]["id"]


def test_local_planner_runs_the_loop(
    small_video: Path,
    config: Config,
    fakes: Backends,
    tiny_vlm_dirs: dict[str, Path],
    vlm_kit: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = LocalVLMChatModel(model_id=str(tiny_vlm_dirs["tools"]), device="cpu", dtype="float32")
    bundle = model.load()
    calls = [
        {"name": "sample_frames", "arguments": {"start_s": 4, "end_s": 6, "count": 2}},
        {"name": "submit_verdict", "arguments": VERDICT},
    ]
    spy = vlm_kit.GenerateSpy(
        bundle, [f"<tool_call>\n{json.dumps(c)}\n</tool_call>" for c in calls]
    )
    monkeypatch.setattr(bundle.model, "generate", spy)
    detective = Detective(
        small_video, config=config, out=tmp_path / "run", planner=model, backends=fakes
    )
    verdict = detective.ask("Is anything unusual happening?")
    assert verdict.is_anomalous is True and not verdict.forced
    assert len(spy.calls) == 2
    # The two sampled frames reached the model as pixels in the second turn.
    assert "image_grid_thw" not in spy.calls[0] or spy.calls[0]["image_grid_thw"].shape[0] == 0
    assert spy.calls[1]["image_grid_thw"].shape[0] == 2
    assert "<tool_response>" in spy.prompt(1)
