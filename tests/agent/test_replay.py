"""Console replay of a trace, and filtering its steps."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from vadetective.agent.core.types import Trace
from vadetective.agent.report.replay import filter_steps, replay_trace


def _console(width: int = 300) -> Console:
    return Console(
        file=io.StringIO(), width=width, record=True, force_terminal=True, color_system="standard"
    )


def test_replay_shows_every_step_in_order_then_verdict_and_cost(sample_trace: Trace) -> None:
    console = _console()
    replay_trace(sample_trace, console=console)
    text = console.export_text()
    assert "Is anything abnormal happening on this street?" in text
    assert "/data/street/cam03_0412.mp4" in text and "320x180" in text
    positions = [text.index(f"#{s.index:<3}") for s in sample_trace.steps]
    assert positions == sorted(positions) and len(positions) == 13
    for piece in (
        "perceive",
        "score_timeline",
        "49 points, max 0.86 at 7.25 s",  # the curve of E1
        "I will look at frames across that span before deciding.",  # planner text
        'phrases=["person lying on the ground", "person"], t_s=7.5',  # tool args
        "person lying on the ground 0.81 @ 7.50 s [180, 112, 240, 134]",  # boxes
        "aspect_ratio=2.7",  # facts
        "(0.62 s)",  # timing
        "span 6.25-14.00 s ends after the video (12.00 s)",  # rejected check
    ):
        assert piece in text, piece
    verdict_at = text.index("ANOMALOUS")
    assert verdict_at > positions[-1]
    assert "confidence 0.82" in text and "6.25-8.75 s" in text
    assert text.index("cost:") > verdict_at
    assert "4 planner calls, 5 tool calls, 61 frames decoded" in text


def test_replay_prints_errors_in_red(sample_trace: Trace) -> None:
    console = _console()
    replay_trace(sample_trace, console=console)
    styled = console.export_text(styles=True)
    red = r"\x1b\[1;31m"  # bold red
    assert re.search(red + r"t_s \(30\.0\) is outside the video", styled)
    assert re.search(red + r"span 6\.25-14\.00 s ends after the video", styled)
    assert not re.search(red + r"I will look at frames", styled)


def test_replay_does_not_interpret_trace_text_as_markup(sample_trace: Trace) -> None:
    steps = list(sample_trace.steps)
    steps[1] = steps[1].model_copy(update={"text": "look at [bold red]E1[/] and [link=x]y[/link]"})
    console = _console()
    replay_trace(sample_trace.model_copy(update={"steps": steps}), console=console)
    assert "look at [bold red]E1[/] and [link=x]y[/link]" in console.export_text()


def test_replay_trace_prints_to_stdout(
    sample_trace: Trace, capsys: pytest.CaptureFixture[str]
) -> None:
    replay_trace(sample_trace)
    out = capsys.readouterr().out
    assert "Is anything abnormal happening on this street?" in out
    assert "ANOMALOUS" in out


def test_replay_of_a_trace_without_verdict_or_video() -> None:
    console = _console()
    replay_trace(Trace(question="Anything odd?"), console=console)
    text = console.export_text()
    assert "Anything odd?" in text and "0 steps" in text
    assert "no verdict: the run stopped before deciding" in text


def test_replay_renders_html_for_notebooks(sample_trace: Trace) -> None:
    """Notebooks get rich's HTML rendering; the same content must survive it, escaped."""
    console = _console()
    replay_trace(sample_trace, console=console)
    page = console.export_html(inline_styles=True)
    assert "Is anything abnormal happening on this street?" in page
    assert "person lying on the ground" in page


@pytest.mark.parametrize(
    ("kind", "tool", "expected"),
    [
        (None, None, list(range(13))),
        ("plan", None, [1, 3, 7, 9]),
        ("check", None, [8, 10]),
        (None, "ground", [4, 5]),
        ("tool", "ground", [4, 5]),
        ("perceive", "score_timeline", [0]),
        ("plan", "ground", []),
        (None, "no_such_tool", []),
    ],
)
def test_filter_steps(
    sample_trace: Trace, kind: str | None, tool: str | None, expected: list[int]
) -> None:
    assert [s.index for s in filter_steps(sample_trace, kind=kind, tool=tool)] == expected


def test_filter_steps_rejects_unknown_kinds(sample_trace: Trace) -> None:
    with pytest.raises(ValueError, match="kind must be one of perceive, plan, tool"):
        filter_steps(sample_trace, kind="tools")
