"""The catalog of backends, planners, graphs and profiles: the one list of names.

Each backend is named once here, with where its class lives (``module:Class``, imported only
when it is built), the optional extra it needs and the model it loads by default. ``Config``
validates its names against this catalog when it is built; ``tools.registry`` and
``graphs.planners`` build from it. Nothing here imports a backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["scorer", "grounder", "inspector", "planner"]
ROLES: tuple[Role, ...] = ("scorer", "grounder", "inspector", "planner")

_BACKENDS = "vadetective.tools.backends"
_PLANNERS = "vadetective.graphs.planners"


@dataclass(frozen=True)
class BackendSpec:
    """One named backend: its role, where it lives and what it needs."""

    role: Role
    name: str
    #: "package.module:attr": a class with ``from_config(config, **options)`` or such a function
    target: str
    extra: str | None = None  # the pip extra that brings its dependencies
    model_key: str | None = None  # key of ``DEFAULT_MODELS`` / ``Config.models`` it loads
    options: dict[str, Any] = field(default_factory=dict)
    #: "package.module:function" checked before any work (``agent.preflight``): called as
    #: ``function(config, spec) -> list[str]``, one clause per problem; quick, loads no model.
    preflight: str | None = None

    @property
    def needs_weights(self) -> bool:
        return self.model_key is not None


#: Default model ids per model key, for real use. Override with ``Config.models`` (an id or a
#: local folder saved with ``save_pretrained``).
DEFAULT_MODELS: dict[str, str] = {
    "clip": "openai/clip-vit-base-patch32",
    "siglip": "google/siglip-base-patch16-224",
    "grounding-dino": "IDEA-Research/grounding-dino-tiny",
    "owlv2": "google/owlv2-base-patch16-ensemble",
    "yolo": "yolo11n.pt",
    "yolo-world": "yolov8s-worldv2.pt",
    "groundingdino-py": "ShilongLiu/GroundingDINO",
    "vlm": "Qwen/Qwen2.5-VL-3B-Instruct",
}

BACKENDS: tuple[BackendSpec, ...] = (
    # temporal scorers
    BackendSpec("scorer", "motion", f"{_BACKENDS}.motion.backends:MotionScorer"),
    BackendSpec("scorer", "clip", f"{_BACKENDS}.clip.scorer:ClipScorer", "hf", "clip",
                {"backend": "clip"}),
    BackendSpec("scorer", "siglip", f"{_BACKENDS}.clip.scorer:ClipScorer", "hf", "siglip",
                {"backend": "siglip"}),
    # grounders
    BackendSpec("grounder", "motion", f"{_BACKENDS}.motion.backends:MotionGrounder"),
    BackendSpec("grounder", "grounding-dino", f"{_BACKENDS}.grounding.hf:GroundingDinoGrounder",
                "hf", "grounding-dino"),
    BackendSpec("grounder", "owlv2", f"{_BACKENDS}.grounding.hf:Owlv2Grounder", "hf", "owlv2"),
    BackendSpec("grounder", "yolo", f"{_BACKENDS}.grounding.yolo:YoloGrounder", "yolo", "yolo",
                {"backend": "yolo"}),
    BackendSpec("grounder", "yolo-world", f"{_BACKENDS}.grounding.yolo:YoloGrounder", "yolo",
                "yolo-world", {"backend": "yolo-world"}),
    BackendSpec("grounder", "groundingdino-py",
                f"{_BACKENDS}.grounding.gdino_py:GroundingDinoPyGrounder", "gdino",
                "groundingdino-py"),
    # inspectors
    BackendSpec("inspector", "measure", f"{_BACKENDS}.motion.backends:MeasureInspector"),
    BackendSpec("inspector", "vlm", f"{_BACKENDS}.vlm.hf:VlmInspector", "hf", "vlm"),
    BackendSpec("inspector", "server", f"{_BACKENDS}.vlm.server:ServerInspector", "server"),
    # planners
    BackendSpec("planner", "rules", f"{_PLANNERS}.rules.policy:RulesPlanner"),
    BackendSpec("planner", "local", f"{_PLANNERS}.local:local_planner", "hf", "vlm"),
    BackendSpec("planner", "server", f"{_PLANNERS}.server:server_planner", "server"),
)  # fmt: skip


def backend_names(role: Role) -> tuple[str, ...]:
    """The names a role accepts, in catalog order."""
    return tuple(b.name for b in BACKENDS if b.role == role)


def backend_spec(role: Role, name: str) -> BackendSpec:
    """The catalog entry of ``name`` for ``role``.

    Raises:
        KeyError: When no backend of that role has that name.
    """
    for b in BACKENDS:
        if b.role == role and b.name == name:
            return b
    raise KeyError(f"unknown {role} {name!r}: choose one of {', '.join(backend_names(role))}")


ProfileName = Literal["auto", "classical", "local", "server"]
PROFILES: tuple[str, ...] = ("auto", "classical", "local", "server")

#: The backends of each concrete profile (``auto`` resolves to ``local`` or ``classical``).
PROFILE_BACKENDS: dict[str, dict[str, str]] = {
    "classical": {"scorer": "motion", "grounder": "motion", "inspector": "measure",
                  "planner": "rules"},
    "local": {"scorer": "clip", "grounder": "grounding-dino", "inspector": "vlm",
              "planner": "local"},
    "server": {"scorer": "clip", "grounder": "grounding-dino", "inspector": "server",
               "planner": "server"},
}  # fmt: skip

GraphName = Literal["detective", "chain"]
GRAPHS: tuple[GraphName, ...] = ("detective", "chain")
