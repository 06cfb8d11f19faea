"""The JSON-action protocol, for chat models without native tool calling.

The tools' names, descriptions and JSON schemas go into the system prompt with strict
instructions to answer with one JSON object per turn::

    {"thought": "...", "tool": "<name>", "args": {...}}

The reply is parsed strictly (the object is found inside ```json fences or prose; the tool name
and arguments are checked against the tool's schema) into an ``AIMessage`` with ``tool_calls``.
On a malformed reply the model sees its own output and the parse error once and tries again;
if that fails too, the result is an ``AIMessage`` without tool calls whose
``response_metadata[PLANNER_ERROR_KEY]`` says why (the graph then forces a verdict).

Qwen/Hermes-style ``<tool_call>{"name": ..., "arguments": ...}</tool_call>`` blocks, which
models with a tool-aware chat template emit, go through the same validation.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from vadetective.agent.core.vocabulary import ToolName
from vadetective.graphs.planners.arg_schema import (
    SchemaError,
    action_schema,
    check_value,
    inline_refs,
    kind_of,
    type_name,
)
from vadetective.graphs.planners.base import PLANNER_ERROR_KEY

log = logging.getLogger(__name__)

#: ``response_metadata`` key naming how the tool call was obtained.
PROTOCOL_KEY = "protocol"
#: The tool that ends the analysis.
FINAL_TOOL = ToolName.SUBMIT_VERDICT

_TAGGED_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)


class ActionParseError(ValueError):
    """A reply that is not exactly one valid tool call; the message is shown to the model."""


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the planner sees it: name, description and JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI function-tool format (what ``bind_tools`` sends to a server)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def signature(self) -> str:
        """A short rendering of the arguments for error messages: ``t_s: a number, ...``."""
        props = self.parameters.get("properties", {})
        required = set(self.parameters.get("required", []))
        parts = [
            f"{name}: {type_name(schema)}{'' if name in required else ' (optional)'}"
            for name, schema in props.items()
        ]
        return ", ".join(parts) if parts else "no arguments"


@dataclass(frozen=True)
class Action:
    """One parsed tool call."""

    tool: str
    args: dict[str, Any]


@dataclass(frozen=True)
class ParsedReply:
    """A reply turned into the planner's reasoning text and its tool call(s)."""

    thought: str
    actions: list[Action]


def tool_specs(tools: Sequence[Any]) -> list[ToolSpec]:
    """Tool specs from LangChain tools, typed functions, pydantic classes or OpenAI dicts."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    specs: list[ToolSpec] = []
    for tool in tools:
        if isinstance(tool, ToolSpec):
            specs.append(tool)
            continue
        fn = convert_to_openai_tool(tool)["function"]
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        specs.append(ToolSpec(fn["name"], fn.get("description", ""), params))
    return specs


# --------------------------------------------------------------------------------------------
# Prompt rendering


def render_tools_prompt(specs: Sequence[ToolSpec], final_tool: str = FINAL_TOOL) -> str:
    """The system-prompt section that describes the tools and the answer format.

    Compact on purpose (small models on CPUs pay for every token): each tool is one signature
    line with its first sentence, each argument a short line; the JSON schemas themselves are
    enforced by the parser (and by the server's constrained decoding, where it has one).
    """
    lines = ["# Tools", "", "Call exactly one tool per reply. The tools:"]
    for spec in specs:
        lines.append(f"- {spec.name}: {_first_sentence(spec.description)}")
        props = spec.parameters.get("properties", {})
        required = set(spec.parameters.get("required", []))
        for name, schema in props.items():
            optional = "" if name in required else ", optional"
            desc = str(schema.get("description", "")).strip()
            lines.append(
                f"    {name} ({type_name(_resolved(schema, spec.parameters))}{optional})"
                + (f": {desc}" if desc else "")
            )
    lines += [
        "",
        "# Answer format",
        "",
        "Reply with exactly one JSON object and nothing else:",
        '{"thought": "<your short reasoning>", "tool": "<tool name>", "args": {<arguments>}}',
        "Use JSON numbers, true/false/null and double-quoted strings; no arithmetic. The result "
        "comes back in the next message, marked Observation.",
    ]
    if any(s.name == final_tool for s in specs):
        lines.append(f"When the evidence is enough, call {final_tool}; it ends the analysis.")
    return "\n".join(lines)


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    cut = text.find(". ")
    return text if cut == -1 else text[: cut + 1]


def _resolved(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with a top-level ``$ref`` (and ``$ref``s inside its ``anyOf``) resolved."""
    try:
        return inline_refs(schema, root)
    except SchemaError:
        return schema


def constrained_schema(
    specs: Sequence[ToolSpec],
    evidence_ids: Sequence[str] | None = None,
    boxes: Sequence[Sequence[float]] | None = None,
) -> dict[str, Any]:
    """The JSON schema of one action over ``specs`` (see ``arg_schema.action_schema``)."""
    return action_schema(
        [(s.name, s.parameters) for s in specs],
        list(evidence_ids) if evidence_ids else None,
        [list(b) for b in boxes] if boxes else None,
    )


def repair_request(error: str) -> HumanMessage:
    """The message that shows the model why its last reply could not be used (the error
    quotes the fragment at fault)."""
    return HumanMessage(
        content=(
            f"Your last reply could not be used: {error}. Reply again with exactly one JSON "
            'object {"thought": "...", "tool": "<tool name>", "args": {...}} and nothing else.'
        )
    )


def action_json(thought: str, tool: str, args: dict[str, Any]) -> str:
    """How a past tool call is written back into a JSON-action history (no empty thought)."""
    action = (
        {"thought": thought, "tool": tool, "args": args}
        if thought
        else {"tool": tool, "args": args}
    )
    return json.dumps(action, ensure_ascii=False)


def to_json_action_history(
    messages: Sequence[BaseMessage],
    specs: Sequence[ToolSpec],
    final_tool: str = FINAL_TOOL,
    keep_thoughts: bool = True,
) -> list[BaseMessage]:
    """Rewrite a native tool-calling conversation for a model that only reads text.

    The tools prompt is appended to the first system message (or becomes one); assistant tool
    calls become their JSON actions; tool results become ``Observation`` user messages that keep
    their image blocks. With ``keep_thoughts=False`` past actions are written without their
    reasoning: shorter, and a small model stops copying its first thought into every turn.
    """
    prompt = render_tools_prompt(specs, final_tool)
    out: list[BaseMessage] = []
    names: dict[str, str] = {}
    has_system = False
    for msg in messages:
        if isinstance(msg, SystemMessage) and not has_system:
            has_system = True
            out.append(SystemMessage(content=f"{msg.text}\n\n{prompt}".strip()))
        elif isinstance(msg, AIMessage) and msg.tool_calls:
            for call in msg.tool_calls:
                if call.get("id"):
                    names[str(call["id"])] = call["name"]
            thought = msg.text if keep_thoughts else ""
            actions = [action_json(thought, c["name"], c["args"]) for c in msg.tool_calls]
            out.append(AIMessage(content="\n".join(actions)))
        elif isinstance(msg, ToolMessage):
            name = msg.name or names.get(msg.tool_call_id, "tool")
            header = f"Observation from {name}:"
            text, images = split_images(msg)
            if images:
                out.append(
                    HumanMessage(content=[{"type": "text", "text": f"{header}\n{text}"}, *images])
                )
            else:
                out.append(HumanMessage(content=f"{header}\n{text}"))
        else:
            out.append(msg)
    if not has_system:
        out.insert(0, SystemMessage(content=prompt))
    return out


def split_images(msg: BaseMessage) -> tuple[str, list[dict[str, Any]]]:
    """The text of a message and its image blocks (OpenAI ``image_url`` or standard ``image``)."""
    if isinstance(msg.content, str):
        return msg.content, []
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for block in msg.content:
        if isinstance(block, str):
            texts.append(block)
        elif isinstance(block, dict) and block.get("type") in ("image_url", "image"):
            images.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            texts.append(str(block.get("text", "")))
    return "\n".join(texts), images


def move_tool_images(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """Move images out of tool results into a user message after them.

    OpenAI-compatible servers accept only text in ``tool`` messages, and the tool messages of
    one assistant turn must follow it without a gap, so the images of a run of tool messages go
    into one user message right after the run.
    """
    out: list[BaseMessage] = []
    pending: list[dict[str, Any]] = []
    for msg in messages:
        if pending and not isinstance(msg, ToolMessage):
            out.append(
                HumanMessage(
                    content=[
                        {"type": "text", "text": "Images from the tool results above:"},
                        *pending,
                    ]
                )
            )
            pending = []
        if isinstance(msg, ToolMessage):
            text, images = split_images(msg)
            if images:
                pending.extend(images)
                msg = msg.model_copy(update={"content": text})
        out.append(msg)
    if pending:
        out.append(
            HumanMessage(
                content=[{"type": "text", "text": "Images from the tool results above:"}, *pending]
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# Parsing


def parse_reply(text: str, specs: Sequence[ToolSpec]) -> ParsedReply:
    """Parse a model reply into tool calls, or raise ``ActionParseError`` saying what is wrong.

    ``<tool_call>`` blocks (Qwen/Hermes format) are parsed when present, and may hold several
    calls; otherwise the reply must hold a JSON action object, possibly inside a fenced block or
    prose (of several, the first is kept: later ones were planned without seeing a result).
    """
    if not text or not text.strip():
        raise ActionParseError("the reply is empty")
    if "<tool_call>" in text:
        return _parse_tagged(text, specs)
    objects, decode_errors = extract_json_objects(text)
    candidates = [o for o, _, _ in objects if _action_name(o) is not None]
    unique: list[dict[str, Any]] = []
    for obj in candidates:
        if obj not in unique:  # the same action written twice is still one action
            unique.append(obj)
    if not unique:
        if decode_errors:
            raise ActionParseError(f"the JSON object is malformed ({decode_errors[0]})")
        if objects:
            raise ActionParseError('the JSON object has no "tool" key naming the tool to call')
        raise ActionParseError("no JSON object found in the reply")
    # Several actions in one reply (small models plan ahead): the first is what the model wants
    # now; the rest were written before seeing any result, so they are dropped.
    obj = unique[0]
    if len(unique) > 1:
        log.info("reply held %d actions; keeping the first (%s)", len(unique), _action_name(obj))
    action = _validated_action(obj, specs)
    thought = obj.get("thought")
    if not isinstance(thought, str):
        # No "thought" key: the prose around the object is the reasoning.
        _, start, end = next(o for o in objects if o[0] == obj)
        thought = _strip_fences(text[:start] + " " + text[end:])
    return ParsedReply(thought=thought.strip(), actions=[action])


def _parse_tagged(text: str, specs: Sequence[ToolSpec]) -> ParsedReply:
    actions: list[Action] = []
    for i, body in enumerate(_TAGGED_CALL.findall(text), start=1):
        objects, errors = extract_json_objects(body)
        if not objects:
            why = f"malformed ({errors[0]})" if errors else "empty"
            raise ActionParseError(f"<tool_call> block {i} is {why}")
        if len(objects) > 1:
            raise ActionParseError(
                f"<tool_call> block {i} holds {len(objects)} JSON objects; use one"
            )
        actions.append(_validated_action(objects[0][0], specs))
    thought = _TAGGED_CALL.sub(" ", text).replace("</tool_call>", " ")
    return ParsedReply(thought=" ".join(thought.split()), actions=actions)


def extract_json_objects(text: str) -> tuple[list[tuple[dict[str, Any], int, int]], list[str]]:
    """Every top-level JSON object in ``text`` with its (start, end) offsets, and the decode
    errors of brace-balanced candidates that were not valid JSON.

    Braces inside JSON strings are handled; trailing commas before ``}`` or ``]`` are forgiven
    (an unambiguous slip); anything else that is not JSON is reported, never guessed at.
    """
    found: list[tuple[dict[str, Any], int, int]] = []
    errors: list[str] = []
    i = text.find("{")
    while i != -1:
        end = _balanced_end(text, i)
        if end is None:
            errors.append("the object is not closed; the reply may have been cut off")
            break
        candidate = text[i:end]
        obj: Any = None
        try:
            obj = json.loads(candidate)
        except json.JSONDecodeError as exc:
            try:
                obj = json.loads(_drop_trailing_commas(candidate))
            except json.JSONDecodeError:
                errors.append(
                    f"{exc.msg} at character {exc.pos}, {quote_fragment(candidate, exc.pos)}"
                )
        if isinstance(obj, dict):
            found.append((obj, i, end))
            i = text.find("{", end)
        else:
            i = text.find("{", i + 1)
    return found, errors


def quote_fragment(text: str, pos: int, width: int = 24) -> str:
    """The text around ``pos``, quoted, for a repair message: ``near '"end_s": 79.5 + 10.0'``."""
    lo, hi = max(0, pos - width), min(len(text), pos + width)
    piece = " ".join(text[lo:hi].split())
    return f"near {('...' if lo else '') + piece + ('...' if hi < len(text) else '')!r}"


def _json_chars(text: str, start: int = 0) -> Iterator[tuple[int, str, bool]]:
    """(offset, char, inside a JSON string) for each char from ``start``; quotes count as inside."""
    in_string = False
    escaped = False
    for j in range(start, len(text)):
        ch = text[j]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            yield j, ch, True
        else:
            in_string = ch == '"'
            yield j, ch, in_string


def _balanced_end(text: str, start: int) -> int | None:
    """Offset just past the brace that closes the one at ``start`` (JSON-string aware)."""
    depth = 0
    for j, ch, inside in _json_chars(text, start):
        if inside:
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return j + 1
    return None


def _drop_trailing_commas(candidate: str) -> str:
    out: list[str] = []
    for j, ch, inside in _json_chars(candidate):
        if not inside and ch == "," and candidate[j + 1 :].lstrip()[:1] in ("}", "]"):
            continue
        out.append(ch)
    return "".join(out)


def _strip_fences(text: str) -> str:
    return re.sub(r"```[a-zA-Z]*", " ", text).strip()


def _action_name(obj: dict[str, Any]) -> str | None:
    name = obj.get("tool", obj.get("name"))
    return name if isinstance(name, str) else None


def _validated_action(obj: dict[str, Any], specs: Sequence[ToolSpec]) -> Action:
    name = _action_name(obj)
    if name is None:
        raise ActionParseError('the JSON object has no "tool" key naming the tool to call')
    by_name = {s.name: s for s in specs}
    spec = by_name.get(name)
    if spec is None:
        raise ActionParseError(f"unknown tool {name!r}: choose one of {', '.join(by_name)}")
    raw_args: Any = obj.get("args", obj.get("arguments", {}))
    if isinstance(raw_args, str):
        try:
            raw_args = json.loads(raw_args) if raw_args.strip() else {}
        except json.JSONDecodeError as exc:
            raise ActionParseError(
                f'"args" of {name} is a string that is not a JSON object ({exc.msg})'
            ) from None
    if raw_args is None:
        raw_args = {}
    if not isinstance(raw_args, dict):
        raise ActionParseError(f'"args" of {name} must be a JSON object, got {kind_of(raw_args)}')
    return Action(tool=name, args=validate_args(spec, raw_args))


# --------------------------------------------------------------------------------------------
# Argument validation (the schema checks themselves are in ``arg_schema``)


def validate_args(spec: ToolSpec, args: dict[str, Any]) -> dict[str, Any]:
    """Check ``args`` against the tool's JSON schema; return them with safe coercions applied.

    Coercions: numeric strings to numbers, integral floats to integers, ``"true"``/``"false"``
    to booleans (small models write them; the tool would coerce them the same way).
    Raises ``ActionParseError`` naming the argument and what was expected.
    """
    params = spec.parameters
    props: dict[str, Any] = params.get("properties", {})
    required = [r for r in params.get("required", []) if r not in args]
    if required:
        raise ActionParseError(
            f"tool {spec.name!r} is missing required argument(s) {', '.join(map(repr, required))} "
            f"(arguments: {spec.signature()})"
        )
    unknown = [k for k in args if k not in props]
    if unknown:
        raise ActionParseError(
            f"tool {spec.name!r} has no argument(s) {', '.join(map(repr, unknown))} "
            f"(arguments: {spec.signature()})"
        )
    out: dict[str, Any] = {}
    for key, value in args.items():
        try:
            out[key] = check_value(value, props[key], params, key)
        except SchemaError as exc:
            raise ActionParseError(f"tool {spec.name!r}: argument {exc}") from None
    return out


# --------------------------------------------------------------------------------------------
# Messages and the repair loop


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:16]}"


def reply_message(parsed: ParsedReply, protocol: str, **metadata: Any) -> AIMessage:
    """The ``AIMessage`` for a parsed reply: reasoning as content, the calls as ``tool_calls``."""
    calls = [
        {"name": a.tool, "args": a.args, "id": new_call_id(), "type": "tool_call"}
        for a in parsed.actions
    ]
    return AIMessage(
        content=parsed.thought,
        tool_calls=calls,
        response_metadata={PROTOCOL_KEY: protocol, **metadata},
    )


def failure_message(raw: str, error: str, protocol: str, **metadata: Any) -> AIMessage:
    """An ``AIMessage`` with no tool call whose metadata carries the planner error."""
    return AIMessage(
        content=raw,
        response_metadata={PROTOCOL_KEY: protocol, PLANNER_ERROR_KEY: error, **metadata},
    )


def run_with_repair(
    generate: Callable[[list[BaseMessage]], str],
    messages: Sequence[BaseMessage],
    specs: Sequence[ToolSpec],
    protocol: str = "json_actions",
    parse: Callable[[str, Sequence[ToolSpec]], ParsedReply] = parse_reply,
    first_output: str | None = None,
    repair: Callable[[str], BaseMessage] = repair_request,
) -> AIMessage:
    """Ask ``generate`` for a reply and parse it; on a malformed reply, show the model its output
    and the error once and parse the second reply.

    Args:
        generate: maps the conversation so far to the model's raw text.
        messages: the conversation, already in the form ``generate`` expects.
        specs: the tools the reply may call.
        protocol: recorded in ``response_metadata[PROTOCOL_KEY]``.
        parse: the reply parser (``parse_reply``).
        first_output: a reply the model already gave to ``messages`` (it counts as the first
            attempt, so only the repair is generated).
        repair: builds the message that shows the model the parse error.

    Returns:
        The tool-call message, or a failure message (no tool calls,
        ``response_metadata[PLANNER_ERROR_KEY]`` says why).
    """
    history = list(messages)
    raws: list[str] = []
    errors: list[str] = []
    for attempt in (1, 2):
        given = attempt == 1 and first_output is not None
        raw = first_output if given and first_output is not None else generate(history)
        raws.append(raw)
        try:
            parsed = parse(raw, specs)
        except ActionParseError as exc:
            errors.append(str(exc))
            log.info("planner reply %d unusable: %s", attempt, exc)
            history = [*history, AIMessage(content=raw), repair(str(exc))]
            continue
        return reply_message(parsed, protocol, attempts=attempt, raw_output=raw)
    error = f"no valid tool call after a repair retry: {errors[-1]} (first attempt: {errors[0]})"
    log.warning("planner failed: %s", error)
    return failure_message(raws[-1], error, protocol, attempts=2, raw_outputs=raws)
