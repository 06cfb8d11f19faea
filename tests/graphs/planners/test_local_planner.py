"""The local planner on a tiny random-weight Qwen2.5-VL loaded through from_pretrained(path).

These test the wrapper's contract — messages in, AIMessage with tool calls out, tools in the
chat template or the JSON prompt, images into pixel inputs — not the answers of random weights
(scripted generations stand in for a trained model where an answer matters)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import StructuredTool

from vadetective.agent.core.config import config_for
from vadetective.graphs.planners.base import PLANNER_ERROR_KEY
from vadetective.graphs.planners.json_actions import PROTOCOL_KEY
from vadetective.graphs.planners.local import LocalVLMChatModel, to_hf_messages
from vadetective.tools.backends.vlm.hf import load_vlm


def data_uri(hw: tuple[int, int], seed: int = 0) -> str:
    from PIL import Image

    rgb = np.random.default_rng(seed).integers(0, 255, (*hw, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def conversation(n_images: int = 2) -> list[BaseMessage]:
    frames = [
        {"type": "image_url", "image_url": {"url": data_uri((90, 120), i)}} for i in range(n_images)
    ]
    return [
        SystemMessage(content="You are a video detective."),
        HumanMessage(content=[{"type": "text", "text": "Is anyone fighting?"}, *frames]),
    ]


def planner(folder: Path, **kwargs: Any) -> LocalVLMChatModel:
    return LocalVLMChatModel(
        model_id=str(folder), device="cpu", dtype="float32", max_new_tokens=12, **kwargs
    )


TAGGED = 'Checking the peak.\n<tool_call>\n{"name": "ground", "arguments": {"t_s": 2.5, "phrases": ["person"]}}\n</tool_call>'
JSON_ACTION = (
    '{"thought": "checking", "tool": "ground", "args": {"t_s": 2.5, "phrases": ["person"]}}'
)


def test_template_tools_are_rendered_and_tool_calls_parsed(
    tiny_vlm_dirs: dict[str, Path],
    vlm_kit: ModuleType,
    tools: list[StructuredTool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = planner(tiny_vlm_dirs["tools"])
    bundle = model.load()
    assert model.uses_template_tools(bundle)
    spy = vlm_kit.GenerateSpy(bundle, [TAGGED])
    monkeypatch.setattr(bundle.model, "generate", spy)
    msg = model.bind_tools(tools).invoke(conversation(2))
    assert isinstance(msg, AIMessage)
    assert [(c["name"], c["args"]) for c in msg.tool_calls] == [
        ("ground", {"t_s": 2.5, "phrases": ["person"]})
    ]
    assert msg.content == "Checking the peak."
    assert msg.response_metadata[PROTOCOL_KEY] == "chat_template"
    (call,) = spy.calls
    prompt = spy.prompt()
    assert (
        "<tools>" in prompt and '"name": "submit_verdict"' in prompt
    )  # the template's tools block
    assert '"thought"' not in prompt  # not the JSON-action protocol
    assert prompt.count("<|vision_start|>") == 2
    assert call["do_sample"] is False and call["max_new_tokens"] == 12
    # Two images became pixel inputs: one grid per image, patches for both.
    assert call["image_grid_thw"].shape[0] == 2
    assert call["pixel_values"].shape[0] == int(call["image_grid_thw"].prod(dim=1).sum())
    assert msg.usage_metadata is not None
    assert msg.usage_metadata["input_tokens"] == call["input_ids"].shape[1]


def test_json_protocol_without_template_tools(
    tiny_vlm_dirs: dict[str, Path],
    vlm_kit: ModuleType,
    tools: list[StructuredTool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = planner(tiny_vlm_dirs["plain"])
    bundle = model.load()
    assert not model.uses_template_tools(bundle)
    spy = vlm_kit.GenerateSpy(bundle, [f"```json\n{JSON_ACTION}\n```"])
    monkeypatch.setattr(bundle.model, "generate", spy)
    msg = model.bind_tools(tools).invoke(conversation(1))
    assert msg.tool_calls[0]["name"] == "ground"
    assert msg.content == "checking"
    assert msg.response_metadata[PROTOCOL_KEY] == "json_actions"
    prompt = spy.prompt()
    assert prompt.startswith("<|im_start|>system\nYou are a video detective.")
    assert '{"thought": "<your short reasoning>", "tool": "<tool name>"' in prompt
    assert "- ground: Find boxes for text phrases" in prompt
    assert spy.calls[0]["image_grid_thw"].shape[0] == 1


def test_tool_format_can_be_forced(tiny_vlm_dirs: dict[str, Path]) -> None:
    bundle = load_vlm(str(tiny_vlm_dirs["tools"]), "cpu", "float32")
    assert not planner(tiny_vlm_dirs["tools"], tool_format="json").uses_template_tools(bundle)
    plain = load_vlm(str(tiny_vlm_dirs["plain"]), "cpu", "float32")
    assert planner(tiny_vlm_dirs["plain"], tool_format="template").uses_template_tools(plain)


def test_malformed_reply_is_repaired_once(
    tiny_vlm_dirs: dict[str, Path],
    vlm_kit: ModuleType,
    tools: list[StructuredTool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = planner(tiny_vlm_dirs["tools"])
    bundle = model.load()
    spy = vlm_kit.GenerateSpy(
        bundle, ['<tool_call>{"name": "zoom", "arguments": {}}</tool_call>', TAGGED]
    )
    monkeypatch.setattr(bundle.model, "generate", spy)
    msg = model.bind_tools(tools).invoke(conversation(1))
    assert msg.tool_calls[0]["name"] == "ground"
    assert msg.response_metadata["attempts"] == 2
    assert len(spy.calls) == 2
    repair_prompt = spy.prompt(1)
    assert "unknown tool 'zoom'" in repair_prompt
    assert '{"name": "zoom", "arguments": {}}' in repair_prompt  # the model sees its own output


def test_random_weights_end_to_end(
    tiny_vlm_dirs: dict[str, Path],
    vlm_kit: ModuleType,
    tools: list[StructuredTool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Real greedy generation: an AIMessage either way, deterministic, never an exception."""
    model = planner(tiny_vlm_dirs["plain"])
    bundle = model.load()
    spy = vlm_kit.GenerateSpy(bundle)  # records and calls the real generate
    monkeypatch.setattr(bundle.model, "generate", spy)
    bound = model.bind_tools(tools)
    first = bound.invoke(conversation(1))
    second = bound.invoke(conversation(1))
    assert isinstance(first, AIMessage)
    assert first.tool_calls or PLANNER_ERROR_KEY in first.response_metadata
    if not first.tool_calls:
        assert len(spy.calls) == 4  # two attempts per invoke
        assert first.response_metadata["raw_outputs"] == second.response_metadata["raw_outputs"]
    assert first.usage_metadata is not None and first.usage_metadata["output_tokens"] > 0
    assert "pixel_values" in spy.calls[0]


def test_without_tools_it_is_a_plain_chat_model(
    tiny_vlm_dirs: dict[str, Path], vlm_kit: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = planner(tiny_vlm_dirs["tools"])
    bundle = model.load()
    spy = vlm_kit.GenerateSpy(bundle, ["A person runs across the lawn."])
    monkeypatch.setattr(bundle.model, "generate", spy)
    msg = model.invoke([HumanMessage(content="Describe.")], stop=["lawn"])
    assert msg.content == "A person runs across the "
    assert msg.tool_calls == []
    assert "<tools>" not in spy.prompt()


def test_tool_history_goes_through_the_template(
    tiny_vlm_dirs: dict[str, Path],
    vlm_kit: ModuleType,
    tools: list[StructuredTool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = planner(tiny_vlm_dirs["tools"])
    bundle = model.load()
    spy = vlm_kit.GenerateSpy(bundle, [TAGGED])
    monkeypatch.setattr(bundle.model, "generate", spy)
    frame = {"type": "image_url", "image_url": {"url": data_uri((60, 80))}}
    history = [
        *conversation(1),
        AIMessage(
            content="look",
            tool_calls=[{"name": "sample_frames", "args": {"start_s": 0, "end_s": 2}, "id": "c1"}],
        ),
        ToolMessage(content=[{"type": "text", "text": "E1: 1 frame"}, frame], tool_call_id="c1"),
    ]
    model.bind_tools(tools).invoke(history)
    prompt = spy.prompt()
    assert (
        '<tool_call>\n{"name": "sample_frames", "arguments": {"start_s": 0, "end_s": 2}}' in prompt
    )
    assert "<tool_response>\nE1: 1 frame" in prompt
    assert prompt.count("<|vision_start|>") == 2  # the tool's frame moved to a user turn
    assert spy.calls[0]["image_grid_thw"].shape[0] == 2


def test_images_are_decoded_and_downscaled() -> None:
    msgs, images = to_hf_messages(
        [
            HumanMessage(
                content=[{"type": "image_url", "image_url": {"url": data_uri((400, 800))}}, "what?"]
            )
        ],
        max_image_side=200,
    )
    assert msgs == [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what?"}]}
    ]
    assert images[0].size == (200, 100)
    with pytest.raises(ValueError, match="remote image URLs are not fetched"):
        to_hf_messages(
            [HumanMessage(content=[{"type": "image_url", "image_url": {"url": "https://x/y.jpg"}}])]
        )


def test_from_config_and_a_shared_model(tiny_vlm_dirs: dict[str, Path]) -> None:
    folder = str(tiny_vlm_dirs["plain"])
    config = config_for("local", models={"vlm": folder}, device="cpu", dtype="float32")
    model = LocalVLMChatModel.from_config(config, max_new_tokens=7)
    assert (model.model_id, model.device, model.dtype, model.max_new_tokens) == (
        folder,
        "cpu",
        "float32",
        7,
    )
    assert model.load() is load_vlm(folder, "cpu", "float32")  # loaded once per process
    assert load_vlm(folder, "cpu", "bfloat16") is not model.load()
    assert json.loads(json.dumps(model._identifying_params))["model_id"] == folder
