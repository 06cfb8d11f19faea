"""Packaging: one import root, a single OpenCV, a light import."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_only_the_vadetective_package(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("vadetective-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {
        "vadetective",
        f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info",
    }
    for forbidden in ("agent", "tools", "graphs", "tests"):
        assert forbidden not in top
    for needed in (
        "vadetective/agent/core/types.py",
        "vadetective/tools/toolbox.py",
        "vadetective/graphs/detective.py",
        "vadetective/agent/cli/__init__.py",
    ):
        assert needed in names, f"{needed} missing from the wheel"
    assert not any(n.startswith("vadetective/tests") for n in names)


def test_exactly_one_opencv_distribution_and_cv2_imports() -> None:
    flavours = {
        d.metadata["Name"].lower()
        for d in metadata.distributions()
        if d.metadata["Name"] and d.metadata["Name"].lower().startswith("opencv")
    }
    assert len(flavours) == 1, (
        f"more than one OpenCV distribution shares the cv2 folder: {sorted(flavours)}"
    )
    import cv2

    assert int(cv2.__version__.split(".")[0]) >= 4
    import numpy as np

    frame = cv2.cvtColor(np.zeros((8, 8, 3), np.uint8), cv2.COLOR_RGB2GRAY)
    assert frame.shape == (8, 8)


def test_import_is_light() -> None:
    code = (
        "import sys, vadetective; from vadetective import Verdict, Trace; import vadetective.agent.cli;"
        "heavy = [m for m in ('torch', 'transformers', 'ultralytics', 'groundingdino', 'cv2', 'openai', 'tenacity', 'xllamacpp') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"importing vadetective pulled in heavy modules: {out}"


def test_public_api_names() -> None:
    import vadetective

    for name in ("Detective", "analyze", "run_dataset", "Verdict", "Trace"):
        assert hasattr(vadetective, name), name
    with pytest.raises(AttributeError):
        vadetective.NotAThing  # noqa: B018
