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

import os
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
    """An OpenAI-compatible endpoint for the ``server`` profile."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:8000/v1")
    model: str | None = None
    api_key: str | None = Field(default=None, repr=False)
    native_tools: bool | None = Field(
        default=None, description="None: try native tool calling, fall back to JSON actions"
    )
    timeout_s: float = 120.0

    @classmethod
    def from_env(cls, **overrides: Any) -> ServerSettings:
        """Settings from ``VADETECTIVE_SERVER_URL``/``_MODEL``/``_API_KEY`` (or ``OPENAI_*``)."""
        env = os.environ
        values: dict[str, Any] = {
            "base_url": env.get("VADETECTIVE_SERVER_URL") or env.get("OPENAI_BASE_URL"),
            "model": env.get("VADETECTIVE_SERVER_MODEL"),
            "api_key": env.get("VADETECTIVE_SERVER_API_KEY") or env.get("OPENAI_API_KEY"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


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


def config_error(exc: ValidationError) -> ConfigError:
    """One sentence for a pydantic error: the first field at fault and why (not a dump)."""
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(x) for x in first["loc"]) or "the configuration"
    why = str(first.get("msg", "")).removeprefix("Value error, ")
    if first.get("type") == "extra_forbidden":
        why = "no such setting"
    elif first.get("type") in {"finite_number"}:
        why = f"must be a finite number, got {first.get('input')!r}"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ConfigError(f"invalid configuration: {where}: {why}" + (more if len(errors) > 1 else ""))


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
    values: dict[str, Any] = {"profile": profile, **PROFILE_BACKENDS[profile]}
    if profile == "server" and "server" not in overrides:
        values["server"] = ServerSettings.from_env()
    values.update(overrides)
    try:
        return Config(**values)
    except ValidationError as exc:
        raise config_error(exc) from None
