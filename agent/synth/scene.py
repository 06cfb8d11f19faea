"""Synthetic surveillance scenes with known anomalies, for tests, ``vadetective demo`` and benchmarks.

A scene is a fixed camera over a paved plaza: a textured ground with tiles and paths, a building
edge and a few props, mild sensor noise and a slow illumination drift. Several people-like agents
(head, torso, arms, swinging legs, a slight gait bob; sizes follow a mild perspective) walk across
it at normal walking speed, all in one dominant direction. One agent, the *actor*, carries the
injected anomaly:

========================  ====================================================================
``sprint``                walks, then runs at ~4x walking speed until it leaves the frame
``fall``                  walks, falls (the body turns horizontal), lies there until the end
``loiter``                stops and wanders slowly in place for a long time, then walks on
``wrong_way``             turns around and walks against the dominant flow until it leaves
``left_object``           stops, drops a bag and walks away; the bag stays until the end
``sudden_appearance``     pops into existence mid-frame, stands for a while, then walks on
``erratic``               jittery motion with rapid random changes of direction and speed
``normal``                no anomaly (the actor is an ordinary walker)
========================  ====================================================================

Everything is seeded: the same ``(kind, seed, ...)`` gives identical frames and truth. The
background and the ordinary walkers depend on the seed only, so the scenes of one seed differ by
their actor alone. Ground truth (:class:`SceneTruth`) holds the anomaly spans in seconds and the
anomalous actor's box (or the left object's box) on every frame inside them, in pixels.
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vadetective.agent.core.io import atomic_write_bytes, atomic_write_text
from vadetective.agent.core.types import Box, TimeSpan
from vadetective.agent.synth.actors import (
    BAGS,
    WALK_HEIGHTS_PER_S,
    WALK_Y,
    Track,
    actor_tracks_for,
    body_height,
    walker_tracks,
)
from vadetective.agent.synth.drawing import background, fill, shapes
from vadetective.agent.synth.truth import DESCRIPTIONS, SCENE_KINDS, SceneTruth

log = logging.getLogger(__name__)


def generate_scene(
    out_dir: str | Path,
    kind: str = "sprint",
    seed: int = 0,
    duration_s: float = 20.0,
    fps: float = 15.0,
    resolution_wh: tuple[int, int] = (480, 270),
    n_agents: int = 5,
    name: str | None = None,
) -> SceneTruth:
    """Generate one scene and write ``<out_dir>/<name>.mp4`` (H.264, yuv420p) and
    ``<out_dir>/<name>.truth.json``.

    Args:
        out_dir: Folder for the video and its truth (created if needed).
        kind: One of ``ANOMALY_KINDS`` or ``"normal"``.
        seed: Seed of the background, the walkers and the actor.
        duration_s: Length of the video in seconds (at least 6).
        fps: Frame rate.
        resolution_wh: Frame size (width, height); both must be even (yuv420p).
        n_agents: People in the scene at a time, the actor included (at least 1).
        name: File stem; defaults to ``"<kind>_s<seed>"``.

    Returns:
        The scene's ground truth (also saved beside the video).

    Raises:
        ValueError: On an unknown kind or an invalid size, duration or agent count.
    """
    import cv2

    if kind not in SCENE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(SCENE_KINDS)}, got {kind!r}")
    w, h = resolution_wh
    if w < 64 or h < 64 or w % 2 or h % 2:
        raise ValueError(f"resolution_wh must be even and at least 64x64, got {resolution_wh}")
    if duration_s < 6.0 or not 1.0 <= fps <= 120.0 or n_agents < 1:
        raise ValueError(
            f"need duration_s >= 6, 1 <= fps <= 120 and n_agents >= 1; got {duration_s}, {fps}, {n_agents}"
        )
    n = round(duration_s * fps)
    kind_idx = SCENE_KINDS.index(kind)
    scene_rng = np.random.default_rng([seed, 0])
    bg = background(scene_rng, resolution_wh)
    mirror = bool(scene_rng.random() < 0.5)  # dominant flow to the right or to the left
    slot_seeds = scene_rng.integers(0, 2**31, size=max(n_agents, 1) + 1)
    tracks: list[Track] = []
    for k in range(n_agents - 1):  # ordinary walkers; the last slot belongs to the actor
        tracks += walker_tracks(
            np.random.default_rng(slot_seeds[k]), n, fps, resolution_wh, 0, True
        )
    walkers = list(tracks)
    actor_rng = np.random.default_rng([seed, 1 + kind_idx])
    truth_track: Track | None = None
    f0 = last = 0
    if kind == "normal":
        tracks += walker_tracks(
            np.random.default_rng(slot_seeds[-1]), n, fps, resolution_wh, 0, True
        )
    else:
        actor_tracks, f0, last, truth_track = actor_tracks_for(
            kind, actor_rng, tracks, n, fps, resolution_wh
        )
        tracks += actor_tracks
        first_free = int(np.flatnonzero(actor_tracks[0].visible).max()) + int(2 * fps)
        if kind not in ("fall",):
            tracks += walker_tracks(
                np.random.default_rng(slot_seeds[-1]), n, fps, resolution_wh, first_free, False
            )

    # Typical walking speed (px/s) over the ordinary walkers' visible frames.
    speeds = []
    for tr in walkers:
        idx = np.flatnonzero(tr.visible[1:] & tr.visible[:-1])
        speeds.append(np.hypot(np.diff(tr.x)[idx], np.diff(tr.y)[idx]) * fps)
    if speeds and sum(map(len, speeds)):
        walk_speed = float(np.median(np.concatenate(speeds)))
    else:  # the actor walks alone: the nominal speed at mid-walkway
        mid_y = 0.5 * (WALK_Y[0] + WALK_Y[1]) * h
        walk_speed = float(np.mean(WALK_HEIGHTS_PER_S)) * float(body_height(mid_y, h))

    # Truth boxes.
    boxes: list[Box] = []
    bag_colour = BAGS[int(actor_rng.integers(len(BAGS)))]
    for tr in tracks:
        if tr.is_bag:
            bag_colour = tr.shirt
    if truth_track is not None:
        for i in range(f0, last + 1):
            if not truth_track.visible[i]:
                continue
            pts = np.concatenate([p for _, p in shapes(truth_track, i, h, bag_colour)])
            x1, y1 = pts.min(0)
            x2, y2 = pts.max(0)
            if mirror:
                x1, x2 = w - x2, w - x1
            full = Box(
                t_s=i / fps,
                xyxy=(float(x1), float(y1), float(x2), float(y2)),
                label="object" if truth_track.is_bag else "person",
            )
            clipped = full.clipped(resolution_wh)
            if clipped.area >= 0.5 * full.area:
                boxes.append(clipped)
    spans: list[TimeSpan] = []
    if boxes:
        start, end = boxes[0].t_s, min(boxes[-1].t_s + 1.0 / fps, n / fps)
        spans.append(TimeSpan(start_s=start, end_s=end, label=kind))

    # Render and encode.
    noise_rng = np.random.default_rng([seed, 99])
    bank = [np.abs(noise_rng.normal(0, 2.2, (h, w, 3))).astype(np.uint8) for _ in range(6)]
    drift_phase = float(scene_rng.uniform(0, 2 * math.pi))
    buf = io.BytesIO()
    enc = _Encoder(buf, resolution_wh, fps)
    for fi in range(n):
        img = bg.copy()
        live = [k for k in range(len(tracks)) if tracks[k].visible[fi]]
        live.sort(key=lambda k: (tracks[k].y[fi], not tracks[k].is_bag))
        for k in live:
            for colour, poly in shapes(tracks[k], fi, h, bag_colour):
                fill(img, poly, colour)
        gain = 1.0 + 0.03 * math.sin(2 * math.pi * fi / (fps * 25.0) + drift_phase)
        img = cv2.convertScaleAbs(img, alpha=gain)
        img = cv2.subtract(cv2.add(img, bank[fi % 6]), bank[(fi * 5 + 3) % 6])
        if mirror:
            img = cv2.flip(img, 1)
        enc.write(img)
    enc.close()

    out_dir = Path(out_dir)
    stem = name or f"{kind}_s{seed}"
    video_path = out_dir / f"{stem}.mp4"
    atomic_write_bytes(video_path, buf.getvalue())
    truth = SceneTruth(
        video_path=str(video_path.resolve()),
        kind=kind,
        seed=seed,
        fps=float(fps),
        frame_count=n,
        duration_s=n / fps,
        resolution_wh=(w, h),
        spans=spans,
        boxes=boxes,
        description=DESCRIPTIONS[kind],
        walk_speed_px_s=walk_speed,
        flow_direction_deg=180.0 if mirror else 0.0,
    )
    truth.save()
    log.debug("wrote %s (%d frames, kind=%s, spans=%s)", video_path, n, kind, spans)
    return truth


class _Encoder:
    """H.264 (libx264, yuv420p) into an in-memory MP4, written to disk atomically afterwards."""

    def __init__(self, buf: io.BytesIO, wh: tuple[int, int], fps: float) -> None:
        import av

        self.container = av.open(buf, mode="w", format="mp4")
        rate = Fraction(fps).limit_denominator(1001)
        self.stream = self.container.add_stream("libx264", rate=rate)
        self.stream.width, self.stream.height = wh
        self.stream.pix_fmt = "yuv420p"
        # Keyframes every ~2 s, as surveillance encoders do: cheap random access.
        gop = str(max(1, round(2 * fps)))
        self.stream.options = {"crf": "18", "preset": "veryfast", "threads": "1", "g": gop}
        self.i = 0

    def write(self, rgb: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.i
        self.i += 1
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def generate_suite(
    root: str | Path,
    kinds: Sequence[str] = SCENE_KINDS,
    seeds: Iterable[int] = (0,),
    **scene_kw: Any,
) -> list[SceneTruth]:
    """Generate every (kind, seed) scene under ``root`` and write ``root/manifest.jsonl``.

    Each manifest line is ``{"path": <video path relative to root>, "label": <kind>,
    "spans": [[start_s, end_s], ...]}``, the generic manifest the dataset loaders read.

    Args:
        root: Output folder.
        kinds: Scene kinds to generate.
        seeds: Seeds to generate for each kind.
        **scene_kw: Passed to :func:`generate_scene` (duration_s, fps, resolution_wh, n_agents).

    Returns:
        The truths, in (seed, kind) order.
    """
    root = Path(root)
    truths = [generate_scene(root, kind=k, seed=s, **scene_kw) for s in seeds for k in kinds]
    lines = [
        json.dumps(
            {
                "path": Path(t.video_path).relative_to(root.resolve()).as_posix(),
                "label": t.kind,
                "spans": [[sp.start_s, sp.end_s] for sp in t.spans],
            }
        )
        for t in truths
    ]
    atomic_write_text(root / "manifest.jsonl", "\n".join(lines) + "\n")
    return truths
