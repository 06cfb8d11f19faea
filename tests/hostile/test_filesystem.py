"""Issue 11 item 9: file-system errors are one sentence, checked before the work where possible.

``--out`` a file, read-only (checked before the analysis runs, not after), a full disk
(``ENOSPC``: finished videos kept), a 251-character file name or a 300-byte manifest id
(``ENAMETOOLONG``), a folder where a file is expected (``report -o``, ``--ground-truth``, TRACE).
Full and read-only file systems are real: a small or read-only tmpfs in a private mount
namespace (``unshare -m``), so nothing outside the command changes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hostile_kit import (
    assert_no_traceback,
    assert_refused,
    can_unshare,
    cli,
    cli_with_mounts,
    report_with_truth,
    write_manifest,
)


@dataclass(frozen=True)
class Row:
    name: str
    #: (tmp_path, clip, analyzed run folder) -> cli args
    args: Callable[[Path, Path, Path], list[str]]
    fragments: tuple[str, ...]  # empty: the command succeeds


def _file(tmp: Path, name: str) -> Path:
    path = tmp / name
    path.write_text("I am a file\n")
    return path


def _long_name_folder(tmp: Path, clip: Path) -> Path:
    folder = tmp / "long"
    folder.mkdir()
    shutil.copy(clip, folder / ("n" * 247 + ".mp4"))  # 251 characters with the suffix
    return folder


def _long_id_manifest(tmp: Path, clip: Path) -> Path:
    shutil.copy(clip, tmp / "a.mp4")
    return write_manifest(tmp / "m", [{"path": "../a.mp4", "id": "i" * 300}])


ROWS = [
    Row(
        "analyze --out is a file",
        lambda t, c, a: ["analyze", str(c), "--out", str(_file(t, "o.txt"))],
        ("is a file, not a folder",),
    ),
    Row(
        "analyze --out inside a file",
        lambda t, c, a: ["analyze", str(c), "--out", str(_file(t, "o.txt") / "sub")],
        ("part of it is a file",),
    ),
    Row(
        "batch --out is a file",
        lambda t, c, a: ["batch", "folder", str(c.parent), "--out", str(_file(t, "r.txt"))],
        ("--out", "is a file, not a folder"),
    ),
    Row(
        "report -o is a folder: the report goes inside it",
        lambda t, c, a: ["report", str(a / "trace.json"), "-o", str(t)],
        (),
    ),
    Row(
        "report TRACE is the run folder: its trace.json is used",
        lambda t, c, a: ["report", str(a), "-o", str(t / "r.html")],
        (),
    ),
    Row(
        "report TRACE is a folder without a trace",
        lambda t, c, a: ["report", str(t)],
        ("is a folder, not a trace",),
    ),
    Row(
        "report --ground-truth is a folder",
        lambda t, c, a: report_with_truth(a, t / "r.html", t),
        ("ground truth", "is a folder"),
    ),
    Row(
        "batch over a file named with 251 characters",
        lambda t, c, a: [
            "batch",
            "folder",
            str(_long_name_folder(t, c)),
            "--out",
            str(t / "r"),
            "--graph",
            "chain",
        ],
        (),
    ),
    Row(
        "batch with a 300-byte manifest id",
        lambda t, c, a: ["batch", "manifest", str(_long_id_manifest(t, c)), "--out", str(t / "r")],
        ("manifest.jsonl:1", "300 bytes long"),
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_file_system_rows(row: Row, tmp_path: Path, clip: Path, analyzed: Path) -> None:
    args = row.args(tmp_path, clip, analyzed)
    r = cli(*args, *(["--profile", "classical"] if args[0] != "report" else []))
    if row.fragments:
        assert_refused(r, *row.fragments)
    else:
        assert_no_traceback(r)
        assert r.returncode == 0, r.stderr
    if "report -o is a folder" in row.name:
        assert (tmp_path / "report.html").stat().st_size > 10_000
    if "251 characters" in row.name:
        (result,) = (tmp_path / "r" / "results").glob("*.json")
        assert len(result.name.encode()) <= 255 and json.loads(result.read_text())["verdict"]


# ------------------------------------------------------------------ real full / read-only disks
needs_unshare = pytest.mark.skipif(
    not can_unshare(), reason="needs a private mount namespace (unshare -m) for a real tmpfs"
)


@needs_unshare
@pytest.mark.parametrize("command", ["analyze", "batch"])
def test_a_read_only_out_is_refused_before_any_work(
    command: str, tmp_path: Path, clip: Path
) -> None:
    out = tmp_path / "ro"
    out.mkdir()
    args = ["analyze", str(clip)] if command == "analyze" else ["batch", "folder", str(clip.parent)]
    r = cli_with_mounts(
        [f"mount -t tmpfs -o ro tmpfs {out}"], *args, "--out", str(out), "--profile", "classical"
    )
    assert_refused(r, "--out", "read-only file system")
    assert r.stdout == "", "the analysis ran before the folder was checked"


@needs_unshare
def test_a_full_disk_in_analyze_is_one_sentence(tmp_path: Path, clip: Path) -> None:
    out = tmp_path / "full"
    out.mkdir()
    r = cli_with_mounts(
        [f"mount -t tmpfs -o size=48k tmpfs {out}"],
        "analyze", str(clip), "--out", str(out / "o"), "--profile", "classical",
    )  # fmt: skip
    assert_refused(r, "no space left on device")


@needs_unshare
def test_a_full_disk_stops_a_batch_and_keeps_what_was_finished(
    tmp_path: Path, tiny_suite: Path
) -> None:
    out = tmp_path / "full"
    out.mkdir()
    saved = tmp_path / "saved"
    r = cli_with_mounts(
        [f"mount -t tmpfs -o size=250k tmpfs {out}"],
        "batch", "manifest", str(tiny_suite), "--out", str(out / "run"),
        "--profile", "classical", "--graph", "chain",
        after=f"cp -r {out / 'run'} {saved}",
    )  # fmt: skip
    assert_refused(r, "cannot be written", "no space left on device", "finished videos are kept")
    results = list((saved / "results").glob("*.json"))
    assert 1 <= len(results) < 4, (r.stdout, r.stderr, list(saved.rglob("*")))
    for p in results:  # every finished result is whole
        assert json.loads(p.read_text())["verdict"]["frame_scores"]
    failures = saved / "failures.jsonl"
    assert not failures.exists() or failures.read_text() == "", "a full disk is no video's fault"
