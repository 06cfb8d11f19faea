"""Issue 11 item 14 and the UCF ``allow_missing`` advice: arguments and settings are checked.

``--max-steps 0`` was silently ignored, ``--limit -3`` silently dropped videos, configuration
errors were multi-line pydantic dumps ending in a URL, out-of-range settings were accepted, and
``ask()`` after ``close()`` answered "normal" with confidence.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from hostile_kit import assert_no_traceback, assert_refused, cli

from vadetective.agent.core.errors import ConfigError, SessionClosedError
from vadetective.agent.profiles import profile_config
from vadetective.agent.session import Detective

ANALYZE_ROWS: list[tuple[str, list[str], tuple[str, ...]]] = [
    ("--max-steps 0", ["--max-steps", "0"], ("max_steps", "got 0")),
    ("--max-steps -1", ["--max-steps", "-1"], ("max_steps", "got -1")),
    ("--max-steps abc", ["--max-steps", "abc"], ("--max-steps", "integer")),
    ("--graph bogus", ["--graph", "bogus"], ("unknown graph 'bogus'",)),
    ("--profile bogus", ["--profile", "bogus"], ("unknown profile 'bogus'",)),
    ("an unknown option", ["--max-stepz", "3"], ("no such option: --max-stepz",)),
]


@pytest.mark.parametrize(
    ("name", "extra", "fragments"), ANALYZE_ROWS, ids=[r[0] for r in ANALYZE_ROWS]
)
def test_analyze_arguments(
    name: str, extra: list[str], fragments: tuple[str, ...], tmp_path: Path, clip: Path
) -> None:
    args = ["analyze", str(clip), "--out", str(tmp_path / "o"), *extra]
    if "--profile" not in extra:
        args += ["--profile", "classical"]
    assert_refused(cli(*args), *fragments)


BATCH_ROWS: list[tuple[str, list[str], tuple[str, ...]]] = [
    ("--limit -3", ["--limit", "-3"], ("--limit must be 0 or more, got -3",)),
    ("--workers 0", ["--workers", "0"], ("--workers must be at least 1",)),
    ("--num-shards 0", ["--num-shards", "0"], ("--num-shards must be at least 1",)),
    ("--shard 5 of 2", ["--num-shards", "2", "--shard", "5"], ("--shard must be in [0, 1]",)),
    ("--graph bogus", ["--graph", "bogus"], ("unknown graph 'bogus'",)),
    ("--engine bogus", ["--engine", "bogus"], ("unknown engine 'bogus'",)),
]


@pytest.mark.parametrize(("name", "extra", "fragments"), BATCH_ROWS, ids=[r[0] for r in BATCH_ROWS])
def test_batch_arguments_are_checked_before_any_video(
    name: str, extra: list[str], fragments: tuple[str, ...], tmp_path: Path, tiny_suite: Path
) -> None:
    out = tmp_path / "run"
    r = cli("batch", "manifest", str(tiny_suite), "--out", str(out), "-p", "classical", *extra)
    assert_refused(r, *fragments)
    assert not (out / "results").exists() or not list((out / "results").iterdir())


SETTINGS: list[tuple[str, dict[str, Any], str]] = [
    ("max_side 0", {"max_side": 0}, "max_side"),
    ("max_side -5", {"max_side": -5}, "max_side"),
    ("smoothing_sigma_s inf", {"smoothing_sigma_s": math.inf}, "finite"),
    ("smoothing_sigma_s 1e9", {"smoothing_sigma_s": 1e9}, "smoothing_sigma_s"),
    ("anomaly_threshold nan", {"anomaly_threshold": math.nan}, "finite"),
    ("anomaly_threshold 1.5", {"anomaly_threshold": 1.5}, "between 0 and 1"),
    ("sample_fps nan", {"sample_fps": math.nan}, "sample_fps"),
    ("planner bogus", {"planner": "bogus"}, "unknown planner 'bogus'"),
    ("dtype int8", {"dtype": "int8"}, "dtype"),
    ("a misspelt setting", {"max_stepz": 3}, "max_stepz: no such setting"),
    ("two problems", {"max_side": 0, "max_steps": 0}, "and 1 more problem"),
]


@pytest.mark.parametrize(("name", "overrides", "fragment"), SETTINGS, ids=[r[0] for r in SETTINGS])
def test_settings_out_of_range_are_one_sentence(
    name: str, overrides: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        profile_config("classical", **overrides)
    message = str(info.value)
    assert fragment in message and message.startswith("invalid configuration: ")
    assert "\n" not in message and "http" not in message, message


@pytest.mark.parametrize("planner", ["bogus", 42], ids=["a name that is not a planner", "an int"])
def test_detective_refuses_a_planner_that_is_not_one(planner: Any, clip: Path) -> None:
    with pytest.raises(ConfigError, match="planner"):
        Detective(clip, profile="classical", planner=planner)


def test_a_planner_by_name_is_taken(clip: Path, tmp_path: Path) -> None:
    with Detective(clip, profile="classical", planner="rules", out=tmp_path) as d:
        assert d.config.planner == "rules"


def test_ask_after_close_is_refused(clip: Path, tmp_path: Path) -> None:
    d = Detective(clip, profile="classical", out=tmp_path)
    d.close()
    with pytest.raises(SessionClosedError, match="closed"):
        d.ask("Is anything unusual?")


def test_missing_ucf_videos_name_an_option_the_cli_has(tmp_path: Path, clip: Path) -> None:
    (tmp_path / "Abuse").mkdir()
    shutil.copy(clip, tmp_path / "Abuse" / "Abuse028_x264.mp4")
    (tmp_path / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").write_text(
        "Abuse028_x264.mp4  Abuse  3  40  -1  -1\nArson011_x264.mp4  Arson  5  30  -1  -1\n"
    )
    args = ["batch", "ucf-crime", str(tmp_path), "--out", str(tmp_path / "r"), "-p", "classical"]
    line = assert_refused(cli(*args), "Arson011_x264", "--allow-missing")
    assert "allow_missing=True" in line  # the Python spelling, for library users
    r = cli(*args, "--allow-missing", "--graph", "chain")
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert "done 1," in " ".join(r.stdout.split())
