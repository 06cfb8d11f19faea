"""Test-wide settings: offline hubs, a private cache, and fast CPU maths on random weights."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Set before anything imports huggingface_hub or ultralytics: no hub is reachable here, and
# without offline mode a missing model costs a 25 s retry loop.
_TMP = Path(tempfile.mkdtemp(prefix="vadetective-tests-"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_AUTOINSTALL"] = "0"
os.environ.setdefault("YOLO_CONFIG_DIR", str(_TMP / "yolo"))
os.environ.setdefault("MPLCONFIGDIR", str(_TMP / "mpl"))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["VADETECTIVE_CACHE_DIR"] = str(_TMP / "cache")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own cache folder, so cache hits are the test's own doing."""
    cache = tmp_path / "vadetective-cache"
    monkeypatch.setenv("VADETECTIVE_CACHE_DIR", str(cache))
    return cache


class SceneFactory:
    """Synthetic scenes generated once per test session, by (kind, seed, duration)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: dict[tuple[str, int, float], Path] = {}

    def __call__(self, kind: str = "sprint", seed: int = 0, duration_s: float = 12.0) -> Path:
        key = (kind, seed, duration_s)
        if key not in self._made:
            from vadetective.agent.synth.scene import generate_scene

            folder = self.root / f"{kind}-{seed}-{duration_s:g}"
            truth = generate_scene(folder, kind=kind, seed=seed, duration_s=duration_s)
            self._made[key] = Path(truth.video_path)
        return self._made[key]


@pytest.fixture(scope="session")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> SceneFactory:
    return SceneFactory(tmp_path_factory.mktemp("scenes"))


@pytest.fixture(scope="session")
def small_clip(scenes: SceneFactory) -> Path:
    return scenes("normal", 0, 6.0)


@pytest.fixture(scope="session")
def sprint_scene(scenes: SceneFactory) -> Path:
    return scenes("sprint", 0, 12.0)


_FIGURES: dict[str, list[str]] = {}


@pytest.fixture(scope="session")
def figures() -> dict[str, list[str]]:
    """Tables of measured figures; printed at the end of the run (``pytest_terminal_summary``)."""
    return _FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for title, rows in _FIGURES.items():
        terminalreporter.section(title)
        for row in rows:
            terminalreporter.write_line(row)
