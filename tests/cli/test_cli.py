"""The command line: bad input answered with one sentence and exit code 2, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "vadetective", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env=env,
    )


def test_version() -> None:
    import vadetective

    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"vadetective {vadetective.__version__}"


def _bad_input(kind: str, folder: Path) -> Path:
    if kind == "missing":
        return folder / "missing.mp4"
    if kind == "directory":
        return folder
    target = folder / f"{kind}.mp4"
    if kind == "empty":
        target.write_bytes(b"")
    else:
        target.write_text("hello, this is not a video\n" * 50)
    return target


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("missing", "does not exist"),
        ("directory", "is a folder without image frames"),
        ("empty", "empty"),
        ("text-file", "not a video"),
    ],
)
def test_analyze_bad_input_exits_2_with_one_sentence(
    tmp_path: Path, kind: str, fragment: str
) -> None:
    target = _bad_input(kind, tmp_path)
    r = run_cli("analyze", str(target), "--profile", "classical", "--out", str(tmp_path / "out"))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: "), r.stderr
    assert fragment in r.stderr.lower(), r.stderr
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout


def test_unknown_profile_exits_2(tmp_path: Path, small_clip: Path) -> None:
    r = run_cli("analyze", str(small_clip), "--profile", "gpu-please", "--out", str(tmp_path / "o"))
    assert (
        r.returncode == 2
        and "unknown profile 'gpu-please'" in r.stderr
        and "Traceback" not in r.stderr
    )


def test_report_on_a_bad_trace_exits_2(tmp_path: Path) -> None:
    (tmp_path / "trace.json").write_text("{oops")
    r = run_cli("report", str(tmp_path / "trace.json"))
    assert r.returncode == 2 and "is not a trace" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("report", str(tmp_path / "nope.json"))
    assert r.returncode == 2 and "no trace at" in r.stderr


def test_batch_with_an_unknown_dataset_kind_exits_2(tmp_path: Path) -> None:
    r = run_cli("batch", "kinetics", str(tmp_path), "--out", str(tmp_path / "run"))
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_models_list_works_offline() -> None:
    r = run_cli("models", "list")
    assert r.returncode == 0, r.stderr
    assert "grounding-dino-tiny" in r.stdout and "cached" in r.stdout


@pytest.mark.slow
def test_analyze_classical_end_to_end_json(tmp_path: Path, sprint_scene: Path) -> None:
    out = tmp_path / "out"
    r = run_cli("analyze", str(sprint_scene), "--profile", "classical", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    verdict = json.loads(r.stdout)
    assert verdict["is_anomalous"] is True
    for name in ("verdict.json", "trace.json", "report.html"):
        assert (out / name).exists(), name
    trace = json.loads((out / "trace.json").read_text())
    assert trace["steps"][0]["tool"] == "score_timeline"


@pytest.mark.slow
def test_batch_then_eval_on_a_generated_suite(tmp_path: Path) -> None:
    from vadetective.agent.synth.scene import generate_suite

    generate_suite(tmp_path / "suite", kinds=("sprint", "normal"), seeds=(0,), duration_s=8.0)
    run = tmp_path / "run"
    r = run_cli(
        "batch", "manifest", str(tmp_path / "suite"), "--out", str(run), "--profile", "classical"
    )
    assert r.returncode == 0, r.stderr
    assert "done 2," in " ".join(r.stdout.split())
    r = run_cli("eval", str(run), "--smoothing", "gaussian", "--smoothing-size", "2")
    assert r.returncode == 0, r.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.5 < metrics["frame_auc"] <= 1.0
    assert "AUC" in r.stdout
    r = run_cli("eval", str(run), "--smoothing", "median", "--smoothing-size", "2")
    assert r.returncode == 2 and "invalid evaluation protocol" in r.stderr
    r = run_cli("eval", str(run), "--dataset", "manifest", str(tmp_path / "suite"))
    assert r.returncode == 0, r.stderr
