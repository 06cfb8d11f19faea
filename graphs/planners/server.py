"""The ``server`` planner: a VLM behind any OpenAI-compatible endpoint (vLLM, SGLang, Ollama,
llama.cpp server), through ``ChatOpenAI``.

Native tool calling is used when the endpoint supports it. When it does not — the settings say
so (``native_tools=False``), the server rejects the ``tools`` field (HTTP 400/404/422/500/501),
or the model answers with text instead of a tool call — the planner switches to the JSON-action
protocol of ``json_actions`` for the rest of its life. Frames travel as ``image_url`` blocks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from pydantic import PrivateAttr

from vadetective.agent.core.config import Config, ServerSettings
from vadetective.agent.core.errors import ConfigError
from vadetective.graphs.planners.base import ChatPlanner
from vadetective.graphs.planners.json_actions import (
    FINAL_TOOL,
    PROTOCOL_KEY,
    ActionParseError,
    ToolSpec,
    failure_message,
    move_tool_images,
    parse_reply,
    reply_message,
    run_with_repair,
    to_json_action_history,
    tool_specs,
)
from vadetective.tools.backends.vlm.server import (
    ServerRequestError,
    invoke_translated,
    make_chat_model,
    require_base_url,
    served_model,
)

log = logging.getLogger(__name__)

# HTTP statuses with which servers refuse a `tools` field they do not support (vLLM without
# --enable-auto-tool-choice: 400; some proxies: 404/422; llama.cpp without --jinja: 500).
_TOOLS_REFUSED = frozenset({400, 404, 422, 500, 501})


class ServerChatModel(BaseChatModel):
    """A chat model on an OpenAI-compatible endpoint with tool calling, native or emulated.

    Build it with ``build_server_planner(settings)``; use it like any LangChain chat model:
    ``planner.bind_tools(tools).invoke(messages) -> AIMessage``. A reply without a usable tool
    call carries ``response_metadata["planner_error"]``.

    Attributes:
        settings: the endpoint (URL, model, key, native tool calling, timeout).
        max_retries: client retries on connection errors and 5xx answers.
        temperature: sampling temperature.
        max_tokens: reply length limit.
        final_tool: the tool that ends the analysis (named in repair messages).
    """

    settings: ServerSettings
    max_retries: int = 2
    temperature: float = 0.0
    max_tokens: int | None = 1024
    final_tool: str = FINAL_TOOL

    _chat: Any = PrivateAttr(default=None)
    _native: bool | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "vadetective-server"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "base_url": self.settings.base_url,
            "model": self.settings.model,
            "native_tools": self.settings.native_tools,
        }

    @property
    def native_tools(self) -> bool | None:
        """Whether tool calls go natively: the setting, else what was detected (None: not yet)."""
        if self.settings.native_tools is not None:
            return self.settings.native_tools
        return self._native

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (LangChain tools, typed functions or OpenAI dicts) for every call."""
        schemas = [spec.to_openai() for spec in tool_specs(tools)]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=schemas, **kwargs)

    def _client(self) -> Any:
        if self._chat is None:
            model = served_model(self.settings, self.max_retries)
            self._chat = make_chat_model(
                self.settings,
                model=model,
                max_retries=self.max_retries,
                temperature=self.temperature,
                max_tokens=self.max_tokens,
            )
        return self._chat

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools: list[dict[str, Any]] | None = kwargs.pop("tools", None)
        tool_choice: str | None = kwargs.pop("tool_choice", None)
        call = _Caller(self.settings, stop)
        if not tools:
            message = call(self._client(), move_tool_images(messages))
        else:
            specs = tool_specs(tools)
            outcome: AIMessage | _JsonFallback = _JsonFallback()
            if self.native_tools is not False:
                outcome = self._native_turn(call, messages, specs, tools, tool_choice)
            if isinstance(outcome, _JsonFallback):
                message = self._json_turn(call, messages, specs, outcome.first_output)
            else:
                message = outcome
            message = message.model_copy(update={"usage_metadata": call.usage()})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _native_turn(
        self,
        call: _Caller,
        messages: list[BaseMessage],
        specs: list[ToolSpec],
        tools: list[dict[str, Any]],
        tool_choice: str | None,
    ) -> AIMessage | _JsonFallback:
        """One turn with native tool calling, or word that the JSON protocol must take over."""
        chat = self._client()
        bound = (
            chat.bind_tools(tools, tool_choice=tool_choice)
            if tool_choice
            else chat.bind_tools(tools)
        )
        history = move_tool_images(messages)
        try:
            reply = call(bound, history)
        except ServerRequestError as exc:
            if exc.status_code not in _TOOLS_REFUSED or self._native is True:
                raise  # not about tools: they worked before
            if self.settings.native_tools is True:
                raise ConfigError(
                    f"{exc} (native tool calling was requested: enable it on the server, e.g. "
                    "vLLM --enable-auto-tool-choice --tool-call-parser hermes, or set "
                    "Config.server.native_tools=False)"
                ) from exc
            self._switch_to_json(f"the server refused the tools field ({exc})")
            return _JsonFallback()
        if reply.tool_calls:
            self._native = True
            return _native_message(reply, attempts=1)
        try:
            parsed = parse_reply(reply.text, specs)
        except ActionParseError as exc:
            error = _no_call_error(reply, exc)
        else:
            if self.native_tools is None:
                self._switch_to_json("the model wrote its tool call as text")
            return reply_message(parsed, "json_text", attempts=1)
        if self.native_tools is None:
            # Tools accepted but no tool call: the server may ignore them. Repair through the
            # JSON protocol, which works everywhere, and keep using it.
            self._switch_to_json(f"the model answered without a tool call ({error})")
            return _JsonFallback(first_output=reply.text)
        nudge = HumanMessage(
            content=(
                f"Your last reply could not be used: {error}. Call exactly one of the tools "
                f"({', '.join(s.name for s in specs)}); call {self.final_tool} when the evidence "
                "is enough."
            )
        )
        retry = call(bound, [*history, AIMessage(content=reply.text), nudge])
        if retry.tool_calls:
            return _native_message(retry, attempts=2)
        try:
            return reply_message(parse_reply(retry.text, specs), "json_text", attempts=2)
        except ActionParseError as exc:
            error2 = _no_call_error(retry, exc)
        return failure_message(
            retry.text,
            f"no tool call after a repair retry: {error2} (first attempt: {error})",
            "native",
            attempts=2,
            raw_outputs=[reply.text, retry.text],
        )

    def _json_turn(
        self,
        call: _Caller,
        messages: list[BaseMessage],
        specs: list[ToolSpec],
        first_output: str | None = None,
    ) -> AIMessage:
        chat = self._client()
        history = to_json_action_history(messages, specs, self.final_tool)
        return run_with_repair(
            lambda msgs: call(chat, msgs).text,
            history,
            specs,
            protocol="json_actions",
            first_output=first_output,
        )

    def _switch_to_json(self, why: str) -> None:
        if self._native is not False:
            log.warning(
                "server planner at %s: %s; using the JSON-action protocol from now on",
                self.settings.base_url,
                why,
            )
        self._native = False


@dataclass(frozen=True)
class _JsonFallback:
    """The native turn gave up: the JSON protocol takes over, counting ``first_output`` (a
    reply already received) as its first attempt."""

    first_output: str | None = None


class _Caller:
    """Invokes a client with the turn's stop words; sums the token usage of every reply."""

    def __init__(self, settings: ServerSettings, stop: list[str] | None) -> None:
        self.settings = settings
        self.stop = stop
        self.replies: list[AIMessage] = []

    def __call__(self, client: Any, messages: list[BaseMessage]) -> AIMessage:
        kwargs: dict[str, Any] = {"stop": self.stop} if self.stop else {}
        reply: AIMessage = invoke_translated(client, messages, self.settings, **kwargs)
        self.replies.append(reply)
        return reply

    def usage(self) -> Any:
        usages = [r.usage_metadata for r in self.replies if r.usage_metadata]
        if not usages:
            return None
        return {
            "input_tokens": sum(u["input_tokens"] for u in usages),
            "output_tokens": sum(u["output_tokens"] for u in usages),
            "total_tokens": sum(u["total_tokens"] for u in usages),
        }


def _native_message(reply: AIMessage, attempts: int) -> AIMessage:
    return AIMessage(
        content=reply.text,
        tool_calls=reply.tool_calls,
        response_metadata={**reply.response_metadata, PROTOCOL_KEY: "native", "attempts": attempts},
    )


def _no_call_error(reply: AIMessage, exc: ActionParseError) -> str:
    if reply.invalid_tool_calls:
        bad = reply.invalid_tool_calls[0]
        return f"the tool call {bad.get('name')!r} was malformed ({bad.get('error') or 'invalid arguments'})"
    return f"no tool call: {exc}"


def server_planner(config: Config) -> ChatPlanner:
    """The ``server`` planner of a configuration (the catalog's factory)."""
    model = build_server_planner(config.server)
    return ChatPlanner(model, name="server", model_id=config.server.model or "")


def build_server_planner(
    settings: ServerSettings,
    *,
    max_retries: int = 2,
    temperature: float = 0.0,
    max_tokens: int | None = 1024,
) -> BaseChatModel:
    """The planner for an OpenAI-compatible endpoint. Nothing connects until the first call.

    Args:
        settings: URL, model (None: the first the server lists), API key, native tool calling
            (None: detect), timeout.
        max_retries: client retries on connection errors and 5xx answers.
        temperature: sampling temperature (0: as deterministic as the server allows).
        max_tokens: the reply length limit.

    Raises:
        ConfigError: ``settings.base_url`` is not set.
    """
    require_base_url(settings)
    return ServerChatModel(
        settings=settings, max_retries=max_retries, temperature=temperature, max_tokens=max_tokens
    )
