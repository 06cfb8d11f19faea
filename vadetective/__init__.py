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
    "run_dataset": "vadetective.agent.batch.runner",
    "Config": "vadetective.agent.core.config",
    "profile_config": "vadetective.agent.profiles",
    "Verdict": "vadetective.agent.core.types",
    "Trace": "vadetective.agent.core.types",
    "TraceStep": "vadetective.agent.core.types",
    "Evidence": "vadetective.agent.core.types",
    "TimeSpan": "vadetective.agent.core.types",
    "Box": "vadetective.agent.core.types",
    "ScoreCurve": "vadetective.agent.core.types",
    "VideoInfo": "vadetective.agent.core.types",
    "open_video": "vadetective.tools.video.sources",
    "generate_scene": "vadetective.agent.synth.scene",
    "render_report": "vadetective.agent.report.html",
    "generate_suite": "vadetective.agent.synth.scene",
    "load_dataset": "vadetective.agent.datasets",
    "evaluate_run": "vadetective.agent.eval.evaluate",
    "replay_trace": "vadetective.agent.report.replay",
    "filter_steps": "vadetective.agent.report.replay",
    "timeline_figure": "vadetective.agent.report.views",
    "keyframes_figure": "vadetective.agent.report.views",
    "run_timelines": "vadetective.agent.report.views",
    "format_metrics_table": "vadetective.agent.eval.table",
    "watch": "vadetective.agent.live.watcher",
    "Watcher": "vadetective.agent.live.watcher",
    "LiveSettings": "vadetective.agent.live.watcher",
    "Alert": "vadetective.agent.core.types",
    "render_events_page": "vadetective.agent.report.events_page",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # names for type checkers and IDEs; at run time __getattr__ imports lazily
    from vadetective.agent.core.config import Config as Config
    from vadetective.agent.core.types import Alert as Alert
    from vadetective.agent.core.types import Box as Box
    from vadetective.agent.core.types import Evidence as Evidence
    from vadetective.agent.core.types import ScoreCurve as ScoreCurve
    from vadetective.agent.core.types import TimeSpan as TimeSpan
    from vadetective.agent.core.types import Trace as Trace
    from vadetective.agent.core.types import TraceStep as TraceStep
    from vadetective.agent.core.types import Verdict as Verdict
    from vadetective.agent.core.types import VideoInfo as VideoInfo
    from vadetective.agent.live.watcher import LiveSettings as LiveSettings
    from vadetective.agent.live.watcher import Watcher as Watcher
    from vadetective.agent.live.watcher import watch as watch
    from vadetective.agent.profiles import profile_config as profile_config


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vadetective' has no attribute {name!r}")
    return getattr(import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
