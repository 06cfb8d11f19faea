"""What a synthetic scene holds: the anomaly kinds and the ground truth of one scene."""

from __future__ import annotations

import json
from pathlib import Path

from vadetective.agent.core.io import atomic_write_text
from vadetective.agent.core.types import Box, Frozen, TimeSpan

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

DESCRIPTIONS: dict[str, str] = {
    "sprint": "A pedestrian suddenly breaks into a sprint, running at several times walking speed.",
    "fall": "A pedestrian falls to the ground and stays lying there.",
    "loiter": "A person stops and lingers in one place, wandering slowly for a long time.",
    "wrong_way": "A pedestrian turns around and walks against the flow of the crowd.",
    "left_object": "A pedestrian drops a bag and walks away, leaving it unattended.",
    "sudden_appearance": "A person appears out of nowhere in the middle of the scene.",
    "erratic": "A person moves erratically, jerking in rapidly changing directions.",
    "normal": "Pedestrians cross the plaza at a normal walking pace; nothing unusual happens.",
}


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
