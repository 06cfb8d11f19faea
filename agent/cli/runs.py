"""`vadetective batch`, `eval` and `compare`: datasets, run folders, their metrics and pages."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from vadetective.agent.batch.runner import BatchSummary, run_dataset
from vadetective.agent.batch.worker import VideoOutcome
from vadetective.agent.cli import options as opts
from vadetective.agent.cli.common import (
    app,
    fail,
    friendly_errors,
    out_console,
    safe,
)
from vadetective.agent.core.config import Config
from vadetective.agent.core.errors import DatasetError
from vadetective.agent.core.io import writable_folder
from vadetective.agent.core.vocabulary import RunFolder
from vadetective.agent.datasets import Dataset, load_dataset, with_frame_rate
from vadetective.agent.eval.evaluate import EvalProtocol, Metrics, evaluate_run
from vadetective.agent.eval.table import format_metrics_table


@app.command()
@friendly_errors
def batch(
    kind: str = typer.Argument(
        ...,
        help="ucf-crime, xd-violence, shanghaitech, ubnormal, ucsd-ped1, ucsd-ped2, avenue, msad, "
        "nwpu-campus, uca, hivau, manifest or folder.",
    ),
    root: Path = typer.Argument(..., help="The dataset's root folder (or the manifest file)."),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Run folder: results/, traces/, run.json, failures.jsonl."
    ),
    annotations: Path | None = typer.Option(
        None, "--annotations", help="The official annotation file (default: looked up under ROOT)."
    ),
    profile: str | None = typer.Option(
        None, "--profile", "-p", help="auto (default), classical, local or server."
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
    split: str | None = typer.Option(
        None, "--split", help="The official split (ubnormal: test or validation; uca)."
    ),
    fps: float | None = typer.Option(
        None, "--fps", help="Frame rate of frame-folder videos (default: the dataset's convention)."
    ),
    allow_missing: bool = typer.Option(
        False, "--allow-missing", help="Go on when videos named by the annotations are absent."
    ),
) -> None:
    """Run the detective over a dataset: one result file per video, resumable.

    Settings layer as: profile < --config TOML file < VADETECTIVE_* environment < flags; the
    resolved configuration (and the file's text) is recorded in run.json.
    """
    settings = {k: v for k, v in locals().items() if k in opts.SETTINGS_FLAGS}
    run_dataset_cli(
        kind=kind,
        root=root,
        out=out,
        annotations=annotations,
        profile=profile or "auto",  # the layered config decides when given
        workers=workers,
        num_shards=num_shards,
        shard=shard,
        retry_failed=retry_failed,
        engine=engine,
        question=question,
        graph=graph,
        limit=limit,
        console=out_console,
        config=lambda: opts.build_config(profile, config_file, **settings),
        config_file=config_file,
        split=split,
        fps=fps,
        allow_missing=allow_missing,
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
    reports: bool = typer.Option(
        True, "--reports/--no-reports", help="Write each video's report for the run page's links."
    ),
    allow_missing: bool = typer.Option(
        False, "--allow-missing", help="With --dataset: go on when annotated videos are absent."
    ),
) -> None:
    """Score a batch run with the field's protocols; writes metrics.json and the run page
    (RUN/report.html) and prints a table."""
    from pydantic import ValidationError

    from vadetective.agent.eval.evaluate import EvalProtocol
    from vadetective.agent.eval.frame import Smoothing

    try:
        chosen = EvalProtocol(
            expansion=protocol,  # type: ignore[arg-type]
            smoothing=Smoothing(method=smoothing, size=smoothing_size),  # type: ignore[arg-type]
        )
    except ValidationError as exc:
        raise fail(f"invalid evaluation protocol: {exc.errors()[0]['msg']}") from None
    evaluate_run_cli(
        run_dir,
        dataset=list(dataset) if dataset else None,
        annotations=annotations,
        console=out_console,
        protocol=chosen,
        reports=reports,
        allow_missing=allow_missing,
    )


@app.command("compare")
@friendly_errors
def compare_cmd(
    run_a: Path = typer.Argument(..., help="The first run folder (A)."),
    run_b: Path = typer.Argument(..., help="The second run folder (B)."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Where to write the page (default RUN_B/compare-<A>.html)."
    ),
) -> None:
    """Compare two runs: metrics side by side, per-video changes, configuration and prompts."""
    compare_runs_cli(run_a, run_b, out, out_console)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def compare_runs_cli(run_a: Path, run_b: Path, out: Path | None, console: Console) -> Path:
    """``vadetective compare``: print the comparison and write its page."""
    from rich.table import Table

    from vadetective.agent.eval.compare import compare_runs
    from vadetective.agent.report.compare_page import render_compare_page

    c = compare_runs(run_a, run_b)
    table = Table(title=f"{safe(c.name_a)} vs {safe(c.name_b)}")
    for col in ("metric (%)", c.name_a, c.name_b, "B - A"):
        table.add_column(safe(col), justify="left" if col.startswith("metric") else "right")
    for m in c.metrics:
        if m.a is None and m.b is None:
            continue
        delta = "-" if m.delta is None else f"{100 * m.delta:+.2f}"
        table.add_row(m.label, _pct(m.a), _pct(m.b), delta)
    for key, (a, b) in c.cost.items():
        table.add_row(key, f"{a:.1f}", f"{b:.1f}", f"{b - a:+.1f}")
    console.print(table)
    flipped = [d for d in c.videos if d.flipped]
    console.print(
        f"{len(flipped)} of {len(c.videos)} videos changed outcome"
        + (": " + ", ".join(safe(d.video_id) for d in flipped[:8]) if flipped else "")
        + ("…" if len(flipped) > 8 else ""),
        highlight=False,
    )
    if c.config:
        console.print(f"[bold]{len(c.config)} configuration differences[/]:")
        for d in c.config[:20]:
            console.print(f"  {safe(d.key)}: {safe(d.a[:60])} -> {safe(d.b[:60])}", highlight=False)
    else:
        console.print("same configuration")
    if c.prompts:
        console.print("prompts differ: " + ", ".join(safe(k) for k in c.prompts))
    for w in c.warnings:
        console.print(f"[yellow]warning:[/] {safe(w)}", highlight=False)
    path = render_compare_page(run_a, run_b, out, comparison=c)
    console.print(f"wrote {safe(path)}", highlight=False)
    return path


def run_dataset_cli(
    kind: str,
    root: Path,
    out: Path,
    annotations: Path | None,
    profile: str,
    workers: int,
    num_shards: int,
    shard: int,
    retry_failed: bool,
    engine: str,
    question: str | None,
    graph: str,
    limit: int | None,
    console: Any,
    config: Callable[[], Config] | None = None,
    config_file: Path | None = None,
    split: str | None = None,
    fps: float | None = None,
    allow_missing: bool = False,
) -> BatchSummary:
    """``vadetective batch``: load the dataset, run it with a progress bar, print a summary.

    ``config`` builds the configuration once the dataset is known to load (so a bad dataset
    is reported before ``auto`` resolves a profile); None: ``profile``'s defaults.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    writable_folder(out, "--out")  # before the dataset is read, not after the first video
    dataset = load_dataset(
        kind,
        root,
        annotations,
        **({"split": split} if split else {}),
        **_missing_option(allow_missing),
    )
    if fps is not None:
        dataset = with_frame_rate(dataset, fps)
    resolved = config() if config is not None else None
    console.print(
        f"[bold]{safe(dataset.kind)}[/]: {len(dataset)} videos under {safe(dataset.root)}"
        + (f", split {safe(dataset.split)}" if dataset.split else "")
        + (f", shard {shard + 1}/{num_shards}" if num_shards > 1 else "")
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    started = time.perf_counter()
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("videos", total=None, rate="")

        def on_video(outcome: VideoOutcome, n: int, total: int) -> None:
            elapsed = time.perf_counter() - started
            rate = f"{n / elapsed * 60:.1f}/min" if elapsed > 0 else ""
            bar.update(
                task,
                completed=n,
                total=total,
                rate=rate,
                description=f"{outcome.status:<7} {safe(outcome.video_id[:40])}",
            )
            if outcome.status == "failed":
                console.print(
                    f"[red]failed[/] {safe(outcome.video_id)}: {safe(outcome.error)}",
                    highlight=False,
                )

        summary = run_dataset(
            dataset,
            out,
            profile=profile,
            question=question,
            graph=graph,
            workers=workers,
            num_shards=num_shards,
            shard=shard,
            retry_failed=retry_failed,
            engine=engine,
            limit=limit,
            progress=on_video,
            config=resolved,
            config_file=config_file,
        )
    flagged = sum(1 for o in summary.outcomes if o.is_anomalous)
    console.print(
        f"done {summary.done}, skipped {summary.skipped} (already finished or failed before), failed {summary.failed} "
        f"of {summary.total} in {summary.seconds:.1f} s; {flagged} flagged anomalous. Results: {safe(out / RunFolder.RESULTS)}/"
    )
    if summary.failed:
        console.print(
            f"[yellow]{summary.failed} failure(s) recorded in {safe(out / RunFolder.FAILURES)}; rerun with --retry-failed to try them again[/]"
        )
    return summary


def _missing_option(allow_missing: bool) -> dict[str, bool]:
    """``allow_missing`` only when asked for: a plain folder takes no such option."""
    return {"allow_missing": True} if allow_missing else {}


def evaluate_run_cli(
    run_dir: str | Path,
    dataset: Sequence[str] | None = None,
    annotations: str | Path | None = None,
    console: Console | None = None,
    protocol: EvalProtocol | None = None,
    reports: bool = True,
    allow_missing: bool = False,
) -> Metrics:
    """``vadetective eval``: evaluate a run folder, write ``metrics.json`` and the run page,
    print the table.

    Args:
        run_dir: the run folder.
        dataset: ``[KIND, ROOT]`` of the ground truth; default: the dataset in ``run.json``.
        annotations: the official annotation file, with ``dataset``.
        console: where to print (default: a new rich console on stdout).
        protocol: see ``evaluate``.
        reports: write each video's missing report (the run page links to them).
        allow_missing: with ``dataset``, go on when annotated videos are absent.

    Returns:
        The metrics.

    Raises:
        DatasetError: ``dataset`` is not KIND and ROOT, or ``annotations`` comes without it.
    """
    from rich.console import Console

    ground_truth: Dataset | None = None
    if dataset:
        if len(dataset) != 2:
            raise DatasetError(
                f"--dataset takes KIND and ROOT (e.g. ucf-crime /data/UCF_Crimes), got {list(dataset)}"
            )
        ground_truth = load_dataset(
            dataset[0], dataset[1], annotations, **_missing_option(allow_missing)
        )
    elif annotations is not None:
        raise DatasetError("--annotations needs --dataset KIND ROOT")
    from vadetective.agent.report.run_page import render_run_page

    metrics = evaluate_run(run_dir, ground_truth, protocol=protocol)
    console = console or Console()
    console.print(format_metrics_table(metrics))
    for w in metrics.warnings:
        console.print(f"[yellow]warning:[/] {safe(w)}", highlight=False)
    with console.status("writing the run page…"):
        page = render_run_page(run_dir, ground_truth, metrics, reports=reports)
    console.print(
        f"wrote {safe(Path(run_dir) / RunFolder.METRICS)} and {safe(page)}", highlight=False
    )
    return metrics
