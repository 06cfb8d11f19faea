"""Fixtures of the VLM tests: see vlm_fixtures.py (shared with tests/graphs/planners)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

_spec = importlib.util.spec_from_file_location(
    "vadetective_tests_vlm_fixtures", Path(__file__).with_name("vlm_fixtures.py")
)
assert _spec is not None and _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

fake_server = _fixtures.fake_server
scene_source = _fixtures.scene_source
tiny_vlm_dirs = _fixtures.tiny_vlm_dirs


@pytest.fixture(scope="session")
def vlm_kit() -> ModuleType:
    """The helper module: ``Reply``, ``FakeSource``, ``GenerateSpy``, ``closed_port_url``..."""
    return _fixtures
