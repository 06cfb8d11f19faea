"""How the people of a synthetic scene move: ordinary walkers and the actor of each anomaly."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Scene geometry, as fractions of the frame height/width.
WALK_Y = (0.42, 0.95)  # feet of walkers stay in this band (fraction of height)
WALK_HEIGHTS_PER_S = (0.7, 0.9)  # walking speed in body heights per second (~1.3 m/s)


SHIRTS = [
    (200, 40, 40), (40, 90, 200), (230, 200, 40), (40, 160, 70), (230, 120, 30),
    (150, 60, 170), (235, 235, 235), (30, 170, 180), (210, 90, 140), (120, 70, 40),
]  # fmt: skip
PANTS = [(35, 40, 60), (25, 25, 25), (90, 80, 60), (60, 60, 70), (40, 50, 90)]
SKIN = [(240, 200, 170), (200, 150, 110), (150, 100, 70), (100, 65, 45)]
BAGS = [(170, 30, 30), (30, 50, 150), (20, 20, 20), (210, 160, 30)]


@dataclass
class Track:
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


def body_height(y: float | np.ndarray, h_img: int) -> Any:
    """Body height in pixels for feet at row ``y`` (mild perspective: nearer is larger)."""
    rel = (np.asarray(y, float) / h_img - WALK_Y[0]) / (WALK_Y[1] - WALK_Y[0])
    return h_img * (0.11 + 0.06 * np.clip(rel, -0.5, 1.2))


class _Walk:
    """Integrates one person's motion frame by frame; behaviours set velocity per frame."""

    def __init__(self, track: Track, fps: float, wh: tuple[int, int], rng: np.random.Generator):
        self.tr, self.fps, self.w, self.h, self.rng = track, fps, wh[0], wh[1], rng
        self.speed = float(rng.uniform(*WALK_HEIGHTS_PER_S))  # heights per second
        self.heading = math.radians(float(rng.uniform(-10, 10)))
        self.gait = float(rng.uniform(0, 2 * math.pi))

    def step(
        self, i: int, x: float, y: float, vx_h: float, vy_h: float, **state: Any
    ) -> tuple[float, float]:
        """Record frame ``i`` at (x, y) and move by a velocity given in heights/second."""
        tr, hh = self.tr, float(body_height(y, self.h))
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
        lo, hi = WALK_Y[0] * self.h, WALK_Y[1] * self.h
        if not lo <= y_new <= hi:  # stay on the walkway: reflect the vertical motion
            self.heading = -self.heading
            y_new = min(max(y_new, lo), hi)
        return x + vx_h * hh / self.fps, y_new

    def walk_dir(self) -> tuple[float, float]:
        return self.speed * math.cos(self.heading), self.speed * math.sin(self.heading)


def walker_tracks(
    slot_rng: np.random.Generator,
    n: int,
    fps: float,
    wh: tuple[int, int],
    start: int,
    first_inside: bool,
) -> list[Track]:
    """Ordinary walkers entering one after another from the left from frame ``start`` on."""
    w, h = wh
    tracks: list[Track] = []
    i = start
    inside = first_inside
    while i < n:
        tr = _new_person(slot_rng, n)
        wk = _Walk(tr, fps, wh, slot_rng)
        y = float(slot_rng.uniform(WALK_Y[0] + 0.03, WALK_Y[1] - 0.02) * h)
        x = float(slot_rng.uniform(0.0, 0.95) * w) if inside else -0.3 * float(body_height(y, h))
        inside = False
        while i < n and x - 0.4 * float(body_height(y, h)) < w:
            x, y = wk.step(i, x, y, *wk.walk_dir())
            i += 1
        tracks.append(tr)
        i += int(slot_rng.uniform(0.3, 3.0) * fps)
    return tracks


def _new_person(rng: np.random.Generator, n: int) -> Track:
    pick = rng.integers
    return Track(
        n,
        shirt=SHIRTS[int(pick(len(SHIRTS)))],
        pants=PANTS[int(pick(len(PANTS)))],
        skin=SKIN[int(pick(len(SKIN)))],
    )


def actor_tracks_for(
    kind: str,
    rng: np.random.Generator,
    others: list[Track],
    n: int,
    fps: float,
    wh: tuple[int, int],
) -> tuple[list[Track], int, int, Track]:
    """The anomalous actor's track(s), the first and last anomalous frame, and the track whose
    box is the truth (the actor, or the bag it leaves)."""
    w, h = wh
    tr = _new_person(rng, n)
    wk = _Walk(tr, fps, wh, rng)
    wk.heading = math.radians(float(rng.uniform(-4, 4)))
    y = float(rng.uniform(WALK_Y[0] + 0.12, WALK_Y[1] - 0.08) * h)
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
        v_px = wk.speed * float(body_height(y, h)) * math.cos(wk.heading)
        i = max(0, f0 - int((x0 + 0.3 * float(body_height(y, h))) / v_px * fps))
        x = x0 - v_px * (f0 - i) / fps
        carry = kind == "left_object"
        while i < f0:
            x, y = wk.step(i, x, y, *wk.walk_dir(), carry=carry)
            i += 1
    last = n - 1
    anchor = (x, y)
    if kind == "sprint":
        boost = float(rng.uniform(3.8, 4.6))
        while i < n and x - 0.4 * float(body_height(y, h)) < w:
            ramp = min(1.0, (i - f0) / (0.3 * fps))
            vx, vy = wk.walk_dir()
            gain = 1 + (boost - 1) * ramp
            x, y = wk.step(i, x, y, vx * gain, vy * gain)
            if x - 0.05 * float(body_height(y, h)) < w:  # the body is still mostly inside the frame
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
            hh = float(body_height(y, h))
            dx, dy = anchor[0] - x, anchor[1] - y
            if math.hypot(dx, dy) > 0.7 * hh:  # drift back towards the spot
                heading = math.atan2(dy, dx)
            sp = 0.25 if rng.random() > 0.3 else 0.0
            x, y = wk.step(i, x, y, sp * math.cos(heading), sp * math.sin(heading))
            i += 1
        i = _walk_out(wk, i, x, y, n)
    elif kind == "wrong_way":
        turn = int(0.6 * fps)
        while i < n and x + 0.4 * float(body_height(y, h)) > 0:
            k = min(1.0, (i - f0) / turn)
            vx = wk.speed * math.cos(math.pi * k)
            x, y = wk.step(i, x, y, vx, 0.0)
            if x + 0.05 * float(body_height(y, h)) > 0:
                last = i
            i += 1
    elif kind == "left_object":
        bag = Track(n, shirt=BAGS[int(rng.integers(len(BAGS)))], is_bag=True)
        hh = float(body_height(y, h))
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
            hh = float(body_height(y, h))
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
    while i < n and x - 0.4 * float(body_height(y, wk.h)) < wk.w:
        x, y = wk.step(i, x, y, *wk.walk_dir())
        i += 1
    return i


def _free_spot(
    rng: np.random.Generator, others: list[Track], f: int, x0: float, y: float, wh: tuple[int, int]
) -> float:
    """An x near ``x0`` where nobody stands at frame ``f`` (so the appearance is unambiguous)."""
    w, h = wh
    hh = float(body_height(y, h))
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
