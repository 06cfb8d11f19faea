"""Drawing a synthetic scene: the plaza background, people and bags."""

from __future__ import annotations

import math

import numpy as np

from vadetective.agent.synth.actors import Track, body_height


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


def _bag_poly(tr: Track, i: int, h_img: int) -> np.ndarray:
    hh = float(body_height(tr.y[i], h_img))
    x0, y0 = tr.x[i], tr.y[i]
    return np.array(
        [(x0, y0 - 0.26 * hh), (x0 + 0.3 * hh, y0 - 0.26 * hh), (x0 + 0.3 * hh, y0), (x0, y0)]
    )


def shapes(
    tr: Track, i: int, h_img: int, bag_colour: tuple[int, int, int]
) -> list[tuple[tuple[int, int, int], np.ndarray]]:
    """(colour, polygon) pairs for a track at frame ``i``."""
    if tr.is_bag:
        return [(tr.shirt, _bag_poly(tr, i, h_img))]
    hh = float(body_height(tr.y[i], h_img))
    colour = {"legs": tr.pants, "body": tr.shirt, "skin": tr.skin, "bag": bag_colour}
    parts = _person_parts(
        tr.x[i], tr.y[i], hh, tr.angle[i], tr.phase[i], tr.facing[i], bool(tr.carry[i])
    )
    return [(colour[name], p) for name, p in parts]


def background(rng: np.random.Generator, wh: tuple[int, int]) -> np.ndarray:
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


def fill(img: np.ndarray, poly: np.ndarray, colour: tuple[int, int, int]) -> None:
    import cv2

    pts = np.round(poly * 16).astype(np.int32)
    cv2.fillConvexPoly(img, pts, colour, lineType=cv2.LINE_AA, shift=4)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
