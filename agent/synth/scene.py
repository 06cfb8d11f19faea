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
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vadetective.agent.core.io import atomic_write_bytes, atomic_write_text
from vadetective.agent.core.types import Box, Frozen, TimeSpan

log = logging.getLogger(__name__)

ANOMALY_KINDS: tuple[str, ...] = (
    "sprint",
    "fall",
    "loiter",
    "wrong_way",
    "left_object",
    "sudden_appearance",
    "erratic",
)
SCENE_KINDS: tuple[str, ...] = (*ANOMALY_KINDS, "normal")

_DESCRIPTIONS: dict[str, str] = {
    "sprint": "A pedestrian suddenly breaks into a sprint, running at several times walking speed.",
    "fall": "A pedestrian falls to the ground and stays lying there.",
    "loiter": "A person stops and lingers in one place, wandering slowly for a long time.",
    "wrong_way": "A pedestrian turns around and walks against the flow of the crowd.",
    "left_object": "A pedestrian drops a bag and walks away, leaving it unattended.",
    "sudden_appearance": "A person appears out of nowhere in the middle of the scene.",
    "erratic": "A person moves erratically, jerking in rapidly changing directions.",
    "normal": "Pedestrians cross the plaza at a normal walking pace; nothing unusual happens.",
}

# Scene geometry, as fractions of the frame height/width.
_WALK_Y = (0.42, 0.95)  # feet of walkers stay in this band (fraction of height)
_WALK_HEIGHTS_PER_S = (0.7, 0.9)  # walking speed in body heights per second (~1.3 m/s)

_SHIRTS = [
    (200, 40, 40), (40, 90, 200), (230, 200, 40), (40, 160, 70), (230, 120, 30),
    (150, 60, 170), (235, 235, 235), (30, 170, 180), (210, 90, 140), (120, 70, 40),
]  # fmt: skip
_PANTS = [(35, 40, 60), (25, 25, 25), (90, 80, 60), (60, 60, 70), (40, 50, 90)]
_SKIN = [(240, 200, 170), (200, 150, 110), (150, 100, 70), (100, 65, 45)]
_BAGS = [(170, 30, 30), (30, 50, 150), (20, 20, 20), (210, 160, 30)]


class SceneTruth(Frozen):
    """Ground truth of a generated scene (``<name>.truth.json`` beside ``<name>.mp4``)."""

    video_path: str
    kind: str
    seed: int
    fps: float
    frame_count: int
    duration_s: float
    resolution_wh: tuple[int, int]
    spans: list[TimeSpan]
    boxes: list[Box]
    description: str
    walk_speed_px_s: float
    flow_direction_deg: float

    @property
    def truth_path(self) -> Path:
        return Path(self.video_path).with_suffix(".truth.json")

    def boxes_at(self, t_s: float, tol_s: float | None = None) -> list[Box]:
        """The truth boxes at time ``t_s`` (within half a frame unless ``tol_s`` is given)."""
        tol = 0.5 / self.fps if tol_s is None else tol_s
        return [b for b in self.boxes if abs(b.t_s - t_s) <= tol]

    def save(self, path: str | Path | None = None) -> Path:
        """Write the truth as JSON; the video path is stored relative to the JSON's folder."""
        path = Path(path) if path is not None else self.truth_path
        video = Path(self.video_path)
        rel = video.name if video.parent.resolve() == path.parent.resolve() else str(video)
        atomic_write_text(
            path, self.model_copy(update={"video_path": rel}).model_dump_json(indent=1)
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> SceneTruth:
        """Read a truth file; a relative ``video_path`` is resolved against its folder."""
        path = Path(path)
        data = json.loads(path.read_text(encoding="utf-8"))
        video = Path(data["video_path"])
        if not video.is_absolute():
            data["video_path"] = str((path.parent / video).resolve())
        return cls.model_validate(data)


# --------------------------------------------------------------------------------------------
# Trajectories
# --------------------------------------------------------------------------------------------


@dataclass
class _Track:
    """One person (or the bag) over every frame of the scene."""

    n: int
    shirt: tuple[int, int, int] = (200, 40, 40)
    pants: tuple[int, int, int] = (30, 30, 30)
    skin: tuple[int, int, int] = (200, 150, 110)
    x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    angle: np.ndarray = field(default_factory=lambda: np.zeros(0))  # 0 upright, 90 lying forward
    phase: np.ndarray = field(default_factory=lambda: np.zeros(0))  # gait phase (radians)
    visible: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    facing: np.ndarray = field(default_factory=lambda: np.ones(0))  # +1 right, -1 left
    carry: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # carries the bag
    is_bag: bool = False

    def __post_init__(self) -> None:
        n = self.n
        self.x, self.y, self.angle, self.phase = (np.zeros(n) for _ in range(4))
        self.visible = np.zeros(n, bool)
        self.facing = np.ones(n)
        self.carry = np.zeros(n, bool)


def _height(y: float | np.ndarray, h_img: int) -> Any:
    """Body height in pixels for feet at row ``y`` (mild perspective: nearer is larger)."""
    rel = (np.asarray(y, float) / h_img - _WALK_Y[0]) / (_WALK_Y[1] - _WALK_Y[0])
    return h_img * (0.11 + 0.06 * np.clip(rel, -0.5, 1.2))


class _Walk:
    """Integrates one person's motion frame by frame; behaviours set velocity per frame."""

    def __init__(self, track: _Track, fps: float, wh: tuple[int, int], rng: np.random.Generator):
        self.tr, self.fps, self.w, self.h, self.rng = track, fps, wh[0], wh[1], rng
        self.speed = float(rng.uniform(*_WALK_HEIGHTS_PER_S))  # heights per second
        self.heading = math.radians(float(rng.uniform(-10, 10)))
        self.gait = float(rng.uniform(0, 2 * math.pi))

    def step(
        self, i: int, x: float, y: float, vx_h: float, vy_h: float, **state: Any
    ) -> tuple[float, float]:
        """Record frame ``i`` at (x, y) and move by a velocity given in heights/second."""
        tr, hh = self.tr, float(_height(y, self.h))
        tr.x[i], tr.y[i], tr.visible[i] = x, y, True
        tr.angle[i] = state.get("angle", 0.0)
        tr.carry[i] = state.get("carry", False)
        speed = math.hypot(vx_h, vy_h)
        if abs(vx_h) > 1e-3:
            tr.facing[i] = 1.0 if vx_h > 0 else -1.0
        elif i > 0:
            tr.facing[i] = tr.facing[i - 1]
        self.gait += (
            2 * math.pi * 1.1 * speed / max(self.speed, 0.3) * 0.9 / self.fps * (speed > 0.05)
        )
        tr.phase[i] = self.gait
        y_new = y + vy_h * hh / self.fps
        lo, hi = _WALK_Y[0] * self.h, _WALK_Y[1] * self.h
        if not lo <= y_new <= hi:  # stay on the walkway: reflect the vertical motion
            self.heading = -self.heading
            y_new = min(max(y_new, lo), hi)
        return x + vx_h * hh / self.fps, y_new

    def walk_dir(self) -> tuple[float, float]:
        return self.speed * math.cos(self.heading), self.speed * math.sin(self.heading)


def _walkers(
    slot_rng: np.random.Generator,
    n: int,
    fps: float,
    wh: tuple[int, int],
    start: int,
    first_inside: bool,
) -> list[_Track]:
    """Ordinary walkers entering one after another from the left from frame ``start`` on."""
    w, h = wh
    tracks: list[_Track] = []
    i = start
    inside = first_inside
    while i < n:
        tr = _new_person(slot_rng, n)
        wk = _Walk(tr, fps, wh, slot_rng)
        y = float(slot_rng.uniform(_WALK_Y[0] + 0.03, _WALK_Y[1] - 0.02) * h)
        x = float(slot_rng.uniform(0.0, 0.95) * w) if inside else -0.3 * float(_height(y, h))
        inside = False
        while i < n and x - 0.4 * float(_height(y, h)) < w:
            x, y = wk.step(i, x, y, *wk.walk_dir())
            i += 1
        tracks.append(tr)
        i += int(slot_rng.uniform(0.3, 3.0) * fps)
    return tracks


def _new_person(rng: np.random.Generator, n: int) -> _Track:
    pick = rng.integers
    return _Track(
        n,
        shirt=_SHIRTS[int(pick(len(_SHIRTS)))],
        pants=_PANTS[int(pick(len(_PANTS)))],
        skin=_SKIN[int(pick(len(_SKIN)))],
    )


def _actor(
    kind: str,
    rng: np.random.Generator,
    others: list[_Track],
    n: int,
    fps: float,
    wh: tuple[int, int],
) -> tuple[list[_Track], int, int, _Track]:
    """The anomalous actor's track(s), the first and last anomalous frame, and the track whose
    box is the truth (the actor, or the bag it leaves)."""
    w, h = wh
    tr = _new_person(rng, n)
    wk = _Walk(tr, fps, wh, rng)
    wk.heading = math.radians(float(rng.uniform(-4, 4)))
    y = float(rng.uniform(_WALK_Y[0] + 0.12, _WALK_Y[1] - 0.08) * h)
    onset = {"sprint": (0.35, 0.5), "fall": (0.55, 0.65), "loiter": (0.25, 0.35),
             "wrong_way": (0.3, 0.4), "left_object": (0.55, 0.65),
             "sudden_appearance": (0.35, 0.6), "erratic": (0.3, 0.45)}[kind]  # fmt: skip
    f0 = int(rng.uniform(*onset) * n)
    x_at = {"sprint": (0.12, 0.25), "fall": (0.35, 0.6), "loiter": (0.35, 0.6), "wrong_way": (0.45, 0.6),
            "left_object": (0.35, 0.6), "sudden_appearance": (0.3, 0.7), "erratic": (0.3, 0.5)}[kind]  # fmt: skip
    x0 = float(rng.uniform(*x_at) * w)
    tracks = [tr]
    truth = tr
    if kind == "sudden_appearance":
        x0 = _free_spot(rng, others, f0, x0, y, wh)
        x, i = x0, f0
    else:  # walk in from the left edge (or from inside the frame when the onset comes early)
        v_px = wk.speed * float(_height(y, h)) * math.cos(wk.heading)
        i = max(0, f0 - int((x0 + 0.3 * float(_height(y, h))) / v_px * fps))
        x = x0 - v_px * (f0 - i) / fps
        carry = kind == "left_object"
        while i < f0:
            x, y = wk.step(i, x, y, *wk.walk_dir(), carry=carry)
            i += 1
    last = n - 1
    anchor = (x, y)
    if kind == "sprint":
        boost = float(rng.uniform(3.8, 4.6))
        while i < n and x - 0.4 * float(_height(y, h)) < w:
            ramp = min(1.0, (i - f0) / (0.3 * fps))
            vx, vy = wk.walk_dir()
            gain = 1 + (boost - 1) * ramp
            x, y = wk.step(i, x, y, vx * gain, vy * gain)
            if x - 0.05 * float(_height(y, h)) < w:  # the body is still mostly inside the frame
                last = i
            i += 1
    elif kind == "fall":
        dur_fall = 0.5 * fps
        while i < n:
            k = min(1.0, (i - f0) / dur_fall)
            vx = wk.speed * 0.6 * (1 - k)
            x, y = wk.step(i, x, y, vx, 0.0, angle=90.0 * k * k)
            i += 1
    elif kind == "loiter":
        stay = int(rng.uniform(0.4, 0.5) * n)
        last = min(n - 1, f0 + stay)
        heading = 0.0
        while i <= last:
            if rng.random() < 1.5 / fps:
                heading = float(rng.uniform(-math.pi, math.pi))
            hh = float(_height(y, h))
            dx, dy = anchor[0] - x, anchor[1] - y
            if math.hypot(dx, dy) > 0.7 * hh:  # drift back towards the spot
                heading = math.atan2(dy, dx)
            sp = 0.25 if rng.random() > 0.3 else 0.0
            x, y = wk.step(i, x, y, sp * math.cos(heading), sp * math.sin(heading))
            i += 1
        i = _walk_out(wk, i, x, y, n)
    elif kind == "wrong_way":
        turn = int(0.6 * fps)
        while i < n and x + 0.4 * float(_height(y, h)) > 0:
            k = min(1.0, (i - f0) / turn)
            vx = wk.speed * math.cos(math.pi * k)
            x, y = wk.step(i, x, y, vx, 0.0)
            if x + 0.05 * float(_height(y, h)) > 0:
                last = i
            i += 1
    elif kind == "left_object":
        bag = _Track(n, shirt=_BAGS[int(rng.integers(len(_BAGS)))], is_bag=True)
        hh = float(_height(y, h))
        bag.x[f0:] = x + 0.22 * hh  # the bag's left edge rests where the hand was
        bag.y[f0:] = y
        bag.visible[f0:] = True
        pause = int(0.8 * fps)
        while i < f0 + pause // 2 and i < n:
            x, y = wk.step(i, x, y, 0.0, 0.0, carry=True)
            i += 1
        while i < f0 + pause and i < n:
            x, y = wk.step(i, x, y, 0.0, 0.0, carry=False)
            i += 1
        i = _walk_out(wk, i, x, y, n)
        tracks.append(bag)
        truth = bag
    elif kind == "sudden_appearance":
        last = min(n - 1, f0 + int(3.0 * fps))
        stand = min(n, f0 + int(2.5 * fps))
        while i < stand:
            x, y = wk.step(i, x, y, 0.0, 0.0)
            i += 1
        i = _walk_out(wk, i, x, y, n)
    elif kind == "erratic":
        last = min(n - 1, f0 + int(rng.uniform(5.0, 7.0) * fps))
        heading, sp, next_change = 0.0, 1.0, i
        while i <= last:
            hh = float(_height(y, h))
            if i >= next_change:
                heading = float(rng.uniform(-math.pi, math.pi))
                sp = float(rng.uniform(1.0, 2.5))
                next_change = i + int(rng.uniform(0.25, 0.5) * fps)
            dx, dy = anchor[0] - x, anchor[1] - y
            if math.hypot(dx, dy) > 1.5 * hh:
                heading = math.atan2(dy, dx) + float(rng.uniform(-0.5, 0.5))
            x, y = wk.step(i, x, y, sp * math.cos(heading), sp * math.sin(heading))
            i += 1
        i = _walk_out(wk, i, x, y, n)
    return tracks, f0, last, truth


def _walk_out(wk: _Walk, i: int, x: float, y: float, n: int) -> int:
    """Walk with the flow until the person leaves the frame; returns the next frame index."""
    while i < n and x - 0.4 * float(_height(y, wk.h)) < wk.w:
        x, y = wk.step(i, x, y, *wk.walk_dir())
        i += 1
    return i


def _free_spot(
    rng: np.random.Generator, others: list[_Track], f: int, x0: float, y: float, wh: tuple[int, int]
) -> float:
    """An x near ``x0`` where nobody stands at frame ``f`` (so the appearance is unambiguous)."""
    w, h = wh
    hh = float(_height(y, h))
    for _ in range(30):
        busy = [
            t for t in others
            if t.visible[f] and abs(t.x[f] - x0) < 1.6 * hh and abs(t.y[f] - y) < 1.2 * hh
        ]  # fmt: skip
        if not busy:
            return x0
        x0 = float(rng.uniform(0.25, 0.75) * w)
    return x0


# --------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------


def _person_parts(
    x: float, y: float, hh: float, angle: float, phase: float, facing: float, carry: bool
) -> list[tuple[str, np.ndarray]]:
    """Polygons (image pixels) of a person: ('legs'|'body'|'skin'|'bag', points); the head is a
    16-gon so the same geometry serves drawing and the truth box."""
    swing = 0.13 * math.sin(phase) if angle < 1 else 0.05
    bob = 0.015 * abs(math.sin(phase)) if angle < 1 else 0.0

    def quad(a: tuple[float, float], b: tuple[float, float], width: float) -> np.ndarray:
        (u0, v0), (u1, v1) = a, b
        du, dv = u1 - u0, v1 - v0
        ln = math.hypot(du, dv) or 1.0
        pu, pv = -dv / ln * width / 2, du / ln * width / 2
        return np.array(
            [(u0 + pu, v0 + pv), (u1 + pu, v1 + pv), (u1 - pu, v1 - pv), (u0 - pu, v0 - pv)]
        )

    hip = (0.0, 0.48 + bob)
    parts = [
        ("legs", quad(hip, (swing, 0.02), 0.1)),
        ("legs", quad(hip, (-swing, 0.02), 0.1)),
        ("body", quad((0.0, 0.44 + bob), (0.0, 0.80 + bob), 0.25)),
        ("body", quad((0.1, 0.77 + bob), (0.1 - 0.6 * swing, 0.5 + bob), 0.06)),
        ("body", quad((-0.1, 0.77 + bob), (-0.1 + 0.6 * swing, 0.5 + bob), 0.06)),
    ]
    ang = np.linspace(0, 2 * math.pi, 16, endpoint=False)
    parts.append(("skin", np.stack([0.086 * np.cos(ang), 0.89 + bob + 0.086 * np.sin(ang)], 1)))
    if carry:
        parts.append(("bag", np.array([(0.13, 0.5), (0.40, 0.5), (0.40, 0.24), (0.13, 0.24)])))
    a = math.radians(angle)
    out = []
    for name, p in parts:
        u = p[:, 0] * math.cos(a) + p[:, 1] * math.sin(a)
        v = -p[:, 0] * math.sin(a) + p[:, 1] * math.cos(a)
        out.append((name, np.stack([x + facing * u * hh, y - v * hh], 1)))
    return out


def _bag_poly(tr: _Track, i: int, h_img: int) -> np.ndarray:
    hh = float(_height(tr.y[i], h_img))
    x0, y0 = tr.x[i], tr.y[i]
    return np.array(
        [(x0, y0 - 0.26 * hh), (x0 + 0.3 * hh, y0 - 0.26 * hh), (x0 + 0.3 * hh, y0), (x0, y0)]
    )


def _shapes(
    tr: _Track, i: int, h_img: int, bag_colour: tuple[int, int, int]
) -> list[tuple[tuple[int, int, int], np.ndarray]]:
    """(colour, polygon) pairs for a track at frame ``i``."""
    if tr.is_bag:
        return [(tr.shirt, _bag_poly(tr, i, h_img))]
    hh = float(_height(tr.y[i], h_img))
    colour = {"legs": tr.pants, "body": tr.shirt, "skin": tr.skin, "bag": bag_colour}
    parts = _person_parts(
        tr.x[i], tr.y[i], hh, tr.angle[i], tr.phase[i], tr.facing[i], bool(tr.carry[i])
    )
    return [(colour[name], p) for name, p in parts]


def _background(rng: np.random.Generator, wh: tuple[int, int]) -> np.ndarray:
    """A static plaza: building edge, textured paving with tiles and paths, benches and posts."""
    import cv2

    w, h = wh
    small = rng.normal(0, 1, (max(4, h // 6), max(4, w // 6), 1)).astype(np.float32)
    tex = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)[..., None]
    fine = rng.normal(0, 1, (h, w, 1)).astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[:] = np.array(rng.uniform(0.9, 1.1) * np.array([150.0, 146.0, 136.0]), np.float32)
    img += 7 * tex + 4 * fine
    top = int(0.28 * h)
    img[:top] = np.array([120, 105, 95], np.float32) + 6 * tex[:top] + 3 * fine[:top]
    for k in range(int(rng.integers(3, 6))):  # windows on the facade
        x0 = int((k + rng.uniform(0.1, 0.4)) * w / 5)
        cv2.rectangle(
            img, (x0, int(0.05 * h)), (x0 + int(0.08 * w), int(0.2 * h)), (70, 80, 95), -1
        )
    cv2.rectangle(img, (0, top), (w, top + max(2, h // 60)), (90, 85, 80), -1)
    tile = max(8, int(0.09 * h))
    for yy in range(top + tile, h, tile):  # tile joints
        cv2.line(img, (0, yy), (w, yy), (128, 124, 116), 1)
    for xx in range(int(rng.uniform(0, tile)), w, int(tile * 1.5)):
        cv2.line(img, (xx, top), (xx, h), (128, 124, 116), 1)
    for frac in (0.55, 0.8):  # two lighter paths along the flow
        y0 = int((frac + rng.uniform(-0.03, 0.03)) * h)
        img[y0 : y0 + int(0.06 * h)] += 14
    for _ in range(2):  # benches near the facade and posts along the front
        bx = int(rng.uniform(0.1, 0.8) * w)
        cv2.rectangle(
            img, (bx, top + 4), (bx + int(0.12 * w), top + 4 + int(0.03 * h)), (95, 70, 45), -1
        )
    for _ in range(3):
        px = int(rng.uniform(0.05, 0.95) * w)
        cv2.line(img, (px, top - int(0.12 * h)), (px, top + 6), (60, 60, 65), max(2, w // 240))
    return np.clip(img, 0, 255).astype(np.uint8)


def _fill(img: np.ndarray, poly: np.ndarray, colour: tuple[int, int, int]) -> None:
    import cv2

    pts = np.round(poly * 16).astype(np.int32)
    cv2.fillConvexPoly(img, pts, colour, lineType=cv2.LINE_AA, shift=4)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


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
    bg = _background(scene_rng, resolution_wh)
    mirror = bool(scene_rng.random() < 0.5)  # dominant flow to the right or to the left
    slot_seeds = scene_rng.integers(0, 2**31, size=max(n_agents, 1) + 1)
    tracks: list[_Track] = []
    for k in range(n_agents - 1):  # ordinary walkers; the last slot belongs to the actor
        tracks += _walkers(np.random.default_rng(slot_seeds[k]), n, fps, resolution_wh, 0, True)
    walkers = list(tracks)
    actor_rng = np.random.default_rng([seed, 1 + kind_idx])
    truth_track: _Track | None = None
    f0 = last = 0
    if kind == "normal":
        tracks += _walkers(np.random.default_rng(slot_seeds[-1]), n, fps, resolution_wh, 0, True)
    else:
        actor_tracks, f0, last, truth_track = _actor(kind, actor_rng, tracks, n, fps, resolution_wh)
        tracks += actor_tracks
        first_free = int(np.flatnonzero(actor_tracks[0].visible).max()) + int(2 * fps)
        if kind not in ("fall",):
            tracks += _walkers(
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
        mid_y = 0.5 * (_WALK_Y[0] + _WALK_Y[1]) * h
        walk_speed = float(np.mean(_WALK_HEIGHTS_PER_S)) * float(_height(mid_y, h))

    # Truth boxes.
    boxes: list[Box] = []
    bag_colour = _BAGS[int(actor_rng.integers(len(_BAGS)))]
    for tr in tracks:
        if tr.is_bag:
            bag_colour = tr.shirt
    if truth_track is not None:
        for i in range(f0, last + 1):
            if not truth_track.visible[i]:
                continue
            pts = np.concatenate([p for _, p in _shapes(truth_track, i, h, bag_colour)])
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
            for colour, poly in _shapes(tracks[k], fi, h, bag_colour):
                _fill(img, poly, colour)
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
        description=_DESCRIPTIONS[kind],
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
