"""Fixtures of the dataset tests: every benchmark in its official layout (``layouts.py``)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

_path = Path(__file__).resolve().parent / "layouts.py"
_spec = importlib.util.spec_from_file_location("vadetective_tests_layouts", _path)
assert _spec is not None and _spec.loader is not None
layouts: ModuleType = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = layouts  # dataclasses look their module up while it loads
_spec.loader.exec_module(layouts)


@pytest.fixture(scope="session")
def layout_builders() -> ModuleType:
    """The ``layouts`` module (builders of every official layout)."""
    return layouts


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """An anomalous (a sprint) and a normal generated scene, decoded once per session."""
    folder = tmp_path_factory.mktemp("clips")
    return layouts.make_clip(folder, "sprint", 1), layouts.make_clip(folder, "normal", 2)


@pytest.fixture
def build(tmp_path: Path, clips: tuple[Any, Any]) -> Callable[..., Any]:
    """``build(kind, **options)``: write that benchmark's official layout under ``tmp_path``."""

    def _build(kind: str, **kw: Any) -> Any:
        root = tmp_path / kind
        root.mkdir()
        return layouts.BUILDERS[kind](root, *clips, **kw)

    return _build
