"""Measured facts about one box: the ``measure`` inspector's engine (no model, no guessing).

The box is matched to a foreground blob, the blob is followed over nearby frames, and what can
be measured is reported: speed (px/s, body lengths/s, relative to the scene's typical speed),
size and posture, how long it has stayed still, its direction against the scene's dominant
flow, and whether it appeared out of nowhere (or was left behind by a person).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from vadetective.agent.core.types import Box
from vadetective.tools.backends.motion.activity import Activity, blob_velocity
from vadetective.tools.backends.motion.perception import snap_to_pass
from vadetective.tools.backends.motion.scene import Blob, Foreground, SceneModel, read_frames
from vadetective.tools.base import FrameSource

log = logging.getLogger(__name__)

TRACK_S = 1.0  # follow the blob this long either side of t
LOOKBACK_S = 3.0  # how far back a moving blob is followed to see where it came from
_STILL_BL_S = 0.3  # body lengths per second below which a blob counts as still
_SAME_FRACTION = 0.8  # share of a still blob's pixels that must be unchanged to call it the same

Facts = dict[str, float | int | str | bool | None]


@dataclass
class _Step:
    i: int
    t: float
    frame: np.ndarray
    fg: Foreground
    blob: Blob | None = None


def measure(
    scene: SceneModel,
    act: Activity,
    source: FrameSource,
    t_s: float,
    box: Box,
) -> tuple[Facts, float, list[Box]]:
    """Facts about ``box`` at ``t_s``, a confidence in [0, 1] for them, and the blob's box at
    each tracked moment (original pixels, time order; empty when nothing was matched)."""
    from vadetective.tools.video.sampling import nearest_indices

    ts = np.asarray(source.timestamps, dtype=np.float64)
    n = ts.size
    dt = scene.dt_frames
    i0 = int(nearest_indices(source, [t_s])[0])
    k_back = math.ceil(LOOKBACK_S * scene.fps / dt)
    k_fwd = math.ceil(TRACK_S * scene.fps / dt)
    idx = [i0 + k * dt for k in range(-k_back, k_fwd + 1) if 0 <= i0 + k * dt < n]
    frames = read_frames(source, idx, scene.max_side)
    if i0 not in frames:
        raise ValueError(f"the frame at {t_s:.2f} s could not be decoded")
    steps = {
        i: _Step(i, float(ts[i]), f, scene.foreground(f, float(ts[i]))) for i, f in frames.items()
    }
    target = scene.to_proc(box.xyxy)
    here = steps[i0]
    blob, iou = _best_blob(here.fg.blobs, target)
    facts: Facts = {"matched": blob is not None, "match_iou": round(iou, 2)}
    if blob is None:
        x1, y1, x2, y2 = box.xyxy
        facts.update(width_px=round(x2 - x1, 1), height_px=round(y2 - y1, 1))
        facts["note"] = "no moving or new foreground under the box: it looks like background"
        return facts, 0.3, []
    here.blob = blob
    label = scene.label(blob)
    w_px, h_px = blob.width * scene.scale, blob.height * scene.scale
    facts.update(
        label=label,
        width_px=round(w_px, 1),
        height_px=round(h_px, 1),
        aspect_hw=round(h_px / max(w_px, 1e-6), 2),
        posture=_posture(label, w_px, h_px),
        size_vs_person=round(blob.area / scene.person_area, 2),
    )

    # Speed and direction: template matching against the frames just before and after.
    vels = []
    for j in (i0 - dt, i0 + dt):
        if j in frames:
            v = blob_velocity(
                scene,
                here.frame,
                frames[j],
                here.fg.labels,
                blob,
                float(ts[j] - ts[i0]),
                scene.background_at(here.t),
            )
            if v is not None:
                vels.append(v)
    track = _track(scene, steps, i0, dt)
    if vels:
        vx, vy = float(np.mean([v[0] for v in vels])), float(np.mean([v[1] for v in vels]))
        trusted = True
    else:
        vx, vy = _track_velocity(track)
        trusted = len(track) >= 3
    speed_proc = math.hypot(vx, vy)
    speed_bl = speed_proc / scene.body_length(blob)
    facts.update(
        speed_px_s=round(speed_proc * scene.scale, 1),
        speed_body_lengths_s=round(speed_bl, 2),
        typical_speed_px_s=round(act.typical_speed_px_s, 1),
        speed_vs_typical=round(speed_bl / max(act.typical_speed_bl_s, 1e-6), 2),
        moving=speed_bl >= _STILL_BL_S,
        tracked_s=round(max(s.t for s in track) - min(s.t for s in track), 2),
    )
    if speed_bl >= _STILL_BL_S:
        ang = math.degrees(math.atan2(vy, vx)) % 360.0
        facts["direction_deg"] = round(ang, 1)
        if act.dominant_direction_deg is not None:
            diff = abs((ang - act.dominant_direction_deg + 180.0) % 360.0 - 180.0)
            facts.update(
                dominant_direction_deg=round(act.dominant_direction_deg, 1),
                angle_to_flow_deg=round(diff, 1),
                against_flow=diff >= 120.0,
                direction_rarity=round(act.rarity(ang), 2),
            )
        facts["static_for_s"] = 0.0
        start = min(s.t for s in track)
        first = min(track, key=lambda s: s.t)
    else:
        still = _still_since(scene, act, source, here, blob)
        facts["static_for_s"] = round(still, 2)
        start = here.t - still
        first = here
    _origin(scene, act, source, facts, first, start, label)
    confidence = 0.9 if trusted and iou >= 0.3 else 0.6
    res = source.info.resolution_wh
    boxes = [
        Box(
            t_s=s.t,
            xyxy=scene.to_original(s.blob.xyxy, res, inset=0.5),
            label=label,
            score=confidence,
        )
        for s in track
        if s.blob is not None
    ]
    return facts, confidence, boxes


def _posture(label: str, w: float, h: float) -> str:
    if label != "person":
        return "n/a"
    if w >= 1.4 * h:
        return "lying"
    if h >= 1.3 * w:
        return "upright"
    return "crouched or partly hidden"


def _best_blob(
    blobs: list[Blob], target: tuple[float, float, float, float]
) -> tuple[Blob | None, float]:
    best, best_iou = None, 0.0
    for b in blobs:
        iou = b.iou(target)
        if iou > best_iou:
            best, best_iou = b, iou
    if best is None or best_iou < 0.05:
        cx, cy = (target[0] + target[2]) / 2, (target[1] + target[3]) / 2
        inside = [b for b in blobs if b.xyxy[0] <= cx < b.xyxy[2] and b.xyxy[1] <= cy < b.xyxy[3]]
        if inside:
            best = max(inside, key=lambda b: b.area)
            best_iou = best.iou(target)
        else:
            return None, 0.0
    return best, best_iou


def _follow(scene: SceneModel, prev: Blob, cands: list[Blob], gap_s: float) -> Blob | None:
    """The blob in the next frame that ``prev`` most plausibly became."""
    reach = 0.5 * prev.long_side + 6.0 * scene.body_length(prev) * gap_s
    best, best_cost = None, math.inf
    for b in cands:
        d = math.hypot(b.cx - prev.cx, b.cy - prev.cy)
        size = abs(math.log(max(b.area, 1) / max(prev.area, 1)))
        if d <= reach and size < 1.2:
            cost = d / reach + size
            if cost < best_cost:
                best, best_cost = b, cost
    return best


def _track(scene: SceneModel, steps: dict[int, _Step], i0: int, dt: int) -> list[_Step]:
    """The blob at ``i0`` followed backwards and forwards through ``steps``."""
    track = [steps[i0]]
    for direction in (-1, 1):
        cur = steps[i0]
        j = i0 + direction * dt
        while j in steps and cur.blob is not None:
            nxt = steps[j]
            b = _follow(scene, cur.blob, nxt.fg.blobs, abs(nxt.t - cur.t))
            if b is None:
                break
            step = _Step(nxt.i, nxt.t, nxt.frame, nxt.fg, b)
            track.append(step)
            cur = step
            j += direction * dt
    return sorted(track, key=lambda s: s.t)


def _track_velocity(track: list[_Step]) -> tuple[float, float]:
    """Theil-Sen slope of the blob's centre over the track (processing px/s)."""
    pts = [(s.t, s.blob.cx, s.blob.cy) for s in track if s.blob is not None]
    if len(pts) < 2:
        return 0.0, 0.0
    sx, sy = [], []
    for a in range(len(pts)):
        for b in range(a + 1, len(pts)):
            dt = pts[b][0] - pts[a][0]
            if dt > 0:
                sx.append((pts[b][1] - pts[a][1]) / dt)
                sy.append((pts[b][2] - pts[a][2]) / dt)
    return (float(np.median(sx)), float(np.median(sy))) if sx else (0.0, 0.0)


def _same_place(scene: SceneModel, here: _Step, blob: Blob, other: np.ndarray) -> bool:
    """True when most of the blob's pixels look the same in ``other`` (it was already there)."""
    x1, y1, x2, y2 = blob.xyxy
    sel = here.fg.labels[y1:y2, x1:x2] == blob.label_id
    d = scene.difference(here.frame[y1:y2, x1:x2], other[y1:y2, x1:x2])
    return bool(np.mean(d[sel] <= scene.threshold) >= _SAME_FRACTION)


def _still_since(
    scene: SceneModel, act: Activity, source: FrameSource, here: _Step, blob: Blob
) -> float:
    """How long (s) the still blob has looked the same: doubling look-backs, then a bisection
    between the last offset where it was there and the first where it was not. Each look-back
    reads the pass's sample frame nearest to it (kept, so not decoded again)."""
    from vadetective.tools.video.sampling import nearest_indices

    def there(offset: float) -> bool | None:
        i = snap_to_pass(act, int(nearest_indices(source, [here.t - offset])[0]), scene.dt_frames)
        got = read_frames(source, [i], scene.max_side)
        return _same_place(scene, here, blob, got[i]) if i in got else None

    ok, bad = 0.0, None
    offset = 0.25
    while offset <= here.t + 1e-6:
        res = there(offset)
        if res is None:
            break
        if not res:
            bad = offset
            break
        ok = offset
        offset *= 2
    if bad is None:
        if here.t - ok > 1e-6 and there(here.t):
            ok = here.t  # there since the first frame
        return ok
    for _ in range(4):
        mid = (ok + bad) / 2
        res = there(mid)
        if res is None:
            break
        ok, bad = (mid, bad) if res else (ok, mid)
    return ok


def _origin(
    scene: SceneModel,
    act: Activity,
    source: FrameSource,
    facts: Facts,
    first: _Step,
    start: float,
    label: str,
) -> None:
    """Where the blob came from: from an edge or another blob (a person), or out of nowhere."""
    from vadetective.tools.video.sampling import nearest_indices

    blob = first.blob
    if blob is None or start <= 0.05:
        facts["appeared_suddenly"] = False
        return
    w, h = scene.proc_wh
    m = 0.5 * scene.person_side
    x1, y1, x2, y2 = blob.xyxy
    if x1 <= m or y1 <= m or x2 >= w - m or y2 >= h - m:
        facts["appeared_suddenly"] = False
        facts["entered_from_edge"] = True
        return
    back = max(0.0, start - 2 * scene.dt_frames / scene.fps)
    i = snap_to_pass(act, int(nearest_indices(source, [back])[0]), scene.dt_frames)
    got = read_frames(source, [i], scene.max_side)
    if i not in got:
        return
    fg = scene.foreground(got[i], float(source.timestamps[i]))
    r = math.ceil(0.6 * scene.person_side)
    near = [
        b for b in fg.blobs
        if b.xyxy[0] - r < x2 and b.xyxy[2] + r > x1 and b.xyxy[1] - r < y2 and b.xyxy[3] + r > y1
    ]  # fmt: skip
    facts["appeared_suddenly"] = not near
    if not near:
        facts["appeared_at_s"] = round(start, 2)
    elif label == "object":
        facts["separated_from_person"] = any(scene.label(b) == "person" for b in near)
        facts["appeared_at_s"] = round(start, 2)


def summarize(facts: Facts, question: str) -> str:
    """One sentence of the measured facts, the ones the question asks about first."""
    if not facts.get("matched"):
        return (
            "No foreground blob lies under this box at this time: the region matches the "
            "background model, so nothing moving, new or left there can be measured."
        )
    label = str(facts.get("label", "blob"))
    parts: list[tuple[str, str]] = []  # (topic, clause)
    speed = float(facts.get("speed_px_s") or 0.0)
    rel = float(facts.get("speed_vs_typical") or 0.0)
    if facts.get("moving"):
        parts.append(("speed", f"moves at {speed:.0f} px/s ({rel:.1f}x the scene's typical speed)"))
    elif float(facts.get("static_for_s") or 0.0) >= 0.5:
        parts.append(("still", f"has been still for {float(facts['static_for_s'] or 0.0):.1f} s"))
    else:
        parts.append(
            ("still", f"is nearly stationary ({speed:.0f} px/s) but changing shape or place")
        )
    if label == "person":
        parts.append(
            (
                "posture",
                f"is {facts.get('posture')} ({facts.get('width_px'):.0f}x{facts.get('height_px'):.0f} px)",
            )
        )
    else:
        parts.append(
            (
                "size",
                f"is {facts.get('size_vs_person'):.2f}x a person's size ({facts.get('width_px'):.0f}x{facts.get('height_px'):.0f} px)",
            )
        )
    if facts.get("angle_to_flow_deg") is not None:
        against = (
            "against"
            if facts.get("against_flow")
            else "with"
            if float(facts["angle_to_flow_deg"] or 0) <= 60
            else "across"
        )
        parts.append(
            (
                "direction",
                f"heads {against} the dominant flow ({facts['angle_to_flow_deg']:.0f} deg off it)",
            )
        )
    if facts.get("appeared_suddenly"):
        parts.append(("appear", f"appeared out of nowhere at {facts.get('appeared_at_s')} s"))
    elif facts.get("separated_from_person"):
        parts.append(("appear", f"was left by a person at about {facts.get('appeared_at_s')} s"))
    q = question.lower()
    topics = {
        "speed": ("run", "fast", "speed", "sprint", "quick", "slow", "moving", "move"),
        "still": (
            "still",
            "static",
            "long",
            "left",
            "stay",
            "stopp",
            "motionless",
            "abandon",
            "wait",
        ),
        "posture": (
            "lying",
            "fall",
            "fell",
            "down",
            "ground",
            "stand",
            "upright",
            "posture",
            "injur",
        ),
        "direction": ("direction", "way", "against", "flow", "toward", "heading", "opposite"),
        "appear": ("appear", "sudden", "where", "come", "from", "left", "drop", "owner"),
        "size": ("size", "big", "small", "object", "bag", "what"),
    }
    asked = [t for t, words in topics.items() if any(w in q for w in words)]
    parts.sort(key=lambda p: 0 if p[0] in asked else 1)
    clauses = [c for _, c in parts]
    body = ", ".join(clauses[:-1]) + (" and " if len(clauses) > 1 else "") + clauses[-1]
    return f"The {label}-like blob {body}."
