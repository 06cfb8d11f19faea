"""Perception speed of the classical profile: the whole first question against real time and
against decoding every frame with OpenCV; the second question against the first; plus the
``hf`` section (CLIP-sized scorer frames/s, fp32 and bf16, from ``bench.perception_hf``).

What is measured, side by side in one run (best of ``--repeats``, interleaved so that a busy
machine slows every measurement alike):

- ``opencv_decode``: a bare ``cv2.VideoCapture`` loop that reads (decodes and converts to BGR)
  every frame of the video: the physical floor of "looking at every frame".
- ``first_question``: ``Detective(path, profile="classical")`` plus ``ask()`` with the default
  question and the detective graph, cold: a new empty ``VADETECTIVE_CACHE_DIR`` and the motion
  backends' in-memory scene models cleared before each repeat. Python imports are warmed on a
  tiny separate clip first (they are a per-process cost, not a per-question one). Reported as a
  multiple of real time (video seconds / wall seconds) and as a ratio to ``opencv_decode``.
- ``second_question``: another question on the same ``Detective`` (frames, scores and scene
  model reused), as a ratio to the first.
- ``hf``: ``bench.perception_hf`` run in this process when torch and transformers are
  importable (its JSON is included as is, run with its own defaults unless ``--hf-args``
  says otherwise), else a note saying why it was skipped.

The video is ``generate_scene(kind="sprint", seed=0, duration_s=120, resolution_wh=(640, 360))``
(15 fps H.264); ``--quick`` uses an 8 s 320x180 clip and the quick hf run.

    python -m bench.perception                 # the full run (~3-5 min on 2 busy cores)
    python -m bench.perception --quick         # a tiny run, for smoke tests
    python -m bench.perception --no-hf --out perception.json

The JSON goes to stdout (and to ``--out``); a short table goes to stderr.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._common import (
    Stopwatch,
    base_parser,
    emit,
    format_table,
    fresh_cache,
    machine_info,
    rounded,
)
from vadetective.agent.core.types import Cost
from vadetective.agent.synth.scene import generate_scene

log = logging.getLogger(__name__)

FIRST_QUESTION = None  # the session's default general anomaly question
SECOND_QUESTION = "Is anyone running, and where exactly?"


def opencv_decode_all(path: Path) -> int:
    """Decode every frame with a bare OpenCV loop; returns how many frames it read."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    try:
        while True:
            ok, _frame = cap.read()
            if not ok:
                break
            n += 1
    finally:
        cap.release()
    return n


def _cost(cost: Cost) -> dict[str, Any]:
    return {
        "planner_calls": cost.planner_calls,
        "tool_calls": cost.tool_calls,
        "frames_decoded": cost.frames_decoded,
        "frames_shown": cost.frames_shown,
        "seconds_by_stage": cost.seconds_by_stage,
    }


def _clear_scene_models() -> None:
    from vadetective.tools.backends.motion.backends import clear_cache

    clear_cache()


def warm_imports(folder: Path) -> None:
    """Run one question on a tiny separate clip so that lazy imports are not timed."""
    from vadetective.agent.session import Detective

    tiny = generate_scene(
        folder, kind="sprint", seed=1, duration_s=6.0, resolution_wh=(128, 72), name="warmup"
    )
    with (
        fresh_cache(),
        Detective(tiny.video_path, profile="classical", out=folder / "warmup-run") as d,
    ):
        d.ask()
    _clear_scene_models()


def one_repeat(path: Path, run_dir: Path) -> dict[str, Any]:
    """One cold first question and one second question on the same session."""
    from vadetective.agent.session import Detective

    row: dict[str, Any] = {}
    with Stopwatch() as sw:
        row["opencv_frames"] = opencv_decode_all(path)
    row["opencv_s"], row["opencv_cpu_s"] = sw.seconds, sw.cpu_seconds
    with fresh_cache():
        _clear_scene_models()
        with Stopwatch() as sw_open:
            d = Detective(path, profile="classical", out=run_dir)
        try:
            with Stopwatch() as sw1:
                v1 = d.ask(FIRST_QUESTION)
            t1 = d.last_trace
            with Stopwatch() as sw2:
                v2 = d.ask(SECOND_QUESTION)
            t2 = d.last_trace
        finally:
            d.close()
    assert t1 is not None and t2 is not None
    row.update(
        open_s=sw_open.seconds,
        ask1_s=sw1.seconds,
        first_s=sw_open.seconds + sw1.seconds,
        first_cpu_s=sw_open.cpu_seconds + sw1.cpu_seconds,
        second_s=sw2.seconds,
        second_cpu_s=sw2.cpu_seconds,
        cost1=_cost(t1.cost),
        cost2=_cost(t2.cost),
        verdict1={
            "is_anomalous": v1.is_anomalous,
            "spans": [[s.start_s, s.end_s] for s in v1.spans],
            "category": v1.category,
        },
        verdict2={
            "is_anomalous": v2.is_anomalous,
            "spans": [[s.start_s, s.end_s] for s in v2.spans],
            "category": v2.category,
        },
    )
    return row


def hf_section(quick: bool, hf_args: Sequence[str]) -> dict[str, Any]:
    """``bench.perception_hf``'s report, or why it was not run."""
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        return {
            "skipped": f"{' and '.join(missing)} not importable: install the hf extra to measure the CLIP scorer"
        }
    from bench import perception_hf

    argv = [*(["--quick"] if quick else []), *hf_args]
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its JSON; we embed it instead
        report = perception_hf.main(argv)
    return {"argv": argv, **report}


def run(
    quick: bool, repeats: int, workdir: Path, with_hf: bool, hf_args: Sequence[str]
) -> dict[str, Any]:
    duration, size = (8.0, (320, 180)) if quick else (120.0, (640, 360))
    with Stopwatch() as sw_gen:
        truth = generate_scene(
            workdir, kind="sprint", seed=0, duration_s=duration, resolution_wh=size
        )
    path = Path(truth.video_path)
    warm_imports(workdir / "warmup")
    rows = [one_repeat(path, workdir / f"run{r}") for r in range(repeats)]

    keys = (
        "opencv_s",
        "opencv_cpu_s",
        "open_s",
        "ask1_s",
        "first_s",
        "first_cpu_s",
        "second_s",
        "second_cpu_s",
    )
    best = {k: min(r[k] for r in rows) for k in keys}
    first = min(rows, key=lambda r: r["first_s"])
    second = min(rows, key=lambda r: r["second_s"])
    video_s = truth.duration_s
    report: dict[str, Any] = {
        "benchmark": "perception",
        "quick": quick,
        "repeats": repeats,
        "machine": machine_info(),
        "measured": (
            "classical profile, detective graph, rule planner; first question cold (new cache dir, "
            "scene models cleared, imports warmed); wall and process CPU seconds, each the best "
            "of the repeats; ratios divide those bests"
        ),
        "video": {
            "generator": f"generate_scene(kind='sprint', seed=0, duration_s={duration:g}, resolution_wh={size})",
            "duration_s": video_s,
            "fps": truth.fps,
            "frame_count": truth.frame_count,
            "resolution_wh": list(truth.resolution_wh),
            "bytes": path.stat().st_size,
            "generate_s": rounded(sw_gen.seconds, 3),
        },
        "opencv_decode": {
            "seconds": rounded(best["opencv_s"]),
            "cpu_seconds": rounded(best["opencv_cpu_s"]),
            "frames": first["opencv_frames"],
            "x_realtime": rounded(video_s / best["opencv_s"], 2),
        },
        "first_question": {
            "seconds": rounded(best["first_s"]),
            "open_s": rounded(first["open_s"]),
            "ask_s": rounded(first["ask1_s"]),
            "x_realtime": rounded(video_s / best["first_s"], 2),
            "ratio_to_opencv_decode": rounded(best["first_s"] / best["opencv_s"], 3),
            "cpu_seconds": rounded(best["first_cpu_s"]),
            "cpu_ratio_to_opencv_decode": rounded(best["first_cpu_s"] / best["opencv_cpu_s"], 3),
            "frames_decoded_per_video_frame": rounded(
                first["cost1"]["frames_decoded"] / truth.frame_count, 3
            ),
            "cost": first["cost1"],
            "verdict": first["verdict1"],
        },
        "second_question": {
            "question": SECOND_QUESTION,
            "seconds": rounded(best["second_s"]),
            "ratio_to_first": rounded(best["second_s"] / best["first_s"], 4),
            "cpu_seconds": rounded(best["second_cpu_s"]),
            "cpu_ratio_to_first": rounded(best["second_cpu_s"] / best["first_cpu_s"], 4),
            "x_realtime": rounded(video_s / best["second_s"], 1),
            "cost": second["cost2"],
            "verdict": second["verdict2"],
        },
        "truth": {"kind": truth.kind, "spans": [[s.start_s, s.end_s] for s in truth.spans]},
        "runs": [
            {k: (rounded(v) if isinstance(v, float) else v) for k, v in r.items()} for r in rows
        ],
    }
    if with_hf:
        try:
            report["hf"] = hf_section(quick, hf_args)
        except (ImportError, OSError, RuntimeError, ValueError) as exc:  # reported, not hidden
            log.warning("the hf section failed: %s", exc)
            report["hf"] = {"error": f"{type(exc).__name__}: {exc}"}
    else:
        report["hf"] = {"skipped": "--no-hf"}
    return report


def table(report: dict[str, Any]) -> str:
    v, oc = report["video"], report["opencv_decode"]
    q1, q2 = report["first_question"], report["second_question"]
    rows: list[list[Any]] = [
        ["opencv decode, every frame", oc["seconds"], oc["x_realtime"], 1.0, "-"],
        [
            "first question (cold)",
            q1["seconds"],
            q1["x_realtime"],
            q1["ratio_to_opencv_decode"],
            q1["cost"]["frames_decoded"],
        ],
        [
            "second question",
            q2["seconds"],
            q2["x_realtime"],
            rounded(q2["seconds"] / oc["seconds"], 3),
            q2["cost"]["frames_decoded"],
        ],
    ]
    head = f"video {v['duration_s']:g} s, {v['resolution_wh'][0]}x{v['resolution_wh'][1]}, {v['frame_count']} frames; second/first = {q2['ratio_to_first']}"
    out = [head, format_table(["job", "seconds", "x realtime", "x opencv", "frames decoded"], rows)]
    hf = report.get("hf", {})
    if "results" in hf:
        out.append(
            format_table(
                ["hf scorer dtype", "pipeline fps", "forward fps", "overhead", "cached fps"],
                [
                    [
                        r["dtype"],
                        r["pipeline_fps"],
                        r["forward_fps"],
                        r["overhead_ratio"],
                        r["cached_fps"],
                    ]
                    for r in hf["results"]
                ],
            )
        )
    else:
        out.append(f"hf: {hf.get('skipped') or hf.get('error')}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser("python -m bench.perception", __doc__)
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="cold runs (best counts); default 2, 1 with --quick",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where to write the video and runs"
    )
    parser.add_argument("--no-hf", action="store_true", help="skip the CLIP scorer section")
    parser.add_argument(
        "--hf-args",
        default="",
        help="extra arguments for bench.perception_hf, e.g. '--repeats 3' (see its --help)",
    )
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 2)
    with tempfile.TemporaryDirectory(prefix="vadetective-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        report = run(args.quick, repeats, workdir, not args.no_hf, args.hf_args.split())
    emit(report, args.out, table(report))
    return 1 if "error" in report["hf"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
