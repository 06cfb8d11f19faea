"""The server planner against a scripted OpenAI-compatible server on 127.0.0.1: real HTTP,
the real ChatOpenAI client, and assertions on what the server received."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import StructuredTool

from vadetective.agent.core.config import ServerSettings
from vadetective.agent.core.errors import ConfigError, VadetectiveError
from vadetective.graphs.planners.base import PLANNER_ERROR_KEY
from vadetective.graphs.planners.json_actions import PROTOCOL_KEY
from vadetective.graphs.planners.server import ServerChatModel, build_server_planner
from vadetective.tools.backends.vlm.server import ServerUnreachableError

FRAME = "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQ=="
GROUND_ARGS = {"t_s": 2.5, "phrases": ["person"]}
GROUND_JSON = json.dumps({"thought": "find the person", "tool": "ground", "args": GROUND_ARGS})


def conversation() -> list[BaseMessage]:
    return [
        SystemMessage(content="You are a video detective."),
        HumanMessage(
            content=[
                {"type": "text", "text": "Is anyone fighting? Frames at 2.0 s and 2.5 s:"},
                {"type": "image_url", "image_url": {"url": FRAME}},
                {"type": "image_url", "image_url": {"url": FRAME}},
            ]
        ),
    ]


def planner(server: Any, **settings: Any) -> ServerChatModel:
    values = {"base_url": server.base_url, "model": "fake-vlm", "timeout_s": 10.0, **settings}
    model = build_server_planner(ServerSettings(**values), max_retries=0)
    assert isinstance(model, ServerChatModel)
    return model


def roles(body: dict[str, Any]) -> list[str]:
    return [m["role"] for m in body["messages"]]


def image_urls(body: dict[str, Any]) -> list[str]:
    return [
        part["image_url"]["url"]
        for m in body["messages"]
        if isinstance(m.get("content"), list)
        for part in m["content"]
        if part.get("type") == "image_url"
    ]


def test_native_tool_calls(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    fake_server.push(vlm_kit.Reply.calls(("ground", GROUND_ARGS), content="The peak is at 2.5 s."))
    model = planner(fake_server)
    msg = model.bind_tools(tools).invoke(conversation())
    assert isinstance(msg, AIMessage)
    assert msg.tool_calls[0]["name"] == "ground"
    assert msg.tool_calls[0]["args"] == GROUND_ARGS
    assert msg.tool_calls[0]["id"]
    assert msg.content == "The peak is at 2.5 s."
    assert msg.response_metadata[PROTOCOL_KEY] == "native"
    assert msg.usage_metadata is not None and msg.usage_metadata["total_tokens"] == 18
    assert model.native_tools is True
    (body,) = fake_server.requests
    assert body["model"] == "fake-vlm"
    assert [t["function"]["name"] for t in body["tools"]] == [
        "sample_frames",
        "ground",
        "submit_verdict",
    ]
    assert body["tools"][1]["function"]["parameters"]["required"] == ["t_s", "phrases"]
    assert image_urls(body) == [FRAME, FRAME]  # frames travel as image_url blocks
    assert body["temperature"] == 0.0


def test_json_actions_when_native_tools_are_off(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    fake_server.push(vlm_kit.Reply.text(f"Looking at the peak.\n```json\n{GROUND_JSON}\n```"))
    msg = planner(fake_server, native_tools=False).bind_tools(tools).invoke(conversation())
    assert msg.tool_calls[0]["name"] == "ground" and msg.tool_calls[0]["args"] == GROUND_ARGS
    assert msg.content == "find the person"
    assert msg.response_metadata[PROTOCOL_KEY] == "json_actions"
    (body,) = fake_server.requests
    assert "tools" not in body
    system = body["messages"][0]
    assert system["role"] == "system"
    assert system["content"].startswith("You are a video detective.")
    assert '"name":"submit_verdict"' in system["content"]
    assert image_urls(body) == [FRAME, FRAME]


def test_falls_back_when_the_server_refuses_tools(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    def refuse_tools(body: dict[str, Any]) -> Any:
        if "tools" in body:
            return vlm_kit.Reply.fail(400, '"auto" tool choice requires --enable-auto-tool-choice')
        return vlm_kit.Reply.text(GROUND_JSON)

    fake_server.push(refuse_tools, refuse_tools, refuse_tools)
    model = planner(fake_server)
    bound = model.bind_tools(tools)
    msg = bound.invoke(conversation())
    assert msg.tool_calls[0]["name"] == "ground"
    assert ["tools" in b for b in fake_server.requests] == [True, False]
    assert model.native_tools is False
    # Later turns go straight to the JSON protocol.
    bound.invoke(conversation())
    assert ["tools" in b for b in fake_server.requests] == [True, False, False]


def test_json_text_despite_native_tools_switches_protocol(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    fake_server.push(vlm_kit.Reply.text(GROUND_JSON), vlm_kit.Reply.text(GROUND_JSON))
    model = planner(fake_server)
    bound = model.bind_tools(tools)
    msg = bound.invoke(conversation())
    assert msg.tool_calls[0]["args"] == GROUND_ARGS
    assert msg.response_metadata[PROTOCOL_KEY] == "json_text"
    assert model.native_tools is False
    bound.invoke(conversation())
    assert ["tools" in b for b in fake_server.requests] == [True, False]


def test_prose_from_a_server_that_ignores_tools_is_repaired_in_json(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    fake_server.push(vlm_kit.Reply.text("Someone seems to run."), vlm_kit.Reply.text(GROUND_JSON))
    model = planner(fake_server)
    msg = model.bind_tools(tools).invoke(conversation())
    assert msg.tool_calls[0]["name"] == "ground"
    assert msg.response_metadata["attempts"] == 2
    first, second = fake_server.requests
    assert "tools" in first and "tools" not in second
    assert '"tool": "<tool name>"' in second["messages"][0]["content"]  # the protocol prompt
    assert second["messages"][-2] == {"role": "assistant", "content": "Someone seems to run."}
    assert "no JSON object found" in second["messages"][-1]["content"]


def test_malformed_then_repaired(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    bad = '{"thought": "x", "tool": "ground", "args": {"t_s": 2.5}}'
    fake_server.push(vlm_kit.Reply.text(bad), vlm_kit.Reply.text(GROUND_JSON))
    msg = planner(fake_server, native_tools=False).bind_tools(tools).invoke(conversation())
    assert msg.tool_calls[0]["args"] == GROUND_ARGS
    assert msg.response_metadata["attempts"] == 2
    assert msg.usage_metadata is not None and msg.usage_metadata["total_tokens"] == 36  # both calls
    first, second = fake_server.requests
    assert roles(second) == [*roles(first), "assistant", "user"]
    assert second["messages"][-2]["content"] == bad
    assert "missing required argument(s) 'phrases'" in second["messages"][-1]["content"]


def test_malformed_twice_is_a_planner_error(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    fake_server.push(vlm_kit.Reply.text("I am not sure."), vlm_kit.Reply.text('{"tool": "zoom"}'))
    msg = planner(fake_server, native_tools=False).bind_tools(tools).invoke(conversation())
    assert isinstance(msg, AIMessage)
    assert msg.tool_calls == []
    assert "unknown tool 'zoom'" in msg.response_metadata[PLANNER_ERROR_KEY]
    assert len(fake_server.requests) == 2


def test_native_reply_without_a_call_gets_one_nudge(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    fake_server.push(
        vlm_kit.Reply.text("Hmm."),
        vlm_kit.Reply.text("Still thinking."),
    )
    msg = planner(fake_server, native_tools=True).bind_tools(tools).invoke(conversation())
    assert msg.tool_calls == []
    assert PLANNER_ERROR_KEY in msg.response_metadata
    first, second = fake_server.requests
    assert "tools" in first and "tools" in second  # stays native when told to
    assert "Call exactly one of the tools" in second["messages"][-1]["content"]


def test_native_tools_required_but_refused_is_a_clear_error(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    fake_server.push(vlm_kit.Reply.fail(400, "tools are not supported"))
    with pytest.raises(ConfigError, match="native tool calling was requested"):
        planner(fake_server, native_tools=True).bind_tools(tools).invoke(conversation())


def test_tool_images_are_moved_out_of_tool_messages(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    fake_server.push(
        vlm_kit.Reply.calls(("submit_verdict", {"answer": "no", "is_anomalous": False}))
    )
    history = [
        *conversation(),
        AIMessage(
            content="",
            tool_calls=[{"name": "sample_frames", "args": {"start_s": 0, "end_s": 2}, "id": "c1"}],
        ),
        ToolMessage(
            content=[
                {"type": "text", "text": "E1: 2 frames"},
                {"type": "image_url", "image_url": {"url": FRAME}},
            ],
            tool_call_id="c1",
        ),
    ]
    msg = planner(fake_server).bind_tools(tools).invoke(history)
    assert msg.tool_calls[0]["name"] == "submit_verdict"
    (body,) = fake_server.requests
    assert roles(body) == ["system", "user", "assistant", "tool", "user"]
    assert body["messages"][3]["content"] == "E1: 2 frames"
    assert body["messages"][2]["tool_calls"][0]["function"]["name"] == "sample_frames"
    assert image_urls(body) == [FRAME, FRAME, FRAME]


def test_model_name_comes_from_the_server_when_unset(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    fake_server.push(vlm_kit.Reply.text("plain answer"))
    model = planner(fake_server, model=None)
    msg = model.invoke([HumanMessage(content="hello")])  # no tools bound: plain chat
    assert msg.content == "plain answer"
    assert fake_server.model_listings == 1
    assert fake_server.requests[0]["model"] == "fake-vlm"
    assert "tools" not in fake_server.requests[0]


def test_unreachable_server_is_one_clear_sentence(
    vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    url = vlm_kit.closed_port_url()
    model = build_server_planner(
        ServerSettings(base_url=url, model="m", timeout_s=5.0), max_retries=0
    )
    with pytest.raises(ServerUnreachableError) as info:
        model.bind_tools(tools).invoke(conversation())
    message = str(info.value)
    assert url in message
    assert "VADETECTIVE_SERVER_URL" in message
    assert message.count(". ") == 0  # one sentence
    assert isinstance(info.value, VadetectiveError)


def test_rejected_api_key_names_the_setting(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    fake_server.push(vlm_kit.Reply.fail(401, "invalid api key"))
    with pytest.raises(ConfigError, match="VADETECTIVE_SERVER_API_KEY"):
        planner(fake_server, api_key="wrong").bind_tools(tools).invoke(conversation())


def test_missing_url_fails_at_build_time() -> None:
    with pytest.raises(ConfigError, match="VADETECTIVE_SERVER_URL"):
        build_server_planner(ServerSettings(base_url=None))
