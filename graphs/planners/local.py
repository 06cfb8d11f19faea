"""The ``local`` planner: an in-process transformers VLM as a LangChain chat model.

Tools reach the model through its chat template when the template knows about tools
(``apply_chat_template(..., tools=...)``; the reply's ``<tool_call>{...}</tool_call>`` blocks
are parsed, as Qwen and Hermes-style templates produce them), else through the JSON-action
protocol of ``json_actions``. Generation is greedy. The model is loaded on first use, once per
process, by ``vadetective.tools.backends.vlm.hf.load_vlm`` (shared with the ``vlm`` inspector).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable

from vadetective.agent.core.config import DEFAULT_MODELS, Config
from vadetective.graphs.planners.base import ChatPlanner
from vadetective.graphs.planners.json_actions import (
    FINAL_TOOL,
    PROTOCOL_KEY,
    move_tool_images,
    run_with_repair,
    to_json_action_history,
    tool_specs,
)
from vadetective.tools.backends.vlm.hf import (
    Generation,
    VlmBundle,
    fit_image,
    generate,
    image_from_block,
    load_vlm,
)

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

ToolFormat = Literal["auto", "template", "json"]


class LocalVLMChatModel(BaseChatModel):
    """An in-process VLM (default ``Qwen/Qwen2.5-VL-3B-Instruct``) that supports ``bind_tools``.

    ``LocalVLMChatModel.from_config(config)`` or ``LocalVLMChatModel(model_id=...)``; then
    ``planner.bind_tools(tools).invoke(messages) -> AIMessage``. Images arrive as OpenAI
    ``image_url`` blocks (data URIs) or LangChain ``image`` blocks. A reply without a usable
    tool call carries ``response_metadata["planner_error"]``.

    Attributes:
        model_id: hub id or local folder of an image-text-to-text model.
        device: ``auto`` (cuda, then mps, then cpu) or an explicit device.
        dtype: ``auto`` (see ``tools.device.resolve_dtype``) or a torch dtype name.
        max_new_tokens: reply length limit (greedy decoding).
        max_image_side: images are downscaled to this longer side (VLM tokens grow with pixels).
        tool_format: ``auto`` (the chat template when it renders tools, else JSON actions),
            ``template`` or ``json``.
        final_tool: the tool that ends the analysis (named in the JSON-action prompt).
    """

    model_id: str = DEFAULT_MODELS["vlm"]
    device: str = "auto"
    dtype: str = "auto"
    max_new_tokens: int = 512
    max_image_side: int | None = 672
    tool_format: ToolFormat = "auto"
    final_tool: str = FINAL_TOOL

    @classmethod
    def from_config(cls, config: Config, **overrides: Any) -> LocalVLMChatModel:
        """The planner for ``config.model_id("vlm")`` on ``config.device``/``config.dtype``."""
        values: dict[str, Any] = {
            "model_id": config.model_id("vlm"),
            "device": config.device,
            "dtype": config.dtype,
            **overrides,
        }
        return cls(**values)

    @property
    def _llm_type(self) -> str:
        return "vadetective-local-vlm"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "max_new_tokens": self.max_new_tokens}

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (LangChain tools, typed functions or OpenAI dicts) for every call.

        ``tool_choice`` is accepted for compatibility; every reply must call one tool anyway.
        """
        schemas = [spec.to_openai() for spec in tool_specs(tools)]
        return self.bind(tools=schemas, **kwargs)

    def load(self) -> VlmBundle:
        """The model and processor (loaded on first use, once per process)."""
        return load_vlm(self.model_id, self.device, self.dtype)

    def uses_template_tools(self, bundle: VlmBundle) -> bool:
        """Whether tools go through the chat template (it renders ``tools``) or JSON actions."""
        if self.tool_format != "auto":
            return self.tool_format == "template"
        return "tools" in bundle.chat_template

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools: list[dict[str, Any]] | None = kwargs.pop("tools", None)
        bundle = self.load()
        runs: list[Generation] = []

        def complete(history: list[BaseMessage], schemas: list[dict[str, Any]] | None) -> str:
            hf_messages, images = to_hf_messages(history, self.max_image_side)
            gen = generate(
                bundle,
                hf_messages,
                images,
                tools=schemas,
                max_new_tokens=self.max_new_tokens,
                stop=stop,
            )
            runs.append(gen)
            return gen.text

        if not tools:
            text = complete(list(messages), None)
            message = AIMessage(content=text, response_metadata={PROTOCOL_KEY: "none"})
        elif self.uses_template_tools(bundle):
            specs = tool_specs(tools)
            message = run_with_repair(
                lambda history: complete(history, tools),
                list(messages),
                specs,
                protocol="chat_template",
                repair=_template_repair,
            )
        else:
            specs = tool_specs(tools)
            message = run_with_repair(
                lambda history: complete(history, None),
                to_json_action_history(messages, specs, self.final_tool),
                specs,
                protocol="json_actions",
            )
        usage = {
            "input_tokens": sum(g.input_tokens for g in runs),
            "output_tokens": sum(g.output_tokens for g in runs),
            "total_tokens": sum(g.input_tokens + g.output_tokens for g in runs),
        }
        metadata = {**message.response_metadata, "model_name": self.model_id}
        message = message.model_copy(
            update={"usage_metadata": usage, "response_metadata": metadata}
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def _template_repair(error: str) -> HumanMessage:
    return HumanMessage(
        content=(
            f"Your last reply could not be used: {error}. Call exactly one of the tools, in the "
            "tool-call format of your instructions."
        )
    )


def to_hf_messages(
    messages: Sequence[BaseMessage], max_image_side: int | None = None
) -> tuple[list[dict[str, Any]], list[Image.Image]]:
    """LangChain messages as transformers chat messages, plus their images in order.

    Each image becomes a ``{"type": "image"}`` placeholder in its message and a PIL image
    (downscaled to ``max_image_side``) in the returned list. Assistant tool calls become
    ``tool_calls`` entries and tool results ``tool`` messages, as tool-aware chat templates
    expect; images of tool results move to a user message after them.
    """
    out: list[dict[str, Any]] = []
    images: list[Image.Image] = []
    for msg in move_tool_images(messages):
        role = _role(msg)
        if isinstance(msg.content, str):
            content: str | list[dict[str, Any]] = msg.content
        else:
            blocks: list[dict[str, Any]] = []
            for block in msg.content:
                if isinstance(block, str):
                    blocks.append({"type": "text", "text": block})
                elif block.get("type") == "text":
                    blocks.append({"type": "text", "text": str(block.get("text", ""))})
                elif block.get("type") in ("image_url", "image"):
                    images.append(fit_image(image_from_block(block), max_image_side))
                    blocks.append({"type": "image"})
            has_image = any(b["type"] == "image" for b in blocks)
            content = blocks if has_image else "\n".join(b["text"] for b in blocks)
        entry: dict[str, Any] = {"role": role, "content": content}
        if isinstance(msg, AIMessage) and msg.tool_calls:
            entry["tool_calls"] = [
                {"type": "function", "function": {"name": c["name"], "arguments": c["args"]}}
                for c in msg.tool_calls
            ]
        if isinstance(msg, ToolMessage) and msg.name:
            entry["name"] = msg.name
        out.append(entry)
    return out, images


def _role(msg: BaseMessage) -> str:
    if isinstance(msg, SystemMessage):
        return "system"
    if isinstance(msg, HumanMessage):
        return "user"
    if isinstance(msg, AIMessage):
        return "assistant"
    if isinstance(msg, ToolMessage):
        return "tool"
    if isinstance(msg, ChatMessage):
        return msg.role
    raise ValueError(f"unsupported message type {type(msg).__name__}")


def local_planner(config: Config) -> ChatPlanner:
    """The ``local`` planner of a configuration (the catalog's factory)."""
    return ChatPlanner(
        LocalVLMChatModel.from_config(config), name="local", model_id=config.model_id("vlm")
    )
