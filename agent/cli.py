"""The ``vadetective`` command line. Library code logs; only this module prints.

Every ``VadetectiveError`` (and a missing or unreadable file) becomes ``error: <sentence>`` on
stderr with exit code 2 and no traceback.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

import vadetective
from vadetective.agent.core.errors import VadetectiveError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Zero-shot video anomaly detective: whether, when, where and why.",
)
models_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="List and download the models of each profile."
)
app.add_typer(models_app, name="models")

out_console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def friendly_errors(fn: F) -> F:
    """Turn expected errors into one sentence on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VadetectiveError as exc:
            raise _fail(str(exc)) from None
        except FileNotFoundError as exc:
            raise _fail(str(exc)) from None
        except KeyboardInterrupt:
            err_console.print("interrupted: finished work is kept")
            raise typer.Exit(code=130) from None

    return wrapper  # type: ignore[return-value]


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_time=False, show_path=False)],
        force=True,
    )


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vadetective {vadetective.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens inside."),
) -> None:
    """Ask a video whether, when, where and why something abnormal happens."""
    _setup_logging(verbose)


# --------------------------------------------------------------------------- analyze
def _print_verdict(verdict: Any, trace: Any, out: Path) -> None:
    state = {
        True: "[bold red]ANOMALOUS[/]",
        False: "[bold green]normal[/]",
        None: "[bold yellow]undecided[/]",
    }[verdict.is_anomalous]
    out_console.rule("verdict")
    out_console.print(
        f"{state}  confidence {verdict.confidence:.2f}"
        + (f"  category: {verdict.category}" if verdict.category else "")
    )
    out_console.print(f"[bold]Q:[/] {verdict.question}")
    out_console.print(f"[bold]A:[/] {verdict.answer}")
    if verdict.spans:
        out_console.print(
            "[bold]when:[/] " + ", ".join(f"{s.start_s:.1f}-{s.end_s:.1f} s" for s in verdict.spans)
        )
    if verdict.boxes:
        out_console.print(
            "[bold]where:[/] "
            + "; ".join(
                f"{b.label or 'box'} at {b.t_s:.1f} s [{', '.join(f'{v:.0f}' for v in b.xyxy)}]"
                for b in verdict.boxes[:4]
            )
        )
    out_console.print(f"[bold]why:[/] {verdict.justification}")
    c = trace.cost
    out_console.print(
        f"[dim]cost: {c.planner_calls} planner calls, {c.tool_calls} tool calls, {c.frames_decoded} frames decoded, "
        f"{c.seconds_total:.1f} s ({trace.profile} profile, {trace.graph} graph)[/]"
    )
    out_console.print(f"[dim]outputs: {out}/ (verdict.json, trace.json, report.html, frames/)[/]")


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
) -> Any:
    """Analyze one video with live progress; write the verdict, trace and report into ``out``."""
    from vadetective.agent.session import Detective

    started = time.perf_counter()
    status_console = err_console if as_json else out_console
    with (
        status_console.status("opening the video…") as status,
        Detective(video, profile=profile, out=out, **(overrides or {})) as d,
    ):
        if not as_json:
            info = d.info
            out_console.print(
                f"[bold]{Path(info.path).name}[/]: {info.duration_s:.1f} s, {info.fps:.1f} fps, "
                f"{info.resolution_wh[0]}x{info.resolution_wh[1]} — profile [bold]{d.config.profile}[/]"
            )

        def on_step(step: Any) -> None:
            label = step.tool or step.kind
            status.update(
                f"[{time.perf_counter() - started:5.1f} s] {step.kind}: {label} — {step.summary[:90]}"
            )
            if not as_json:
                err = f" [red]({step.error[:100]})[/]" if step.error else ""
                out_console.print(
                    f"  [dim]{time.perf_counter() - started:5.1f} s[/] {step.kind:<8} {label:<15} {step.summary[:100]}{err}",
                    highlight=False,
                )

        status.update("perceiving: scoring the whole timeline…")
        verdict = d.ask(question, graph=graph, checkpoint=checkpoint, on_step=on_step)
        trace = d.last_trace
    assert trace is not None
    from vadetective.agent.report.html import render_report

    render_report(trace, out, out / "report.html", ground_truth=ground_truth)
    if as_json:
        sys.stdout.write(verdict.model_dump_json(indent=2) + "\n")
    else:
        _print_verdict(verdict, trace, out)
    return verdict


@app.command()
@friendly_errors
def analyze(
    video: Path = typer.Argument(..., help="The video file to analyze."),
    question: str | None = typer.Option(
        None, "--question", "-q", help="What to ask (default: is anything unusual happening?)."
    ),
    profile: str = typer.Option(
        "auto", "--profile", "-p", help="auto, classical, local or server."
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
    max_steps: int | None = typer.Option(None, "--max-steps", help="Tool-call budget."),
) -> None:
    """Analyze a video: live progress, then the verdict with when, where and why."""
    overrides = {"max_steps": max_steps} if max_steps else {}
    run_analyze(video, question, profile, out, checkpoint, graph, as_json, overrides)


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
    from vadetective.agent.synth.scene import ANOMALY_KINDS, generate_scene

    if kind not in (*ANOMALY_KINDS, "normal"):
        raise _fail(f"unknown kind {kind!r}: choose one of {', '.join((*ANOMALY_KINDS, 'normal'))}")
    out.mkdir(parents=True, exist_ok=True)
    with out_console.status(f"generating a '{kind}' scene…"):
        truth = generate_scene(out, kind=kind, seed=seed)
    out_console.print(f"generated [bold]{truth.video_path}[/] — {truth.description}")
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

    try:
        trace = Trace.load(trace_json)
    except ValueError as exc:
        raise _fail(str(exc).splitlines()[0]) from None
    path = render_report(
        trace,
        trace_json.parent,
        output or trace_json.parent / "report.html",
        ground_truth=ground_truth,
    )
    out_console.print(f"wrote {path}")


# --------------------------------------------------------------------------- batch / eval
@app.command()
@friendly_errors
def batch(
    kind: str = typer.Argument(
        ..., help="ucf-crime, xd-violence, shanghaitech, ubnormal, manifest or folder."
    ),
    root: Path = typer.Argument(..., help="The dataset's root folder (or the manifest file)."),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Run folder: results/, traces/, run.json, failures.jsonl."
    ),
    annotations: Path | None = typer.Option(
        None, "--annotations", help="The official annotation file (default: looked up under ROOT)."
    ),
    profile: str = typer.Option(
        "auto", "--profile", "-p", help="auto, classical, local or server."
    ),
    workers: int = typer.Option(
        1, "--workers", "-w", help="Worker processes (models load once per worker)."
    ),
    num_shards: int = typer.Option(1, "--num-shards", help="Split the dataset into K shards…"),
    shard: int = typer.Option(0, "--shard", help="…and run shard I (0-based)."),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Retry videos recorded in failures.jsonl."
    ),
    engine: str = typer.Option("local", "--engine", help="local (process pool) or ray."),
    question: str | None = typer.Option(
        None, "--question", "-q", help="The question asked of every video."
    ),
    graph: str = typer.Option("detective", "--graph", help="detective or chain."),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N videos."),
) -> None:
    """Run the detective over a dataset: one result file per video, resumable."""
    from vadetective.agent.batch.runner import run_dataset_cli

    run_dataset_cli(
        kind=kind,
        root=root,
        out=out,
        annotations=annotations,
        profile=profile,
        workers=workers,
        num_shards=num_shards,
        shard=shard,
        retry_failed=retry_failed,
        engine=engine,
        question=question,
        graph=graph,
        limit=limit,
        console=out_console,
    )


@app.command("eval")
@friendly_errors
def eval_cmd(
    run_dir: Path = typer.Argument(..., help="A run folder written by `vadetective batch`."),
    dataset: tuple[str, str] | None = typer.Option(
        None, "--dataset", help="KIND ROOT of the ground truth (default: the dataset in run.json)."
    ),
    annotations: Path | None = typer.Option(
        None, "--annotations", help="The official annotation file, if not under ROOT."
    ),
    protocol: str = typer.Option(
        "interpolate",
        "--protocol",
        help="interpolate (frame scores to every frame) or snippet (16-frame snippets, UCF-Crime).",
    ),
    smoothing: str = typer.Option("none", "--smoothing", help="none, gaussian or mean."),
    smoothing_size: float = typer.Option(
        0.0, "--smoothing-size", help="Gaussian sigma or mean width (e.g. 10 on snippets)."
    ),
) -> None:
    """Score a batch run with the field's protocols; writes metrics.json and prints a table."""
    from pydantic import ValidationError

    from vadetective.agent.eval.evaluate import EvalProtocol, evaluate_run_cli
    from vadetective.agent.eval.metrics import Smoothing

    try:
        chosen = EvalProtocol(
            expansion=protocol,  # type: ignore[arg-type]
            smoothing=Smoothing(method=smoothing, size=smoothing_size),  # type: ignore[arg-type]
        )
    except ValidationError as exc:
        raise _fail(f"invalid evaluation protocol: {exc.errors()[0]['msg']}") from None
    evaluate_run_cli(
        run_dir,
        dataset=list(dataset) if dataset else None,
        annotations=annotations,
        console=out_console,
        protocol=chosen,
    )


# --------------------------------------------------------------------------- models
@models_app.command("list")
@friendly_errors
def models_list(
    profile: str | None = typer.Option(None, "--profile", "-p", help="Only this profile's models."),
) -> None:
    """Show each profile's models and whether they are in the local cache."""
    from vadetective.tools.models import list_models

    table = Table("backend", "model", "profiles", "cached", "where / note")
    for m in list_models(profile):
        table.add_row(
            m.backend,
            m.model_id,
            ", ".join(m.profiles),
            "[green]yes[/]" if m.present else "[red]no[/]",
            m.local_path or m.note,
        )
    out_console.print(table)
    out_console.print(
        "[dim]classical needs no models. Download the rest with `vadetective models pull --profile local`.[/]"
    )


@models_app.command("pull")
@friendly_errors
def models_pull(
    profile: str | None = typer.Option(
        "local", "--profile", "-p", help="Download every model of this profile."
    ),
    model: list[str] | None = typer.Option(
        None, "--model", "-m", help="Download this model id (repeatable)."
    ),
) -> None:
    """Download models into the local cache (needs the Hugging Face hub)."""
    from rich.progress import Progress

    from vadetective.tools.models import pull_models

    with Progress(console=out_console) as progress:
        task = progress.add_task("downloading", total=None)

        def report(name: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, description=f"downloading {name}")

        pulled = pull_models(
            profile=None if model else profile, model_ids=model or None, progress=report
        )
    for p in pulled:
        out_console.print(f"cached {p}")


def main() -> None:
    app()
