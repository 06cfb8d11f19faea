"""The JSON-action protocol: prompt rendering, the strict parser, history rewriting, repair."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import StructuredTool

from vadetective.graphs.planners.base import PLANNER_ERROR_KEY
from vadetective.graphs.planners.json_actions import (
    PROTOCOL_KEY,
    ActionParseError,
    ToolSpec,
    move_tool_images,
    parse_reply,
    render_tools_prompt,
    run_with_repair,
    to_json_action_history,
    tool_specs,
)

IMG = {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}

GROUND = (
    '{"thought": "find the person", "tool": "ground", "args": {"t_s": 2.5, "phrases": ["person"]}}'
)

# (id, raw model output, expected tool, expected args, expected thought)
GOOD: list[tuple[str, str, str, dict[str, Any], str]] = [
    ("bare", GROUND, "ground", {"t_s": 2.5, "phrases": ["person"]}, "find the person"),
    (
        "fenced",
        f"```json\n{GROUND}\n```",
        "ground",
        {"t_s": 2.5, "phrases": ["person"]},
        "find the person",
    ),
    (
        "prose-wrapped",
        f"Let me check the frame first.\n{GROUND}\nThat should tell us.",
        "ground",
        {"t_s": 2.5, "phrases": ["person"]},
        "find the person",
    ),
    (
        "trailing-commas",
        '{"thought": "t", "tool": "ground", "args": {"t_s": 1, "phrases": ["a", "b",],},}',
        "ground",
        {"t_s": 1, "phrases": ["a", "b"]},
        "t",
    ),
    (
        "braces-and-quotes-in-strings",
        '{"thought": "a } brace and a \\" quote {", "tool": "ground", '
        '"args": {"t_s": 0, "phrases": ["sign saying {stop}"]}}',
        "ground",
        {"t_s": 0, "phrases": ["sign saying {stop}"]},
        'a } brace and a " quote {',
    ),
    (
        "same-action-twice",
        f"{GROUND}\nTo repeat:\n{GROUND}",
        "ground",
        {"t_s": 2.5, "phrases": ["person"]},
        "find the person",
    ),
    (
        "thought-from-prose",
        'The runner is fast.\n```json\n{"tool": "sample_frames", "args": {"start_s": 1, "end_s": 3}}\n```',
        "sample_frames",
        {"start_s": 1, "end_s": 3},
        "The runner is fast.",
    ),
    (
        "numeric-strings-coerced",
        '{"thought": "", "tool": "sample_frames", "args": {"start_s": "1.5", "end_s": 3, "count": 2.0}}',
        "sample_frames",
        {"start_s": 1.5, "end_s": 3, "count": 2},
        "",
    ),
    (
        "openai-style-name-arguments-string",
        '{"name": "ground", "arguments": "{\\"t_s\\": 4, \\"phrases\\": [\\"car\\"]}"}',
        "ground",
        {"t_s": 4, "phrases": ["car"]},
        "",
    ),
    (
        "null-for-optional-and-nested-objects",
        '{"thought": "done", "tool": "submit_verdict", "args": {"answer": "unclear", '
        '"is_anomalous": null, "spans": [{"start_s": 1, "end_s": 2}]}}',
        "submit_verdict",
        {"answer": "unclear", "is_anomalous": None, "spans": [{"start_s": 1, "end_s": 2}]},
        "done",
    ),
    (
        "qwen-tool-call-tags",
        'I will ground.\n<tool_call>\n{"name": "ground", "arguments": {"t_s": 3, "phrases": ["dog"]}}\n</tool_call>',
        "ground",
        {"t_s": 3, "phrases": ["dog"]},
        "I will ground.",
    ),
    (
        "enum-value",
        '{"tool": "ground", "args": {"t_s": 1, "phrases": ["x"], "mode": "accurate"}}',
        "ground",
        {"t_s": 1, "phrases": ["x"], "mode": "accurate"},
        "",
    ),
    (
        # Small models plan ahead; later actions were written before any result: dropped.
        "two-different-actions-keep-the-first",
        f'{GROUND}\n{{"tool": "sample_frames", "args": {{"start_s": 0, "end_s": 1}}}}',
        "ground",
        {"t_s": 2.5, "phrases": ["person"]},
        "find the person",
    ),
]

# (id, raw model output, a fragment the error must contain)
BAD: list[tuple[str, str, str]] = [
    ("empty", "   ", "empty"),
    ("no-json", "I think someone is running.", "no JSON object"),
    ("single-quotes", "{'tool': 'ground', 'args': {}}", "malformed"),
    ("cut-off", '{"thought": "x", "tool": "ground", "args": {"t_s": 1', "not closed"),
    ("wrong-tool", '{"tool": "grnd", "args": {}}', "unknown tool 'grnd'"),
    (
        "missing-arg",
        '{"tool": "ground", "args": {"t_s": 1}}',
        "missing required argument(s) 'phrases'",
    ),
    (
        "unknown-arg",
        '{"tool": "ground", "args": {"t_s": 1, "phrases": [], "fps": 2}}',
        "no argument(s) 'fps'",
    ),
    (
        "wrong-type",
        '{"tool": "ground", "args": {"t_s": "soon", "phrases": ["a"]}}',
        "'t_s' must be a number",
    ),
    (
        "non-integral-integer",
        '{"tool": "sample_frames", "args": {"start_s": 0, "end_s": 1, "count": 2.5}}',
        "'count' must be an integer",
    ),
    (
        "bad-enum",
        '{"tool": "ground", "args": {"t_s": 1, "phrases": ["a"], "mode": "slow"}}',
        "must be one of",
    ),
    (
        "array-expected",
        '{"tool": "ground", "args": {"t_s": 1, "phrases": "person"}}',
        "'phrases' must be an array of strings",
    ),
    (
        "nested-missing-key",
        '{"tool": "submit_verdict", "args": {"answer": "a", "is_anomalous": true, "spans": [{"start_s": 1}]}}',
        "missing key(s) 'end_s'",
    ),
    ("no-tool-key", '{"thought": "hmm", "args": {"t_s": 1}}', 'no "tool" key'),
    ("args-not-object", '{"tool": "ground", "args": [1, 2]}', "must be a JSON object"),
    (
        "arithmetic-quoted",
        '{"tool": "sample_frames", "args": {"start_s": 79.5, "end_s": 79.5 + 10.0}}',
        'near \'...s": 79.5, "end_s": 79.5 + 10.0}}\'',
    ),
    (
        "bad-tagged-call",
        "<tool_call>\n{name: ground}\n</tool_call>",
        "<tool_call> block 1 is malformed",
    ),
]


@pytest.fixture
def specs(tools: list[StructuredTool]) -> list[ToolSpec]:
    return tool_specs(tools)


@pytest.mark.parametrize(
    ("raw", "tool", "args", "thought"), [g[1:] for g in GOOD], ids=[g[0] for g in GOOD]
)
def test_parse_reply_accepts(
    raw: str, tool: str, args: dict[str, Any], thought: str, specs: list[ToolSpec]
) -> None:
    parsed = parse_reply(raw, specs)
    assert len(parsed.actions) == 1
    assert parsed.actions[0].tool == tool
    assert parsed.actions[0].args == args
    assert parsed.thought == thought


@pytest.mark.parametrize(("raw", "fragment"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_parse_reply_rejects_with_a_clear_error(
    raw: str, fragment: str, specs: list[ToolSpec]
) -> None:
    with pytest.raises(ActionParseError) as info:
        parse_reply(raw, specs)
    assert fragment in str(info.value)


def test_coerced_types_are_real_numbers(specs: list[ToolSpec]) -> None:
    args = parse_reply(GOOD[7][1], specs).actions[0].args
    assert isinstance(args["start_s"], float) and isinstance(args["count"], int)


def test_several_tagged_calls_are_several_tool_calls(specs: list[ToolSpec]) -> None:
    raw = (
        '<tool_call>{"name": "ground", "arguments": {"t_s": 1, "phrases": ["a"]}}</tool_call>\n'
        '<tool_call>{"name": "sample_frames", "arguments": {"start_s": 0, "end_s": 2}}</tool_call>'
    )
    assert [a.tool for a in parse_reply(raw, specs).actions] == ["ground", "sample_frames"]


def test_tool_specs_come_from_the_docstrings(specs: list[ToolSpec]) -> None:
    by_name = {s.name: s for s in specs}
    assert set(by_name) == {"sample_frames", "ground", "submit_verdict"}
    ground = by_name["ground"]
    assert ground.description.startswith("Find boxes for text phrases")
    assert ground.parameters["required"] == ["t_s", "phrases"]
    assert ground.parameters["properties"]["t_s"]["description"] == "Time of the frame, in seconds."
    assert ground.signature().startswith(
        "t_s: a number, phrases: an array of strings, mode: one of"
    )
    assert ground.to_openai()["function"]["name"] == "ground"


def test_project_planner_tools_round_trip(tmp_path: Any) -> None:
    """The graph's real tool schemas render and validate (nested spans and boxes included)."""
    import numpy as np

    from vadetective.agent.core.config import Config
    from vadetective.tools.base import FrameBatch
    from vadetective.tools.toolbox import Toolbox

    class _NoSource:  # the tools are only described and validated, never run
        info = None
        timestamps = np.zeros(0)
        frames_decoded = 0

        def read(self, frame_idx: Any, max_side: Any = None) -> FrameBatch:
            raise AssertionError("not called")

        def close(self) -> None:
            return None

    toolbox = Toolbox(source=_NoSource(), config=Config(), run_dir=tmp_path)  # type: ignore[arg-type]
    specs = tool_specs(list(toolbox.planner_tools().values()))
    prompt = render_tools_prompt(specs)
    assert all(s.name in prompt for s in specs)
    raw = json.dumps(
        {
            "thought": "clear fall",
            "tool": "submit_verdict",
            "args": {
                "answer": "A person falls.",
                "is_anomalous": True,
                "confidence": 0.8,
                "justification": "fall seen (E1, E2)",
                "evidence_ids": ["E1", "E2"],
                "spans": [{"start_s": 3.0, "end_s": 5.5}],
                "boxes": [{"t_s": 4.0, "xyxy": [10, 20, 50, 120], "label": "person"}],
            },
        }
    )
    action = parse_reply(raw, specs).actions[0]
    assert action.args["boxes"][0]["xyxy"] == [10, 20, 50, 120]
    with pytest.raises(ActionParseError, match="missing required argument"):
        parse_reply('{"tool": "submit_verdict", "args": {"answer": "x"}}', specs)


def test_tools_prompt_is_compact_and_complete(specs: list[ToolSpec]) -> None:
    prompt = render_tools_prompt(specs)
    for spec in specs:
        assert f"- {spec.name}: {spec.description.split('. ')[0]}" in prompt
        for name in spec.parameters["properties"]:
            assert f"    {name} (" in prompt  # every argument
    # Types and optionality, one short line per argument (not the JSON schemas: 3x the tokens).
    assert "    t_s (a number): Time of the frame, in seconds." in prompt
    assert "    count (an integer, optional): How many frames to take (1 to 8)." in prompt
    assert "    mode (one of 'fast', 'accurate', optional)" in prompt
    assert "    is_anomalous (true/false or null)" in prompt
    assert '"parameters"' not in prompt
    assert "no arithmetic" in prompt
    assert (
        '{"thought": "<your short reasoning>", "tool": "<tool name>", "args": {<arguments>}}'
        in prompt
    )
    assert "exactly one JSON object" in prompt
    assert "call submit_verdict" in prompt
    no_final = render_tools_prompt([s for s in specs if s.name != "submit_verdict"])
    assert "submit_verdict" not in no_final


def test_history_is_rewritten_for_a_text_only_model(specs: list[ToolSpec]) -> None:
    history: list[BaseMessage] = [
        SystemMessage(content="You are a video detective."),
        HumanMessage(content=[{"type": "text", "text": "Is anyone fighting?"}, IMG]),
        AIMessage(
            content="look at the peak",
            tool_calls=[
                {"name": "ground", "args": {"t_s": 2.0, "phrases": ["person"]}, "id": "c1"}
            ],
        ),
        ToolMessage(content=[{"type": "text", "text": "E1: 2 boxes"}, IMG], tool_call_id="c1"),
    ]
    out = to_json_action_history(history, specs)
    assert isinstance(out[0], SystemMessage)
    assert out[0].text.startswith("You are a video detective.")
    assert "# Tools" in out[0].text
    assert out[1] is history[1]  # user turns with images pass through untouched
    assert isinstance(out[2], AIMessage) and not out[2].tool_calls
    assert json.loads(out[2].text) == {
        "thought": "look at the peak",
        "tool": "ground",
        "args": {"t_s": 2.0, "phrases": ["person"]},
    }
    assert isinstance(out[3], HumanMessage)
    assert out[3].content[0]["text"].startswith("Observation from ground:\nE1: 2 boxes")  # type: ignore[index]
    assert out[3].content[1] == IMG
    assert not any(isinstance(m, ToolMessage) for m in out)


def test_history_without_system_message_gets_one(specs: list[ToolSpec]) -> None:
    out = to_json_action_history([HumanMessage(content="hi")], specs)
    assert isinstance(out[0], SystemMessage) and "# Tools" in out[0].text
    assert out[1].text == "hi"


def test_tool_images_move_after_the_tool_run() -> None:
    history: list[BaseMessage] = [
        AIMessage(
            content="",
            tool_calls=[
                {"name": "ground", "args": {}, "id": "a"},
                {"name": "ground", "args": {}, "id": "b"},
            ],
        ),
        ToolMessage(content=[{"type": "text", "text": "first"}, IMG], tool_call_id="a"),
        ToolMessage(content="second", tool_call_id="b"),
        HumanMessage(content="go on"),
    ]
    out = move_tool_images(history)
    assert [type(m).__name__ for m in out] == [
        "AIMessage",
        "ToolMessage",
        "ToolMessage",
        "HumanMessage",
        "HumanMessage",
    ]
    assert out[1].content == "first"
    assert out[3].content[1] == IMG
    assert out[4].text == "go on"


class Scripted:
    """A text generator that answers scripted replies and records what it was sent."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.seen: list[list[BaseMessage]] = []

    def __call__(self, messages: list[BaseMessage]) -> str:
        self.seen.append(messages)
        return self.replies[len(self.seen) - 1]


def test_run_with_repair_first_reply_good(specs: list[ToolSpec]) -> None:
    gen = Scripted(GROUND)
    msg = run_with_repair(gen, [HumanMessage(content="q")], specs)
    assert len(gen.seen) == 1
    assert msg.tool_calls[0]["name"] == "ground"
    assert msg.tool_calls[0]["id"]
    assert msg.content == "find the person"
    assert msg.response_metadata[PROTOCOL_KEY] == "json_actions"
    assert msg.response_metadata["attempts"] == 1


def test_run_with_repair_shows_the_error_once(specs: list[ToolSpec]) -> None:
    gen = Scripted('{"tool": "grnd", "args": {}}', GROUND)
    msg = run_with_repair(gen, [HumanMessage(content="q")], specs)
    assert len(gen.seen) == 2
    repair_turn = gen.seen[1]
    assert repair_turn[-2].text == '{"tool": "grnd", "args": {}}'  # its own output
    assert "unknown tool 'grnd'" in repair_turn[-1].text  # and the parse error
    assert msg.tool_calls[0]["args"] == {"t_s": 2.5, "phrases": ["person"]}
    assert msg.response_metadata["attempts"] == 2


def test_run_with_repair_gives_up_after_one_retry(specs: list[ToolSpec]) -> None:
    gen = Scripted("no idea", "still no idea")
    msg = run_with_repair(gen, [HumanMessage(content="q")], specs)
    assert len(gen.seen) == 2
    assert msg.tool_calls == []
    error = msg.response_metadata[PLANNER_ERROR_KEY]
    assert "no JSON object" in error and "repair" in error
    assert msg.response_metadata["raw_outputs"] == ["no idea", "still no idea"]


def test_run_with_repair_counts_a_given_first_output(specs: list[ToolSpec]) -> None:
    gen = Scripted(GROUND)
    msg = run_with_repair(gen, [HumanMessage(content="q")], specs, first_output="prose only")
    assert len(gen.seen) == 1  # only the repair was generated
    assert gen.seen[0][-2].text == "prose only"
    assert msg.tool_calls[0]["name"] == "ground"
