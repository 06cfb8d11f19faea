"""The clips the live tests stream (built by the ``clips`` fixture in ``conftest.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vadetective.agent.core.types import TimeSpan

CLIP_S = 22.0  # seconds of each generated clip


@dataclass(frozen=True)
class Clip:
    path: Path  # H.264 in Matroska, a keyframe per second, ready to stream
    spans: list[TimeSpan]
