"""End to end, per benchmark in its official layout: batch -> eval -> run page; the CLI on the
ShanghaiTech frame folders that used to fail; the run page in headless Chromium; two runs that
differ in profile compared; mixed configurations warned about."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from vadetective.agent.batch.runner import run_dataset
from vadetective.agent.core.config import ServerSettings, config_for
from vadetective.agent.datasets import DATASET_KINDS, load_dataset, with_frame_rate
from vadetective.agent.eval.compare import compare_runs
from vadetective.agent.eval.evaluate import Metrics, evaluate_run
from vadetective.agent.report.compare_page import render_compare_page
from vadetective.agent.report.run_page import render_run_page

Build = Callable[..., Any]
KINDS = (
    "ucf-crime",
    "xd-violence",
    "shanghaitech",
    "ucsd-ped1",
    "ucsd-ped2",
    "avenue",
    "msad",
    "nwpu-campus",
    "ubnormal",
    "uca",
    "hivau",
    "manifest",
    "folder",
)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "vadetective", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )


def _results(run: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in (run / "results").glob("*.json")}


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_batch_and_eval_over_the_official_layout(build: Build, tmp_path: Path, kind: str) -> None:
    assert set(KINDS) == set(DATASET_KINDS)  # every kind the project reads, in its layout
    layout = build(kind)
    ds = load_dataset(layout.kind, layout.root, layout.annotations, **layout.options)
    if layout.fps is not None:
        ds = with_frame_rate(ds, layout.fps)
    run = tmp_path / "run"
    summary = run_dataset(ds, run, profile="classical")
    assert (summary.done, summary.failed) == (layout.videos, 0), [o.error for o in summary.outcomes]

    results = _results(run)
    folders = [r["video"] for r in results.values() if r["video"]["backend"] == "folder"]
    assert len(folders) == layout.frame_folders
    assert all(v["fps_source"] == layout.folder_fps for v in folders)
    assert all(rec["provenance"]["config_sha"] for rec in results.values())
    record = json.loads((run / "run.json").read_text())
    split = "test" if layout.labelled and kind != "manifest" else None
    assert record["provenance"]["dataset_split"]["split"] == ds.split == split
    assert record["provenance"]["model_revisions"]["scorer"]["revision"] == "no weights"

    m = evaluate_run(run)
    assert m.counts.videos == layout.videos and m.counts.missing_results == 0
    assert m.dataset_kind == layout.kind and m.dataset_split == split and m.warnings == []
    if layout.labelled:
        assert m.frame_auc is not None and 0.0 <= m.frame_auc <= 1.0  # both classes of frames
        assert m.video_accuracy is not None
    else:  # nothing to score against: said, and no number made up
        assert m.frame_auc is None and m.video_accuracy is None
        assert any("have no labels and are not scored" in n for n in m.notes)
    assert (m.box_annotated > 0) == layout.boxes
    if layout.texts:
        assert m.explanation is not None
        assert sorted(m.explanation.justification) == sorted(layout.texts)
        assert all(0 <= s.meteor <= 1 for s in m.explanation.answer.values())
    else:
        assert m.explanation is None

    page = render_run_page(run, metrics=m)
    text = page.read_text(encoding="utf-8")
    for vid in results:
        assert f'id="video-{vid}"' in text
        report = run / "traces" / vid / "report.html"
        assert report.is_file() and f'href="traces/{quote(vid)}/report.html"' in text
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")


@pytest.mark.slow
def test_ubnormal_splits_are_scored_apart(build: Build, tmp_path: Path) -> None:
    layout = build("ubnormal")
    runs = {}
    for split in ("test", "validation"):
        runs[split] = tmp_path / split
        run_dataset(
            load_dataset("ubnormal", layout.root, split=split), runs[split], profile="classical"
        )
        assert evaluate_run(runs[split]).dataset_split == split
    # A validation result copied into the test run is not scored with it, and it is said.
    stray = next((runs["validation"] / "results").glob("abnormal_*.json"))
    (runs["test"] / "results" / stray.name).write_bytes(stray.read_bytes())
    m = evaluate_run(runs["test"])
    assert m.counts.videos == 2 and m.counts.unmatched_results == 1
    assert any("not in the dataset" in n for n in m.notes)


# ------------------------------------------------------------------ one shared ShanghaiTech run


@pytest.fixture(scope="module")
def sht_run(
    tmp_path_factory: pytest.TempPathFactory, clips: tuple[Any, Any], layout_builders: Any
) -> Path:
    """``vadetective batch shanghaitech`` then ``vadetective eval`` on the official layout."""
    base = tmp_path_factory.mktemp("sht")
    root = base / "shanghaitech"
    root.mkdir()
    layout_builders.shanghaitech(root, *clips)
    run = base / "run"
    r = run_cli("batch", "shanghaitech", str(root), "--out", str(run), "--profile", "classical")
    assert r.returncode == 0, r.stderr
    assert "is a folder" not in r.stdout + r.stderr and "failed 0" in r.stdout
    r = run_cli("eval", str(run))
    assert r.returncode == 0, r.stderr
    assert "frame AUC" in r.stdout and "shanghaitech (test split)" in r.stdout
    return run


@pytest.mark.slow
def test_cli_batch_and_eval_on_shanghaitech_frame_folders(sht_run: Path) -> None:
    m = Metrics.load(sht_run / "metrics.json")
    assert m.dataset_split == "test" and m.frame_auc is not None
    assert (sht_run / "report.html").is_file()
    for rec in _results(sht_run).values():
        assert rec["video"]["fps"] == 24.0 and rec["video"]["backend"] == "folder"


@pytest.mark.slow
def test_eval_warns_when_a_run_mixes_configurations(sht_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "mixed"
    shutil.copytree(sht_run, run)
    path = run / "results" / "01_0015.json"
    rec = json.loads(path.read_text())
    rec["provenance"]["config_sha"] = "0123456789abcdef"
    path.write_text(json.dumps(rec))
    r = run_cli("eval", str(run), "--no-reports")
    assert r.returncode == 0, r.stderr
    assert "warning:" in r.stdout and "mix 2 configurations" in r.stdout
    m = Metrics.load(run / "metrics.json")
    assert any("mix 2 configurations" in w for w in m.warnings)
    assert "mix 2 configurations" in (run / "report.html").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.browser
def test_run_page_renders_in_chromium_and_sorts(
    sht_run: Path, chromium: Any, tmp_path: Path
) -> None:
    import cv2

    page = sht_run / "report.html"
    png = tmp_path / "run.png"
    shot = chromium.screenshot(page.resolve().as_uri(), png)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert shot.console == [], shot.console
    img = cv2.imread(str(png))
    assert img is not None and img.std() > 20

    def order(fragment: str) -> list[str]:
        run = chromium.dump_dom(page.resolve().as_uri() + fragment)
        assert run.returncode == 0 and run.console == [], run.console
        body = run.stdout.split('class="sortable videos"', 1)[1]
        return re.findall(r'<tr id="video-([^"]+)"', body)

    by_score_up, by_score_down = order("#sort=score:asc"), order("#sort=score")
    assert sorted(by_score_up) == ["01_0014", "01_0015"] and by_score_up == by_score_down[::-1]
    scores = {k: max(v["verdict"]["frame_scores"]["score"]) for k, v in _results(sht_run).items()}
    assert by_score_up == sorted(scores, key=scores.get)  # type: ignore[arg-type]


# ---------------------------------------------------------------- two runs, two profiles


def _fake_server_module() -> Any:
    path = Path(__file__).resolve().parents[2] / "tools" / "vlm" / "fake_openai_server.py"
    spec = importlib.util.spec_from_file_location("vadetective_tests_fake_openai_e2e", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def server_run(sht_run: Path, tmp_path: Path) -> Iterator[Path]:
    """The same videos through the ``server`` profile: a scripted OpenAI-compatible planner on
    127.0.0.1 that calls every video normal (vision tools kept weight-free)."""
    fake = _fake_server_module()
    verdict = fake.Reply.calls(
        (
            "submit_verdict",
            {
                "answer": "Nothing unusual: people walk.",
                "is_anomalous": False,
                "confidence": 0.8,
                "justification": "The timeline stays flat (E1).",
                "evidence_ids": ["E1"],
            },
        )
    )
    record = json.loads((sht_run / "run.json").read_text())
    with fake.FakeOpenAIServer() as server:
        server.push(*([verdict] * 12))
        config = config_for(
            "server",
            scorer="motion",
            grounder="motion",
            inspector="measure",
            server=ServerSettings(base_url=server.base_url, model="fake-vlm", api_key="sk-secret"),
        )
        from vadetective.agent.datasets import DatasetSpec, load_spec

        ds = load_spec(DatasetSpec.model_validate(record["dataset"]))
        run = tmp_path / "server-run"
        summary = run_dataset(ds, run, config=config)
        assert summary.failed == 0, [o.error for o in summary.outcomes]
        assert server.requests, "the planner server was never asked"
    for f in run.rglob("*"):  # the key reaches the server, never the run folder
        assert not f.is_file() or b"sk-secret" not in f.read_bytes(), f
    # the recorded configuration leaves the key out (or masks it): never the key itself
    assert json.loads((run / "run.json").read_text())["config"]["server"].get("api_key") in (
        None,
        "***",
    )
    evaluate_run(run)
    yield run


@pytest.mark.slow
def test_compare_two_runs_that_differ_in_profile(sht_run: Path, server_run: Path) -> None:
    c = compare_runs(sht_run, server_run)
    keys = {d.key: d for d in c.config}
    assert keys["profile"].a == '"classical"' and keys["profile"].b == '"server"'
    assert keys["config.planner"].b == '"server"'
    assert not any("sk-secret" in d.a + d.b for d in c.config)  # secrets never compared
    auc = next(m for m in c.metrics if m.key == "frame_auc")
    assert auc.a is not None and auc.b is not None
    assert {v.video_id for v in c.videos} == {"01_0014", "01_0015"}
    assert all(v.a is not None and v.b is not None for v in c.videos)  # both runs, per video
    page = render_compare_page(sht_run, server_run)
    text = page.read_text(encoding="utf-8")
    assert "sk-secret" not in text and "config.planner" in text
    r = run_cli("compare", str(sht_run), str(server_run), "--out", str(page))
    assert r.returncode == 0, r.stderr
    assert "configuration differences" in r.stdout and "profile" in r.stdout


@pytest.mark.slow
@pytest.mark.browser
def test_compare_page_renders_in_chromium(
    sht_run: Path, server_run: Path, chromium: Any, tmp_path: Path
) -> None:
    page = render_compare_page(sht_run, server_run, tmp_path / "compare.html")
    run = chromium.dump_dom(page.resolve().as_uri() + "#sort=delta")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.console == [], run.console
    assert "vs" in run.stdout and 'data-dir="desc"' in run.stdout
