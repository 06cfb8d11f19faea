"""The measure inspector: facts about a box, measured on synthetic scenes with known truth."""

from __future__ import annotations

import pytest
from motion_cases import SEEDS

from vadetective.agent.core.types import Box
from vadetective.agent.synth.truth import SceneTruth
from vadetective.tools.backends.motion.backends import MeasureInspector
from vadetective.tools.base import Inspection
from vadetective.tools.video.sources import open_video

Scenes = dict[tuple[str, int], SceneTruth]


def _inspect(truth: SceneTruth, box: Box, question: str) -> Inspection:
    with open_video(truth.video_path) as src:
        return MeasureInspector().inspect(src, box.t_s, box, question)


def _at(truth: SceneTruth, after_start_s: float) -> Box:
    t = truth.spans[0].start_s + after_start_s
    return min(truth.boxes, key=lambda b: abs(b.t_s - t))


@pytest.mark.parametrize("seed", SEEDS)
def test_sprinter_is_measured_fast_and_with_the_flow(motion_scenes: Scenes, seed: int) -> None:
    truth = motion_scenes["sprint", seed]
    res = _inspect(truth, _at(truth, 1.0), "Is this person running?")
    f = res.measured
    assert f is not None
    assert f.matched is True and f.label == "person" and f.posture == "upright"
    assert f.moving is True
    assert (f.speed_vs_typical or 0.0) >= 2.5
    assert (f.speed_px_s or 0.0) >= 2.5 * truth.walk_speed_px_s
    assert (f.angle_to_flow_deg or 0.0) < 30
    assert res.answer.startswith("The person-like blob moves at")
    assert res.confidence is not None and res.confidence >= 0.6


@pytest.mark.parametrize("seed", SEEDS)
def test_fallen_person_is_lying_and_still(motion_scenes: Scenes, seed: int) -> None:
    truth = motion_scenes["fall", seed]
    box = _at(truth, 3.0)
    res = _inspect(truth, box, "Is the person lying on the ground?")
    f = res.measured
    assert f is not None
    assert f.label == "person" and f.posture == "lying" and f.moving is False
    assert 1.5 <= (f.static_for_s or 0.0) <= 3.0
    assert f.appeared_suddenly is False
    assert "lying" in res.answer.split(",")[0]  # the asked-about fact comes first


@pytest.mark.parametrize("seed", SEEDS)
def test_left_bag_is_a_still_object_left_by_a_person(motion_scenes: Scenes, seed: int) -> None:
    truth = motion_scenes["left_object", seed]
    res = _inspect(truth, _at(truth, 3.0), "How long has this bag been left here?")
    f = res.measured
    assert f is not None
    assert f.label == "object" and f.moving is False
    assert (f.static_for_s or 0.0) == pytest.approx(3.0, abs=0.6)
    assert f.separated_from_person is True
    assert (f.appeared_at_s or 0.0) == pytest.approx(truth.spans[0].start_s, abs=0.6)


@pytest.mark.parametrize("seed", SEEDS)
def test_sudden_appearance_is_reported_with_its_time(motion_scenes: Scenes, seed: int) -> None:
    truth = motion_scenes["sudden_appearance", seed]
    res = _inspect(truth, _at(truth, 1.5), "Where did this person come from?")
    f = res.measured
    assert f is not None
    assert f.appeared_suddenly is True
    assert (f.appeared_at_s or 0.0) == pytest.approx(truth.spans[0].start_s, abs=0.4)
    assert "out of nowhere" in res.answer


def test_wrong_way_walker_heads_against_the_flow(motion_scenes: Scenes) -> None:
    truth = motion_scenes["wrong_way", SEEDS[0]]
    res = _inspect(truth, _at(truth, 3.0), "Which direction is this person walking?")
    f = res.measured
    assert f is not None
    assert f.against_flow is True and (f.angle_to_flow_deg or 0.0) > 150
    assert 0.6 <= (f.speed_vs_typical or 0.0) <= 1.6
    assert "against the dominant flow" in res.answer.split(",")[0]


def test_crop_holds_the_box_with_a_margin(motion_scenes: Scenes) -> None:
    truth = motion_scenes["fall", SEEDS[0]]
    box = _at(truth, 2.0)
    res = _inspect(truth, box, "What is this?")
    assert res.crop is not None and res.crop.dtype.name == "uint8" and res.crop.shape[2] == 3
    x1, y1, x2, y2 = box.xyxy
    assert res.crop.shape[1] > x2 - x1 and res.crop.shape[0] > y2 - y1


def test_box_on_background_says_so(motion_scenes: Scenes) -> None:
    truth = motion_scenes["normal", SEEDS[0]]
    box = Box(t_s=5.0, xyxy=(2.0, 2.0, 30.0, 20.0))  # the facade: never anyone there
    res = _inspect(truth, box, "Is someone here?")
    assert res.measured is not None and res.measured.matched is False
    assert "background" in res.answer
    assert res.confidence is not None and res.confidence < 0.5


def test_bad_inputs_are_errors_with_a_reason(motion_scenes: Scenes) -> None:
    truth = motion_scenes["normal", SEEDS[0]]
    with open_video(truth.video_path) as src:
        inspector = MeasureInspector()
        with pytest.raises(ValueError, match="outside the 480x270 frame"):
            inspector.inspect(src, 2.0, Box(t_s=2.0, xyxy=(600.0, 10.0, 700.0, 50.0)), "?")
        with pytest.raises(ValueError, match="outside the video"):
            inspector.inspect(src, 99.0, Box(t_s=99.0, xyxy=(10.0, 10.0, 50.0, 50.0)), "?")
