"""Helpers shared by the perception, cost and quality benchmarks.

- ``machine_info``: what the numbers were measured on (CPU model, cores, load, versions);
- ``base_parser`` / ``emit``: the common command line (``--quick``, ``--out``) and output (the
  JSON on stdout and in ``--out``, a short table on stderr);
- ``Stopwatch``: wall-clock timing;
- ``fresh_cache``: a throw-away ``VADETECTIVE_CACHE_DIR``, so cached score curves of an earlier
  run cannot make a "cold" measurement warm;
- ``make_suite`` / ``labeled``: a seeded suite of generated scenes (reused when its folder
  already holds the same suite) and its ground truth as a ``LabeledVideo``;
- ``union_tiou`` / ``frame_arrays``: the span and frame measures the benchmarks share.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from vadetective.agent.core.io import CACHE_ENV, atomic_write_text
from vadetective.agent.core.types import ScoreCurve, TimeSpan
from vadetective.agent.datasets import LabeledVideo
from vadetective.agent.synth.scene import generate_scene
from vadetective.agent.synth.truth import SceneTruth

log = logging.getLogger(__name__)

#: The scenes of the cost and quality benchmarks' ``--quick`` runs (so a smoke test can share them).
QUICK_KINDS: tuple[str, ...] = ("sprint", "fall", "normal")

_DISTS = (
    "vadetective",
    "numpy",
    "opencv-python",
    "av",
    "decord",
    "langgraph",
    "torch",
    "transformers",
)


# ----------------------------------------------------------------------------- machine


def cpu_model() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine_info() -> dict[str, Any]:
    """CPU, cores, load average and library versions, without importing torch."""
    versions: dict[str, str] = {"python": platform.python_version()}
    for dist in _DISTS:
        with contextlib.suppress(metadata.PackageNotFoundError):  # absent extras are left out
            versions[dist] = metadata.version(dist)
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return {
        "cpu_model": cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_usable": usable_cores(),
        "load_average_1_5_15min": load,
        "platform": platform.platform(),
        "versions": versions,
    }


# ----------------------------------------------------------------------------- CLI and output


def base_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes (``--quick``, ``--out``)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(doc or "").strip().splitlines()[0] if doc else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a tiny run (smoke test)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    return parser


def emit(report: dict[str, Any], out: Path | None, table: str) -> None:
    """Print ``report`` as JSON on stdout (and write it to ``out``), and ``table`` on stderr."""
    text = json.dumps(report, indent=2)
    if out is not None:
        atomic_write_text(out, text + "\n")
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    sys.stderr.write(table.rstrip("\n") + "\n")
    sys.stderr.flush()


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain fixed-width text table; floats with three decimals, None as ``-``."""

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    ]
    for r in cells:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    return "\n".join(lines)


def rounded(x: float | None, digits: int = 4) -> float | None:
    """``x`` rounded for the JSON (None stays None)."""
    return None if x is None else round(float(x), digits)


def mean_or_none(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


# ----------------------------------------------------------------------------- timing


class Stopwatch:
    """Wall-clock and CPU seconds of a ``with`` block: ``with Stopwatch() as sw: ...``, then
    ``sw.seconds`` and ``sw.cpu_seconds`` (this process, all its threads; on a shared machine the
    CPU time is the steadier of the two)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self._t0 = self._c0 = 0.0

    def __enter__(self) -> Stopwatch:
        self._t0, self._c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        self.cpu_seconds = time.process_time() - self._c0


@contextlib.contextmanager
def fresh_cache(prefix: str = "vadetective-bench-cache-") -> Iterator[Path]:
    """Point ``VADETECTIVE_CACHE_DIR`` at a new empty folder for the block, then restore it."""
    old = os.environ.get(CACHE_ENV)
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        os.environ[CACHE_ENV] = tmp
        try:
            yield Path(tmp)
        finally:
            if old is None:
                os.environ.pop(CACHE_ENV, None)
            else:
                os.environ[CACHE_ENV] = old


# ----------------------------------------------------------------------------- scenes


def make_suite(
    root: Path,
    kinds: Sequence[str],
    seeds: Sequence[int],
    duration_s: float,
    resolution_wh: tuple[int, int] = (480, 270),
    fps: float = 15.0,
) -> list[SceneTruth]:
    """Generate every (kind, seed) scene under ``root``; reuse the ones already there.

    Scenes are deterministic in their parameters, so a scene whose truth file exists and whose
    parameters and generator (``suite.json``: the parameters and a hash of ``agent/synth/``)
    match is not generated again. Also writes ``manifest.jsonl`` in
    the generic manifest format, with the truth boxes (``[t_s, x1, y1, x2, y2]``) so that
    evaluation can score boxes.

    Returns:
        The truths in (seed, kind) order.
    """
    root.mkdir(parents=True, exist_ok=True)
    import vadetective.agent.synth as synth

    folder = Path(synth.__file__).parent
    digest = hashlib.sha256()
    for source in sorted(folder.glob("*.py")):
        digest.update(source.read_bytes())
    generator = digest.hexdigest()[:16]
    params = {
        "duration_s": duration_s,
        "resolution_wh": list(resolution_wh),
        "fps": fps,
        "generator_sha256": generator,
    }
    params_path = root / "suite.json"
    same = params_path.is_file() and json.loads(params_path.read_text(encoding="utf-8")) == params
    if not same:
        for old in root.glob("*.truth.json"):  # other parameters or generator: nothing to reuse
            old.unlink()
        atomic_write_text(params_path, json.dumps(params))
    truths: list[SceneTruth] = []
    for seed in seeds:
        for kind in kinds:
            truth_path = root / f"{kind}_s{seed}.truth.json"
            if truth_path.is_file() and truth_path.with_name(f"{kind}_s{seed}.mp4").is_file():
                truths.append(SceneTruth.load(truth_path))
                continue
            log.info("generating %s seed %d (%.0f s)", kind, seed, duration_s)
            truths.append(
                generate_scene(
                    root,
                    kind=kind,
                    seed=seed,
                    duration_s=duration_s,
                    fps=fps,
                    resolution_wh=resolution_wh,
                )
            )
    lines = [
        json.dumps(
            {
                "id": Path(t.video_path).stem,
                "path": Path(t.video_path).name,
                "label": t.kind,
                "spans": [[s.start_s, s.end_s] for s in t.spans],
                "boxes": [[b.t_s, *b.xyxy] for b in t.boxes],
            }
        )
        for t in truths
    ]
    atomic_write_text(root / "manifest.jsonl", "\n".join(lines) + "\n")
    return truths


def labeled(truth: SceneTruth) -> LabeledVideo:
    """A generated scene's ground truth as the ``LabeledVideo`` the metrics read."""
    anomalous = truth.kind != "normal"
    return LabeledVideo(
        video_id=Path(truth.video_path).stem,
        path=truth.video_path,
        dataset="synthetic",
        category=truth.kind,
        categories=[truth.kind],
        is_anomalous=anomalous,
        spans=[TimeSpan(start_s=s.start_s, end_s=s.end_s) for s in truth.spans]
        if anomalous
        else [],
        boxes=list(truth.boxes) if anomalous else [],
    )


# ----------------------------------------------------------------------------- measures


def union_tiou(pred: Sequence[TimeSpan], truth: Sequence[TimeSpan]) -> float:
    """Temporal IoU of the union of predicted spans with the union of true spans.

    With one span on each side this is the usual tIoU; several predicted spans count as one
    set, so a false-positive span lowers it. 0 when nothing is predicted, None-free by design.
    """

    def merged(spans: Sequence[TimeSpan]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for s in sorted(spans, key=lambda s: s.start_s):
            if out and s.start_s <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], s.end_s))
            else:
                out.append((s.start_s, s.end_s))
        return out

    p, t = merged(pred), merged(truth)
    inter = sum(max(0.0, min(a1, b1) - max(a0, b0)) for a0, a1 in p for b0, b1 in t)
    union = sum(a1 - a0 for a0, a1 in p) + sum(b1 - b0 for b0, b1 in t) - inter
    return inter / union if union > 0 else 0.0


def frame_arrays(
    video: LabeledVideo, curve: ScoreCurve | None, fps: float, frame_count: int
) -> tuple[np.ndarray, np.ndarray]:
    """(0/1 labels, scores) on every native frame; the curve is linearly interpolated to the
    frames (no extra smoothing), a missing curve scores 0 everywhere."""
    from vadetective.agent.eval.frame import expand_to_frames

    labels = video.frame_labels(frame_count, fps)
    scores = (
        expand_to_frames(curve, fps, frame_count)
        if curve is not None and len(curve)
        else np.zeros(frame_count)
    )
    return labels, scores
