"""Console replay of a trace: every step in order, readable in a terminal or a notebook.

``vadetective.replay_trace(trace)`` and ``Detective.replay()`` call ``replay_trace``. Output goes through rich, which renders to ANSI in a
terminal and to HTML in Jupyter. All text from the trace is rendered as plain ``Text``, never
parsed as rich markup, so a planner that writes ``[bold]`` or ``[/]`` cannot garble the output,
and its terminal control characters are shown as escapes (``core.text.printable``), not obeyed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, get_args

from vadetective.agent.core.text import printable_data
from vadetective.agent.core.types import Cost, Evidence, Trace, TraceStep, Verdict
from vadetective.agent.core.vocabulary import StepKind

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

__all__ = ["filter_steps", "replay_trace"]

_KIND_STYLES: dict[str, str] = {
    "perceive": "bold white on blue",
    "plan": "bold white on magenta",
    "tool": "bold black on cyan",
    "check": "bold black on green",
    "verdict": "bold white on red",
    "note": "bold black on white",
}
_MAX_ARG_CHARS = 160


def filter_steps(
    trace: Trace, kind: StepKind | str | None = None, tool: str | None = None
) -> list[TraceStep]:
    """The steps of a trace matching a kind and/or a tool name, in order.

    Args:
        trace: The trace to search.
        kind: Keep only steps of this kind (perceive, plan, tool, check, verdict, note).
        tool: Keep only steps that called this tool (e.g. ``"ground"``).

    Returns:
        The matching steps; all steps when both filters are None.

    Raises:
        ValueError: ``kind`` is not a step kind.
    """
    kinds = get_args(StepKind)
    if kind is not None and kind not in kinds:
        raise ValueError(f"kind must be one of {', '.join(kinds)}, got {kind!r}")
    return [
        s
        for s in trace.steps
        if (kind is None or s.kind == kind) and (tool is None or s.tool == tool)
    ]


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = text.replace("\n", " ")
    return text if len(text) <= _MAX_ARG_CHARS else text[: _MAX_ARG_CHARS - 1] + "…"


def _args_text(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in args.items())


def _evidence_lines(ev: Evidence, known_summary: str = "") -> list[tuple[str, str]]:
    """(label, text) lines describing one evidence; ``known_summary`` is not repeated."""
    lines: list[tuple[str, str]] = []
    show = ev.summary and ev.summary != known_summary
    head = f"{ev.id} {ev.tool}" + (f": {ev.summary}" if show else "")
    lines.append(("evidence", head))
    if ev.curve is not None and len(ev.curve):
        c = ev.curve
        peak = max(range(len(c)), key=lambda i: c.score[i])
        fam = f"; families {', '.join(c.families)}" if c.families else ""
        lines.append(
            ("curve", f"{len(c)} points, max {c.score[peak]:.2f} at {c.t_s[peak]:.2f} s{fam}")
        )
    if ev.spans:
        spans = ", ".join(
            f"{s.start_s:.2f}-{s.end_s:.2f} s"
            + (f" ({s.score:.2f})" if s.score is not None else "")
            for s in ev.spans
        )
        lines.append(("spans", spans))
    if ev.boxes:
        boxes = "; ".join(
            f"{b.label or 'box'} {b.score:.2f} @ {b.t_s:.2f} s [{', '.join(f'{x:.0f}' for x in b.xyxy)}]"
            for b in ev.boxes[:6]
        )
        more = f" (+{len(ev.boxes) - 6} more)" if len(ev.boxes) > 6 else ""
        lines.append(("boxes", boxes + more))
    facts = ev.all_facts()
    if facts:
        lines.append(("facts", ", ".join(f"{k}={v}" for k, v in facts.items())))
    if ev.images:
        kinds: dict[str, int] = {}
        for ref in ev.images:
            kinds[ref.kind] = kinds.get(ref.kind, 0) + 1
        lines.append(
            ("images", ", ".join(f"{n} {k}{'s' if n > 1 else ''}" for k, n in kinds.items()))
        )
    return lines


def _step_renderable(step: TraceStep, trace: Trace) -> RenderableType:
    from rich.console import Group
    from rich.padding import Padding
    from rich.text import Text

    head = Text()
    head.append(f"#{step.index:<3}", style="bold")
    head.append(f" {step.kind} ", style=_KIND_STYLES.get(step.kind, "bold"))
    if step.tool:
        head.append(f" {step.tool}", style="bold cyan")
    if step.summary:
        head.append(f"  {step.summary}")
    head.append(f"  ({step.duration_s:.2f} s)", style="dim")

    body: list[Text] = []

    def line(label: str, text: str, style: str = "") -> None:
        t = Text()
        t.append(f"{label}: ", style="dim")
        t.append(text, style=style)
        body.append(t)

    if step.text:
        line("planner", step.text, "italic")
    if step.args:
        line("args", _args_text(step.args))
    if step.error:
        line("error", step.error, "bold red")
    if step.evidence_id:
        ev = trace.evidence_by_id(step.evidence_id)
        if ev is None:
            line("evidence", f"{step.evidence_id} (not in this trace)", "yellow")
        else:
            for label, text in _evidence_lines(ev, known_summary=step.summary):
                line(label, text)
            if ev.error and ev.error != step.error:
                line("error", ev.error, "bold red")
    if step.images:
        line("images", ", ".join(r.path for r in step.images), "dim")
    return Group(head, Padding(Group(*body), (0, 0, 0, 5))) if body else head


def _verdict_renderable(verdict: Verdict | None) -> RenderableType:
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    if verdict is None:
        return Panel(
            Text("no verdict: the run stopped before deciding", style="yellow"), title="verdict"
        )
    if verdict.is_anomalous is None:
        flag, color = "UNDECIDED", "yellow"
    elif verdict.is_anomalous:
        flag, color = "ANOMALOUS", "red"
    else:
        flag, color = "NORMAL", "green"
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column()
    grid.add_row("answer", Text(verdict.answer, style="bold"))
    status = Text(flag, style=f"bold {color}")
    status.append(f"  confidence {verdict.confidence:.2f}", style="")
    if verdict.forced:
        status.append("  (forced: budget ran out)", style="yellow")
    grid.add_row("status", status)
    grid.add_row("category", Text(verdict.category or "-"))
    if verdict.spans:
        grid.add_row(
            "when", Text(", ".join(f"{s.start_s:.2f}-{s.end_s:.2f} s" for s in verdict.spans))
        )
    if verdict.boxes:
        grid.add_row(
            "where",
            Text(
                "; ".join(
                    f"{b.label or 'box'} @ {b.t_s:.2f} s [{', '.join(f'{x:.0f}' for x in b.xyxy)}]"
                    for b in verdict.boxes
                )
            ),
        )
    if verdict.justification:
        grid.add_row("why", Text(verdict.justification))
    if verdict.evidence_ids:
        grid.add_row("evidence", Text(", ".join(verdict.evidence_ids)))
    return Panel(grid, title="verdict", border_style=color, title_align="left")


def _cost_renderable(cost: Cost) -> RenderableType:
    from rich.text import Text

    text = Text("cost: ", style="dim")
    text.append(
        f"{cost.planner_calls} planner calls, {cost.tool_calls} tool calls, "
        f"{cost.frames_decoded} frames decoded, {cost.frames_shown} frames shown, "
        f"{cost.seconds_total:.2f} s total"
    )
    if cost.seconds_by_stage:
        text.append(
            " (" + ", ".join(f"{k} {v:.2f} s" for k, v in cost.seconds_by_stage.items()) + ")",
            style="dim",
        )
    return text


def replay_trace(trace: Trace, console: Console | None = None) -> None:
    """Print a trace: the question and video, every step in order, the verdict and the cost.

    Args:
        trace: The trace to show.
        console: A rich ``Console`` to print to; None makes one for the current terminal or
            notebook.
    """
    from rich.console import Console
    from rich.panel import Panel
    from rich.rule import Rule
    from rich.table import Table
    from rich.text import Text

    console = console if console is not None else Console()
    trace = Trace.model_validate(printable_data(trace.model_dump(mode="json")))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column()
    grid.add_row("question", Text(trace.question, style="bold"))
    if trace.video is not None:
        v = trace.video
        grid.add_row(
            "video",
            Text(
                f"{v.path}  ({v.duration_s:.1f} s, {v.fps:.2f} fps, "
                f"{v.resolution_wh[0]}x{v.resolution_wh[1]}, {v.frame_count} frames)"
            ),
        )
    grid.add_row(
        "run",
        Text(
            f"profile {trace.profile or '-'}, graph {trace.graph}, "
            f"started {trace.started_at.isoformat(timespec='seconds')}"
        ),
    )
    if trace.models:
        grid.add_row("models", Text(", ".join(f"{k}={v}" for k, v in sorted(trace.models.items()))))
    console.print(Panel(grid, title="vadetective trace", title_align="left"))
    console.print(Rule(f"{len(trace.steps)} steps", style="dim"))
    for step in trace.steps:
        console.print(_step_renderable(step, trace))
    attached = {s.evidence_id for s in trace.steps}
    for ev in trace.evidence:
        if ev.id not in attached:
            (_, head), *rest = _evidence_lines(ev)
            console.print(Text(f"evidence not attached to a step: {head}", style="dim"))
            for label, text in rest:
                console.print(Text(f"     {label}: {text}"))
            if ev.error:
                console.print(Text(f"     error: {ev.error}", style="bold red"))
    console.print(Rule(style="dim"))
    console.print(_verdict_renderable(trace.verdict))
    console.print(_cost_renderable(trace.cost))
