"""The classical perception's one pass: scene model and activity from a single decode.

The video is read once, through ``FrameSource.iter_frames``, at the processing size (320 px):
exactly the frames the background medians, the activity samples and their partner frames need,
in time order, each decoded once and scaled inside the decoder. The background of a window
(``scene.BG_WINDOW_S``) is the median of frames spread over that window, so the samples of a
window are held until the pass has passed its last background frame, then processed in order:
memory is bounded by one window, not by the video's length. Thresholds and the person-size prior
are calibrated on the first window's frames.

What the pass computed persists on disk (``ArrayCache`` record: arrays + JSON, no pickle) keyed
by the video's content hash and every setting that changes it, and in memory for the process, so
the scorer, the grounder and the inspector of one analysis, a second question and a second
process all share one pass. A cache entry that does not fit the video or holds NaN is a miss.
The frames the pass kept stay in the source's frame cache: look-backs read them from there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from vadetective.tools.backends.motion.activity import (
    FAMILIES,
    Activity,
    ActivityPass,
    finish,
    grid_frames,
)
from vadetective.tools.backends.motion.scene import (
    PROC_MAX_SIDE,
    SceneModel,
    background_frames,
    calibrate,
    calibration_samples,
    median_background,
    new_scene,
)
from vadetective.tools.base import FrameSource
from vadetective.tools.cache import ArrayCache, all_finite
from vadetective.tools.video.prefetch import prefetch
from vadetective.tools.video.probe import fit_size

log = logging.getLogger(__name__)

DEFAULT_GRID_FPS = 4.0
#: Bump when what the pass computes changes, so older cache entries become misses.
PASS_VERSION = "motion-pass-1"
_MEMORY_SIZE = 8

_memory: OrderedDict[tuple[str, int, float], Perception] = OrderedDict()
_memory_lock = threading.Lock()
_pass_locks: dict[tuple[str, int, float], threading.Lock] = {}


@dataclass(frozen=True)
class Perception:
    """What the one pass learnt about a video."""

    scene: SceneModel
    activity: Activity


def perceive(
    source: FrameSource,
    max_side: int = PROC_MAX_SIDE,
    grid_fps: float = DEFAULT_GRID_FPS,
    cache: ArrayCache | None = None,
) -> Perception:
    """The scene model and activity pass of ``source``: from memory, from the disk cache, or
    computed by one pass over the video (then stored in both).

    Args:
        source: The video.
        max_side: Processing size (longer side, pixels).
        grid_fps: Activity samples per second (see ``activity.grid_step_s``).
        cache: Where results persist; ``ArrayCache()`` (the user's cache folder) by default.
    """
    info = source.info
    key = (info.content_hash, int(max_side), round(float(grid_fps), 3))
    with _memory_lock:
        lock = _pass_locks.setdefault(key, threading.Lock())
    with lock:  # two threads asking for the same video share one pass
        with _memory_lock:
            hit = _memory.get(key)
            if hit is not None:
                _memory.move_to_end(key)
                return hit
        disk = cache if cache is not None else ArrayCache()
        disk_key = disk.key(
            kind="motion-perception",
            version=PASS_VERSION,
            video=info.content_hash,
            frames=info.frame_count,
            max_side=int(max_side),
            grid_fps=key[2],
        )
        found = _load(disk, disk_key, info.frame_count)
        if found is None:
            found = one_pass(source, int(max_side), float(grid_fps))
            try:
                disk.put_record(disk_key, *_record(found))
            except OSError as exc:  # a read-only or full cache folder costs speed, not the answer
                log.warning("could not store the motion perception in %s: %s", disk.root, exc)
        with _memory_lock:
            _memory[key] = found
            while len(_memory) > _MEMORY_SIZE:
                _memory.popitem(last=False)
        return found


def clear_cache() -> None:
    """Forget every perception held in memory (tests, benchmarks, or to free memory)."""
    with _memory_lock:
        _memory.clear()


def snap_to_pass(act: Activity, frame_idx: int, dt_frames: int) -> int:
    """The pass's sample frame nearest to ``frame_idx`` when one lies within half a pair gap
    (a tenth of a second), else ``frame_idx``. For look-backs that only need *a* frame about
    then (how long has this been still?): they read frames the pass kept instead of decoding a
    keyframe group again. Never for the moment a tool was asked about."""
    kept = act.frame_idx
    if kept.size == 0:
        return frame_idx
    pos = int(np.clip(np.searchsorted(kept, frame_idx), 1, max(1, kept.size - 1)))
    near = min(
        (int(kept[j]) for j in (pos - 1, pos) if 0 <= j < kept.size),
        key=lambda j: abs(j - frame_idx),
    )
    return near if abs(near - frame_idx) <= dt_frames // 2 else frame_idx


# --------------------------------------------------------------------------------- the pass


def one_pass(source: FrameSource, max_side: int, grid_fps: float) -> Perception:
    """Compute the scene model and the activity pass in one decode (see the module doc)."""
    started = time.perf_counter()
    decoded_before = source.frames_decoded
    info = source.info
    ts = np.asarray(source.timestamps, dtype=np.float64)
    if ts.size == 0:
        raise ValueError(f"{info.path} has no decodable frames to build a background from")
    duration = max(float(info.duration_s), float(ts[-1]))
    proc_wh = fit_size(info.resolution_wh, max_side)
    scale = max(info.resolution_wh) / max(proc_wh)
    scene = new_scene(info.content_hash, max_side, float(info.fps), duration, proc_wh, scale)
    edges = scene.window_edges_s
    n_win = edges.size - 1
    bg_idx = background_frames(ts, edges)
    grid, partners = grid_frames(scene, ts, grid_fps)
    bg_window = {int(i): k for k, idx in enumerate(bg_idx) for i in idx.tolist()}
    bg_last = [int(idx[-1]) if idx.size else -1 for idx in bg_idx]
    last_use: dict[int, int] = {}
    for p, (g, pz) in enumerate(zip(grid.tolist(), partners.tolist(), strict=True)):
        last_use[g] = last_use[pz] = p
    release: dict[int, list[int]] = {}
    for i, p in last_use.items():
        release.setdefault(p, []).append(i)
    grid_window = np.clip(np.searchsorted(edges, ts[grid], side="right") - 1, 0, n_win - 1)
    needed = np.unique(np.concatenate([*bg_idx, grid, partners]).astype(np.int64))

    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vadetective-motion")
    run = ActivityPass(scene, pool)
    bg_frames: dict[int, list[np.ndarray]] = {}
    bg_times: dict[int, list[float]] = {}
    held: dict[int, np.ndarray] = {}  # sample and partner frames not processed yet
    ready = -1  # windows 0..ready have their background
    pos = 0  # next sample to process

    def advance(upto: float) -> None:
        """Frames up to ``upto`` have arrived (or never will): build the backgrounds and process
        the samples that now can be."""
        nonlocal ready, pos
        while ready + 1 < n_win and bg_last[ready + 1] <= upto:
            k = ready + 1
            imgs = bg_frames.pop(k, [])
            if imgs:
                scene.backgrounds.append(median_background(imgs))
            elif scene.backgrounds:
                scene.backgrounds.append(scene.backgrounds[-1])
            else:
                raise ValueError(f"{info.path}: no frame could be decoded to build a background")
            if k == 0:
                calibrate(scene, calibration_samples(imgs, bg_times.get(0, [])))
            ready = k
        while pos < grid.size:
            g, pz = int(grid[pos]), int(partners[pos])
            if max(g, pz) > upto or grid_window[pos] > ready:
                return
            if g in held and pz in held:  # frames of a damaged stretch are skipped
                dt_s = float(ts[pz] - ts[g]) or 1.0 / scene.fps
                run.step(g, held[g], held[pz], float(ts[g]), dt_s)
            for i in release.pop(pos, []):
                held.pop(i, None)
            pos += 1

    # decoding runs ahead in a thread while the samples are processed here (two cores)
    try:
        for frame in prefetch(source.iter_frames(max_side=max_side, frame_idx=needed)):
            i = frame.frame_idx
            k = bg_window.get(i)
            if k is not None:
                bg_frames.setdefault(k, []).append(frame.image)
                bg_times.setdefault(k, []).append(frame.t_s)
            if i in last_use:
                held[i] = frame.image
            advance(i)
        advance(float("inf"))
    finally:
        pool.shutdown()
    act = finish(
        run,
        scene,
        grid_fps,
        info.path,
        frames_decoded=source.frames_decoded - decoded_before,
        seconds=time.perf_counter() - started,
    )
    log.debug(
        "motion pass over %s: %d frames converted, %d decoded, %.2f s",
        info.path, needed.size, act.frames_decoded, act.seconds,
    )  # fmt: skip
    return Perception(scene, act)


# --------------------------------------------------------------------------------- on disk

_SCENE_FIELDS = ("content_hash", "max_side", "scale", "fps", "duration_s", "dt_frames")
_SCENE_NUMBERS = ("threshold", "min_area", "person_area", "person_side")
_ACT_NUMBERS = (
    "typical_speed_bl_s",
    "typical_speed_px_s",
    "foreground_share",
    "reliability",
    "frames_decoded",
    "seconds",
)


def _record(p: Perception) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    s, a = p.scene, p.activity
    arrays: dict[str, np.ndarray] = {
        "window_starts_s": np.asarray(s.window_edges_s[:-1], dtype=np.float64),
        "backgrounds": np.stack(s.backgrounds),
        "t_s": a.t_s,
        "frame_idx": a.frame_idx,
        "direction_hist": a.direction_hist,
    }
    for f in FAMILIES:
        arrays[f"raw_{f}"] = a.raw[f]
        arrays[f"score_{f}"] = a.scores[f]
    meta: dict[str, Any] = {
        "scene": {k: getattr(s, k) for k in (*_SCENE_FIELDS, *_SCENE_NUMBERS)},
        "proc_wh": list(s.proc_wh),
        "activity": {k: getattr(a, k) for k in _ACT_NUMBERS},
        "dominant_direction_deg": a.dominant_direction_deg,
    }
    return arrays, meta


def _load(cache: ArrayCache, key: str, frame_count: int) -> Perception | None:
    def check(arrays: dict[str, np.ndarray]) -> str | None:
        if problem := all_finite(arrays):
            return problem
        n = arrays.get("t_s", np.zeros(0)).size
        if n == 0 or any(
            arrays.get(f"{k}_{f}", np.zeros(0)).size != n
            for k in ("raw", "score")
            for f in FAMILIES
        ):
            return "its activity curves are missing or of different lengths"
        idx = arrays.get("frame_idx", np.zeros(0))
        if idx.size != n or idx.min() < 0 or idx.max() >= frame_count:
            return "its sample frames do not fit the video"
        if any(np.any((arrays[f"score_{f}"] < 0) | (arrays[f"score_{f}"] > 1)) for f in FAMILIES):
            return "its scores lie outside [0, 1]"
        return None

    hit = cache.get_record(key, check)
    if hit is None:
        return None
    arrays, meta = hit
    try:
        sm, am = meta["scene"], meta["activity"]
        w, h = (int(v) for v in meta["proc_wh"])
        bgs = arrays["backgrounds"]
        starts = arrays["window_starts_s"]
        if bgs.dtype != np.uint8 or bgs.shape[1:] != (h, w, 3) or bgs.shape[0] != starts.size:
            raise ValueError("backgrounds do not fit the processing size")
        scene = SceneModel(
            content_hash=str(sm["content_hash"]),
            max_side=int(sm["max_side"]),
            scale=float(sm["scale"]),
            proc_wh=(w, h),
            fps=float(sm["fps"]),
            duration_s=float(sm["duration_s"]),
            dt_frames=int(sm["dt_frames"]),
            window_edges_s=np.append(starts, np.inf),
            backgrounds=list(bgs),
            threshold=float(sm["threshold"]),
            min_area=int(sm["min_area"]),
            person_area=float(sm["person_area"]),
            person_side=float(sm["person_side"]),
        )
        dominant = meta["dominant_direction_deg"]
        act = Activity(
            t_s=arrays["t_s"],
            raw={f: arrays[f"raw_{f}"] for f in FAMILIES},
            scores={f: arrays[f"score_{f}"] for f in FAMILIES},
            frame_idx=arrays["frame_idx"].astype(np.int64),
            typical_speed_bl_s=float(am["typical_speed_bl_s"]),
            typical_speed_px_s=float(am["typical_speed_px_s"]),
            direction_hist=arrays["direction_hist"],
            dominant_direction_deg=None if dominant is None else float(dominant),
            foreground_share=float(am["foreground_share"]),
            reliability=float(am["reliability"]),
            frames_decoded=0,  # nothing was decoded to get it this time
            seconds=0.0,
        )
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("ignoring cache entry %s (%s); it will be recomputed", cache.path(key), exc)
        return None
    return Perception(scene, act)
