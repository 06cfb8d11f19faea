"""Fixtures of the planner tests: the tiny VLM and the scripted OpenAI-compatible server from
tests/tools/vlm/vlm_fixtures.py, and a small set of typed tools with Google-style docstrings."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Literal

import pytest
from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

_path = Path(__file__).resolve().parents[2] / "tools" / "vlm" / "vlm_fixtures.py"
_spec = importlib.util.spec_from_file_location("vadetective_tests_vlm_fixtures", _path)
assert _spec is not None and _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

fake_server = _fixtures.fake_server
tiny_vlm_dirs = _fixtures.tiny_vlm_dirs


@pytest.fixture(scope="session")
def vlm_kit() -> ModuleType:
    """The helper module: ``Reply``, ``FakeSource``, ``GenerateSpy``, ``closed_port_url``..."""
    return _fixtures


class Span(BaseModel):
    """A time span in seconds."""

    start_s: float = Field(description="start, seconds")
    end_s: float = Field(description="end, seconds")


def sample_frames(start_s: float, end_s: float, count: int = 4) -> str:
    """Look at frames from a span of the video.

    Args:
        start_s: Start of the span, in seconds.
        end_s: End of the span, in seconds.
        count: How many frames to take (1 to 8).
    """
    return "frames"


def ground(t_s: float, phrases: list[str], mode: Literal["fast", "accurate"] = "fast") -> str:
    """Find boxes for text phrases in the frame at one moment.

    Args:
        t_s: Time of the frame, in seconds.
        phrases: What to look for, for example ["person", "bag"].
        mode: Speed/accuracy trade-off.
    """
    return "boxes"


def submit_verdict(
    answer: str,
    is_anomalous: bool | None,
    confidence: float = 0.5,
    spans: list[Span] | None = None,
    evidence_ids: list[str] | None = None,
) -> str:
    """Submit your final answer.

    Args:
        answer: A direct answer to the question.
        is_anomalous: True if something abnormal happens, False if not, null if undecided.
        confidence: Your confidence, from 0 to 1.
        spans: When it happens.
        evidence_ids: The evidence ids the answer rests on.
    """
    return "verdict"


@pytest.fixture
def tools() -> list[StructuredTool]:
    """Three tools built the way the graph builds its own: typed functions + docstrings."""
    return [
        StructuredTool.from_function(f, parse_docstring=True)
        for f in (sample_frames, ground, submit_verdict)
    ]
