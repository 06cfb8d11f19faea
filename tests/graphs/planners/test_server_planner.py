"""The server planner against a scripted OpenAI-compatible server on 127.0.0.1: real HTTP, the
real ``openai`` client, and assertions on what the server received. The protocols (constrained
JSON actions, plain-text JSON actions, native tool calls), text-only mode, adapting to refusals,
and repair."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import StructuredTool

from vadetective.agent.core.config import Config, ServerSettings
from vadetective.agent.core.errors import ConfigError, VadetectiveError
from vadetective.graphs import prompts
from vadetective.graphs.planners.base import PLANNER_ERROR_KEY
from vadetective.graphs.planners.json_actions import PROTOCOL_KEY
from vadetective.graphs.planners.server import (
    NO_IMAGE_NOTE,
    REPAIR_TEMPERATURE,
    ServerChatModel,
    build_server_planner,
)
from vadetective.tools.backends.vlm.server import ServerUnreachableError

FRAME = "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQ=="
GROUND_ARGS = {"t_s": 2.5, "phrases": ["person"]}
GROUND_JSON = json.dumps({"thought": "find the person", "tool": "ground", "args": GROUND_ARGS})
IMAGE_REFUSED = "image input is not supported - hint: if this is unexpected, you may need to provide the mmproj"  # fmt: skip


def conversation(system: str = "You are a video detective.") -> list[BaseMessage]:
    return [
        SystemMessage(content=system),
        HumanMessage(
            content=[
                {"type": "text", "text": "Is anyone fighting? Frames at 2.0 s and 2.5 s:"},
                {"type": "image_url", "image_url": {"url": FRAME}},
                {"type": "image_url", "image_url": {"url": FRAME}},
            ]
        ),
    ]


def planner(server: Any, **settings: Any) -> ServerChatModel:
    values = {
        "base_url": server.base_url,
        "model": "fake-vlm",
        "timeout_s": 10.0,
        "max_retries": 0,
        **settings,
    }
    model = build_server_planner(ServerSettings(**values))
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


def schema_tools(body: dict[str, Any]) -> list[str]:
    """The tool names the request's response_format schema allows."""
    schema = body["response_format"]["json_schema"]["schema"]
    options = schema.get("anyOf", [schema])
    return [o["properties"]["tool"]["const"] for o in options]


def project_tools(tmp_path: Path) -> list[StructuredTool]:
    """The graph's own five tools (described and validated here, never run)."""
    from vadetective.tools.base import FrameBatch
    from vadetective.tools.toolbox import Toolbox

    class _NoSource:
        info = None
        timestamps = np.zeros(0)
        frames_decoded = 0

        def read(self, frame_idx: Any, max_side: Any = None) -> FrameBatch:
            raise AssertionError("not called")

        def close(self) -> None:
            return None

    toolbox = Toolbox(source=_NoSource(), config=Config(), run_dir=tmp_path)  # type: ignore[arg-type]
    return list(toolbox.planner_tools().values())


# ---------------------------------------------------------------- constrained JSON actions


def test_constrained_json_actions_are_the_default(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    fake_server.push(vlm_kit.Reply.text(GROUND_JSON))
    model = planner(fake_server)
    msg = model.bind_tools(tools).invoke(conversation())
    assert isinstance(msg, AIMessage)
    assert msg.tool_calls[0]["name"] == "ground" and msg.tool_calls[0]["args"] == GROUND_ARGS
    assert msg.content == "find the person"
    assert msg.response_metadata[PROTOCOL_KEY] == "json_schema"
    assert msg.usage_metadata is not None and msg.usage_metadata["total_tokens"] == 18
    (body,) = fake_server.requests
    assert "tools" not in body
    assert body["response_format"]["type"] == "json_schema"
    assert schema_tools(body) == ["sample_frames", "ground", "submit_verdict"]
    ground = body["response_format"]["json_schema"]["schema"]["anyOf"][1]
    assert ground["required"] == ["thought", "tool", "args"]
    assert ground["properties"]["args"]["required"] == ["t_s", "phrases"]
    assert ground["properties"]["args"]["additionalProperties"] is False
    system = body["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("You are a video detective.")
    assert "- ground: Find boxes for text phrases" in system["content"]  # the compact tools prompt
    assert image_urls(body) == [FRAME, FRAME]  # the listing did not say text-only
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.0, 384, 0)


def test_a_constrained_verdict_cites_only_evidence_that_exists(
    fake_server: Any, vlm_kit: ModuleType, tmp_path: Path
) -> None:
    verdict = {
        "answer": "Yes, someone runs.",
        "is_anomalous": True,
        "confidence": 0.8,
        "justification": "The speed cue peaks at 4 s (E1, E2)",
    }
    fake_server.push(vlm_kit.Reply.text(json.dumps({"thought": "", "tool": "submit_verdict", "args": verdict})))  # fmt: skip
    bound = planner(fake_server).bind_tools(project_tools(tmp_path), evidence_ids=["E1", "E2"])
    msg = bound.invoke(conversation())
    assert msg.tool_calls[0]["args"]["evidence_ids"] == ["E1", "E2"]  # read from the citation
    (body,) = fake_server.requests
    options = body["response_format"]["json_schema"]["schema"]["anyOf"]
    args = next(o for o in options if o["properties"]["tool"]["const"] == "submit_verdict")
    props = args["properties"]["args"]["properties"]
    assert "evidence_ids" not in props  # the model cannot list ids its text does not cite
    pattern = props["justification"]["pattern"]
    assert "(E1|E2)" in pattern and pattern.endswith("\\)$")


def test_a_refused_response_format_falls_back_to_plain_text(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    def no_schemas(body: dict[str, Any]) -> Any:
        if "response_format" in body:
            return vlm_kit.Reply.fail(400, "response_format type json_schema is not supported")
        return vlm_kit.Reply.text(f"Looking at the peak.\n```json\n{GROUND_JSON}\n```")

    fake_server.push(no_schemas, no_schemas, no_schemas)
    model = planner(fake_server)
    bound = model.bind_tools(tools)
    msg = bound.invoke(conversation())
    assert msg.tool_calls[0]["args"] == GROUND_ARGS
    assert msg.response_metadata[PROTOCOL_KEY] == "json_text"
    assert ["response_format" in b for b in fake_server.requests] == [True, False]
    bound.invoke(conversation())  # later turns go straight to plain text
    assert ["response_format" in b for b in fake_server.requests] == [True, False, False]
    assert model.protocol == "json_text"


def test_structured_output_can_be_switched_off(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    fake_server.push(vlm_kit.Reply.text(GROUND_JSON))
    msg = planner(fake_server, structured_output=False).bind_tools(tools).invoke(conversation())
    assert msg.response_metadata[PROTOCOL_KEY] == "json_text"
    assert "response_format" not in fake_server.requests[0]


# ---------------------------------------------------------------- repair


def test_the_repair_quotes_the_bad_fragment_and_samples_warmer(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    bad = (
        '{"thought": "x", "tool": "sample_frames", "args": {"start_s": 79.5, "end_s": 79.5 + 10.0}}'
    )
    fake_server.push(vlm_kit.Reply.text(bad), vlm_kit.Reply.text(GROUND_JSON))
    msg = planner(fake_server, structured_output=False).bind_tools(tools).invoke(conversation())
    assert msg.tool_calls[0]["args"] == GROUND_ARGS
    assert msg.response_metadata["attempts"] == 2
    assert msg.usage_metadata is not None and msg.usage_metadata["total_tokens"] == 36  # both calls
    first, second = fake_server.requests
    assert roles(second) == [*roles(first), "assistant", "user"]
    assert second["messages"][-2]["content"] == bad
    assert "79.5 + 10.0" in second["messages"][-1]["content"]  # the fragment at fault, quoted
    assert first["temperature"] == 0.0 and second["temperature"] == REPAIR_TEMPERATURE


def test_malformed_twice_is_a_planner_error(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    fake_server.push(vlm_kit.Reply.text("I am not sure."), vlm_kit.Reply.text('{"tool": "zoom"}'))
    msg = planner(fake_server, structured_output=False).bind_tools(tools).invoke(conversation())
    assert isinstance(msg, AIMessage)
    assert msg.tool_calls == []
    assert "unknown tool 'zoom'" in msg.response_metadata[PLANNER_ERROR_KEY]
    assert "no JSON object found" in msg.response_metadata[PLANNER_ERROR_KEY]
    assert len(fake_server.requests) == 2


def test_a_repeated_call_is_refused_and_the_repair_offers_the_rest(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    history = [
        *conversation(),
        AIMessage(content="", tool_calls=[{"name": "ground", "args": GROUND_ARGS, "id": "c1"}]),
        ToolMessage(content="E2 ground: 1 box", tool_call_id="c1"),
    ]
    frames = {"thought": "look", "tool": "sample_frames", "args": {"start_s": 2, "end_s": 3}}
    fake_server.push(vlm_kit.Reply.text(GROUND_JSON), vlm_kit.Reply.text(json.dumps(frames)))
    msg = planner(fake_server).bind_tools(tools).invoke(history)
    assert msg.tool_calls[0]["name"] == "sample_frames"
    first, second = fake_server.requests
    assert (
        "already called with exactly these arguments (its result is E2)"
        in (second["messages"][-1]["content"])
    )
    assert schema_tools(first) == ["sample_frames", "ground", "submit_verdict"]
    assert schema_tools(second) == ["sample_frames", "submit_verdict"]


# ---------------------------------------------------------------- text-only models


def test_a_text_only_listing_means_no_frames_are_sent(
    vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    with vlm_kit.FakeOpenAIServer(owned_by="llamacpp", modalities=("text",)) as server:
        server.push(vlm_kit.Reply.text(GROUND_JSON))
        model = planner(server)
        msg = model.bind_tools(tools).invoke(conversation(prompts.SYSTEM_PROMPT))
        assert msg.tool_calls[0]["name"] == "ground"
        assert msg.response_metadata["text_only"] is True
        (body,) = server.requests
    assert image_urls(body) == []
    system = body["messages"][0]["content"]
    assert system.startswith(prompts.TEXT_ONLY_SYSTEM_PROMPT)
    assert "sample_frames" not in system  # its result is images only: not offered
    assert schema_tools(body) == ["ground", "submit_verdict"]
    assert body["messages"][1]["content"] == "Is anyone fighting? Frames at 2.0 s and 2.5 s:"
    assert model.describe() == {
        "model": "fake-vlm",
        "server": server.base_url,
        "server_kind": "llamacpp",
        "protocol": "json_schema",
        "text_only": "true",
    }


def test_a_text_only_model_inspects_only_grounded_boxes(
    vlm_kit: ModuleType, tmp_path: Path
) -> None:
    tools = project_tools(tmp_path)
    box = [10.0, 20.0, 50.0, 120.0]
    with vlm_kit.FakeOpenAIServer(modalities=("text",)) as server:
        server.push(vlm_kit.Reply.text(GROUND_JSON), vlm_kit.Reply.text(GROUND_JSON))
        model = planner(server)
        model.bind_tools(tools).invoke(conversation())
        model.bind_tools(tools, boxes=[box]).invoke(conversation())
        before, after = server.requests
    # Without a grounded box there is nothing to inspect (a blind model would invent one).
    assert "inspect_crop" not in schema_tools(before) and "sample_frames" not in schema_tools(
        before
    )
    assert schema_tools(after) == ["score_timeline", "ground", "inspect_crop", "submit_verdict"]
    inspect = after["response_format"]["json_schema"]["schema"]["anyOf"][2]
    assert inspect["properties"]["args"]["properties"]["box_xyxy"] == {"enum": [box]}


def test_an_image_refusal_switches_to_text_only(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    def text_only(body: dict[str, Any]) -> Any:
        if image_urls(body):
            return vlm_kit.Reply.fail(500, IMAGE_REFUSED)
        return vlm_kit.Reply.text(GROUND_JSON)

    fake_server.push(text_only, text_only, text_only)
    model = planner(fake_server)
    bound = model.bind_tools(tools)
    msg = bound.invoke(conversation())
    assert msg.tool_calls[0]["name"] == "ground"
    assert msg.response_metadata["text_only"] is True
    assert msg.response_metadata[PROTOCOL_KEY] == "json_schema"  # not mistaken for a tools refusal
    assert [len(image_urls(b)) for b in fake_server.requests] == [2, 0]
    bound.invoke(conversation())
    assert [len(image_urls(b)) for b in fake_server.requests] == [2, 0, 0]


def test_an_image_refusal_when_frames_are_required_is_a_clear_error(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    fake_server.push(vlm_kit.Reply.fail(500, IMAGE_REFUSED))
    with pytest.raises(
        ConfigError, match=r"does not read images .* run it text-only \(--text-only"
    ):
        planner(fake_server, text_only=False).bind_tools(tools).invoke(conversation())


def test_a_frame_only_turn_becomes_a_note(vlm_kit: ModuleType, tools: list[StructuredTool]) -> None:
    history = [
        *conversation(),
        HumanMessage(content=[{"type": "image_url", "image_url": {"url": FRAME}}]),
    ]
    with vlm_kit.FakeOpenAIServer() as server:
        server.push(vlm_kit.Reply.text(GROUND_JSON))
        planner(server, text_only=True).bind_tools(tools).invoke(history)
        (body,) = server.requests
    assert body["messages"][-1]["content"] == NO_IMAGE_NOTE.format(n=1)
    assert image_urls(body) == []


# ---------------------------------------------------------------- native tool calls


def test_native_tool_calls(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    fake_server.push(vlm_kit.Reply.calls(("ground", GROUND_ARGS), content="The peak is at 2.5 s."))
    model = planner(fake_server, native_tools=True)
    msg = model.bind_tools(tools).invoke(conversation())
    assert isinstance(msg, AIMessage)
    assert msg.tool_calls[0]["name"] == "ground"
    assert msg.tool_calls[0]["args"] == GROUND_ARGS
    assert msg.tool_calls[0]["id"]
    assert msg.content == "The peak is at 2.5 s."
    assert msg.response_metadata[PROTOCOL_KEY] == "native"
    (body,) = fake_server.requests
    assert body["model"] == "fake-vlm"
    assert [t["function"]["name"] for t in body["tools"]] == [
        "sample_frames",
        "ground",
        "submit_verdict",
    ]
    assert body["tools"][1]["function"]["parameters"]["required"] == ["t_s", "phrases"]
    assert "response_format" not in body
    assert image_urls(body) == [FRAME, FRAME]  # frames travel as image_url blocks


def test_only_the_first_of_several_native_calls_is_kept(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    frames = {"start_s": 2, "end_s": 3}
    fake_server.push(vlm_kit.Reply.calls(("ground", GROUND_ARGS), ("sample_frames", frames)))
    msg = planner(fake_server, native_tools=True).bind_tools(tools).invoke(conversation())
    assert [c["name"] for c in msg.tool_calls] == ["ground"]


def test_a_native_call_written_as_text_is_parsed(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    fake_server.push(vlm_kit.Reply.text(f"```json\n{GROUND_JSON}\n```"))
    msg = planner(fake_server, native_tools=True).bind_tools(tools).invoke(conversation())
    assert msg.tool_calls[0]["args"] == GROUND_ARGS
    assert msg.response_metadata[PROTOCOL_KEY] == "native"


def test_native_reply_without_a_call_gets_one_nudge(
    fake_server: Any, vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    fake_server.push(vlm_kit.Reply.text("Hmm."), vlm_kit.Reply.text("Still thinking."))
    msg = planner(fake_server, native_tools=True).bind_tools(tools).invoke(conversation())
    assert msg.tool_calls == []
    assert PLANNER_ERROR_KEY in msg.response_metadata
    first, second = fake_server.requests
    assert "tools" in first and "tools" in second  # stays native when told to
    assert "Call exactly one of the tools" in second["messages"][-1]["content"]


@pytest.mark.parametrize(
    ("owned_by", "message", "fix"),
    [
        ("llamacpp", "tools param requires --jinja flag", "start llama-server with --jinja"),
        (
            "vllm",
            '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser',
            "start vLLM with --enable-auto-tool-choice",
        ),
    ],
)
def test_refused_native_tools_name_the_server_fix(
    vlm_kit: ModuleType, tools: list[StructuredTool], owned_by: str, message: str, fix: str
) -> None:
    with vlm_kit.FakeOpenAIServer(owned_by=owned_by) as server:
        server.push(vlm_kit.Reply.fail(400, message))
        with pytest.raises(ConfigError, match="refused native tool calls") as info:
            planner(server, native_tools=True).bind_tools(tools).invoke(conversation())
    assert fix in str(info.value) and "drop --native-tools" in str(info.value)


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
    msg = planner(fake_server, native_tools=True).bind_tools(tools).invoke(history)
    assert msg.tool_calls[0]["name"] == "submit_verdict"
    (body,) = fake_server.requests
    assert roles(body) == ["system", "user", "assistant", "tool", "user"]
    assert body["messages"][3]["content"] == "E1: 2 frames"
    assert body["messages"][2]["tool_calls"][0]["function"]["name"] == "sample_frames"
    assert image_urls(body) == [FRAME, FRAME, FRAME]


# ---------------------------------------------------------------- the endpoint


def test_model_name_comes_from_the_server_when_unset(fake_server: Any, vlm_kit: ModuleType) -> None:
    fake_server.push(vlm_kit.Reply.text("plain answer"))
    model = planner(fake_server, model=None)
    msg = model.invoke([HumanMessage(content="hello")])  # no tools bound: plain chat
    assert msg.content == "plain answer"
    assert fake_server.model_listings == 1
    assert fake_server.requests[0]["model"] == "fake-vlm"
    assert "tools" not in fake_server.requests[0]
    assert "response_format" not in fake_server.requests[0]


def test_unreachable_server_is_one_clear_sentence(
    vlm_kit: ModuleType, tools: list[StructuredTool]
) -> None:
    url = vlm_kit.closed_port_url()
    model = build_server_planner(ServerSettings(base_url=url, model="m", timeout_s=5.0))
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
