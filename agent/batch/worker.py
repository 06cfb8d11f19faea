"""One video of a batch, as a worker process (or Ray actor) runs it.

``analyze_video`` never raises for a bad video: the error is returned in the outcome. Backends
(and their models) are built once per process and reused for every video it analyzes.
"""

from __future__ import annotations

import errno
import json
import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vadetective.agent.batch.provenance import result_provenance
from vadetective.agent.core.config import Config
from vadetective.agent.core.errors import VadetectiveError
from vadetective.agent.core.io import atomic_write_text
from vadetective.agent.core.vocabulary import RunFolder
from vadetective.agent.datasets import LabeledVideo

log = logging.getLogger(__name__)

RESULTS = RunFolder.RESULTS
TRACES = RunFolder.TRACES


@dataclass(frozen=True)
class VideoOutcome:
    """What happened to one video of a batch."""

    video_id: str
    status: str  # "done", "skipped", "failed"
    seconds: float = 0.0
    error: str | None = None
    is_anomalous: bool | None = None
    #: the run folder itself failed (full, read-only): the batch must stop; not the video's fault
    fatal: bool = False


#: File-system errors that no other video can avoid either.
_RUN_FOLDER_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


_WORKER_BACKENDS: dict[str, Any] = {}  # filled lazily inside each worker process, never at import


def _backends_for(config: Config) -> Any:
    """The backends of ``config``, built once per process (models load once per worker)."""
    from vadetective.tools.toolbox import Backends

    key = config.model_dump_json()
    if key not in _WORKER_BACKENDS:
        _WORKER_BACKENDS[key] = Backends(config)
    return _WORKER_BACKENDS[key]


def analyze_video(
    item: LabeledVideo, config: Config, question: str | None, graph: str, out: Path
) -> VideoOutcome:
    """Analyze one dataset video and write its result file atomically.

    Never raises for a bad video: the error is returned in the outcome (and the caller records
    it in ``failures.jsonl``).
    """
    from vadetective.agent.session import Detective

    t0 = time.perf_counter()
    result_path = out / RESULTS / f"{item.video_id}.json"
    try:
        with Detective(
            item.path,
            config=config,
            out=out / TRACES / item.video_id,
            backends=_backends_for(config),
            fps=item.fps,
            fps_source=item.fps_source,
        ) as d:
            verdict = d.ask(question, graph=graph)
            trace = d.last_trace
            assert trace is not None
            record = {
                "video_id": item.video_id,
                "path": item.path,
                "verdict": json.loads(verdict.model_dump_json()),
                "video": json.loads(d.info.model_dump_json()),
                "timing_s": round(time.perf_counter() - t0, 4),
                "cost": json.loads(trace.cost.model_dump_json()),
                "models": trace.models,
                "provenance": result_provenance(config, question, graph),
            }
        atomic_write_text(result_path, json.dumps(record, indent=1))
        return VideoOutcome(
            item.video_id, "done", time.perf_counter() - t0, is_anomalous=verdict.is_anomalous
        )
    except VadetectiveError as exc:
        return VideoOutcome(item.video_id, "failed", time.perf_counter() - t0, error=str(exc))
    except OSError as exc:
        fatal = exc.errno in _RUN_FOLDER_ERRNOS
        return VideoOutcome(
            item.video_id,
            "failed",
            time.perf_counter() - t0,
            error=(
                f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
                if fatal
                else f"OSError: {exc}"
            ),
            fatal=fatal,
        )
    except Exception as exc:  # noqa: BLE001 — one bad video must never stop the batch
        log.debug("video %s failed:\n%s", item.video_id, traceback.format_exc())
        return VideoOutcome(
            item.video_id, "failed", time.perf_counter() - t0, error=f"{type(exc).__name__}: {exc}"
        )
