"""Backends by name. Factories import their heavy modules only when called.

``SCORERS["clip"](config)`` builds a scorer; nothing here imports torch, transformers or
ultralytics until a factory runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from vadetective.agent.config import Config
from vadetective.agent.errors import ConfigError
from vadetective.tools.base import Grounder, Inspector, TemporalScorer


def _lazy(module: str, cls: str, **fixed: Any) -> Callable[[Config], Any]:
    def factory(config: Config) -> Any:
        mod = importlib.import_module(f"vadetective.tools.backends.{module}")
        return getattr(mod, cls).from_config(config, **fixed)

    factory.__qualname__ = f"{module}.{cls}"
    return factory


SCORERS: dict[str, Callable[[Config], TemporalScorer]] = {
    "motion": _lazy("motion", "MotionScorer"),
    "clip": _lazy("hf_clip", "ClipScorer", backend="clip"),
    "siglip": _lazy("hf_clip", "ClipScorer", backend="siglip"),
}

GROUNDERS: dict[str, Callable[[Config], Grounder]] = {
    "motion": _lazy("motion", "MotionGrounder"),
    "grounding-dino": _lazy("hf_grounding", "GroundingDinoGrounder"),
    "owlv2": _lazy("hf_grounding", "Owlv2Grounder"),
    "yolo": _lazy("yolo", "YoloGrounder", backend="yolo"),
    "yolo-world": _lazy("yolo", "YoloGrounder", backend="yolo-world"),
    "groundingdino-py": _lazy("gdino_py", "GroundingDinoPyGrounder"),
}

INSPECTORS: dict[str, Callable[[Config], Inspector]] = {
    "measure": _lazy("motion", "MeasureInspector"),
    "vlm": _lazy("hf_vlm", "VlmInspector"),
    "server": _lazy("server_vlm", "ServerInspector"),
}


def _build(kind: str, table: dict[str, Callable[[Config], Any]], name: str, config: Config) -> Any:
    try:
        factory = table[name]
    except KeyError:
        raise ConfigError(
            f"unknown {kind} backend {name!r}: choose one of {', '.join(sorted(table))}"
        ) from None
    return factory(config)


def build_scorer(config: Config, name: str | None = None) -> TemporalScorer:
    return _build("scorer", SCORERS, name or config.scorer, config)


def build_grounder(config: Config, name: str | None = None) -> Grounder:
    return _build("grounder", GROUNDERS, name or config.grounder, config)


def build_inspector(config: Config, name: str | None = None) -> Inspector:
    return _build("inspector", INSPECTORS, name or config.inspector, config)
