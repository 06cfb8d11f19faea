"""A VLM behind any OpenAI-compatible endpoint (vLLM, SGLang, Ollama, llama.cpp server): the
client factory and error translation shared with the server planner, and the ``server`` crop
inspector.

Clients are built on first use from ``ServerSettings``; nothing connects at import or
construction time.
"""

from __future__ import annotations

import logging
from typing import Any

from vadetective.agent.core.config import Config, ServerSettings
from vadetective.agent.core.errors import ConfigError, VadetectiveError
from vadetective.agent.core.types import Box
from vadetective.tools.backends.vlm.crops import CropInspector, crop_facts
from vadetective.tools.backends.vlm.hf import jpeg_data_uri
from vadetective.tools.base import FrameSource, Inspection
from vadetective.tools.models import import_or_extra

log = logging.getLogger(__name__)

#: Placeholder key for servers that do not check one (vLLM, llama.cpp, Ollama).
NO_KEY = "not-needed"

_FIX_URL = (
    "start the server, or point VADETECTIVE_SERVER_URL (Config.server.base_url) at a running "
    "OpenAI-compatible endpoint such as http://127.0.0.1:8000/v1"
)


class ServerUnreachableError(ConfigError):
    """The OpenAI-compatible server does not answer at its URL."""


class ServerRequestError(VadetectiveError):
    """The server answered a request with an error."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


def require_base_url(settings: ServerSettings) -> str:
    """The endpoint URL, or a ``ConfigError`` saying how to set it."""
    if not settings.base_url:
        raise ConfigError(
            "the server profile needs the URL of an OpenAI-compatible endpoint: set "
            "VADETECTIVE_SERVER_URL (e.g. http://127.0.0.1:8000/v1) or Config.server.base_url"
        )
    return settings.base_url.rstrip("/")


def translate_error(exc: Exception, settings: ServerSettings) -> VadetectiveError | None:
    """One clear sentence for an ``openai`` client error, or None when ``exc`` is not one."""
    import openai

    url = settings.base_url
    if isinstance(exc, openai.APITimeoutError):
        return ServerUnreachableError(
            f"the server at {url} did not answer within {settings.timeout_s:g} s: check that it "
            "is running and not overloaded, or raise Config.server.timeout_s"
        )
    if isinstance(exc, openai.APIConnectionError):
        return ServerUnreachableError(f"cannot reach the server at {url}: {_FIX_URL}")
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return ConfigError(
            f"the server at {url} refused the API key (HTTP {exc.status_code}): set "
            "VADETECTIVE_SERVER_API_KEY (Config.server.api_key) to a key it accepts"
        )
    if isinstance(exc, openai.APIStatusError):
        body = exc.body.get("message") if isinstance(exc.body, dict) else None
        return ServerRequestError(
            f"the server at {url} answered HTTP {exc.status_code}: {_short(body or exc.message)}",
            status_code=exc.status_code,
        )
    return None


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def served_model(settings: ServerSettings, max_retries: int = 2) -> str:
    """``settings.model``, or the first model the server lists (vLLM serves exactly one)."""
    if settings.model:
        return settings.model
    openai = import_or_extra("openai", "server", "the server profile")
    client = openai.OpenAI(
        base_url=require_base_url(settings),
        api_key=settings.api_key or NO_KEY,
        timeout=settings.timeout_s,
        max_retries=max_retries,
    )
    try:
        models = [m.id for m in client.models.list()]
    except openai.OpenAIError as exc:
        raise translate_error(exc, settings) or exc from exc
    finally:
        client.close()
    if not models:
        raise ConfigError(
            f"the server at {settings.base_url} lists no models: set VADETECTIVE_SERVER_MODEL "
            "(Config.server.model) to the name it serves"
        )
    log.info("server model not set: using %s, the first model the server lists", models[0])
    return str(models[0])


def make_chat_model(
    settings: ServerSettings,
    *,
    model: str,
    max_retries: int = 2,
    temperature: float = 0.0,
    max_tokens: int | None = None,
) -> Any:
    """A ``ChatOpenAI`` client for the endpoint (chat completions API, never the Responses API)."""
    import_or_extra("langchain_openai", "server", "the server profile")
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    # ChatOpenAI sends the limit as `max_completion_tokens`; older llama.cpp and Ollama
    # servers read only `max_tokens`, so both go out.
    limits: dict[str, Any] = {}
    if max_tokens is not None:
        limits = {"max_completion_tokens": max_tokens, "extra_body": {"max_tokens": max_tokens}}
    return ChatOpenAI(
        model=model,
        base_url=require_base_url(settings),
        api_key=SecretStr(settings.api_key or NO_KEY),
        timeout=settings.timeout_s,
        max_retries=max_retries,
        temperature=temperature,
        use_responses_api=False,
        **limits,
    )


def invoke_translated(client: Any, messages: Any, settings: ServerSettings, **kwargs: Any) -> Any:
    """``client.invoke(messages)`` with ``openai`` errors turned into one-sentence errors."""
    import openai

    try:
        return client.invoke(messages, **kwargs)
    except openai.OpenAIError as exc:
        clear = translate_error(exc, settings)
        if clear is None:
            raise
        raise clear from exc


class ServerInspector(CropInspector):
    """``inspect_crop`` through an OpenAI-compatible endpoint: the zoomed crop as an image.

    Args:
        settings: URL, model (None: the first the server lists), API key, timeout.
        max_tokens: answer length limit.
        max_retries: client retries on connection errors and 5xx answers.
        context: margin around the box, as a fraction of its size on each side.
        min_short_side: the crop is upscaled until its shorter side has this many pixels.
        max_long_side: and its longer side at most this many.
        draw_box: draw the box in red on the crop (else its position is described in words).

    Raises:
        ConfigError: ``settings.base_url`` is not set.
    """

    name = "server"

    def __init__(
        self,
        settings: ServerSettings,
        *,
        max_tokens: int = 128,
        max_retries: int = 2,
        context: float = 0.5,
        min_short_side: int = 336,
        max_long_side: int = 1008,
        draw_box: bool = True,
    ) -> None:
        require_base_url(settings)
        self.settings = settings
        self.max_tokens = max_tokens
        self.max_retries = max_retries
        self.context = context
        self.min_short_side = min_short_side
        self.max_long_side = max_long_side
        self.draw_box = draw_box
        self._client: Any = None
        self._model: str | None = settings.model

    @classmethod
    def from_config(cls, config: Config, **overrides: Any) -> ServerInspector:
        """The inspector for ``config.server`` (URL, model, key, timeout)."""
        return cls(config.server, **overrides)

    @property
    def model_id(self) -> str:
        """The served model's name ("" until the server was asked, when not configured)."""
        return self._model or ""

    def _chat(self) -> Any:
        if self._client is None:
            self._model = served_model(self.settings, self.max_retries)
            self._client = make_chat_model(
                self.settings,
                model=self._model,
                max_retries=self.max_retries,
                max_tokens=self.max_tokens,
            )
        return self._client

    def inspect(self, source: FrameSource, t_s: float, box: Box, question: str) -> Inspection:
        """Answer ``question`` about ``box`` in the frame nearest to ``t_s``.

        Raises:
            ValueError: ``t_s`` is outside the video or the box outside the frame.
            ServerUnreachableError: the server does not answer.
            ServerRequestError: the server answered with an error.
        """
        from langchain_core.messages import HumanMessage

        view, prompt = self.look(source, t_s, box, question)
        message = HumanMessage(
            content=[
                {"type": "text", "text": prompt},
                {"type": "image_url", "image_url": {"url": jpeg_data_uri(view.image)}},
            ]
        )
        client = self._chat()
        reply = invoke_translated(client, [message], self.settings)
        return Inspection(
            answer=reply.text.strip(),
            facts=crop_facts(view, self.model_id, "server"),
            confidence=None,
            crop=view.image,
        )
