"""The local process pool of a batch: survives dead workers, and its workers die with it.

- A worker that dies (killed by the OOM killer, a crash in native decoder code, ``kill -9``)
  breaks a ``ProcessPoolExecutor`` for every video in flight. The pool is rebuilt, and the videos
  that were in flight are retried once each, one at a time (so a second death names its cause).
  Only a video whose worker dies twice is recorded as failed; the others finish normally.
- Workers die with the batch: on Linux the kernel kills them when the batch process ends
  (``PR_SET_PDEATHSIG``), and everywhere a watchdog thread in each worker exits when its parent
  is gone, so a ``kill -9`` of the batch leaves no worker running and writing results.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from vadetective.agent.batch.claims import WorkQueue
from vadetective.agent.batch.worker import VideoOutcome, analyze_video
from vadetective.agent.core.config import Config
from vadetective.agent.datasets import LabeledVideo

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_WATCH_INTERVAL_S = 0.5
#: How many times a video may take its worker down before it is recorded as failed.
MAX_WORKER_DEATHS = 2


def _watch_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(1)  # the batch is gone: stop at once, write nothing more
        time.sleep(_WATCH_INTERVAL_S)


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this process when ``parent_pid`` ends."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # an unusual libc: the watchdog still works
            log.debug("prctl(PR_SET_PDEATHSIG) is unavailable")
    # Ctrl-C reaches the whole process group; the batch decides, the workers keep quiet.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def _new_pool(workers: int) -> ProcessPoolExecutor:
    import multiprocessing as mp

    # spawn: workers start clean (no forked torch/OpenMP state) and load models once each.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=mp.get_context("spawn"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )


def run_pool(
    queue: WorkQueue,
    config: Config,
    question: str | None,
    graph: str,
    out: Path,
    workers: int,
    finish: Callable[[LabeledVideo, VideoOutcome], None],
) -> int:
    """Analyze the videos of ``queue`` on ``workers`` processes; return how many were retried
    because their worker died."""
    deaths: dict[str, int] = {}
    suspects: list[LabeledVideo] = []  # in flight when a worker died: retried alone
    pending: dict[Future[VideoOutcome], LabeledVideo] = {}
    retried = 0
    pool = _new_pool(workers)

    def died(item: LabeledVideo, why: str) -> None:
        nonlocal retried
        deaths[item.video_id] = deaths.get(item.video_id, 0) + 1
        if deaths[item.video_id] >= MAX_WORKER_DEATHS:
            queue.done(item)
            finish(
                item,
                VideoOutcome(
                    item.video_id,
                    "failed",
                    error=f"its worker process died {deaths[item.video_id]} times ({why})",
                ),
            )
        else:
            retried += 1
            suspects.append(item)  # keeps its claim while it waits

    try:
        while queue or suspects or pending:
            broken: str | None = None
            try:
                if suspects:
                    if not pending:  # a suspect runs alone, so its death is its own
                        item = suspects.pop(0)
                        pending[pool.submit(analyze_video, item, config, question, graph, out)] = (
                            item
                        )
                else:
                    while len(pending) < workers:
                        next_item = queue.take()
                        if next_item is None:
                            break
                        fut = pool.submit(analyze_video, next_item, config, question, graph, out)
                        pending[fut] = next_item
            except BrokenProcessPool as exc:
                broken = f"{type(exc).__name__}: {exc}"
            if not pending and broken is None:
                if queue.only_busy:  # the rest is claimed by another batch: wait for it
                    time.sleep(1.0)
                continue
            if pending and broken is None:
                done, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                for fut in done:
                    item = pending.pop(fut)
                    try:
                        outcome = fut.result()
                    except BrokenProcessPool as exc:
                        broken = f"{type(exc).__name__}: {exc}"
                        died(item, broken)
                        continue
                    except Exception as exc:  # noqa: BLE001 — a worker error fails its video
                        outcome = VideoOutcome(
                            item.video_id,
                            "failed",
                            error=f"worker error: {type(exc).__name__}: {exc}",
                        )
                    queue.done(item)
                    finish(item, outcome)
            if broken is not None:
                log.warning("a worker process died (%s); rebuilding the pool", broken)
                for item in pending.values():
                    died(item, broken)
                pending.clear()
                pool.shutdown(wait=True, cancel_futures=True)
                pool = _new_pool(workers)
    except BaseException:  # Ctrl-C, or an error in our own bookkeeping
        _stop_workers(pool)
        raise
    pool.shutdown(wait=True)
    return retried


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """End the workers now (they ignore Ctrl-C; what they finished is already on disk)."""
    pool.shutdown(wait=False, cancel_futures=True)
    # The executor has no public way to stop running work before Python 3.14.
    for proc in list(getattr(pool, "_processes", {}).values()):
        if proc.is_alive():
            proc.terminate()
