"""A model behind any OpenAI-compatible endpoint (vLLM, SGLang, Ollama, llama.cpp server): the
HTTP client shared by the server planner and the ``server`` crop inspector.

``ServerClient`` talks to one endpoint with the ``openai`` client:

- ``capabilities()`` reads ``GET /models`` once: the served model, the server's name and, when
  the server advertises them (llama.cpp, OpenRouter-style ``architecture.input_modalities``),
  whether the model reads images.
- ``chat()`` sends one chat completion. Only transient failures are retried — a reset
  connection, HTTP 429 (honouring ``Retry-After``), 502/503/504 (a server still loading its model
  answers 503) — with exponential backoff under a total deadline (tenacity). Deterministic errors
  (any other status, a timeout, a refused connection) fail at once with one sentence; a refusal
  is diagnosed from the server's own error body (``Refusal``).

Clients are built on first use from ``ServerSettings``; nothing connects at import or
construction time.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

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

#: HTTP statuses that mean "try again later": rate limited, gateway trouble, still loading.
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
#: Longest wait between two attempts, whatever the server's ``Retry-After`` says.
MAX_WAIT_S = 30.0

_FIX_URL = (
    "start the server, or point VADETECTIVE_SERVER_URL (--server-url) at a running "
    "OpenAI-compatible endpoint such as http://127.0.0.1:8000/v1"
)

#: What a server refused, read from its error body: images (a text-only model), the ``tools``
#: field, ``response_format`` (no constrained output), or a prompt longer than its context.
Refusal = Literal["images", "tools", "response_format", "context"]


class ServerUnreachableError(ConfigError):
    """The OpenAI-compatible server does not answer at its URL."""


class ServerRequestError(VadetectiveError):
    """The server answered a request with an error.

    Attributes:
        status_code: the HTTP status.
        detail: the server's own message.
        refused: what the request asked for that the server refused, when the message says so.
    """

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        detail: str = "",
        refused: Refusal | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail
        self.refused = refused


def require_base_url(settings: ServerSettings) -> str:
    """The endpoint URL, or a ``ConfigError`` saying how to set it."""
    if not settings.base_url:
        raise ConfigError(
            "the server profile needs the URL of an OpenAI-compatible endpoint: set "
            "VADETECTIVE_SERVER_URL or --server-url (e.g. http://127.0.0.1:8000/v1)"
        )
    return settings.base_url.rstrip("/")


def diagnose_refusal(status: int | None, message: str) -> Refusal | None:
    """What a server refused, from its error message (None: not a refusal we recognise).

    Examples of what servers say: llama.cpp "image input is not supported - hint: ... mmproj",
    vLLM '"auto" tool choice requires --enable-auto-tool-choice', llama.cpp without ``--jinja``
    "tools param requires --jinja flag", "the request exceeds the available context size".
    """
    if status is None or status < 400 or status in TRANSIENT_STATUSES:
        return None
    m = message.lower()
    if "image" in m and any(w in m for w in ("not supported", "mmproj", "multimodal", "vision")):
        return "images"
    if "context" in m and any(w in m for w in ("exceed", "too long", "length", "size")):
        return "context"
    if any(w in m for w in ("response_format", "json_schema", "grammar", "json schema")):
        return "response_format"
    if "tool" in m:
        return "tools"
    return None


@dataclass(frozen=True)
class ServerCapabilities:
    """What ``GET /models`` says about the endpoint.

    Attributes:
        model: the model requests name (the setting, or the first the server lists).
        server: who serves it (the listing's ``owned_by``: "llamacpp", "vllm", ...; "" unknown).
        vision: whether the model reads images (None: the server does not say).
        context_tokens: its context length, when the server says.
    """

    model: str
    server: str = ""
    vision: bool | None = None
    context_tokens: int | None = None


def parse_capabilities(listing: dict[str, Any], wanted: str | None) -> ServerCapabilities | None:
    """Capabilities from a ``/models`` listing (None when it lists no model)."""
    data = [d for d in listing.get("data") or [] if isinstance(d, dict) and d.get("id")]
    if not data:
        return None
    entry = next((d for d in data if wanted in (d["id"], *(d.get("aliases") or []))), None)
    chosen = entry or data[0]
    arch = chosen.get("architecture") if isinstance(chosen.get("architecture"), dict) else {}
    modalities = arch.get("input_modalities") if arch else None
    vision = ("image" in modalities) if isinstance(modalities, list) else None
    meta = chosen.get("meta") if isinstance(chosen.get("meta"), dict) else {}
    n_ctx = meta.get("n_ctx") if meta else None
    return ServerCapabilities(
        model=wanted or str(chosen["id"]),
        server=str(chosen.get("owned_by") or ""),
        vision=vision,
        context_tokens=int(n_ctx) if isinstance(n_ctx, int) else None,
    )


@dataclass(frozen=True)
class ChatReply:
    """One chat completion, as the planner and inspector need it."""

    text: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # {"id", "name", "arguments"}
    finish_reason: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    seconds: float = 0.0
    attempts: int = 1


class ServerClient:
    """One OpenAI-compatible endpoint. See the module docstring.

    Args:
        settings: URL, model, key, timeout, retries, deadline.

    Raises:
        ConfigError: ``settings.base_url`` is not set.
    """

    def __init__(self, settings: ServerSettings) -> None:
        self.base_url = require_base_url(settings)
        self.settings = settings
        self._client: Any = None
        self._caps: ServerCapabilities | None = None

    # ------------------------------------------------------------------ plumbing
    def _openai(self) -> Any:
        if self._client is None:
            openai = import_or_extra("openai", "server", "the server profile")
            self._client = openai.OpenAI(
                base_url=self.base_url,
                api_key=self.settings.api_key or NO_KEY,
                timeout=self.settings.timeout_s,
                max_retries=0,  # retries are ours: transient failures only
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _with_retries(self, what: str, call: Any) -> tuple[Any, int]:
        """``call(timeout_s)`` retried on transient failures under the total deadline; returns
        (result, attempts). Errors come out as one-sentence ``VadetectiveError``s."""
        from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
        from tenacity import stop_after_delay as stop_after_s

        s = self.settings
        start = time.monotonic()

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            base = min(MAX_WAIT_S, 2.0 ** (state.attempt_number - 1))
            hinted = _retry_after_s(exc)
            left = s.deadline_s - (time.monotonic() - start)
            return max(0.0, min(hinted if hinted is not None else base, MAX_WAIT_S, left))

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "%s at %s failed (%s); attempt %d of %d in %.1f s",
                what,
                self.base_url,
                _short(str(exc), 120),
                state.attempt_number + 1,
                s.max_retries + 1,
                state.upcoming_sleep,
            )

        retrying = Retrying(
            retry=retry_if_exception(_transient),
            stop=stop_after_attempt(s.max_retries + 1) | stop_after_s(s.deadline_s),
            wait=wait,
            before_sleep=log_retry,
            reraise=True,
        )
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    left = s.deadline_s - (time.monotonic() - start)
                    result = call(max(1.0, min(s.timeout_s, left)))
        except Exception as exc:
            clear = self._translate(exc, attempts, time.monotonic() - start)
            if clear is None:
                raise
            raise clear from exc
        return result, attempts

    def _translate(self, exc: Exception, attempts: int, spent_s: float) -> VadetectiveError | None:
        """One clear sentence for an ``openai`` client error, or None when ``exc`` is not one."""
        import openai

        url = self.base_url
        tries = f" after {attempts} attempts over {spent_s:.0f} s" if attempts > 1 else ""
        if isinstance(exc, openai.APITimeoutError):
            return ServerUnreachableError(
                f"the server at {url} did not answer within {self.settings.timeout_s:g} s: check "
                "that it is running and not overloaded, or raise --server-timeout "
                "(VADETECTIVE_SERVER_TIMEOUT_S)"
            )
        if isinstance(exc, openai.APIConnectionError):
            if _refused(exc):
                return ServerUnreachableError(
                    f"cannot reach the server at {url} (connection refused): {_FIX_URL}"
                )
            return ServerUnreachableError(f"the connection to the server at {url} failed{tries}")
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return ConfigError(
                f"the server at {url} refused the API key (HTTP {exc.status_code}): set "
                "VADETECTIVE_SERVER_API_KEY to a key it accepts"
            )
        if isinstance(exc, openai.APIStatusError):
            detail = _short(_error_message(exc))
            return ServerRequestError(
                f"the server at {url} answered HTTP {exc.status_code}{tries}: {detail}",
                status_code=exc.status_code,
                detail=detail,
                refused=diagnose_refusal(exc.status_code, detail),
            )
        return None

    # ------------------------------------------------------------------ API
    def capabilities(self) -> ServerCapabilities:
        """The served model and what it can read, from ``GET /models`` (asked once).

        Raises:
            ServerUnreachableError: the server does not answer.
            ConfigError: it lists no model and none is configured.
        """
        if self._caps is not None:
            return self._caps
        client = self._openai()

        def listing(timeout_s: float) -> Any:
            raw = client.with_options(timeout=timeout_s).models.with_raw_response.list()
            return raw.http_response.json()

        try:
            data, _ = self._with_retries("listing the models", listing)
        except ServerRequestError as exc:
            # Some proxies have no /models: go on with the configured model, capabilities unknown.
            if self.settings.model and exc.status_code in (404, 405, 501):
                self._caps = ServerCapabilities(model=self.settings.model)
                return self._caps
            raise
        caps = parse_capabilities(data if isinstance(data, dict) else {}, self.settings.model)
        if caps is None:
            if not self.settings.model:
                raise ConfigError(
                    f"the server at {self.base_url} lists no models: set "
                    "VADETECTIVE_SERVER_MODEL (--server-model) to the name it serves"
                )
            caps = ServerCapabilities(model=self.settings.model)
        if not self.settings.model:
            log.info("server model not set: using %s, the first model the server lists", caps.model)
        self._caps = caps
        return caps

    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        max_tokens: int | None,
        temperature: float,
        response_format: dict[str, Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | None = None,
        stop: list[str] | None = None,
        seed: int | None = None,
    ) -> ChatReply:
        """One chat completion (OpenAI message dicts in, text or tool calls out).

        Raises:
            ServerUnreachableError: the server does not answer (after retries where transient).
            ServerRequestError: it answered with an error (``refused`` says what, if known).
        """
        model = self.capabilities().model
        body: dict[str, Any] = {"model": model, "messages": messages, "temperature": temperature}
        extra: dict[str, Any] = {}
        if max_tokens is not None:
            # Older llama.cpp and Ollama read only `max_tokens`; OpenAI wants the newer name.
            body["max_tokens"] = max_tokens
        if response_format is not None:
            body["response_format"] = response_format
        if tools:
            body["tools"] = tools
            if tool_choice:
                body["tool_choice"] = tool_choice
        if stop:
            body["stop"] = stop
        if seed is not None:
            body["seed"] = seed
        client = self._openai()
        t0 = time.perf_counter()

        def post(timeout_s: float) -> Any:
            return client.with_options(timeout=timeout_s).chat.completions.create(
                **body, extra_body=extra or None
            )

        completion, attempts = self._with_retries("a chat request", post)
        return _reply_of(completion, time.perf_counter() - t0, attempts)


def _reply_of(completion: Any, seconds: float, attempts: int) -> ChatReply:
    choice = completion.choices[0] if completion.choices else None
    msg = choice.message if choice is not None else None
    calls = [
        {"id": c.id or "", "name": c.function.name, "arguments": c.function.arguments or ""}
        for c in (getattr(msg, "tool_calls", None) or [])
        if getattr(c, "function", None) is not None
    ]
    usage = completion.usage
    details = getattr(usage, "prompt_tokens_details", None) if usage else None
    return ChatReply(
        text=(msg.content or "") if msg is not None else "",
        tool_calls=calls,
        finish_reason=str(getattr(choice, "finish_reason", "") or ""),
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        cached_tokens=int(getattr(details, "cached_tokens", 0) or 0) if details else 0,
        seconds=seconds,
        attempts=attempts,
    )


def _transient(exc: BaseException) -> bool:
    """Worth another attempt: a reset connection, 429, 502/503/504 (never a timeout: the same
    request would take as long again; never a refused connection: nothing listens)."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return False
    if isinstance(exc, openai.APIConnectionError):
        return not _refused(exc)
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in TRANSIENT_STATUSES
    return False


def _refused(exc: BaseException) -> bool:
    """Whether a connection error is "nothing listens there" (the cause is a ConnectError)."""
    cause: BaseException | None = exc
    while cause is not None:
        if type(cause).__name__ == "ConnectError" or isinstance(cause, ConnectionRefusedError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _retry_after_s(exc: BaseException | None) -> float | None:
    """The server's ``Retry-After`` in seconds (the delay form; None when absent)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(exc, "message", "") or exc)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def preflight_server(config: Config, spec: Any = None) -> list[str]:
    """Problems that keep the configured server from serving this run (empty when it can).

    Asks ``GET /models`` once with a short timeout and no retry on a refused connection: an
    unreachable server, a rejected key or a model it does not serve is found before any work.
    When the planner and the inspector both use the server, the planner's check speaks for both.
    """
    if getattr(spec, "role", None) == "inspector" and config.planner == "server":
        return []
    settings = config.server
    if not settings.base_url:
        return [
            "the server profile needs the URL of an OpenAI-compatible endpoint: set "
            "VADETECTIVE_SERVER_URL or --server-url (e.g. http://127.0.0.1:8000/v1)"
        ]
    quick = settings.model_copy(
        update={"timeout_s": min(settings.timeout_s, 10.0), "deadline_s": 30.0}
    )
    client = ServerClient(quick)
    try:
        client.capabilities()
    except VadetectiveError as exc:
        return [str(exc)]
    finally:
        client.close()
    return []


class ServerInspector(CropInspector):
    """``inspect_crop`` through an OpenAI-compatible endpoint: the zoomed crop as an image.

    Args:
        settings: URL, model (None: the first the server lists), API key, timeout, retries.
        max_tokens: answer length limit.
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
        context: float = 0.5,
        min_short_side: int = 336,
        max_long_side: int = 1008,
        draw_box: bool = True,
    ) -> None:
        self.settings = settings
        self.client = ServerClient(settings)
        self.max_tokens = max_tokens
        self.context = context
        self.min_short_side = min_short_side
        self.max_long_side = max_long_side
        self.draw_box = draw_box

    @classmethod
    def from_config(cls, config: Config, **overrides: Any) -> ServerInspector:
        """The inspector for ``config.server`` (URL, model, key, timeout, retries)."""
        return cls(config.server, **overrides)

    @property
    def model_id(self) -> str:
        """The served model's name ("" until the server was asked, when not configured)."""
        caps = self.client._caps
        return caps.model if caps is not None else (self.settings.model or "")

    def inspect(self, source: FrameSource, t_s: float, box: Box, question: str) -> Inspection:
        """Answer ``question`` about ``box`` in the frame nearest to ``t_s``.

        Raises:
            ValueError: ``t_s`` is outside the video or the box outside the frame.
            ServerUnreachableError: the server does not answer.
            ServerRequestError: the server answered with an error (a text-only model refuses
                the image: ``refused == "images"``).
        """
        view, prompt = self.look(source, t_s, box, question)
        message = {
            "role": "user",
            "content": [
                {"type": "text", "text": prompt},
                {"type": "image_url", "image_url": {"url": jpeg_data_uri(view.image)}},
            ],
        }
        reply = self.client.chat(
            [message],
            max_tokens=self.max_tokens,
            temperature=self.settings.temperature,
            seed=self.settings.seed,
        )
        return Inspection(
            answer=reply.text.strip(),
            facts=crop_facts(view, self.model_id, "server"),
            confidence=None,
            crop=view.image,
        )
