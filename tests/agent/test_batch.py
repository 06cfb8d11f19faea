"""Batch runs: one atomic result per video, resumable, a bad video never stops the batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vadetective.agent.batch.runner import FAILURES, read_failures, run_dataset
from vadetective.agent.core.errors import ConfigError
from vadetective.agent.datasets import load_dataset

KINDS = ("sprint", "normal", "left_object")


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest of three short generated scenes plus one file that is not a video."""
    from vadetective.agent.synth.scene import generate_scene

    root = tmp_path_factory.mktemp("suite")
    lines = []
    for i, kind in enumerate(KINDS):
        truth = generate_scene(root / "videos", kind=kind, seed=i, duration_s=8.0)
        rel = Path(truth.video_path).relative_to(root)
        lines.append(
            {"path": str(rel), "label": kind, "spans": [[s.start_s, s.end_s] for s in truth.spans]}
        )
    (root / "videos" / "broken.mp4").write_text("this is not a video\n" * 20)
    lines.append({"path": "videos/broken.mp4", "label": "normal", "spans": []})
    (root / "manifest.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return root / "manifest.jsonl"


def _results(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}


@pytest.mark.slow
def test_batch_writes_results_survives_a_bad_video_and_resumes(suite: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    ds = load_dataset("manifest", suite)
    first = run_dataset(ds, out, profile="classical")
    assert (first.done, first.failed, first.skipped) == (3, 1, 0)
    results = _results(out)
    assert len(results) == 3
    for rec in results.values():
        assert {"video_id", "path", "verdict", "video", "timing_s", "cost"} <= set(rec)
        assert rec["verdict"]["frame_scores"]["t_s"], "frame scores are needed for evaluation"
    failures = read_failures(out)
    assert list(failures) == ["broken"] and "not a video" in failures["broken"]
    run = json.loads((out / "run.json").read_text())
    assert run["dataset"]["kind"] == "manifest" and run["profile"] == "classical"
    assert (
        run["config"]["scorer"] == "motion"
        and "system" in run["prompts"]
        and "python" in run["versions"]
    )
    for vid in results:
        assert (out / "traces" / vid / "trace.json").exists()

    # A second run does nothing: finished videos and recorded failures are skipped.
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    second = run_dataset(ds, out, profile="classical")
    assert (second.done, second.failed, second.skipped) == (0, 0, 4)
    assert {p: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")} == mtimes

    # --retry-failed tries the broken one again (and records the new failure).
    third = run_dataset(ds, out, profile="classical", retry_failed=True)
    assert (third.done, third.failed, third.skipped) == (0, 1, 3)
    assert len((out / FAILURES).read_text().splitlines()) == 2

    # A different configuration in the same folder is refused, not mixed in.
    with pytest.raises(ConfigError, match="different configuration"):
        run_dataset(ds, out, profile="classical", max_steps=3)


@pytest.mark.slow
def test_shards_are_disjoint_and_cover_the_dataset(suite: Path, tmp_path: Path) -> None:
    ds = load_dataset("manifest", suite)
    a = run_dataset(ds, tmp_path / "a", profile="classical", num_shards=2, shard=0, graph="chain")
    b = run_dataset(ds, tmp_path / "b", profile="classical", num_shards=2, shard=1, graph="chain")
    ids_a = {o.video_id for o in a.outcomes}
    ids_b = {o.video_id for o in b.outcomes}
    assert not ids_a & ids_b and ids_a | ids_b == {v.video_id for v in ds}
    with pytest.raises(ConfigError, match="--shard must be in"):
        run_dataset(ds, tmp_path / "c", profile="classical", num_shards=2, shard=2)


@pytest.mark.slow
def test_process_pool_gives_the_same_results(suite: Path, tmp_path: Path) -> None:
    ds = load_dataset("manifest", suite)
    serial = run_dataset(ds, tmp_path / "serial", profile="classical", graph="chain")
    pooled = run_dataset(ds, tmp_path / "pool", profile="classical", graph="chain", workers=2)
    assert (pooled.done, pooled.failed) == (serial.done, serial.failed) == (3, 1)
    a, b = _results(tmp_path / "serial"), _results(tmp_path / "pool")
    assert {k: v["verdict"]["is_anomalous"] for k, v in a.items()} == {
        k: v["verdict"]["is_anomalous"] for k, v in b.items()
    }


@pytest.mark.slow
def test_kill_9_mid_batch_loses_nothing(suite: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "vadetective",
        "batch",
        "manifest",
        str(suite),
        "--out",
        str(out),
        "--profile",
        "classical",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((out / "results").glob("*.json")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    written = _results(out)  # every result present parses: none is half-written
    assert 1 <= len(written) <= 3
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert len(_results(out)) == 3
    assert not list((out / "results").glob(".*.tmp"))
    assert f"done {3 - len(written)}," in " ".join(r.stdout.split())


@pytest.mark.slow
def test_ray_engine_on_a_local_two_cpu_instance(suite: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ds = load_dataset("manifest", suite)
        summary = run_dataset(
            ds, tmp_path / "ray", profile="classical", graph="chain", engine="ray", workers=2
        )
    finally:
        ray.shutdown()
    assert (summary.done, summary.failed) == (3, 1)
    assert len(_results(tmp_path / "ray")) == 3
