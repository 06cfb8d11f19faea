"""vadetective: zero-shot, detective-style video anomaly analysis.

The public API. Everything here is imported lazily so ``import vadetective`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("vadetective")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

_EXPORTS: dict[str, str] = {
    "Detective": "vadetective.agent.session",
    "analyze": "vadetective.agent.session",
    "run_dataset": "vadetective.agent.batch",
    "Config": "vadetective.agent.config",
    "profile_config": "vadetective.agent.config",
    "Verdict": "vadetective.agent.types",
    "Trace": "vadetective.agent.types",
    "TraceStep": "vadetective.agent.types",
    "Evidence": "vadetective.agent.types",
    "TimeSpan": "vadetective.agent.types",
    "Box": "vadetective.agent.types",
    "ScoreCurve": "vadetective.agent.types",
    "VideoInfo": "vadetective.agent.types",
    "open_video": "vadetective.tools.video",
    "generate_scene": "vadetective.agent.synth",
    "render_report": "vadetective.agent.report",
    "generate_suite": "vadetective.agent.synth",
    "load_dataset": "vadetective.agent.datasets",
    "evaluate_run": "vadetective.agent.evaluate",
    "replay_trace": "vadetective.agent.replay",
    "filter_steps": "vadetective.agent.replay",
    "timeline_figure": "vadetective.agent.views",
    "keyframes_figure": "vadetective.agent.views",
    "run_timelines": "vadetective.agent.views",
    "format_metrics_table": "vadetective.agent.evaluate",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # names for type checkers and IDEs; at run time __getattr__ imports lazily
    from vadetective.agent.config import Config as Config
    from vadetective.agent.config import profile_config as profile_config
    from vadetective.agent.types import Box as Box
    from vadetective.agent.types import Evidence as Evidence
    from vadetective.agent.types import ScoreCurve as ScoreCurve
    from vadetective.agent.types import TimeSpan as TimeSpan
    from vadetective.agent.types import Trace as Trace
    from vadetective.agent.types import TraceStep as TraceStep
    from vadetective.agent.types import Verdict as Verdict
    from vadetective.agent.types import VideoInfo as VideoInfo


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vadetective' has no attribute {name!r}")
    return getattr(import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
