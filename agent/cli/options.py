"""The settings flags that `analyze` and `batch` share, and the configuration they build.

Layering: profile defaults < ``--config`` TOML file (or ``$VADETECTIVE_CONFIG``) <
``VADETECTIVE_*`` environment variables < these flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from vadetective.agent.core.config import Config
from vadetective.agent.core.sources import parse_model_pairs
from vadetective.agent.profiles import layered_config

ConfigFile = Annotated[
    Path | None, typer.Option("--config", help="A TOML settings file (keys as in Config).")
]
Scorer = Annotated[str | None, typer.Option("--scorer", help="motion, clip or siglip.")]
Grounder = Annotated[
    str | None, typer.Option("--grounder", help="motion, grounding-dino, owlv2, yolo, ...")
]
Inspector = Annotated[str | None, typer.Option("--inspector", help="measure, vlm or server.")]
PlannerOpt = Annotated[str | None, typer.Option("--planner", help="rules, local or server.")]
Models = Annotated[
    list[str] | None,
    typer.Option("--model", help="BACKEND=ID_OR_FOLDER, e.g. clip=/models/my-clip (repeatable)."),
]
Device = Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda[:N] or mps.")]
Dtype = Annotated[str | None, typer.Option("--dtype", help="auto, float32, bfloat16, float16.")]
SampleFps = Annotated[float | None, typer.Option("--sample-fps", help="Timeline sampling rate.")]
MaxSteps = Annotated[int | None, typer.Option("--max-steps", help="Tool-call budget.")]
MaxCalls = Annotated[int | None, typer.Option("--max-planner-calls", help="Planner-call budget.")]
MaxFrames = Annotated[int | None, typer.Option("--max-frames", help="Frames the planner may see.")]
Threshold = Annotated[float | None, typer.Option("--threshold", help="Anomaly threshold (0-1).")]
ServerUrl = Annotated[str | None, typer.Option("--server-url", help="OpenAI-compatible endpoint.")]
ServerModel = Annotated[str | None, typer.Option("--server-model", help="Served model name.")]
ServerKey = Annotated[
    str | None,
    typer.Option(
        "--server-api-key",
        help="API key (prefer VADETECTIVE_SERVER_API_KEY: flags are visible to other users).",
    ),
]
ServerTimeout = Annotated[
    float | None, typer.Option("--server-timeout", help="Seconds per request.")
]
ServerRetries = Annotated[
    int | None, typer.Option("--server-retries", help="Retries of transient failures.")
]
ServerDeadline = Annotated[
    float | None, typer.Option("--server-deadline", help="Seconds for one request's retries.")
]
ServerTokens = Annotated[
    int | None, typer.Option("--server-max-tokens", help="Reply length limit.")
]
Seed = Annotated[int | None, typer.Option("--seed", help="Planner sampling seed.")]
Temperature = Annotated[
    float | None, typer.Option("--temperature", help="Planner sampling temperature.")
]
NativeTools = Annotated[
    bool | None,
    typer.Option("--native-tools/--json-actions", help="Native tool calls or JSON actions."),
]
TextOnly = Annotated[
    bool | None,
    typer.Option("--text-only/--send-frames", help="Never send frames (default: detect)."),
]
Structured = Annotated[
    bool | None,
    typer.Option("--structured/--no-structured", help="Constrained JSON output (default: try)."),
]


#: Each server flag's parameter name -> its ``ServerSettings`` field (every field has one).
SERVER_FLAGS = {
    "server_url": "base_url", "server_model": "model", "server_api_key": "api_key",
    "server_timeout": "timeout_s", "server_retries": "max_retries",
    "server_deadline": "deadline_s", "server_max_tokens": "max_tokens",
    "temperature": "temperature", "seed": "seed", "native_tools": "native_tools",
    "text_only": "text_only", "structured": "structured_output",
}  # fmt: skip
#: The other settings flags, named as their ``Config`` fields (``models``: ``--model`` pairs).
CONFIG_FLAGS = (
    "scorer", "grounder", "inspector", "planner", "models", "device", "dtype", "sample_fps",
    "max_steps", "max_planner_calls", "max_frames_shown", "anomaly_threshold",
)  # fmt: skip
SETTINGS_FLAGS = frozenset((*CONFIG_FLAGS, *SERVER_FLAGS))


def build_config(profile: str | None, config_file: Path | None, **flags: Any) -> Config:
    """The configuration from every layer; flags that are None were not given."""
    server = {SERVER_FLAGS[k]: flags.pop(k) for k in list(flags) if k in SERVER_FLAGS}
    server = {k: v for k, v in server.items() if v is not None}
    models = flags.pop("models", None)
    values: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    if models:
        values["models"] = parse_model_pairs(list(models), "--model")
    if server:
        values["server"] = server
    return layered_config(profile, config_file, **values)
