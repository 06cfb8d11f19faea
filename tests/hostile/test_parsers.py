"""Issue 11 items 10, 11 and 13: hostile pickles, parsers, report inputs and folder datasets.

- A 277-byte pickle that references one list twice at each of 40 levels (2**40 paths, 40 lists)
  used to hang the UCF-Crime loader: each object is checked once now, depth and size bounded.
- A CSV field over csv's 128 KiB limit, 100,000-deep JSON (manifests, traces, ground truth), a
  NUL in an image path, ``$…$`` in a legend label, a 16000x16000 PNG referenced by a trace.
- A symlink loop in a dataset folder; ``sub/good1.mp4`` beside ``sub__good1.mp4``.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hostile_kit import (
    ROOT,
    assert_no_traceback,
    assert_refused,
    cli,
    report_with_truth,
    write_manifest,
)

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.datasets import load_dataset
from vadetective.agent.datasets.safe_pickle import safe_loads


# ------------------------------------------------------------------------------------ pickles
def _shared_reference_bomb(levels: int = 40) -> bytes:
    x: list[Any] = []
    for _ in range(levels):
        x = [x, x]
    return pickle.dumps(x, protocol=2)


def _deep(levels: int = 100_000) -> bytes:
    # Written by hand: pickle.dumps itself would recurse too deep.
    return b"\x80\x02" + b"]" * levels + b"a" * (levels - 1) + b"."


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("touch /tmp/vadetective-pwned",))


def _cycle() -> bytes:
    x: list[Any] = []
    x.append(x)
    return pickle.dumps(x, protocol=2)


@dataclass(frozen=True)
class PickleRow:
    name: str
    data: Callable[[], bytes]
    refused: str | None  # None: plain data, returned


PICKLES = [
    PickleRow("277-byte shared-reference bomb", _shared_reference_bomb, None),
    PickleRow("a list that contains itself", _cycle, None),
    PickleRow("100,000-deep nesting", _deep, "nesting deeper than 200"),
    PickleRow("os.system in __reduce__", lambda: pickle.dumps(_Evil()), "refused to load"),
    PickleRow("a truncated pickle", lambda: _shared_reference_bomb()[:-7], "not a valid pickle"),
    PickleRow("not a pickle at all", lambda: b"Abuse028_x264.mp4 Abuse 165 240 -1 -1\n", "pickle"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("row", PICKLES, ids=lambda r: r.name)
def test_hostile_pickles_are_checked_quickly_and_never_run(row: PickleRow) -> None:
    data = row.data()
    if row.name.startswith("277"):
        assert len(data) < 300
    started = time.perf_counter()
    if row.refused is None:
        safe_loads(data)
    else:
        with pytest.raises(DatasetError, match=row.refused):
            safe_loads(data)
    assert time.perf_counter() - started < 2.0
    assert not Path("/tmp/vadetective-pwned").exists()


@pytest.mark.timeout(120)
def test_the_ucf_crime_loader_refuses_the_bomb_in_one_sentence(tmp_path: Path, clip: Path) -> None:
    (tmp_path / "Abuse").mkdir()
    shutil.copy(clip, tmp_path / "Abuse" / "Abuse028_x264.mp4")
    (tmp_path / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").write_text(
        "Abuse028_x264.mp4  Abuse  3  40  -1  -1\n"
    )
    (tmp_path / "Test_annotation.pkl").write_bytes(_shared_reference_bomb())
    r = cli("batch", "ucf-crime", str(tmp_path), "--out", str(tmp_path / "run"), "-p", "classical")
    assert_refused(r, "Test_annotation.pkl", "expected a dict")


# ------------------------------------------------------------------------------------ parsers
DEEP_JSON = "[" * 100_000 + "]" * 100_000


@dataclass(frozen=True)
class FileRow:
    name: str
    #: (tmp_path, clip, analyzed run) -> cli args
    args: Callable[[Path, Path, Path], list[str]]
    fragments: tuple[str, ...]


def _csv_manifest(tmp: Path, clip: Path, extra: str) -> Path:
    shutil.copy(clip, tmp / "a.mp4")
    path = tmp / "manifest.csv"
    path.write_text(f"path,label,description\na.mp4,normal,{extra}\n")
    return path


def _deep_jsonl(tmp: Path, clip: Path) -> Path:
    shutil.copy(clip, tmp / "a.mp4")
    path = tmp / "manifest.jsonl"
    path.write_text(json.dumps({"path": "a.mp4"}) + "\n" + DEEP_JSON + "\n")
    return path


def _write(tmp: Path, name: str, text: str) -> Path:
    (tmp / name).write_text(text)
    return tmp / name


FILES = [
    FileRow(
        "CSV field over 128 KiB",
        lambda t, c, a: [
            "batch",
            "manifest",
            str(_csv_manifest(t, c, "x" * 200_000)),
            "--out",
            str(t / "r"),
        ],
        ("manifest.csv", "unreadable csv", "field larger than field limit"),
    ),
    FileRow(
        "100,000-deep JSON line in a manifest",
        lambda t, c, a: ["batch", "manifest", str(_deep_jsonl(t, c)), "--out", str(t / "r")],
        ("manifest.jsonl:2", "nested too deeply"),
    ),
    FileRow(
        "100,000-deep trace.json",
        lambda t, c, a: ["report", str(_write(t, "trace.json", DEEP_JSON))],
        ("is not a trace", "nested too deeply"),
    ),
    FileRow(
        "trace.json of the wrong shape",
        lambda t, c, a: ["report", str(_write(t, "trace.json", '{"question": 3}'))],
        ("is not a trace", "question"),
    ),
    FileRow(
        "trace.json that is not UTF-8",
        lambda t, c, a: ["report", str(_write(t, "trace.json", "x")), "-o", str(t / "o.html")],
        ("is not a trace",),
    ),
    FileRow(
        "100,000-deep ground truth",
        lambda t, c, a: report_with_truth(a, t / "r.html", _write(t, "g.truth.json", DEEP_JSON)),
        ("ground truth", "nested too deeply"),
    ),
]


@pytest.mark.parametrize("row", FILES, ids=lambda r: r.name)
def test_hostile_files_are_one_sentence(
    row: FileRow, tmp_path: Path, clip: Path, analyzed: Path
) -> None:
    args = row.args(tmp_path, clip, analyzed)
    if row.name == "trace.json that is not UTF-8":
        (tmp_path / "trace.json").write_bytes(b"\xff\xfe{\x00")
    if args[0] == "batch":
        args += ["--profile", "classical"]
    assert_refused(cli(*args), *row.fragments)


# ------------------------------------------------------------------------------ report inputs
def _png_header_bomb(path: Path, side: int = 16000) -> None:
    """A grey ``side``x``side`` PNG: a few hundred kilobytes on disk, 768 MB once decoded."""
    row = b"\x00" + b"\x00" * side
    z = zlib.compressobj(9)
    body = b"".join(z.compress(row) for _ in range(side)) + z.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def _hostile_run(analyzed: Path, tmp: Path, change: Callable[[dict[str, Any], Path], None]) -> Path:
    run = tmp / "run"
    shutil.copytree(analyzed, run)
    trace = json.loads((run / "trace.json").read_text())
    change(trace, run)
    (run / "trace.json").write_text(json.dumps(trace))
    return run / "trace.json"


def _first_image(trace: dict[str, Any]) -> dict[str, Any]:
    return next(img for s in trace["steps"] for img in s.get("images", []))


def _nul_path(trace: dict[str, Any], run: Path) -> None:
    _first_image(trace)["path"] = "frames/a\x00b.jpg"


def _mathtext(trace: dict[str, Any], run: Path) -> None:
    ev = next(e for e in trace["evidence"] if e.get("curve"))
    ev["id"] = "E$\\frac{1}{$"
    ev["curve"]["families"] = {"$\\sqrt{": ev["curve"]["score"]}
    for s in trace["steps"]:
        if s.get("evidence_id") and s["evidence_id"] == "E1":
            s["evidence_id"] = ev["id"]


def _huge_png(trace: dict[str, Any], run: Path) -> None:
    _png_header_bomb(run / "frames" / "huge.png")
    _first_image(trace)["path"] = "frames/huge.png"


REPORTS = [
    ("NUL in an image path", _nul_path, "NUL byte"),
    ("$…$ in legend labels", _mathtext, "frac{1}"),
    ("a 16000x16000 PNG", _huge_png, "too large to embed"),
]


@pytest.mark.parametrize(("name", "change", "shown"), REPORTS, ids=[r[0] for r in REPORTS])
def test_hostile_traces_still_render_within_bounded_memory(
    name: str, change: Callable[[dict[str, Any], Path], None], shown: str, tmp_path: Path,
    analyzed: Path,
) -> None:  # fmt: skip
    trace = _hostile_run(analyzed, tmp_path, change)
    code = (
        "import resource, runpy, sys\n"
        f"sys.argv = ['vadetective', 'report', {str(trace)!r}]\n"
        "try:\n    runpy.run_module('vadetective', run_name='__main__')\n"
        "finally:\n"
        "    print('MAXRSS_KB=%d' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
        " file=sys.stderr)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr
    html = (trace.parent / "report.html").read_text()
    assert shown in html
    rss_mb = int(r.stderr.rsplit("MAXRSS_KB=", 1)[1].split()[0]) / 1024
    assert rss_mb < 700, f"report took {rss_mb:.0f} MB"


# ------------------------------------------------------------------------------ folder datasets
def _list_folder(root: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """``batch folder ROOT --limit 0``: the dataset is read and listed, nothing analyzed."""
    r = cli("batch", "folder", str(root), "--out", str(out), "--limit", "0", "-p", "classical")
    assert_no_traceback(r)
    return r


def test_a_symlink_loop_in_a_dataset_folder_is_harmless(tmp_path: Path, clip: Path) -> None:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    shutil.copy(clip, root / "a.mp4")
    shutil.copy(clip, root / "sub" / "b.mp4")
    (root / "sub" / "loop").symlink_to("..", target_is_directory=True)
    (root / "sub" / "again.mp4").symlink_to(root / "a.mp4")  # the same file twice
    started = time.perf_counter()
    ds = load_dataset("folder", root)
    assert time.perf_counter() - started < 5
    assert sorted(v.video_id for v in ds) == ["a", "b"]
    r = _list_folder(root, tmp_path / "r")
    assert r.returncode == 0 and "2 videos" in r.stdout


def test_colliding_folder_ids_are_made_unique(tmp_path: Path, clip: Path) -> None:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    for rel in ("good1.mp4", "sub/good1.mp4", "sub__good1.mp4", "sub/sub__good1.mp4"):
        shutil.copy(clip, root / rel)
    ds = load_dataset("folder", root)
    ids = [v.video_id for v in ds]
    assert len(set(ids)) == 4, ids
    assert load_dataset("folder", root).videos == ds.videos  # stable from run to run
    r = _list_folder(root, tmp_path / "r")
    assert r.returncode == 0, r.stderr


def test_manifest_jsonl_rows_of_the_wrong_type_are_one_sentence(tmp_path: Path, clip: Path) -> None:
    shutil.copy(clip, tmp_path / "a.mp4")
    manifest = write_manifest(tmp_path, [{"path": "a.mp4", "spans": [[1, "x"]]}])
    r = cli("batch", "manifest", str(manifest), "--out", str(tmp_path / "r"), "-p", "classical")
    assert_refused(r, "manifest.jsonl:1", "span")
