"""`vadetective analyze`, `demo` and `report`: one video, its verdict and its report."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer

from vadetective.agent.cli import options as opts
from vadetective.agent.cli.common import (
    app,
    clip,
    err_console,
    fail,
    friendly_errors,
    json_text,
    out_console,
    safe,
)


def _print_verdict(verdict: Any, trace: Any, out: Path) -> None:
    state = {
        True: "[bold red]ANOMALOUS[/]",
        False: "[bold green]normal[/]",
        None: "[bold yellow]undecided[/]",
    }[verdict.is_anomalous]
    out_console.rule("verdict")
    out_console.print(
        f"{state}  confidence {verdict.confidence:.2f}"
        + (f"  category: {safe(verdict.category)}" if verdict.category else "")
    )
    out_console.print(f"[bold]Q:[/] {safe(verdict.question)}")
    out_console.print(f"[bold]A:[/] {safe(verdict.answer)}")
    if verdict.spans:
        out_console.print(
            "[bold]when:[/] " + ", ".join(f"{s.start_s:.1f}-{s.end_s:.1f} s" for s in verdict.spans)
        )
    if verdict.boxes:
        out_console.print(
            "[bold]where:[/] "
            + "; ".join(
                f"{safe(b.label or 'box')} at {b.t_s:.1f} s \\[{', '.join(f'{v:.0f}' for v in b.xyxy)}]"
                for b in verdict.boxes[:4]
            )
        )
    out_console.print(f"[bold]why:[/] {safe(verdict.justification)}")
    c = trace.cost
    out_console.print(
        f"[dim]cost: {c.planner_calls} planner calls, {c.tool_calls} tool calls, {c.frames_decoded} frames decoded, "
        f"{c.seconds_total:.1f} s ({trace.profile} profile, {trace.graph} graph)[/]"
    )
    out_console.print(
        f"[dim]outputs: {safe(out)}/ (verdict.json, trace.json, report.html, frames/)[/]"
    )


def run_analyze(
    video: Path,
    question: str | None,
    profile: str,
    out: Path,
    checkpoint: Path | None,
    graph: str,
    as_json: bool,
    overrides: dict[str, Any] | None = None,
    ground_truth: Path | None = None,
    fps: float | None = None,
) -> Any:
    """Analyze one video with live progress; write the verdict, trace and report into ``out``."""
    from vadetective.agent.core.io import writable_folder
    from vadetective.agent.session import Detective

    writable_folder(out, "--out")  # before the analysis, not after it
    started = time.perf_counter()
    status_console = err_console if as_json else out_console
    with (
        status_console.status("opening the video…") as status,
        Detective(
            video,
            profile=profile,
            out=out,
            fps=fps,
            fps_source="--fps flag" if fps is not None else None,
            **(overrides or {}),
        ) as d,
    ):
        if not as_json:
            info = d.info
            out_console.print(
                f"[bold]{safe(Path(info.path).name)}[/]: {info.duration_s:.1f} s, {info.fps:.1f} fps, "
                f"{info.resolution_wh[0]}x{info.resolution_wh[1]} — profile [bold]{d.config.profile}[/]"
                + (f" [dim](frame rate: {safe(info.fps_source)})[/]" if info.fps_source else "")
            )

        def on_step(step: Any) -> None:
            label = safe(step.tool or step.kind)  # a planner may name a tool that does not exist
            elapsed = time.perf_counter() - started
            status.update(
                f"\\[{elapsed:5.1f} s] {step.kind}: {label} — {safe(clip(step.summary, 90))}"
            )
            if not as_json:
                err = f" [red]({safe(clip(step.error, 100))})[/]" if step.error else ""
                out_console.print(
                    f"  [dim]{elapsed:5.1f} s[/] {step.kind:<8} {label:<15} {safe(clip(step.summary, 100))}{err}",
                    highlight=False,
                )

        status.update("perceiving: scoring the whole timeline…")
        verdict = d.ask(question, graph=graph, checkpoint=checkpoint, on_step=on_step)
        trace = d.last_trace
    assert trace is not None
    from vadetective.agent.report.html import render_report

    render_report(trace, out, out / "report.html", ground_truth=ground_truth)
    if as_json:
        sys.stdout.write(json_text(verdict, indent=2) + "\n")
    else:
        _print_verdict(verdict, trace, out)
    return verdict


@app.command()
@friendly_errors
def analyze(
    video: Path = typer.Argument(..., help="The video file (or folder of frames) to analyze."),
    question: str | None = typer.Option(
        None, "--question", "-q", help="What to ask (default: is anything unusual happening?)."
    ),
    profile: str | None = typer.Option(
        None, "--profile", "-p", help="auto (default), classical, local or server."
    ),
    out: Path = typer.Option(
        Path("vadetective-out"),
        "--out",
        "-o",
        help="Folder for verdict.json, trace.json, report.html and frames.",
    ),
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="SQLite file: an interrupted analysis resumes from it."
    ),
    graph: str = typer.Option(
        "detective", "--graph", help="detective (agentic loop) or chain (fixed chain)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the verdict as JSON on stdout."),
    config_file: opts.ConfigFile = None,
    scorer: opts.Scorer = None,
    grounder: opts.Grounder = None,
    inspector: opts.Inspector = None,
    planner: opts.PlannerOpt = None,
    models: opts.Models = None,
    device: opts.Device = None,
    dtype: opts.Dtype = None,
    sample_fps: opts.SampleFps = None,
    max_steps: opts.MaxSteps = None,
    max_planner_calls: opts.MaxCalls = None,
    max_frames_shown: opts.MaxFrames = None,
    anomaly_threshold: opts.Threshold = None,
    server_url: opts.ServerUrl = None,
    server_model: opts.ServerModel = None,
    server_api_key: opts.ServerKey = None,
    server_timeout: opts.ServerTimeout = None,
    server_retries: opts.ServerRetries = None,
    server_deadline: opts.ServerDeadline = None,
    server_max_tokens: opts.ServerTokens = None,
    temperature: opts.Temperature = None,
    seed: opts.Seed = None,
    native_tools: opts.NativeTools = None,
    text_only: opts.TextOnly = None,
    structured: opts.Structured = None,
    fps: float | None = typer.Option(
        None, "--fps", help="Frame rate of a folder of frames (default 25, with a warning)."
    ),
) -> None:
    """Analyze a video: live progress, then the verdict with when, where and why.

    Settings layer as: profile < --config TOML file < VADETECTIVE_* environment < flags.
    """
    flags = {k: v for k, v in locals().items() if k in opts.SETTINGS_FLAGS}
    config = opts.build_config(profile, config_file, **flags)
    run_analyze(
        video,
        question,
        config.profile,
        out,
        checkpoint,
        graph,
        as_json,
        {"config": config},
        fps=fps,
    )


@app.command()
@friendly_errors
def demo(
    out: Path = typer.Option(
        Path("vadetective-demo"),
        "--out",
        "-o",
        help="Folder for the demo video, its ground truth and the analysis.",
    ),
    kind: str = typer.Option(
        "sprint", "--kind", help="Which anomaly to stage (see `vadetective demo --help`)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the generated scene."),
    profile: str = typer.Option(
        "auto", "--profile", "-p", help="auto, classical, local or server."
    ),
) -> None:
    """Generate a surveillance-like scene with a staged anomaly and analyze it."""
    from vadetective.agent.synth.scene import generate_scene
    from vadetective.agent.synth.truth import ANOMALY_KINDS

    if kind not in (*ANOMALY_KINDS, "normal"):
        raise fail(f"unknown kind {kind!r}: choose one of {', '.join((*ANOMALY_KINDS, 'normal'))}")
    out.mkdir(parents=True, exist_ok=True)
    with out_console.status(f"generating a '{kind}' scene…"):
        truth = generate_scene(out, kind=kind, seed=seed)
    out_console.print(f"generated [bold]{safe(truth.video_path)}[/] — {safe(truth.description)}")
    if truth.spans:
        out_console.print(
            "[dim]ground truth: "
            + ", ".join(f"{s.start_s:.1f}-{s.end_s:.1f} s" for s in truth.spans)
            + "[/]"
        )
    truth_path = Path(truth.video_path).with_suffix(".truth.json")
    run_analyze(
        Path(truth.video_path),
        None,
        profile,
        out / "analysis",
        None,
        "detective",
        False,
        ground_truth=truth_path if truth_path.exists() else None,
    )


# --------------------------------------------------------------------------- report
@app.command()
@friendly_errors
def report(
    trace_json: Path = typer.Argument(..., help="A trace.json written by analyze or batch."),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Where to write the HTML (default: report.html beside the trace).",
    ),
    ground_truth: Path | None = typer.Option(
        None, "--ground-truth", help="A *.truth.json (spans in seconds) to draw on the timeline."
    ),
) -> None:
    """Render a trace as one self-contained HTML report."""
    from vadetective.agent.core.types import Trace
    from vadetective.agent.report.html import render_report

    if trace_json.is_dir() and (trace_json / "trace.json").is_file():
        trace_json = trace_json / "trace.json"  # the run folder was given: take its trace
    try:
        trace = Trace.load(trace_json)
    except ValueError as exc:
        raise fail(str(exc).splitlines()[0]) from None
    if output is not None and output.is_dir():
        output = output / "report.html"
    path = render_report(
        trace,
        trace_json.parent,
        output or trace_json.parent / "report.html",
        ground_truth=ground_truth,
    )
    out_console.print(f"wrote {safe(path)}", highlight=False)
