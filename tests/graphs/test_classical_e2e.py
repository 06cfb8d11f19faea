"""The classical profile end to end on generated scenes of every anomaly kind.

Real decoding, the motion scorer, grounder and measuring inspector, and the rule planner: no
fakes. Figures per kind are printed at the end of the test run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vadetective.agent.session import Detective
from vadetective.agent.synth.scene import generate_scene
from vadetective.agent.synth.truth import ANOMALY_KINDS, SceneTruth

EXPECTED_CATEGORY = {
    "sprint": "running",
    "fall": "fall",
    "loiter": "loitering",
    "wrong_way": "moving against the flow",
    "left_object": "object left behind",
    "sudden_appearance": "sudden appearance",
    "erratic": "erratic motion",
}


def _box_iou(verdict_boxes: list, truth: SceneTruth) -> float:
    best = 0.0
    for b in verdict_boxes:
        near = [t for t in truth.boxes if abs(t.t_s - b.t_s) <= 0.2]
        if near:
            tb = min(near, key=lambda t: abs(t.t_s - b.t_s))
            best = max(best, b.iou(tb))
    return best


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, figures: dict) -> dict[str, tuple]:
    root = tmp_path_factory.mktemp("classical-e2e")
    rows: dict[str, tuple] = {}
    table = figures.setdefault(
        "classical profile, detective graph, seed 0 (kind: anomalous conf tIoU boxIoU category)", []
    )
    for kind in (*ANOMALY_KINDS, "normal"):
        truth = generate_scene(root / kind, kind=kind, seed=0, duration_s=20.0)
        with Detective(truth.video_path, profile="classical", out=root / f"{kind}-out") as d:
            v = d.ask()
        tiou = max((s.tiou(t) for s in v.spans for t in truth.spans), default=0.0)
        biou = _box_iou(v.boxes, truth)
        rows[kind] = (v, tiou, biou)
        table.append(
            f"{kind:<18} {v.is_anomalous!s:<6} {v.confidence:.2f} {tiou:.2f} {biou:.2f} {v.category}"
        )
    return rows


@pytest.mark.slow
def test_every_anomaly_kind_is_found_when_and_where(outcomes: dict[str, tuple]) -> None:
    kinds = list(ANOMALY_KINDS)
    flagged = [k for k in kinds if outcomes[k][0].is_anomalous is True]
    timed = [k for k in kinds if outcomes[k][1] >= 0.3]
    placed = [k for k in kinds if outcomes[k][2] >= 0.3]
    n = len(kinds)
    assert len(flagged) >= n - 1, f"only {flagged} flagged anomalous"
    assert len(timed) >= n - 1, f"span tIoU >= 0.3 only for {timed}"
    assert len(placed) >= n - 2, f"box IoU >= 0.3 only for {placed}"
    for k in ("sprint", "fall", "left_object", "sudden_appearance"):
        assert k in flagged and k in timed, k
    named = [k for k in kinds if outcomes[k][0].category == EXPECTED_CATEGORY[k]]
    assert len(named) >= n - 1, f"the category matches the staged kind only for {named}"


@pytest.mark.slow
def test_a_normal_scene_is_not_flagged(outcomes: dict[str, tuple]) -> None:
    normal = outcomes["normal"][0]
    anomalous_conf = [
        outcomes[k][0].confidence for k in ANOMALY_KINDS if outcomes[k][0].is_anomalous
    ]
    assert normal.is_anomalous is False or normal.confidence < min(anomalous_conf) - 0.1
    assert normal.spans == [] or normal.is_anomalous is not True


@pytest.mark.slow
def test_justifications_cite_measured_evidence(outcomes: dict[str, tuple], tmp_path: Path) -> None:
    for kind in ANOMALY_KINDS:
        v = outcomes[kind][0]
        assert v.evidence_ids and all(i in v.justification for i in v.evidence_ids), kind
        assert not v.forced, kind


@pytest.mark.slow
def test_a_specific_question_is_answered_as_asked(scenes) -> None:
    video = scenes("fall", 0, 20.0)
    with Detective(video, profile="classical") as d:
        fall = d.ask("Did someone fall and stay lying on the ground?")
        first = d.last_trace
        run = d.ask("Is anyone running?")
        second = d.last_trace
    assert fall.is_anomalous is True and fall.answer.startswith("Yes") and fall.category == "fall"
    assert run.answer.startswith("No running was seen") and "fall" in run.answer
    for trace in (first, second):
        assert trace is not None
        rescored = [s for s in trace.steps if s.tool == "score_timeline" and s.kind == "tool"]
        assert len(rescored) == 1 and rescored[0].args["phrases"]


def test_a_question_decodes_each_frame_about_once_and_looks_back_from_the_cache(
    scenes, tmp_path: Path
) -> None:
    video = scenes("left_object", 5, 16.0)  # a scene no other test perceives (memory cache)
    with Detective(video, profile="classical", out=tmp_path / "run", cache_dir=str(tmp_path)) as d:
        d.ask()
        first = d.last_trace
        d.ask("Was anything left behind?")
        second = d.last_trace
        n = d.info.frame_count
    assert first is not None and second is not None
    cost = first.cost
    assert cost.decoded_per_frame is not None
    assert cost.decoded_per_frame == round(cost.frames_decoded / n, 4)
    assert 0.5 <= cost.decoded_per_frame <= 1.05  # one pass, plus a few look-ups around moments
    assert cost.frames_from_cache > 0  # the inspector's look-backs read frames the pass kept
    assert second.cost.decoded_per_frame is not None and second.cost.decoded_per_frame < 0.05
