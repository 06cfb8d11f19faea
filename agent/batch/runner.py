"""Batch runs over datasets: one result file per video, idempotent and resumable.

Layout of a run folder::

    run.json                 configuration, profile, model ids, prompts, versions, dataset spec
    results/<video_id>.json  verdict (with frame_scores), video info, timing and cost — atomic
    traces/<video_id>/       trace.json, verdict.json and the frames it cites
    failures.jsonl           one line per failed attempt (video id, error); retried on request

A second run skips finished videos; an interrupted run (Ctrl-C or kill -9) loses nothing already
written and leaves no half-written result, and its workers end with it. Models load once per
worker process (or Ray actor); a worker that dies is replaced and its videos retried
(``agent.batch.pool``). Batches sharing one folder split the work (``agent.batch.claims``).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from vadetective.agent.batch.claims import Claims, WorkQueue
from vadetective.agent.batch.pool import run_pool
from vadetective.agent.batch.provenance import provenance, recorded_config
from vadetective.agent.batch.worker import RESULTS, VideoOutcome, analyze_video
from vadetective.agent.core.catalog import GRAPHS
from vadetective.agent.core.config import Config
from vadetective.agent.core.errors import ConfigError, OutputError
from vadetective.agent.core.io import atomic_write_text, loads_json, writable_folder
from vadetective.agent.core.vocabulary import RunFolder
from vadetective.agent.datasets import Dataset, DatasetSpec, LabeledVideo, load_dataset
from vadetective.agent.preflight import preflight
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
    retried: int = 0  # videos retried because the worker analyzing them died
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


def _failure_rows(out: Path) -> list[dict[str, Any]]:
    path = out / FAILURES
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = loads_json(line)
        except (json.JSONDecodeError, RecursionError):
            continue  # a line cut by a kill mid-append; the video is simply retried later
        if isinstance(row, dict):
            rows.append(row)
    return rows


def read_failures(out: Path) -> dict[str, str]:
    """Video id -> last recorded error, for videos that still have no result."""
    failed = {str(r.get("video_id")): str(r.get("error")) for r in _failure_rows(out)}
    return {k: v for k, v in failed.items() if not (out / RESULTS / f"{k}.json").exists()}


def failures_since(out: Path, since_iso: str) -> set[str]:
    """Ids of the videos whose failure was recorded at or after ``since_iso`` (UTC, ISO 8601)."""
    return {str(r.get("video_id")) for r in _failure_rows(out) if str(r.get("at", "")) >= since_iso}


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


def _clean_partial(out: Path, claims: Claims) -> None:
    """Remove temp files a killed run left behind (atomic writes never leave a partial result),
    but not those of a video another batch on this folder is writing right now."""
    for tmp in (out / RESULTS).glob(".*.tmp"):
        video_id = tmp.name[1:].split(".json.", 1)[0]
        if claims.is_free(video_id):
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
    config_file: str | Path | None = None,
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
        config_file: The TOML settings file ``config`` came from, recorded in ``run.json``.
        **overrides: Config fields, e.g. ``max_steps=8``.

    Returns:
        Counts and timing; results are in ``out/results/``.
    """
    if not isinstance(dataset, Dataset):
        path = Path(dataset)
        kind = "manifest" if path.is_file() else "folder"
        dataset = load_dataset(kind, path)
    if num_shards < 1:
        raise ConfigError(f"--num-shards must be at least 1, got {num_shards}")
    if graph not in GRAPHS:
        raise ConfigError(f"unknown graph {graph!r}: choose one of {', '.join(GRAPHS)}")
    if not 0 <= shard < num_shards:
        raise ConfigError(
            f"--shard must be in [0, {num_shards - 1}] for {num_shards} shards, got {shard}"
        )
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if engine not in ("local", "ray"):
        raise ConfigError(f"unknown engine {engine!r}: choose local or ray")
    if limit is not None and limit < 0:
        raise ConfigError(f"--limit must be 0 or more, got {limit}")
    config = config if config is not None else profile_config(profile, **overrides)
    preflight(config)  # a profile that cannot run fails now, not once per video
    out = writable_folder(Path(out), "--out")
    writable_folder(out / RESULTS, "--out")
    claims = Claims(out)
    record = run_record(dataset, config, question, graph)
    if config_file is not None:
        record["config_file"] = {
            "path": str(config_file),
            "text": Path(config_file).read_text(encoding="utf-8"),
        }
    with claims.setup():  # one batch at a time compares and writes run.json
        _clean_partial(out, claims)
        _check_and_write_record(out, record)

    items = sorted(dataset, key=lambda v: v.video_id)[shard::num_shards]
    if limit is not None:
        items = items[:limit]
    started_at = datetime.now(UTC).isoformat()
    failed_before = read_failures(out)
    summary = BatchSummary(out=out, total=len(items))

    def report(outcome: VideoOutcome) -> None:
        summary.outcomes.append(outcome)
        if progress:
            progress(outcome, len(summary.outcomes), summary.total)

    failures_seen: dict[str, Any] = {"size": 0, "ids": set()}

    def failed_since_start() -> set[str]:
        path = out / FAILURES
        size = path.stat().st_size if path.exists() else 0
        if size != failures_seen["size"]:  # re-read only when a failure was appended
            failures_seen.update(size=size, ids=failures_since(out, started_at))
        return failures_seen["ids"]

    def settled(item: LabeledVideo) -> str | None:
        """Why ``item`` needs no work now (None: it does)."""
        if (out / RESULTS / f"{item.video_id}.json").exists():
            return "finished"
        if item.video_id in failed_before and not retry_failed:
            return failed_before[item.video_id]
        if item.video_id in failed_since_start():
            return "failed in another batch on this folder"
        return None

    def skip(item: LabeledVideo, why: str) -> None:
        summary.skipped += 1
        report(VideoOutcome(item.video_id, "skipped", error=None if why == "finished" else why))

    todo: list[LabeledVideo] = []
    for item in items:
        why = settled(item)
        if why is None:
            todo.append(item)
        else:
            skip(item, why)

    t0 = time.perf_counter()

    def finish(item: LabeledVideo, outcome: VideoOutcome) -> None:
        if outcome.fatal:  # the folder is full or read-only: every next video would fail too
            raise OutputError(
                f"the run folder {out} cannot be written ({outcome.error}): free some space or "
                "make it writable, then run the batch again; finished videos are kept"
            )
        if outcome.status == "failed":
            summary.failed += 1
            _record_failure(out, item, outcome.error or "unknown error")
        else:
            summary.done += 1
        report(outcome)

    queue = WorkQueue(todo, claims, settled, skip)
    try:
        if engine == "ray":
            from vadetective.agent.batch.ray import run_on_ray

            claimed = _take_all(queue)  # Ray takes the whole list at once
            run_on_ray(claimed, config, question, graph, out, workers, finish)
        elif workers == 1:
            while queue:
                next_item = queue.take()
                if next_item is None:  # the rest is being analyzed by another batch
                    time.sleep(1.0)
                    continue
                finish(next_item, analyze_video(next_item, config, question, graph, out))
                queue.done(next_item)
        else:
            summary.retried = run_pool(queue, config, question, graph, out, workers, finish)
    finally:
        claims.release_all()
    summary.seconds = time.perf_counter() - t0
    return summary


def _take_all(queue: WorkQueue) -> list[LabeledVideo]:
    """Claim everything claimable now (videos claimed by another batch are left to it)."""
    taken: list[LabeledVideo] = []
    while (item := queue.take()) is not None:
        taken.append(item)
    for item in queue.busy:
        log.warning("%s is being analyzed by another batch; leaving it to that one", item.video_id)
    return taken


def _check_and_write_record(out: Path, record: dict[str, Any]) -> None:
    run_json = out / RunFolder.RUN
    if run_json.exists():
        try:
            old = loads_json(run_json.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, RecursionError, UnicodeDecodeError):
            old = None
        if not isinstance(old, dict):
            old = None
        if old is not None and not _same_run(old, record):
            raise ConfigError(
                f"{out} holds a run with a different configuration, question or dataset: "
                "use another --out folder, or delete it to start over"
            )
        record["started_at"] = (old or {}).get("started_at", record["started_at"])
    atomic_write_text(run_json, json.dumps(record, indent=2))


# --------------------------------------------------------------------------- CLI glue
