"""The motion grounder on synthetic scenes: it finds the anomalous actor, labelled sensibly."""

from __future__ import annotations

import pytest
from motion_cases import ASSERTED, SEEDS, SceneResult

from vadetective.agent.synth.truth import SceneTruth
from vadetective.tools.backends.motion.backends import MotionGrounder
from vadetective.tools.video.sources import open_video

Results = dict[tuple[str, int], SceneResult]
Scenes = dict[tuple[str, int], SceneTruth]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ASSERTED)
def test_ground_finds_the_actor_on_most_frames(
    motion_results: Results, kind: str, seed: int
) -> None:
    r = motion_results[kind, seed]
    assert r.hit_rate is not None and r.hit_rate >= 0.6, (
        f"{kind} seed {seed}: hit rate {r.hit_rate}"
    )
    expected = "bag" if kind == "left_object" else "person"
    assert set(r.hit_labels) == {expected}


def test_phrases_select_person_or_object_blobs(motion_scenes: Scenes) -> None:
    truth = motion_scenes["left_object", SEEDS[0]]
    t = truth.duration_s - 0.5
    bag = truth.boxes_at(round(t * truth.fps) / truth.fps)[0]
    grounder = MotionGrounder()
    with open_video(truth.video_path) as src:
        objects = grounder.ground(src, t, ["an abandoned bag"])
        people = grounder.ground(src, t, ["pedestrians"])
        both = grounder.ground(src, t, ["something unusual"])
        named = grounder.ground(src, t, ["person", "suitcase"])
    assert objects and {b.label for b in objects} == {"an abandoned bag"}
    assert max(bag.iou(b) for b in objects) >= 0.3
    assert all(bag.iou(b) < 0.3 for b in people)
    assert people and {b.label for b in people} == {"pedestrians"}
    assert {b.label for b in both} == {"person", "object"}
    assert {b.label for b in named} == {"person", "suitcase"}
    assert len(both) == len(objects) + len(people)


def test_boxes_are_in_original_pixels_with_valid_scores(motion_scenes: Scenes) -> None:
    truth = motion_scenes["sprint", SEEDS[0]]
    want = truth.boxes[len(truth.boxes) // 2]
    with open_video(truth.video_path) as src:
        boxes = MotionGrounder().ground(src, want.t_s, ["person"])
    assert boxes
    assert all(b.inside(truth.resolution_wh, tolerance_px=0.0) for b in boxes)
    assert all(0.0 <= b.score <= 1.0 for b in boxes)
    assert [b.score for b in boxes] == sorted((b.score for b in boxes), reverse=True)
    assert all(b.t_s == pytest.approx(want.t_s, abs=0.5 / truth.fps) for b in boxes)
    best = max(boxes, key=want.iou)
    assert want.iou(best) >= 0.5  # original-pixel coordinates, not the 320-px analysis frame


def test_empty_scene_moment_has_no_people(motion_scenes: Scenes) -> None:
    truth = motion_scenes["sudden_appearance", SEEDS[0]]
    first = truth.boxes[0]
    with open_video(truth.video_path) as src:
        before = MotionGrounder().ground(src, first.t_s - 0.4, ["person"])
    assert all(first.iou(b) == 0.0 for b in before)  # nobody there before the appearance


@pytest.mark.parametrize("t_s", [-1.0, 1e6, float("nan")])
def test_time_outside_the_video_is_an_error(motion_scenes: Scenes, t_s: float) -> None:
    truth = motion_scenes["normal", SEEDS[0]]
    with open_video(truth.video_path) as src, pytest.raises(ValueError, match="outside the video"):
        MotionGrounder().ground(src, t_s, ["person"])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ["sprint", "fall", "left_object"])
def test_naming_the_motion_puts_the_actor_first(
    motion_results: Results, kind: str, seed: int
) -> None:
    """ "a person running" ranks the measurably fast blob first, "lying"/"abandoned" the still
    (or lying) one; with a plain "person" the order among people carries no such meaning."""
    r = motion_results[kind, seed]
    assert r.top1_motion_rate is not None and r.top1_motion_rate >= 0.6, (
        f"{kind} seed {seed}: the actor was the top box on {r.top1_motion_rate} of frames"
    )
