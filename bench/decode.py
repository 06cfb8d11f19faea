"""Frame access speed: the project's ``open_video`` against bare decord, PyAV and OpenCV.

Generates three 40 s 640x360 25 fps clips (H.264 with a 10 s GOP, H.264 with a 12-frame GOP,
MPEG-4 Part 2), then times four jobs on each: opening the file, 64 frames spread evenly,
sampling at 2 fps, and every frame. Every job opens the file, decodes the frames to RGB uint8
arrays and closes it; the best of ``--repeats`` runs counts. Each time is also given as a
ratio to the fastest bare decoder (decord, PyAV or OpenCV used directly) for that job.
``project`` is ``open_video`` with the default backend (PyAV), ``project_pyav`` and
``project_decord`` name the backend; ``pass320_*`` is the one pass (``iter_frames``) at 320 px.

    python -m bench.decode            # the full run (about two minutes on 2 cores)
    python -m bench.decode --quick    # a tiny run, for smoke tests
    python -m bench.decode --out decode.json

The JSON goes to stdout (and to ``--out``); the table goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np

from vadetective.tools.video.sampling import indices_at_fps, iter_batches, uniform_indices
from vadetective.tools.video.sources import open_video

BATCH = 64
Job = Callable[[Path, np.ndarray], int]


# ----------------------------------------------------------------------------- inputs


def write_clip(path: Path, seconds: float, size: tuple[int, int], codec: str, gop: int) -> Path:
    """A textured scene that pans, with moving blocks: realistic work for a decoder."""
    import av

    w, h = size
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (h, w * 2, 3), dtype=np.uint8)
    texture = (texture // 4 + np.linspace(0, 180, w * 2)[None, :, None]).astype(np.uint8)
    n = round(seconds * 25)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=Fraction(25))
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.gop_size = gop
        if codec == "libx264":
            stream.options = {
                "preset": "veryfast",
                "crf": "23",
                "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
            }
        else:
            stream.codec_context.bit_rate = 2_000_000
        for i in range(n):
            img = np.ascontiguousarray(texture[:, (2 * i) % w : (2 * i) % w + w])
            for k in range(4):
                x, y = (37 * i + 150 * k) % (w - 40), (h // 5) * (k + 1) - 20
                img[y : y + 40, x : x + 40] = (255, 60 * k, 40)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def make_clips(folder: Path, quick: bool) -> dict[str, Path]:
    seconds, size = (2.0, (320, 180)) if quick else (40.0, (640, 360))
    return {
        "h264_long_gop": write_clip(folder / "h264_long_gop.mp4", seconds, size, "libx264", 250),
        "h264_short_gop": write_clip(folder / "h264_short_gop.mp4", seconds, size, "libx264", 12),
        "mpeg4_part2": write_clip(folder / "mpeg4_part2.mp4", seconds, size, "mpeg4", 12),
    }


# ----------------------------------------------------------------------------- readers
# Each takes a file and ascending frame indices, decodes those frames to RGB arrays and
# returns how many it produced (so a reader that silently returns fewer is visible).


def project(path: Path, idx: np.ndarray) -> int:
    """``open_video`` as users call it (auto: PyAV)."""
    with open_video(path) as src:
        return sum(len(b) for b in iter_batches(src, idx, batch_size=BATCH))


def project_decord(path: Path, idx: np.ndarray) -> int:
    """``open_video(backend="decord")``."""
    with open_video(path, backend="decord") as src:
        return sum(len(b) for b in iter_batches(src, idx, batch_size=BATCH))


def pass_pyav(path: Path, idx: np.ndarray) -> int:
    """The one pass (``iter_frames``) at 320 px, PyAV (scaled inside swscale)."""
    with open_video(path, backend="pyav") as src:
        return sum(1 for _ in src.iter_frames(max_side=320, frame_idx=idx))


def pass_decord(path: Path, idx: np.ndarray) -> int:
    """The one pass (``iter_frames``) at 320 px, decord (full RGB, then OpenCV's resize)."""
    with open_video(path, backend="decord") as src:
        return sum(1 for _ in src.iter_frames(max_side=320, frame_idx=idx))


def project_pyav(path: Path, idx: np.ndarray) -> int:
    """``open_video(backend="pyav")``: decodes on, or seeks when that is cheaper."""
    with open_video(path, backend="pyav") as src:
        return sum(len(b) for b in iter_batches(src, idx, batch_size=BATCH))


def bare_decord(path: Path, idx: np.ndarray) -> int:
    import decord

    vr = decord.VideoReader(str(path))
    got = 0
    for s in range(0, idx.size, BATCH):
        got += len(vr.get_batch(idx[s : s + BATCH].tolist()).asnumpy())
    return got


def bare_pyav(path: Path, idx: np.ndarray) -> int:
    """The common idiom: decode straight through, convert the wanted frames."""
    import av

    wanted = set(idx.tolist())
    got = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted:
                frame.to_ndarray(format="rgb24")
                got += 1
            if i >= idx[-1]:
                break
    return got


def bare_opencv(path: Path, idx: np.ndarray) -> int:
    """grab() every frame, retrieve() and convert the wanted ones (seeking is inexact)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    wanted = set(idx.tolist())
    got = 0
    try:
        for i in range(int(idx[-1]) + 1):
            if not cap.grab():
                break
            if i in wanted:
                ok, bgr = cap.retrieve()
                if ok:
                    cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    got += 1
    finally:
        cap.release()
    return got


def open_only_project(path: Path, idx: np.ndarray) -> int:
    with open_video(path) as src:
        return src.info.frame_count


def open_only_project_pyav(path: Path, idx: np.ndarray) -> int:
    with open_video(path, backend="pyav") as src:
        return src.info.frame_count


def open_only_decord(path: Path, idx: np.ndarray) -> int:
    import decord

    return len(decord.VideoReader(str(path)))


def open_only_pyav(path: Path, idx: np.ndarray) -> int:
    import av

    with av.open(str(path)) as container:
        return container.streams.video[0].frames


def open_only_opencv(path: Path, idx: np.ndarray) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    return n


READERS: dict[str, dict[str, Job]] = {
    "open": {
        "project": open_only_project,
        "project_pyav": open_only_project_pyav,
        "decord": open_only_decord,
        "pyav": open_only_pyav,
        "opencv": open_only_opencv,
    },
    "frames": {
        "project": project,
        "project_pyav": project_pyav,
        "project_decord": project_decord,
        "pass320_pyav": pass_pyav,
        "pass320_decord": pass_decord,
        "decord": bare_decord,
        "pyav": bare_pyav,
        "opencv": bare_opencv,
    },
}


# ----------------------------------------------------------------------------- timing


def best_of(job: Job, path: Path, idx: np.ndarray, repeats: int) -> tuple[float, int]:
    best, got = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        got = job(path, idx)
        best = min(best, time.perf_counter() - start)
    return best, got


def run(quick: bool, repeats: int, workdir: Path) -> dict[str, object]:
    clips = make_clips(workdir, quick)
    rows: list[dict[str, object]] = []
    for clip, path in clips.items():
        with open_video(path, backend="pyav") as src:
            t_s, n = src.timestamps, src.info.frame_count
        tasks = {
            "open": np.zeros(0, dtype=np.int64),
            "uniform_64": uniform_indices(t_s, 64),
            "fps_2": indices_at_fps(t_s, 2.0),
            "every_frame": np.arange(n),
        }
        for task, idx in tasks.items():
            readers = READERS["open" if task == "open" else "frames"]
            seconds: dict[str, float] = {}
            frames: dict[str, int] = {}
            for name, job in readers.items():
                seconds[name], frames[name] = best_of(job, path, idx, repeats)
            bare = {k: v for k, v in seconds.items() if not k.startswith(("project", "pass320"))}
            fastest = min(bare, key=lambda k: bare[k])
            rows.append(
                {
                    "clip": clip,
                    "task": task,
                    "frames": int(idx.size) if task != "open" else n,
                    "frames_returned": frames,
                    "seconds": {k: round(v, 5) for k, v in seconds.items()},
                    "fastest_bare": fastest,
                    "ratio_to_fastest_bare": {
                        k: round(v / bare[fastest], 3) for k, v in seconds.items()
                    },
                }
            )
    return {
        "benchmark": "decode",
        "quick": quick,
        "repeats": repeats,
        "clips": {
            k: {"bytes": p.stat().st_size, "frames": _count(p), "resolution_wh": _size(p)}
            for k, p in clips.items()
        },
        "machine": _machine(),
        "results": rows,
    }


def _count(path: Path) -> int:
    with open_video(path, backend="pyav") as src:
        return src.info.frame_count


def _size(path: Path) -> list[int]:
    with open_video(path, backend="pyav") as src:
        return list(src.info.resolution_wh)


def _machine() -> dict[str, object]:
    """What the numbers were measured on; the load average says how shared the CPU was."""
    import os
    from importlib import metadata

    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            ln
            for ln in cpuinfo.read_text(errors="replace").splitlines()
            if ln.startswith("model name")
        ]
        model = names[0].split(":", 1)[1].strip() if names else model
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = {"python": platform.python_version()}
    for dist in ("av", "decord", "opencv-python", "opencv-python-headless", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return {
        "cpu_model": model,
        "cores_usable": cores,
        "load_average_1_5_15min": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }


def table(report: dict[str, object]) -> str:
    """A short text table: seconds and ratio to the fastest bare decoder, per clip and task."""
    names = list(READERS["frames"])
    lines = [f"{'clip':<16}{'task':<13}{'frames':>7}" + "".join(f"{n:>17}" for n in names)]
    for row in report["results"]:  # type: ignore[attr-defined]
        cells = "".join(
            f"{row['seconds'][n]:>10.3f}s ×{row['ratio_to_fastest_bare'][n]:<5.2f}"
            if n in row["seconds"]
            else f"{'-':>17}"
            for n in names
        )
        lines.append(f"{row['clip']:<16}{row['task']:<13}{row['frames']:>7}{cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.decode", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny clips, one repeat (smoke test)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="runs per measurement (best counts)"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the clips")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory(prefix="vadetective-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        report = run(args.quick, repeats, workdir)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    print(table(report), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
