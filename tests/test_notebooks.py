"""The notebooks under ``notebooks/`` run top to bottom and show what they promise.

Each notebook is executed with nbclient on the ``python3`` kernel of this environment, in a
fresh working folder, and its outputs are checked: no error, the verdict printed, figures and
images displayed. The committed files themselves must be clean (no outputs, no execution
counts) and call only the package's public API.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["01_ask_a_video.ipynb", "02_batch_and_evaluate.ipynb", "03_inspect_traces.ipynb"]
CELL_TIMEOUT_S = 300


def _read(name: str) -> Any:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def _code(nb: Any) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def _outputs(nb: Any) -> list[Any]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _text(nb: Any) -> str:
    """Everything the notebook printed or returned as text or HTML."""
    parts: list[str] = []
    for o in _outputs(nb):
        if o.output_type == "stream":
            parts.append(o.text)
        data = o.get("data", {})
        parts += [data.get("text/plain", ""), data.get("text/html", "")]
    return "\n".join(parts)


def _count(nb: Any, mime: str) -> int:
    return sum(1 for o in _outputs(nb) if mime in o.get("data", {}))


def _execute(name: str, tmp_path: Path) -> Any:
    """Run a notebook in ``tmp_path/cwd``, its temporary folders under ``tmp_path/tmp``."""
    cwd = tmp_path / "cwd"  # tmp_path itself holds the per-test vadetective cache
    tmp = tmp_path / "tmp"  # the kernel's TMPDIR: what tempfile.mkdtemp() hands the notebook
    cwd.mkdir()
    tmp.mkdir()
    nb = _read(name)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
    )
    # Raises CellExecutionError on the first failing cell.
    client.execute(env={**os.environ, "TMPDIR": str(tmp)})
    errors = [o for o in _outputs(nb) if o.output_type == "error"]
    assert not errors, f"{name}: {errors[0].ename}: {errors[0].evalue}"
    return nb


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_committed_clean_and_uses_the_public_api(name: str) -> None:
    nb = _read(name)
    nbformat.validate(nb)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert code_cells, f"{name} has no code"
    assert all(not c.outputs and c.execution_count is None for c in code_cells), (
        f"{name} was committed with outputs; clear them"
    )
    code = _code(nb)
    assert re.search(r"^import vadetective as vd$", code, re.M), name
    # Only the flat public API: no reaching into vadetective.agent / .tools / .graphs.
    assert not re.search(r"\bvadetective\.\w", code), f"{name} imports a private module"
    assert not re.search(r"^\s*(def|class) ", code, re.M), f"{name} holds logic of its own"
    assert 'profile="classical"' in code, f"{name} must run on the weight-free profile"
    assert "tempfile.mkdtemp" in code, f"{name} must write into a temporary folder"


@pytest.mark.slow
def test_01_ask_a_video(tmp_path: Path) -> None:
    nb = _execute("01_ask_a_video.ipynb", tmp_path)
    text = _text(nb)
    assert text.count("'is_anomalous':") == 2, "both verdicts are shown"
    assert "'justification':" in text
    # Two timelines and the keyframes, each rendered as an image.
    assert _count(nb, "image/png") == 3
    assert not list((tmp_path / "cwd").iterdir()), "the notebook wrote into its working folder"
    (work,) = (tmp_path / "tmp").glob("vadetective-nb01-*")
    assert (work / "run" / "trace.json").is_file() and (work / "run" / "trace-2.json").is_file()


@pytest.mark.slow
def test_02_batch_and_evaluate(tmp_path: Path) -> None:
    nb = _execute("02_batch_and_evaluate.ipynb", tmp_path)
    text = _text(nb)
    assert "manifest: 4 videos (3 anomalous, 1 normal, 0 unlabelled)" in text
    assert "4 done, 0 failed, 0 skipped" in text
    assert "0 done, 4 skipped" in text, "a second run resumes"
    html = "\n".join(o.data["text/html"] for o in _outputs(nb) if "text/html" in o.get("data", {}))
    assert "frame AUC" in html and "span mAP" in html, "the metrics table is shown"
    assert _count(nb, "image/png") == 4, "one timeline per video"
    (work,) = (tmp_path / "tmp").glob("vadetective-nb02-*")
    assert len(list((work / "run" / "results").glob("*.json"))) == 4
    assert (work / "run" / "metrics.json").is_file()


@pytest.mark.slow
def test_03_inspect_traces(tmp_path: Path) -> None:
    nb = _execute("03_inspect_traces.ipynb", tmp_path)
    text = _text(nb)
    assert "steps," in text and "pieces of evidence" in text
    assert "score_timeline" in text, "the replay shows the perception step"
    assert "sample_frames(" in text, "the filtered tool steps are listed"
    assert _count(nb, "image/jpeg") >= 2, "frames and crops are displayed"
    assert _count(nb, "image/png") == 1, "the keyframes figure"
    assert "report.html" in text
    assert "<iframe srcdoc=" in text and "Content-Security-Policy" in text, "the report is inline"
    (work,) = (tmp_path / "tmp").glob("vadetective-nb03-*")
    assert (work / "run" / "report.html").is_file()
