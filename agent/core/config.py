"""Configuration and profiles.

Configuration arrives with the call (``Detective(path, profile="classical", max_steps=8)`` or a
``Config`` object); nothing is read from module-level globals. A profile is a named set of
backends:

- ``classical``: no model weights at all (motion scorer, OpenCV grounding, measured inspection,
  rule planner). Runs anywhere; the offline default and the fast pre-filter.
- ``local``: CLIP/SigLIP scoring, GroundingDINO grounding and an in-process VLM planner and
  inspector, from the Hugging Face hub or local paths.
- ``server``: the vision tools local, the planner and inspector through any OpenAI-compatible
  endpoint (vLLM, SGLang, Ollama, llama.cpp server).
- ``auto``: ``local`` when its models are present or can be fetched, else ``classical``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vadetective.agent.core.catalog import (
    DEFAULT_MODELS,
    PROFILE_BACKENDS,
    PROFILES,
    GraphName,
    Role,
    backend_names,
)
from vadetective.agent.core.errors import ConfigError

#: The numeric precisions a model backend accepts (``auto``: the backend picks).
DTYPES: tuple[str, ...] = (
    "auto", "float32", "float16", "bfloat16", "float64", "float", "half", "double",
)  # fmt: skip

__all__ = [
    "DEFAULT_MODELS",
    "DTYPES",
    "PROFILES",
    "Config",
    "ServerSettings",
    "config_error",
    "config_for",
]


class ServerSettings(BaseModel):
    """An OpenAI-compatible endpoint for the ``server`` profile (planner and inspector).

    Every field can also come from the environment (``VADETECTIVE_SERVER_<FIELD>``, see
    ``SERVER_ENV``), a TOML file's ``[server]`` table, or a ``--server-*`` flag.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:8000/v1")
    model: str | None = Field(default=None, description="None: the first model the server lists")
    # Never written into run.json, traces or dumps.
    api_key: str | None = Field(default=None, repr=False, exclude=True)
    native_tools: bool = Field(
        default=False,
        description="send the tools field and read native tool calls (servers with a tool-call "
        "parser, e.g. vLLM --enable-auto-tool-choice); False: the JSON-action protocol",
    )
    structured_output: bool | None = Field(
        default=None,
        description="constrain each reply to one action with response_format (a JSON schema); "
        "None: try it and fall back to plain text if the server refuses",
    )
    text_only: bool | None = Field(
        default=None,
        description="never send frames; None: detect (the server's /models modalities, or "
        "its refusal of an image)",
    )
    timeout_s: float = Field(default=120.0, description="seconds one request may take")
    max_retries: int = Field(
        default=3, description="retries of transient failures (reset, 429, 502-504)"
    )
    deadline_s: float = Field(default=300.0, description="total seconds for one request's retries")
    max_tokens: int = Field(default=384, description="reply length limit of a planner turn")
    temperature: float = Field(default=0.0, description="sampling temperature")
    seed: int | None = Field(default=0, description="sampling seed sent with each request")

    @field_validator("timeout_s", "deadline_s")
    @classmethod
    def _positive_s(cls, v: float) -> float:
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"timeouts must be positive seconds, got {v}")
        return v

    @field_validator("max_retries")
    @classmethod
    def _retries(cls, v: int) -> int:
        if v < 0:
            raise ValueError(f"max_retries must be >= 0, got {v}")
        return v

    @field_validator("max_tokens")
    @classmethod
    def _tokens(cls, v: int) -> int:
        if v < 16:
            raise ValueError(f"max_tokens must be at least 16, got {v}")
        return v

    @field_validator("temperature")
    @classmethod
    def _temperature(cls, v: float) -> float:
        if not (math.isfinite(v) and 0 <= v <= 2):
            raise ValueError(f"temperature must be in [0, 2], got {v}")
        return v

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        """Settings from ``VADETECTIVE_SERVER_*`` (see ``SERVER_ENV``; the URL and key also from
        ``OPENAI_BASE_URL``/``OPENAI_API_KEY``), with keyword overrides on top."""
        values = server_env_values(os.environ if env is None else env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


#: The environment variable of each server setting.
SERVER_ENV: dict[str, str] = {
    name: f"VADETECTIVE_SERVER_{name.upper()}" for name in ServerSettings.model_fields
}
SERVER_ENV.update({"base_url": "VADETECTIVE_SERVER_URL", "api_key": "VADETECTIVE_SERVER_API_KEY"})
_OPENAI_ENV = {"base_url": "OPENAI_BASE_URL", "api_key": "OPENAI_API_KEY"}
#: Values that leave a detected setting (``bool | None``) to detection.
AUTO_WORDS = frozenset({"", "auto", "detect", "none"})


def server_env_values(env: Mapping[str, str]) -> dict[str, Any]:
    """The server settings the environment sets (raw strings; "auto" means None)."""
    values: dict[str, Any] = {}
    for name, var in SERVER_ENV.items():
        raw = env.get(var)
        if raw is None and name in _OPENAI_ENV:
            raw = env.get(_OPENAI_ENV[name])
        if raw is None:
            continue
        if name != "api_key" and raw.strip().lower() in AUTO_WORDS:
            if ServerSettings.model_fields[name].default is not None:
                continue  # a setting without an automatic mode keeps its default
            values[name] = None
        else:
            values[name] = raw
    return values


def _known(role: Role, name: str) -> str:
    names = backend_names(role)
    if name not in names:
        raise ValueError(f"unknown {role} {name!r}: choose one of {', '.join(names)}")
    return name


class Config(BaseModel):
    """Everything an analysis needs to know, resolved from a profile plus overrides.

    Backend names are checked against the catalog (``core.catalog``) when the config is built.
    """

    # inf and nan are refused in every float field (a nan threshold compares False with
    # everything, an infinite smoothing sigma would allocate without end).
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    profile: str = "classical"
    scorer: str = "motion"
    grounder: str = "motion"
    inspector: str = "measure"
    planner: str = "rules"
    graph: GraphName = "detective"
    models: dict[str, str] = Field(default_factory=dict)
    device: str = "auto"
    dtype: str = "auto"
    # Perception
    sample_fps: float = 2.0
    max_side: int = 640
    smoothing_sigma_s: float = 1.0
    # Budgets
    max_steps: int = 12
    max_planner_calls: int = 10
    max_frames_shown: int = 24
    max_verdict_retries: int = 2
    # Decisions of the rule planner
    anomaly_threshold: float = 0.5
    server: ServerSettings = Field(default_factory=ServerSettings)
    cache_dir: str | None = None
    seed: int = 0

    @field_validator("scorer")
    @classmethod
    def _scorer(cls, v: str) -> str:
        return _known("scorer", v)

    @field_validator("grounder")
    @classmethod
    def _grounder(cls, v: str) -> str:
        return _known("grounder", v)

    @field_validator("inspector")
    @classmethod
    def _inspector(cls, v: str) -> str:
        return _known("inspector", v)

    @field_validator("planner")
    @classmethod
    def _planner(cls, v: str) -> str:
        return _known("planner", v)

    @field_validator("sample_fps")
    @classmethod
    def _fps(cls, v: float) -> float:
        if not 0 < v <= 60:
            raise ValueError(f"sample_fps must be in (0, 60], got {v}")
        return v

    @field_validator("max_steps", "max_planner_calls", "max_frames_shown")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"budgets must be >= 1, got {v}")
        return v

    @field_validator("max_verdict_retries")
    @classmethod
    def _retries(cls, v: int) -> int:
        if v < 0:
            raise ValueError(f"max_verdict_retries must be >= 0, got {v}")
        return v

    @field_validator("max_side")
    @classmethod
    def _max_side(cls, v: int) -> int:
        if not 32 <= v <= 8192:
            raise ValueError(f"max_side must be between 32 and 8192 pixels, got {v}")
        return v

    @field_validator("smoothing_sigma_s")
    @classmethod
    def _sigma(cls, v: float) -> float:
        if not 0 <= v <= 600:
            raise ValueError(f"smoothing_sigma_s must be between 0 and 600 seconds, got {v}")
        return v

    @field_validator("anomaly_threshold")
    @classmethod
    def _threshold(cls, v: float) -> float:
        if not 0 <= v <= 1:
            raise ValueError(f"anomaly_threshold must be between 0 and 1, got {v}")
        return v

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, v: str) -> str:
        if v not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {v!r}")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v != "auto" and not v.startswith(("cpu", "cuda", "mps")):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda[:N]' or 'mps', got {v!r}")
        return v

    def model_id(self, backend: str) -> str:
        """The model id or local path used for ``backend``."""
        return self.models.get(backend) or DEFAULT_MODELS.get(backend, "")


def first_error(exc: Exception) -> str:
    """The first problem of a pydantic ``ValidationError`` as one clause ("max_steps: Input
    should be a valid integer (got 'x')", "max_stepz: no such setting"); other exceptions as
    their first line."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc).splitlines()[0]
    first = errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "the configuration"
    why = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    given = first.get("input")
    if first.get("type") == "extra_forbidden":
        why = "no such setting"
    elif first.get("type") == "finite_number":
        why = f"must be a finite number, got {given!r}"
    elif isinstance(given, (str, int, float)) and len(repr(given)) < 60:
        why += f" (got {given!r})"
    return f"{where}: {why}"


def config_error(exc: ValidationError) -> ConfigError:
    """One sentence for a pydantic error: the first field at fault and why (not a dump)."""
    n = len(exc.errors())
    more = f" (and {n - 1} more problem{'s' if n > 2 else ''})" if n > 1 else ""
    return ConfigError(f"invalid configuration: {first_error(exc)}{more}")


def config_for(profile: str, **overrides: Any) -> Config:
    """The configuration of a concrete profile (``classical``, ``local`` or ``server``), with
    keyword overrides applied on top.

    ``auto`` depends on which models are present, so it is resolved above the foundation
    (``vadetective.profile_config``).
    """
    if profile not in PROFILE_BACKENDS:
        if profile in PROFILES:
            raise ConfigError(
                f"profile {profile!r} must be resolved first: use vadetective.profile_config"
            )
        raise ConfigError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    values: dict[str, Any] = {"profile": profile, **PROFILE_BACKENDS[profile], **overrides}
    server = values.get("server")
    if not isinstance(server, ServerSettings):
        uses_server = "server" in (values.get("planner"), values.get("inspector"))
        table = dict(server or {})
        try:
            values["server"] = (
                ServerSettings.from_env(**table) if uses_server else ServerSettings(**table)
            )
        except ValueError as exc:
            raise ConfigError(f"invalid server settings: {first_error(exc)}") from exc
    try:
        return Config(**values)
    except ValidationError as exc:
        raise config_error(exc) from exc  # the cause: layered settings name the value's origin
