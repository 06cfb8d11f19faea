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
