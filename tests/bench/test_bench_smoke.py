"""Smoke tests: the perception, cost and quality benchmarks run end to end on tiny inputs
(``--quick``) and print well-formed, self-consistent JSON. No timing is asserted.

They run as subprocesses (``python -m bench.<name>``) from the repository root, as users run
them: inside pytest, ``bench`` would resolve to the ``tests/bench`` folder.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def run_bench(name: str, tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    out = tmp_path / f"{name}.json"
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--quick", "--out", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report == json.loads(out.read_text(encoding="utf-8"))
    assert report["quick"] is True
    machine = report["machine"]
    assert machine["cpu_model"] and machine["cores_usable"] >= 1 and machine["versions"]["python"]
    return report, proc.stderr


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of quick scenes shared by the cost and quality runs (generated once)."""
    return tmp_path_factory.mktemp("bench-suite")


def test_perception_quick(tmp_path: Path) -> None:
    report, stderr = run_bench("perception", tmp_path)
    video = report["video"]
    assert video["duration_s"] == 8.0 and video["resolution_wh"] == [320, 180]
    # OpenCV read every frame of the video
    assert report["opencv_decode"]["frames"] == video["frame_count"] == 120
    q1, q2, oc = report["first_question"], report["second_question"], report["opencv_decode"]
    assert q1["seconds"] > 0 and q2["seconds"] > 0 and oc["seconds"] > 0
    # the ratios are the quotients of the reported times (side by side in one run)
    assert math.isclose(q1["ratio_to_opencv_decode"], q1["seconds"] / oc["seconds"], rel_tol=0.01)
    assert math.isclose(q1["x_realtime"], video["duration_s"] / q1["seconds"], rel_tol=0.01)
    assert math.isclose(q2["ratio_to_first"], q2["seconds"] / q1["seconds"], rel_tol=0.01)
    # the first question really was cold: it scored the timeline; the second reused it
    assert q1["cost"]["seconds_by_stage"]["perceive"] > q2["cost"]["seconds_by_stage"]["perceive"]
    assert q1["cost"]["planner_calls"] >= 1 and q1["cost"]["frames_decoded"] > 0
    assert len(report["runs"]) == report["repeats"] == 1
    hf = report["hf"]
    if importlib.util.find_spec("torch") and importlib.util.find_spec("transformers"):
        assert [r["dtype"] for r in hf["results"]] == ["float32", "bfloat16"]
        assert all(r["pipeline_fps"] > 0 and r["forward_fps"] > 0 for r in hf["results"])
    else:
        assert "skipped" in hf
    assert "first question (cold)" in stderr


def test_cost_quick(tmp_path: Path, suite_dir: Path) -> None:
    report, stderr = run_bench("cost", tmp_path, "--suite-dir", str(suite_dir))
    suite = report["suite"]
    assert suite["kinds"] == ["sprint", "fall", "normal"] and suite["videos"] == 3
    rows = {(r["strategy"], r["p_noise"]): r for r in report["results"]}
    assert set(rows) == {("timeline_only", None)} | {
        (s, p) for s in ("detective", "chain", "dense") for p in (0.0, 0.2)
    }
    minutes = suite["minutes_of_video"]
    # dense: one call per started 5 s clip of each 8 s scene
    assert rows["dense", 0.0]["planner_calls"] == 3 * 2
    assert math.isclose(rows["dense", 0.0]["planner_calls_per_min"], 6 / minutes, rel_tol=0.01)
    # the chain makes exactly its two nominal VLM calls per video; the cheap timeline none
    assert rows["chain", 0.0]["planner_calls"] == rows["chain", 0.2]["planner_calls"] == 3 * 2
    assert rows["timeline_only", None]["planner_calls"] == 0
    for r in report["results"]:
        assert r["videos"] == 3
        assert r["frame_auc"] is None or 0.0 <= r["frame_auc"] <= 1.0
        assert 0.0 <= r["mean_span_tiou"] <= 1.0
        # every graph verdict came from the simulated VLM, none from a fallback
        assert r["verdicts_not_from_the_simulated_vlm"] == 0
    # the detective looks at most MAX_LOOKS (3) times, then submits its verdict
    det = [v for v in report["videos"] if v["strategy"] == "detective"]
    assert len(det) == 3 * 2 and all(1 <= v["planner_calls"] <= 4 for v in det)
    # a noiseless simulated VLM never calls a normal scene anomalous
    assert rows["detective", 0.0]["false_alarms"] == rows["dense", 0.0]["false_alarms"] == "0/1"
    assert "calls/min" in stderr


def test_quality_quick(tmp_path: Path, suite_dir: Path) -> None:
    report, stderr = run_bench("quality", tmp_path, "--suite-dir", str(suite_dir))
    assert [g["graph"] for g in report["graphs"]] == ["detective", "chain"]
    for g in report["graphs"]:
        assert g["done"] == 3 and g["failed"] == 0
        assert set(g["per_kind"]) == {"sprint", "fall", "normal"}
        assert {v["video"] for v in g["videos"]} == {"sprint_s0", "fall_s0", "normal_s0"}
        overall = g["overall"]
        assert overall["detected"].endswith("/2") and overall["false_alarms"].endswith("/1")
        assert overall["box_annotated"] > 0  # the manifest carried the truth boxes
        for v in g["videos"]:
            if v["kind"] != "normal":
                assert 0.0 <= v["span_tiou"] <= 1.0 and 0.0 <= v["box_iou"] <= 1.0
                if not v["is_anomalous"]:
                    assert v["span_tiou"] == 0.0 and v["box_iou"] == 0.0
        assert overall["frame_auc"] is None or 0.0 <= overall["frame_auc"] <= 1.0
    assert "OVERALL" in stderr
