"""The hostile-input suite (issue 11): what a hostile-but-realistic user does, one row each.

Every row builds its own input and asserts what the user sees: one ``error: …`` sentence on
stderr with exit code 2 and no traceback (``assert_refused``), or a verdict; nothing finished
lost; nothing connecting to the network unless the user gave a URL. The video-layer rows are in
``test_video_inputs.py`` (issue 12's helper); the rest is in the other modules here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_kit import write_manifest


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6 s, 10 fps generated street scene (normal): the quickest real video to analyze."""
    from vadetective.agent.synth.scene import generate_scene

    folder = tmp_path_factory.mktemp("hostile-clip")
    truth = generate_scene(
        folder, kind="normal", seed=0, duration_s=6.0, fps=10, resolution_wh=(240, 136)
    )
    return Path(truth.video_path)


@pytest.fixture(scope="session")
def tiny_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest of four 6 s generated scenes (videos/v0.mp4 … v3.mp4)."""
    from vadetective.agent.synth.scene import generate_scene

    root = tmp_path_factory.mktemp("hostile-suite")
    rows = []
    for i, kind in enumerate(("sprint", "normal", "fall", "normal")):
        truth = generate_scene(
            root / "videos",
            kind=kind,
            seed=i,
            duration_s=6.0,
            fps=10,
            resolution_wh=(240, 136),
            name=f"v{i}",
        )
        rows.append({"path": f"videos/{Path(truth.video_path).name}", "label": kind})
    return write_manifest(root, rows)


@pytest.fixture(scope="session")
def analyzed(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of one classical analysis of ``clip`` (trace.json, frames/, ...)."""
    from vadetective.agent.session import Detective

    out = tmp_path_factory.mktemp("hostile-analyzed")
    with Detective(clip, profile="classical", out=out) as d:
        d.ask()
    return out
