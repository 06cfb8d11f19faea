"""The ``server`` planner: a model behind any OpenAI-compatible endpoint (vLLM, SGLang, Ollama,
llama.cpp server), vision or text-only, big or small.

How it adapts to what it finds:

- **Protocol.** By default each reply is one JSON action (``json_actions``), constrained by
  the server to the schema of one action (``response_format`` with a JSON schema; llama.cpp,
  vLLM, SGLang and Ollama support it), so a small model cannot write malformed JSON, unknown
  tools or several actions. A server that refuses ``response_format`` gets the same protocol as
  plain text, parsed strictly with one repair turn that quotes the bad fragment (sampled warmer
  than the first attempt, since at temperature 0 a model repeats the same bytes). Native tool
  calls (the ``tools`` field) are used when ``native_tools=True``.
- **Frames.** A text-only model (``text_only=True``, ``/models`` listing only text input, or a
  server refusing an image) never receives frames: image blocks become a one-line note,
  ``sample_frames`` (whose result is only images) is not offered, and the system prompt asks it
  to reason over the timeline, the grounded boxes and the inspector's measured findings.
- **Failures.** Refusals are diagnosed from the server's error body; transient failures are
  retried by the client (``ServerClient``), deterministic ones end the turn with one sentence.

The prompt is built to be cached by the server as a prefix: the system message (instructions
and tools) never changes during a run, and each turn only appends what is new.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    convert_to_openai_messages,
)
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import StructuredTool
from pydantic import PrivateAttr

from vadetective.agent.core.config import Config, ServerSettings
from vadetective.agent.core.errors import ConfigError
from vadetective.agent.core.vocabulary import ToolName
from vadetective.graphs import prompts
from vadetective.graphs.planners.arg_schema import cited_ids
from vadetective.graphs.planners.base import ChatPlanner
from vadetective.graphs.planners.json_actions import (
    FINAL_TOOL,
    PROTOCOL_KEY,
    ActionParseError,
    ParsedReply,
    ToolSpec,
    constrained_schema,
    failure_message,
    move_tool_images,
    parse_reply,
    reply_message,
    run_with_repair,
    to_json_action_history,
    tool_specs,
    validate_args,
)
from vadetective.graphs.state import DetectiveState
from vadetective.tools.backends.vlm.server import ChatReply, ServerClient, ServerRequestError

log = logging.getLogger(__name__)

#: The repair attempt samples at least this warm: at temperature 0 a model repeats its bytes.
REPAIR_TEMPERATURE = 0.7
#: Tools a text-only model is not offered: their results are images only.
IMAGE_ONLY_TOOLS = frozenset({ToolName.SAMPLE_FRAMES})
#: Boxes of a grounding result that its summary shows (``Toolbox.ground`` lists six).
SHOWN_BOXES = 6
#: What a text-only model reads where an image was.
NO_IMAGE_NOTE = "[{n} image(s) not shown: this model reads text only]"
_IMAGES_ATTACHED = re.compile(r"\n\d+ image\(s\) attached$", re.MULTILINE)


class ServerChatModel(BaseChatModel):
    """A chat model on an OpenAI-compatible endpoint that answers with one tool call per turn.

    Build it with ``build_server_planner(settings)``; use it like any LangChain chat model:
    ``planner.bind_tools(tools).invoke(messages) -> AIMessage``. A reply without a usable tool
    call carries ``response_metadata["planner_error"]``; every reply carries its protocol,
    attempts and token counts in ``response_metadata``.

    Attributes:
        settings: the endpoint and how to talk to it (see ``ServerSettings``).
        final_tool: the tool that ends the analysis (named in repair messages).
    """

    settings: ServerSettings
    final_tool: str = FINAL_TOOL

    _client: Any = PrivateAttr(default=None)
    _text_only: bool | None = PrivateAttr(default=None)
    _structured: bool | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "vadetective-server"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"base_url": self.settings.base_url, "model": self.settings.model}

    @property
    def client(self) -> ServerClient:
        if self._client is None:
            self._client = ServerClient(self.settings)
        return self._client

    # ------------------------------------------------------------------ what was detected
    @property
    def text_only(self) -> bool:
        """Whether frames are withheld: the setting, else what the server said (asks it)."""
        if self.settings.text_only is not None:
            return self.settings.text_only
        if self._text_only is None:
            vision = self.client.capabilities().vision
            self._text_only = vision is False
            if self._text_only:
                log.warning(
                    "server planner: %s lists text input only; frames will not be sent",
                    self.client.capabilities().model,
                )
        return self._text_only

    @property
    def structured(self) -> bool:
        """Whether replies are constrained by a JSON schema (the setting, else not refused)."""
        if self.settings.structured_output is not None:
            return self.settings.structured_output
        return self._structured is not False

    @property
    def protocol(self) -> str:
        """``native``, ``json_schema`` (constrained JSON actions) or ``json_text``."""
        if self.settings.native_tools:
            return "native"
        return "json_schema" if self.structured else "json_text"

    def describe(self) -> dict[str, str]:
        """Model, server and protocol, for the trace (asks the server what it serves)."""
        caps = self.client.capabilities()
        return {
            "model": caps.model,
            "server": self.client.base_url,
            "server_kind": caps.server or "unknown",
            "protocol": self.protocol,
            "text_only": str(self.text_only).lower(),
        }

    # ------------------------------------------------------------------ LangChain surface
    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (LangChain tools, typed functions or OpenAI dicts) for every call.

        ``evidence_ids=[...]`` may be bound too: constrained replies then cite only those.
        """
        schemas = [spec.to_openai() for spec in tool_specs(tools)]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=schemas, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools: list[dict[str, Any]] | None = kwargs.pop("tools", None)
        tool_choice: str | None = kwargs.pop("tool_choice", None)
        evidence_ids: list[str] | None = kwargs.pop("evidence_ids", None)
        boxes: list[list[float]] | None = kwargs.pop("boxes", None)
        turn = _Turn(self, stop)
        if not tools:
            reply = turn.request(messages, self.settings.temperature)
            message = AIMessage(content=reply.text)
        else:
            specs = tool_specs(tools)
            if self.text_only:
                # Frames are never shown, and without a grounded box there is nothing to
                # inspect: offer neither (a blind model would invent a box).
                blind = IMAGE_ONLY_TOOLS | ({ToolName.INSPECT_CROP} if not boxes else set())
                specs = [s for s in specs if s.name not in blind] or specs
            if self.settings.native_tools:
                message = self._native_turn(turn, messages, specs, tool_choice)
            else:
                message = self._json_turn(turn, messages, specs, evidence_ids, boxes)
        meta = {**message.response_metadata, **turn.metadata(self)}
        message = message.model_copy(
            update={"usage_metadata": turn.usage(), "response_metadata": meta}
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    # ------------------------------------------------------------------ protocols
    def _json_turn(
        self,
        turn: _Turn,
        messages: list[BaseMessage],
        specs: list[ToolSpec],
        evidence_ids: list[str] | None,
        boxes: list[list[float]] | None,
    ) -> AIMessage:
        history = to_json_action_history(messages, specs, self.final_tool, keep_thoughts=False)
        # After a refused or failed call, a model at temperature 0 tends to repeat it.
        warm_from_start = _last_result_failed(messages)
        # After a refused repeat, the repair offers only tools not called yet and the verdict.
        repeated: set[str] = set()
        called = {c["name"] for m in messages if isinstance(m, AIMessage) for c in m.tool_calls}

        def generate(msgs: list[BaseMessage]) -> str:
            warm = warm_from_start or turn.calls > 0  # a repair samples differently
            temperature = (
                max(self.settings.temperature, REPAIR_TEMPERATURE)
                if warm
                else self.settings.temperature
            )
            offered = (
                [s for s in specs if s.name == self.final_tool or s.name not in called | repeated]
                if repeated
                else specs
            ) or specs
            schema = constrained_schema(offered, evidence_ids, boxes if self.text_only else None)
            return turn.request(msgs, temperature, schema=schema).text

        done = _past_calls(messages)

        def parse(raw: str, specs_: Sequence[ToolSpec]) -> ParsedReply:
            if self.structured and evidence_ids:
                raw = _with_cited_ids(raw, self.final_tool)
            parsed = parse_reply(raw, specs_)
            action = parsed.actions[0]
            evidence = done.get(_call_key(action.tool, action.args))
            if evidence is not None:
                repeated.add(action.tool)
                raise ActionParseError(
                    f"{action.tool} was already called with exactly these arguments"
                    f"{f' (its result is {evidence})' if evidence else ''}: use that result, "
                    f"call another tool, or call {self.final_tool}"
                )
            return parsed

        return run_with_repair(generate, history, specs, protocol=self.protocol, parse=parse)

    def _native_turn(
        self,
        turn: _Turn,
        messages: list[BaseMessage],
        specs: list[ToolSpec],
        tool_choice: str | None,
    ) -> AIMessage:
        tools = [s.to_openai() for s in specs]
        history = move_tool_images(messages)
        errors: list[str] = []
        raws: list[str] = []
        for attempt in (1, 2):
            reply = turn.request(
                history, self.settings.temperature, tools=tools, choice=tool_choice
            )
            raws.append(reply.text)
            try:
                return _native_message(reply, specs, attempt)
            except ActionParseError as exc:
                errors.append(str(exc))
            history = [
                *history,
                AIMessage(content=reply.text),
                HumanMessage(
                    content=f"Your last reply could not be used: {errors[-1]}. Call exactly one of "
                    f"the tools ({', '.join(s.name for s in specs)}); call {self.final_tool} when "
                    "the evidence is enough."
                ),
            ]
        return failure_message(
            raws[-1],
            f"no tool call after a repair retry: {errors[-1]} (first attempt: {errors[0]})",
            "native",
            attempts=2,
            raw_outputs=raws,
        )

    # ------------------------------------------------------------------ adapting
    def on_refusal(self, exc: ServerRequestError) -> bool:
        """Adapt to what the server refused; True when the request is worth sending again."""
        url = self.client.base_url
        if exc.refused == "images" and self.settings.text_only is None and not self._text_only:
            log.warning("server planner: %s refused an image; frames will not be sent", url)
            self._text_only = True
            return True
        if exc.refused == "images":
            raise ConfigError(
                f"the model at {url} does not read images ({exc.detail}): run it text-only "
                "(--text-only, VADETECTIVE_SERVER_TEXT_ONLY=true) or serve a vision model"
            ) from exc
        if (
            exc.refused == "response_format"
            and self.settings.structured_output is None
            and self._structured is not False
        ):
            log.warning(
                "server planner: %s refused response_format (%s); using plain-text JSON actions",
                url,
                exc.detail,
            )
            self._structured = False
            return True
        if exc.refused == "tools" and self.settings.native_tools:
            kind = self.client.capabilities().server.lower()
            how = (
                "start llama-server with --jinja"
                if "llama" in kind
                else "start vLLM with --enable-auto-tool-choice --tool-call-parser hermes"
                if "vllm" in kind
                else "enable tool calling on the server"
            )
            raise ConfigError(
                f"the server at {url} refused native tool calls ({exc.detail}): {how}, or drop "
                "--native-tools to use the JSON-action protocol"
            ) from exc
        return False


class _Turn:
    """One planner turn: sends requests (adapting to refusals) and sums what they cost."""

    def __init__(self, model: ServerChatModel, stop: list[str] | None) -> None:
        self.model = model
        self.stop = stop
        self.replies: list[ChatReply] = []

    @property
    def calls(self) -> int:
        return len(self.replies)

    def request(
        self,
        messages: Sequence[BaseMessage],
        temperature: float,
        schema: dict[str, Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
        choice: str | None = None,
    ) -> ChatReply:
        m = self.model
        s = m.settings
        for _ in range(3):  # at most: images refused, then response_format refused
            fmt = (
                {"type": "json_schema", "json_schema": {"name": "action", "schema": schema}}
                if schema is not None and m.structured
                else None
            )
            payload = to_openai(messages, text_only=m.text_only)
            try:
                reply = m.client.chat(
                    payload,
                    max_tokens=s.max_tokens,
                    temperature=temperature,
                    response_format=fmt,
                    tools=tools,
                    tool_choice=choice,
                    stop=self.stop,
                    seed=s.seed,
                )
            except ServerRequestError as exc:
                if m.on_refusal(exc):
                    continue
                raise
            self.replies.append(reply)
            return reply
        raise AssertionError("unreachable: each refusal is adapted to once")

    def usage(self) -> Any:
        if not self.replies:
            return None
        prompt = sum(r.prompt_tokens for r in self.replies)
        completion = sum(r.completion_tokens for r in self.replies)
        return {
            "input_tokens": prompt,
            "output_tokens": completion,
            "total_tokens": prompt + completion,
            "input_token_details": {"cache_read": sum(r.cached_tokens for r in self.replies)},
        }

    def metadata(self, model: ServerChatModel) -> dict[str, Any]:
        return {
            PROTOCOL_KEY: model.protocol,
            "requests": self.calls,
            "request_seconds": round(sum(r.seconds for r in self.replies), 3),
            "text_only": model.text_only,
        }


def _with_cited_ids(raw: str, final_tool: str) -> str:
    """A constrained verdict with ``evidence_ids`` read from its justification's citation
    (the constrained schema leaves the list out; see ``arg_schema.action_schema``)."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError:
        return raw  # not constrained after all: the parser reports what is wrong
    args = obj.get("args") if isinstance(obj, dict) else None
    if obj.get("tool") != final_tool or not isinstance(args, dict) or "evidence_ids" in args:
        return raw
    args["evidence_ids"] = cited_ids(str(args.get("justification", "")))
    return json.dumps(obj, ensure_ascii=False)


def _call_key(name: str, args: dict[str, Any]) -> str:
    return name + json.dumps(args, sort_keys=True, default=str)


def _past_calls(messages: Sequence[BaseMessage]) -> dict[str, str]:
    """Calls already made in the conversation -> the evidence id they produced ("" unknown)."""
    out: dict[str, str] = {}
    results: dict[str, str] = {}
    for m in messages:
        if isinstance(m, ToolMessage):
            head = m.text.split(" ", 1)[0]
            results[m.tool_call_id] = head if head[:1] == "E" and head[1:].isdigit() else ""
    for m in messages:
        if isinstance(m, AIMessage):
            for c in m.tool_calls:
                if c["name"] != FINAL_TOOL:
                    out[_call_key(c["name"], dict(c["args"]))] = results.get(c.get("id") or "", "")
    return out


def _last_result_failed(messages: Sequence[BaseMessage]) -> bool:
    """Whether the last tool result was an error or a refusal."""
    for m in reversed(messages):
        if isinstance(m, ToolMessage):
            return m.status == "error"
        if isinstance(m, AIMessage):
            return False
    return False


def to_openai(messages: Sequence[BaseMessage], text_only: bool) -> list[dict[str, Any]]:
    """OpenAI chat messages; in text-only mode image blocks become a note and the system
    prompt is the text-only one."""
    if text_only:
        messages = [_without_images(m) for m in messages]
    out: list[dict[str, Any]] = convert_to_openai_messages(list(messages))
    return out


def _without_images(msg: BaseMessage) -> BaseMessage:
    if isinstance(msg, SystemMessage):
        return msg.model_copy(update={"content": prompts.for_text_only(msg.text)})
    if isinstance(msg.content, str):
        return msg.model_copy(update={"content": _IMAGES_ATTACHED.sub("", msg.content)})
    kept: list[Any] = []
    dropped = 0
    for block in msg.content:
        if isinstance(block, dict) and block.get("type") in ("image_url", "image"):
            dropped += 1
        else:
            kept.append(block)
    if not dropped:
        return msg
    texts = [b.get("text", "") if isinstance(b, dict) else str(b) for b in kept]
    text = "\n".join(t for t in texts if t).replace(prompts.IMAGES_FOLLOW, "").strip()
    return msg.model_copy(update={"content": text or NO_IMAGE_NOTE.format(n=dropped)})


def _native_message(reply: ChatReply, specs: Sequence[ToolSpec], attempt: int) -> AIMessage:
    """The tool call of a native reply (checked against its schema), or one written as text."""
    by_name = {s.name: s for s in specs}
    if reply.tool_calls:
        call = reply.tool_calls[0]  # one action per turn: later calls were planned blind
        spec = by_name.get(call["name"])
        if spec is None:
            raise ActionParseError(
                f"unknown tool {call['name']!r}: choose one of {', '.join(by_name)}"
            )
        try:
            args = json.loads(call["arguments"] or "{}")
        except json.JSONDecodeError as exc:
            raise ActionParseError(
                f"the arguments of {call['name']} are not JSON ({exc.msg}): {call['arguments'][:80]!r}"
            ) from None
        if not isinstance(args, dict):
            raise ActionParseError(f"the arguments of {call['name']} must be a JSON object")
        return AIMessage(
            content=reply.text,
            tool_calls=[
                {
                    "name": spec.name,
                    "args": validate_args(spec, args),
                    "id": call["id"] or f"call_{attempt}",
                    "type": "tool_call",
                }
            ],
            response_metadata={PROTOCOL_KEY: "native", "attempts": attempt},
        )
    # Small models asked for native calls often write the JSON as text: parse it strictly.
    return reply_message(parse_reply(reply.text, specs), "native", attempts=attempt, as_text=True)


class ServerPlanner(ChatPlanner):
    """The ``server`` planner: a ``ServerChatModel`` that sees the case file's evidence ids (so
    constrained verdicts cite only evidence that exists) and describes itself for the trace."""

    model: ServerChatModel

    def bind(self, allowed: Sequence[StructuredTool], state: DetectiveState) -> Any:
        evidence = state.get("evidence", [])
        ids = [e.id for e in evidence if e.id]
        boxes = [
            [float(round(v)) for v in b.xyxy]
            for e in evidence
            if e.tool == ToolName.GROUND and not e.error
            for b in e.boxes[:SHOWN_BOXES]
        ]
        return self.model.bind_tools(allowed, evidence_ids=ids, boxes=boxes or None)

    def describe(self) -> dict[str, str]:
        return self.model.describe()


def server_planner(config: Config) -> ChatPlanner:
    """The ``server`` planner of a configuration (the catalog's factory)."""
    model = build_server_planner(config.server)
    return ServerPlanner(model, name="server", model_id=config.server.model or "")


def build_server_planner(settings: ServerSettings) -> ServerChatModel:
    """The planner model for an OpenAI-compatible endpoint. Nothing connects until the first
    call.

    Args:
        settings: URL, model (None: the first the server lists), API key, protocol choices,
            timeout, retries, deadline, max tokens, temperature, seed.

    Raises:
        ConfigError: ``settings.base_url`` is not set.
    """
    model = ServerChatModel(settings=settings)
    _ = model.client  # checks the URL now
    return model
