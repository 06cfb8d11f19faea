"""What the weight-free inspector's measurements mean: thresholds and the finding they make.

The ``measure`` inspector reports ``MeasuredFacts``; a model inspector may report none, and then
the timeline decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from vadetective.agent.core.types import Box, Evidence
from vadetective.agent.core.vocabulary import Category, MeasuredFacts

#: A blob moving this many times faster than the scene's typical speed is running.
SPEED_RATIO = 2.2
#: A new object static for this long (seconds) has been left behind.
STATIC_OBJECT_S = 3.0
#: A person who stays in place this long (seconds) while others walk is loitering.
STATIC_PERSON_S = 6.0
#: A person tracked this long (seconds) at no more than this fraction of the typical speed is
#: lingering (loitering moves a little, so it is rarely fully static).
LINGER_TRACKED_S, LINGER_SPEED_RATIO = 3.0, 0.35


@dataclass(frozen=True)
class Finding:
    """What the measured facts of one inspected box say."""

    evidence: Evidence
    box: Box
    strength: float
    category: Category | None
    reasons: list[str]

    @property
    def label(self) -> str:
        m = self.evidence.measured
        return (m.label if m is not None else None) or "blob"


def read_facts(measured: MeasuredFacts | None) -> tuple[float, Category | None, list[str]]:
    """(strength, category, reasons) from what an inspection measured.

    Strength is 0 when nothing abnormal was measured and >= 1 when a rule fires; the strongest
    rule names the category.
    """
    if measured is None:
        return 0.0, None, []
    f = measured
    hits: list[tuple[float, Category, str]] = []
    label = f.label or ""
    speed = f.speed_vs_typical
    static = f.static_for_s or 0.0
    if speed is not None and speed >= SPEED_RATIO and f.moving is not False:
        hits.append(
            (
                min(2.0, speed / SPEED_RATIO),
                Category.RUNNING,
                f"moved at {speed:.1f}x the scene's typical speed",
            )
        )
    if f.posture == "lying":
        hits.append(
            (
                1.5,
                Category.FALL,
                "lies on the ground" + (f" and stayed static for {static:.1f} s" if static else ""),
            )
        )
    if label == "object" and (static >= STATIC_OBJECT_S or f.separated_from_person):
        what = "was left by a person" if f.separated_from_person else "appeared"
        hits.append(
            (
                1.4,
                Category.OBJECT_LEFT,
                f"is an object that {what} and stayed static for {static:.1f} s",
            )
        )
    elif label == "person" and f.posture != "lying":
        tracked = f.tracked_s or 0.0
        if static >= STATIC_PERSON_S:
            hits.append((1.1, Category.LOITERING, f"stayed in place for {static:.1f} s"))
        elif speed is not None and speed <= LINGER_SPEED_RATIO and tracked >= LINGER_TRACKED_S:
            hits.append(
                (
                    1.05,
                    Category.LOITERING,
                    f"lingered almost in place ({speed:.1f}x the typical speed over {tracked:.1f} s)",
                )
            )
    if f.appeared_suddenly and label != "object":
        hits.append(
            (1.2, Category.SUDDEN_APPEARANCE, "appeared suddenly in the middle of the scene")
        )
    if f.against_flow:
        angle = f.angle_to_flow_deg
        hits.append(
            (
                1.1,
                Category.COUNTERFLOW,
                "moved against the dominant flow"
                + (f" ({angle:.0f} deg off it)" if angle is not None else ""),
            )
        )
    if f.erratic:
        hits.append((1.1, Category.ERRATIC, "moved erratically, changing direction"))
    if not hits:
        return 0.0, None, []
    hits.sort(key=lambda h: -h[0])
    return hits[0][0], hits[0][1], [h[2] for h in hits]
