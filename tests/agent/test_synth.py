"""Synthetic scenes: determinism, real decodable files, and truth that matches the pixels."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from vadetective.agent.synth.scene import generate_scene, generate_suite
from vadetective.agent.synth.truth import ANOMALY_KINDS, SCENE_KINDS, SceneTruth
from vadetective.tools.video.sources import open_video

DURATION_S = 10.0


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SceneTruth]:
    root = tmp_path_factory.mktemp("synth-suite")
    truths = generate_suite(root, kinds=SCENE_KINDS, seeds=(3,), duration_s=DURATION_S)
    return {t.kind: t for t in truths}


def _frames(truth: SceneTruth) -> np.ndarray:
    with open_video(truth.video_path) as src:
        return src.read(list(range(src.info.frame_count))).frames


def _centres(truth: SceneTruth) -> tuple[np.ndarray, np.ndarray]:
    t = np.array([b.t_s for b in truth.boxes])
    c = np.array([b.center for b in truth.boxes])
    return t, c


def test_suite_has_every_kind_and_a_manifest(suite: dict[str, SceneTruth]) -> None:
    assert set(suite) == set(SCENE_KINDS)
    assert set(ANOMALY_KINDS) >= {
        "sprint",
        "fall",
        "loiter",
        "wrong_way",
        "left_object",
        "sudden_appearance",
        "erratic",
    }
    root = Path(suite["sprint"].video_path).parent
    lines = (root / "manifest.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == len(SCENE_KINDS)
    for row in rows:
        truth = suite[row["label"]]
        assert (root / row["path"]).resolve() == Path(truth.video_path)
        assert not Path(row["path"]).is_absolute()
        assert row["spans"] == [[s.start_s, s.end_s] for s in truth.spans]


@pytest.mark.parametrize("kind", SCENE_KINDS)
def test_file_decodes_with_the_declared_geometry(suite: dict[str, SceneTruth], kind: str) -> None:
    truth = suite[kind]
    with open_video(truth.video_path) as src:
        info = src.info
        assert info.frame_count == truth.frame_count == round(DURATION_S * truth.fps)
        assert info.fps == pytest.approx(truth.fps, rel=1e-3)
        assert info.resolution_wh == truth.resolution_wh == (480, 270)
        assert info.codec == "h264"
        np.testing.assert_allclose(
            src.timestamps, np.arange(truth.frame_count) / truth.fps, atol=2e-3
        )


@pytest.mark.parametrize("kind", SCENE_KINDS)
def test_truth_lies_inside_the_video_and_the_frame(suite: dict[str, SceneTruth], kind: str) -> None:
    truth = suite[kind]
    if kind == "normal":
        assert truth.spans == [] and truth.boxes == []
        return
    assert len(truth.spans) == 1
    span = truth.spans[0]
    assert 0.0 <= span.start_s < span.end_s <= truth.duration_s + 1e-9
    assert span.duration_s >= 1.0
    # One box per frame of the span, each inside the frame and inside the span.
    frames_in_span = [i for i in range(truth.frame_count) if span.contains(i / truth.fps)]
    assert len(truth.boxes) >= 0.9 * len(frames_in_span)
    for box in truth.boxes:
        assert box.inside(truth.resolution_wh, tolerance_px=0.0)
        assert span.contains(box.t_s)
        assert box.label == ("object" if kind == "left_object" else "person")
    assert truth.description.endswith(".")


def test_truth_boxes_cover_the_drawn_actor(suite: dict[str, SceneTruth]) -> None:
    """Inside every truth box the pixels differ from the scene's background (median frame)."""
    for kind in ANOMALY_KINDS:
        truth = suite[kind]
        boxes = truth.boxes[:: max(1, len(truth.boxes) // 6)]
        with open_video(truth.video_path) as src:
            background = np.median(src.read(list(range(0, truth.frame_count, 6))).frames, axis=0)
            batch = src.read([round(b.t_s * truth.fps) for b in boxes])
        for box, frame in zip(boxes, batch.frames, strict=True):
            x1, y1, x2, y2 = (round(v) for v in box.xyxy)
            diff = np.abs(frame[y1:y2, x1:x2].astype(float) - background[y1:y2, x1:x2]).max(axis=2)
            assert np.mean(diff > 30) > 0.25, f"{kind} at {box.t_s:.2f} s: the box holds background"


def test_same_seed_gives_identical_scenes(tmp_path: Path) -> None:
    a = generate_scene(
        tmp_path / "a", kind="left_object", seed=5, duration_s=6.0, resolution_wh=(320, 180)
    )
    b = generate_scene(
        tmp_path / "b", kind="left_object", seed=5, duration_s=6.0, resolution_wh=(320, 180)
    )
    c = generate_scene(
        tmp_path / "c", kind="left_object", seed=6, duration_s=6.0, resolution_wh=(320, 180)
    )
    assert a.model_dump(exclude={"video_path"}) == b.model_dump(exclude={"video_path"})
    assert Path(a.video_path).read_bytes() == Path(b.video_path).read_bytes()
    np.testing.assert_array_equal(_frames(a), _frames(b))
    assert a.boxes != c.boxes
    assert not np.array_equal(_frames(a), _frames(c))


def test_scenes_of_one_seed_share_background_and_walkers(suite: dict[str, SceneTruth]) -> None:
    """Kinds differ by their actor only: the first frames (before any onset) nearly agree."""
    normal, sprint = _frames(suite["normal"])[0], _frames(suite["sprint"])[0]
    assert normal.shape == sprint.shape
    same = np.abs(normal.astype(int) - sprint.astype(int)).max(axis=2) <= 12
    assert same.mean() > 0.9


def test_truth_round_trips_through_json(suite: dict[str, SceneTruth], tmp_path: Path) -> None:
    truth = suite["fall"]
    loaded = SceneTruth.load(truth.truth_path)
    assert loaded == truth
    moved = tmp_path / "moved"
    moved.mkdir()
    for p in (Path(truth.video_path), truth.truth_path):
        (moved / p.name).write_bytes(p.read_bytes())
    again = SceneTruth.load(moved / truth.truth_path.name)
    assert again.video_path == str((moved / Path(truth.video_path).name).resolve())
    assert again.spans == truth.spans


def test_sprint_runs_several_times_walking_speed(suite: dict[str, SceneTruth]) -> None:
    truth = suite["sprint"]
    t, c = _centres(truth)
    speed = np.hypot(*np.diff(c, axis=0).T) / np.diff(t)
    cruise = speed[t[1:] > t[0] + 0.4]  # after the 0.3 s acceleration
    assert truth.walk_speed_px_s > 10
    assert np.median(cruise) >= 2.5 * truth.walk_speed_px_s


def test_fall_turns_horizontal_and_stays(suite: dict[str, SceneTruth]) -> None:
    truth = suite["fall"]
    first, last = truth.boxes[0], truth.boxes[-1]
    w0, h0 = first.xyxy[2] - first.xyxy[0], first.xyxy[3] - first.xyxy[1]
    w1, h1 = last.xyxy[2] - last.xyxy[0], last.xyxy[3] - last.xyxy[1]
    assert h0 > 1.5 * w0 and w1 > 2.0 * h1
    assert truth.spans[0].end_s == pytest.approx(truth.duration_s)
    lying = [b for b in truth.boxes if b.t_s > truth.spans[0].start_s + 1.0]
    assert max(abs(a - b) for box in lying for a, b in zip(box.xyxy, last.xyxy, strict=True)) < 0.5


def test_left_object_stays_put_until_the_end(suite: dict[str, SceneTruth]) -> None:
    truth = suite["left_object"]
    xy = np.array([b.xyxy for b in truth.boxes])
    assert np.ptp(xy, axis=0).max() < 1e-6
    assert truth.spans[0].end_s == pytest.approx(truth.duration_s)
    w, h = xy[0, 2] - xy[0, 0], xy[0, 3] - xy[0, 1]
    assert 4 <= w <= 30 and 4 <= h <= 30  # bag-sized, not person-sized


def test_loiter_stays_near_one_spot_for_long(suite: dict[str, SceneTruth]) -> None:
    truth = suite["loiter"]
    _t, c = _centres(truth)
    height = truth.boxes[0].xyxy[3] - truth.boxes[0].xyxy[1]
    assert truth.spans[0].duration_s >= 0.3 * truth.duration_s
    assert np.hypot(*(c - c[0]).T).max() < 1.5 * height


def test_wrong_way_moves_against_the_flow(suite: dict[str, SceneTruth]) -> None:
    truth = suite["wrong_way"]
    t, c = _centres(truth)
    late = t > t[0] + 1.0  # after the turn
    vx = np.diff(c[late, 0]) / np.diff(t[late])
    flow = math.cos(math.radians(truth.flow_direction_deg))
    assert truth.flow_direction_deg in (0.0, 180.0)
    assert np.median(vx * flow) < -0.5 * truth.walk_speed_px_s


def test_sudden_appearance_pops_up_mid_frame(suite: dict[str, SceneTruth]) -> None:
    truth = suite["sudden_appearance"]
    frames = _frames(truth)
    first = truth.boxes[0]
    w, _h = truth.resolution_wh
    x1, y1, x2, y2 = (round(v) for v in first.xyxy)
    assert x1 > 0.15 * w and x2 < 0.85 * w
    i = round(first.t_s * truth.fps)
    before = frames[i - 1, y1:y2, x1:x2].astype(int)
    after = frames[i, y1:y2, x1:x2].astype(int)
    assert np.mean(np.abs(after - before).max(axis=2) > 30) > 0.25  # it was not there a frame ago


def test_erratic_changes_direction_often(suite: dict[str, SceneTruth]) -> None:
    truth = suite["erratic"]
    _t, c = _centres(truth)
    step = max(1, round(0.2 * truth.fps))
    v = np.diff(c[::step], axis=0)
    ang = np.arctan2(v[:, 1], v[:, 0])
    turns = np.abs(np.angle(np.exp(1j * np.diff(ang))))
    assert np.sum(turns > math.radians(60)) >= 5


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        generate_scene(tmp_path, kind="explosion")
    with pytest.raises(ValueError, match="even"):
        generate_scene(tmp_path, resolution_wh=(481, 270))
    with pytest.raises(ValueError, match="duration_s"):
        generate_scene(tmp_path, duration_s=2.0)
