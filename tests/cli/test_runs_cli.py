"""`vadetective batch`, `eval` and `compare` on bad input (one `error:` sentence, exit code 2,
no traceback), and on untrusted text (video ids, questions) printed as text, never as markup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vadetective.agent.core.types import ScoreCurve, Verdict

ODD = "<b>odd[red]"  # a legal file name that is both HTML and rich markup


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "vadetective", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def _one_error(r: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: "), r.stderr
    assert fragment in " ".join(lines), r.stderr


def _write_run(run: Path, data: Path, predicted: dict[str, bool], profile: str) -> Path:
    """A run folder as the batch writes it, by hand: run.json naming a manifest, one result per
    video (no traces, so evaluation and comparison work from results alone)."""
    (run / "results").mkdir(parents=True)
    (run / "run.json").write_text(
        json.dumps(
            {
                "profile": profile,
                "question": "[blink]anything odd?[/blink]",
                "dataset": {"kind": "manifest", "root": str(data), "options": {}},
                "config": {"profile": profile, "max_steps": 12 if profile == "classical" else 8},
            }
        )
    )
    for vid, flag in predicted.items():
        verdict = Verdict(
            question="q",
            answer="a",
            is_anomalous=flag,
            confidence=0.9,
            frame_scores=ScoreCurve(t_s=[0.0, 1.0, 2.0], score=[0.1, 0.9 if flag else 0.2, 0.1]),
        )
        rec = {
            "video_id": vid,
            "path": str(data / f"{vid}.mp4"),
            "verdict": json.loads(verdict.model_dump_json()),
            "video": {
                "path": str(data / f"{vid}.mp4"),
                "fps": 1.0,
                "frame_count": 3,
                "duration_s": 3.0,
                "resolution_wh": [64, 48],
                "content_hash": vid.encode().hex(),
            },
        }
        (run / "results" / f"{vid}.json").write_text(json.dumps(rec))
    return run


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    data.mkdir()
    rows = [
        {"id": ODD, "path": "odd.mp4", "label": "fight", "spans": [[1.0, 2.0]]},
        {"id": "calm", "path": "calm.mp4", "label": "normal"},
    ]
    for name in ("odd.mp4", "calm.mp4"):
        (data / name).write_bytes(b"x")
    (data / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    a = _write_run(tmp_path / "A", data, {ODD: True, "calm": False}, "classical")
    b = _write_run(tmp_path / "B", data, {ODD: False, "calm": False}, "server")
    return a, b


@pytest.mark.slow
def test_compare_prints_ids_and_settings_as_text_and_escapes_the_page(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two_runs
    page = tmp_path / "cmp.html"
    r = run_cli("compare", str(a), str(b), "--out", str(page))
    assert r.returncode == 0, r.stderr
    assert f"1 of 2 videos changed outcome: {ODD}" in r.stdout  # printed as text, not markup
    assert "profile" in r.stdout and "config.max_steps" in r.stdout
    text = page.read_text(encoding="utf-8")
    assert "&lt;b&gt;odd[red]" in text and "<b>odd" not in text


@pytest.mark.slow
def test_eval_of_a_hand_written_run_escapes_ids(two_runs: tuple[Path, Path]) -> None:
    a, _ = two_runs
    r = run_cli("eval", str(a), "--no-reports")
    assert r.returncode == 0, r.stderr
    m = json.loads((a / "metrics.json").read_text())
    assert m["video_accuracy"] == 1.0
    text = (a / "report.html").read_text(encoding="utf-8")
    assert "&lt;b&gt;odd[red]" in text and "<b>odd" not in text


def _broken_result(run: Path) -> None:
    (run / "results" / "calm.json").write_text('{"video_id": "calm"}')


def _other_id(run: Path) -> None:
    p = run / "results" / "calm.json"
    p.rename(run / "results" / "quiet.json")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (_broken_result, "calm.json is not a valid result file"),
        (_other_id, "holds video_id 'calm', not 'quiet'"),
    ],
)
def test_eval_and_compare_name_a_bad_result_file(
    two_runs: tuple[Path, Path], damage: object, says: str
) -> None:
    a, b = two_runs
    damage(b)  # type: ignore[operator]
    _one_error(run_cli("eval", str(b), "--no-reports"), says)
    _one_error(run_cli("compare", str(a), str(b)), says)


@pytest.mark.slow
def test_eval_and_compare_refuse_a_folder_that_is_not_a_run(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    a, _ = two_runs
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_error(run_cli("eval", str(empty)), "no results/ folder")
    _one_error(run_cli("compare", str(a), str(empty)), "no results/ folder")
    _one_error(run_cli("compare", str(tmp_path / "nowhere"), str(a)), "no results/ folder")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--fps", "0"), "fps must be a positive number"),
        (("--fps", "nan"), "fps must be a positive number"),
        (("--split", "validation"), "takes no option split"),
    ],
)
def test_batch_refuses_a_bad_frame_rate_or_split(
    tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    frames = tmp_path / "data" / "cam"
    frames.mkdir(parents=True)
    for i in range(3):
        (frames / f"{i}.png").write_bytes(b"x")
    r = run_cli("batch", "folder", str(tmp_path / "data"), "--out", str(tmp_path / "run"), *args)
    _one_error(r, says)
