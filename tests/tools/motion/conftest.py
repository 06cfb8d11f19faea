"""Synthetic scenes for the motion backends, evaluated once per session, and a per-kind table
of the figures, printed at the end of the pytest run whatever the ``-s`` setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from motion_cases import (
    ASSERTED,
    DURATION_S,
    REPORTED,
    RESULTS,
    SEEDS,
    SceneResult,
    evaluate,
    span_labels,
)

from vadetective.agent.synth.scene import generate_scene
from vadetective.agent.synth.truth import SceneTruth


@pytest.fixture(scope="session")
def motion_scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], SceneTruth]:
    """(kind, seed) -> truth: the asserted kinds for every seed, the others for seed 0."""
    root: Path = tmp_path_factory.mktemp("motion-scenes")
    todo = [(k, s) for s in SEEDS for k in ASSERTED] + [
        (k, SEEDS[0]) for k in (*REPORTED, "normal")
    ]
    return {(k, s): generate_scene(root, kind=k, seed=s, duration_s=DURATION_S) for k, s in todo}


@pytest.fixture(scope="session")
def motion_results(
    motion_scenes: dict[tuple[str, int], SceneTruth],
) -> dict[tuple[str, int], SceneResult]:
    """(kind, seed) -> what the scorer and the grounder achieved on that scene."""
    if not RESULTS:
        for key, truth in motion_scenes.items():
            RESULTS[key] = evaluate(truth)
    return RESULTS


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the per-kind figures of the motion backends (when the motion tests ran)."""
    if not RESULTS:
        return
    tr = terminalreporter
    tr.write_sep(
        "-", "motion backends on synthetic scenes (frame AUC, unsmoothed; ground IoU>=0.3)"
    )
    tr.write_line(
        f"{'kind':<18} {'seed':>4} {'AUC':>5} {'peak':>5} {'best family':<12} {'hit':>5} {'top1':>5} {'top1m':>5} {'mIoU':>5}"
    )
    for (kind, seed), r in sorted(RESULTS.items(), key=lambda kv: (kv[0][0] == "normal", kv[0])):
        labels = span_labels(r.truth, r.frame_t)
        fam = (
            max(
                r.families,
                key=lambda f: r.families[f][labels].mean() - r.families[f][~labels].mean(),
            )
            if labels.any()
            else max(r.families, key=lambda f: r.families[f].max())
        )
        tr.write_line(
            f"{kind:<18} {seed:>4} {_fmt(r.auc, '.3f'):>5} {r.peak:>5.2f} {fam:<12} "
            f"{_fmt(r.hit_rate):>5} {_fmt(r.top1_rate):>5} {_fmt(r.top1_motion_rate):>5} {_fmt(r.mean_iou):>5}"
        )
    tr.write_line(
        "hit: a box with IoU>=0.3 for 'person'/'bag'; top1: the top box is it; top1m: the top "
        "box for a phrase naming the motion ('a person running', ...)"
    )
