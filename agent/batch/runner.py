"""Batch runs over datasets: one result file per video, idempotent and resumable.

Layout of a run folder::

    run.json                 configuration, profile, model ids, prompts, versions, dataset spec
    results/<video_id>.json  verdict (with frame_scores), video info, timing and cost — atomic
    traces/<video_id>/       trace.json, verdict.json and the frames it cites
    failures.jsonl           one line per failed attempt (video id, error); retried on request

A second run skips finished videos; an interrupted run (Ctrl-C or kill -9) loses nothing already
written and leaves no half-written result. Models load once per worker process (or Ray actor).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from vadetective.agent.batch.provenance import provenance, recorded_config
from vadetective.agent.batch.worker import RESULTS, VideoOutcome, analyze_video
from vadetective.agent.core.config import Config
from vadetective.agent.core.errors import ConfigError
from vadetective.agent.core.io import atomic_write_text
from vadetective.agent.core.vocabulary import RunFolder
from vadetective.agent.datasets import Dataset, DatasetSpec, LabeledVideo, load_dataset
from vadetective.agent.profiles import profile_config

log = logging.getLogger(__name__)

FAILURES = RunFolder.FAILURES


@dataclass
class BatchSummary:
    """Counts and timing of one batch invocation."""

    out: Path
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    outcomes: list[VideoOutcome] = field(default_factory=list)

    @property
    def videos_per_minute(self) -> float:
        return 60.0 * self.done / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[VideoOutcome, int, int], None]


# --------------------------------------------------------------------------- run folder
def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in (
        "vadetective",
        "torch",
        "transformers",
        "langgraph",
        "opencv-python",
        "decord",
        "av",
        "ultralytics",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def run_record(
    dataset: Dataset, config: Config, question: str | None, graph: str
) -> dict[str, Any]:
    """What ``run.json`` holds: enough to know exactly what produced the results."""
    from vadetective.agent.session import DEFAULT_QUESTION
    from vadetective.graphs import prompts

    record: dict[str, Any] = {
        "dataset": DatasetSpec(
            kind=dataset.kind,
            root=dataset.root,
            annotations=dataset.annotations,
            options=dataset.options,
        ).model_dump(),
        "question": question or DEFAULT_QUESTION,
        "graph": graph,
        "profile": config.profile,
        "config": recorded_config(config),
        "models": {
            role: config.model_id(name) or name
            for role, name in (
                ("scorer", config.scorer),
                ("grounder", config.grounder),
                ("inspector", config.inspector),
                ("planner", "vlm" if config.planner == "local" else config.planner),
            )
        },
        "prompts": {
            "system": prompts.SYSTEM_PROMPT,
            "final": prompts.FINAL_PROMPT,
            "nudge": prompts.NUDGE_PROMPT,
        },
        "versions": _versions(),
        "started_at": datetime.now(UTC).isoformat(),
        "provenance": provenance(dataset, config, question, graph),
    }
    if config.scorer in ("clip", "siglip"):
        from vadetective.tools.prompt_bank import default_bank

        record["prompts"]["bank"] = default_bank().model_dump(mode="json")
    return record


def _same_run(old: dict[str, Any], new: dict[str, Any]) -> bool:
    keys = ("question", "graph", "config")
    return (
        all(old.get(k) == new.get(k) for k in keys)
        and old.get("dataset", {}).get("kind") == new["dataset"]["kind"]
    )


def read_failures(out: Path) -> dict[str, str]:
    """Video id -> last recorded error, for videos that still have no result."""
    path = out / FAILURES
    failed: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill mid-append; the video is simply retried later
            failed[str(row.get("video_id"))] = str(row.get("error"))
    return {k: v for k, v in failed.items() if not (out / RESULTS / f"{k}.json").exists()}


def _record_failure(out: Path, item: LabeledVideo, error: str) -> None:
    row = {
        "video_id": item.video_id,
        "path": item.path,
        "error": error,
        "at": datetime.now(UTC).isoformat(),
    }
    with (out / FAILURES).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _clean_partial(out: Path) -> None:
    """Remove temp files a killed run left behind (atomic writes never leave a partial result)."""
    for tmp in (out / RESULTS).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the runner
def run_dataset(
    dataset: Dataset | str | Path,
    out: str | Path,
    profile: str = "auto",
    config: Config | None = None,
    question: str | None = None,
    graph: str = "detective",
    workers: int = 1,
    num_shards: int = 1,
    shard: int = 0,
    retry_failed: bool = False,
    engine: str = "local",
    limit: int | None = None,
    progress: ProgressCallback | None = None,
    **overrides: Any,
) -> BatchSummary:
    """Run the detective over every video of a dataset.

    Args:
        dataset: A loaded ``Dataset``, or a folder of videos / a manifest file.
        out: The run folder (see the module docstring).
        profile: ``auto``, ``classical``, ``local`` or ``server`` (ignored when ``config`` is given).
        config: A full configuration instead of ``profile`` and ``overrides``.
        question: The question asked of every video (a general anomaly question if None).
        graph: ``detective`` or ``chain``.
        workers: Worker processes (or Ray actors); each loads the models once.
        num_shards: Split the videos (sorted by id) into this many shards...
        shard: ...and run this one (0-based).
        retry_failed: Retry videos recorded in ``failures.jsonl`` (skipped otherwise).
        engine: ``local`` (process pool) or ``ray``.
        limit: Only the first N videos of the shard.
        progress: Called after each video with (outcome, finished so far, total).
        **overrides: Config fields, e.g. ``max_steps=8``.

    Returns:
        Counts and timing; results are in ``out/results/``.
    """
    if not isinstance(dataset, Dataset):
        path = Path(dataset)
        kind = "manifest" if path.is_file() else "folder"
        dataset = load_dataset(kind, path)
    if not 0 <= shard < num_shards:
        raise ConfigError(
            f"--shard must be in [0, {num_shards - 1}] for {num_shards} shards, got {shard}"
        )
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if engine not in ("local", "ray"):
        raise ConfigError(f"unknown engine {engine!r}: choose local or ray")
    config = config if config is not None else profile_config(profile, **overrides)
    out = Path(out)
    (out / RESULTS).mkdir(parents=True, exist_ok=True)
    _clean_partial(out)

    record = run_record(dataset, config, question, graph)
    run_json = out / RunFolder.RUN
    if run_json.exists():
        try:
            old = json.loads(run_json.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            old = None
        if old is not None and not _same_run(old, record):
            raise ConfigError(
                f"{out} holds a run with a different configuration, question or dataset: "
                "use another --out folder, or delete it to start over"
            )
        record["started_at"] = (old or {}).get("started_at", record["started_at"])
    atomic_write_text(run_json, json.dumps(record, indent=2))

    items = sorted(dataset, key=lambda v: v.video_id)[shard::num_shards]
    if limit is not None:
        items = items[:limit]
    failed_before = read_failures(out)
    summary = BatchSummary(out=out, total=len(items))
    todo: list[LabeledVideo] = []
    for item in items:
        finished = (out / RESULTS / f"{item.video_id}.json").exists()
        if finished or (item.video_id in failed_before and not retry_failed):
            outcome = VideoOutcome(
                item.video_id,
                "skipped",
                error=failed_before.get(item.video_id) if not finished else None,
            )
            summary.skipped += 1
            summary.outcomes.append(outcome)
            if progress:
                progress(outcome, len(summary.outcomes), summary.total)
        else:
            todo.append(item)

    t0 = time.perf_counter()

    def finish(item: LabeledVideo, outcome: VideoOutcome) -> None:
        if outcome.status == "failed":
            summary.failed += 1
            _record_failure(out, item, outcome.error or "unknown error")
        else:
            summary.done += 1
        summary.outcomes.append(outcome)
        if progress:
            progress(outcome, len(summary.outcomes), summary.total)

    if engine == "ray":
        from vadetective.agent.batch.ray import run_on_ray

        run_on_ray(todo, config, question, graph, out, workers, finish)
    elif workers == 1:
        for item in todo:
            finish(item, analyze_video(item, config, question, graph, out))
    else:
        _run_pool(todo, config, question, graph, out, workers, finish)
    summary.seconds = time.perf_counter() - t0
    return summary


def _run_pool(
    todo: Iterable[LabeledVideo],
    config: Config,
    question: str | None,
    graph: str,
    out: Path,
    workers: int,
    finish: Callable[[LabeledVideo, VideoOutcome], None],
) -> None:
    import multiprocessing as mp

    # spawn: workers start clean (no forked torch/OpenMP state) and load models once each.
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        pending: dict[Future[VideoOutcome], LabeledVideo] = {}
        queue = list(todo)
        try:
            while queue or pending:
                while queue and len(pending) < 2 * workers:
                    item = queue.pop(0)
                    pending[pool.submit(analyze_video, item, config, question, graph, out)] = item
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    item = pending.pop(fut)
                    try:
                        outcome = fut.result()
                    except Exception as exc:  # noqa: BLE001 — a crashed worker fails its video, not the batch
                        outcome = VideoOutcome(
                            item.video_id,
                            "failed",
                            error=f"worker crashed: {type(exc).__name__}: {exc}",
                        )
                    finish(item, outcome)
        except KeyboardInterrupt:
            for fut in pending:
                fut.cancel()
            raise


# --------------------------------------------------------------------------- CLI glue
