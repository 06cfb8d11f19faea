"""Smoke test: the decode benchmark runs end to end on tiny clips and prints its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_decode_benchmark_quick_run(tmp_path: Path) -> None:
    out = tmp_path / "decode.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.decode", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report == json.loads(out.read_text(encoding="utf-8"))
    assert set(report["clips"]) == {"h264_long_gop", "h264_short_gop", "mpeg4_part2"}
    rows = report["results"]
    assert {(r["clip"], r["task"]) for r in rows} == {
        (c, t) for c in report["clips"] for t in ("open", "uniform_64", "fps_2", "every_frame")
    }
    for row in rows:
        readers = {"project", "project_pyav", "decord", "pyav", "opencv"}
        if row["task"] != "open":  # decord through the project, and the one pass at 320 px
            readers |= {"project_decord", "pass320_pyav", "pass320_decord"}
        assert set(row["seconds"]) == set(row["ratio_to_fastest_bare"]) == readers
        assert row["ratio_to_fastest_bare"][row["fastest_bare"]] == 1.0
        assert all(v > 0 for v in row["seconds"].values())
        if row["task"] != "open":  # every reader produced every frame asked for
            assert set(row["frames_returned"].values()) == {row["frames"]}
    # the table goes to stderr, one line per row plus a header
    assert len([ln for ln in proc.stderr.splitlines() if "every_frame" in ln]) == 3
