"""Issue 11 item 12: a ``--checkpoint`` that cannot serve is one sentence, never a traceback,
and a hostile row in it is never unpickled. A good checkpoint still resumes."""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hostile_kit import assert_no_traceback, assert_refused, can_unshare, cli, cli_with_mounts

PWNED = Path("/tmp/vadetective-checkpoint-pwned")


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (PWNED.touch, ())


def _garbage(tmp: Path) -> Path:
    (tmp / "c.sqlite").write_bytes(bytes(range(256)) * 64)
    return tmp / "c.sqlite"


def _text(tmp: Path) -> Path:
    (tmp / "c.sqlite").write_text("resume from here, please\n" * 40)
    return tmp / "c.sqlite"


def _folder(tmp: Path) -> Path:
    (tmp / "c.sqlite").mkdir()
    return tmp / "c.sqlite"


def _other_schema(tmp: Path) -> Path:
    with sqlite3.connect(tmp / "c.sqlite") as conn:
        conn.execute("CREATE TABLE checkpoints (id INTEGER PRIMARY KEY, note TEXT)")
        conn.execute("INSERT INTO checkpoints (note) VALUES ('from another program')")
    return tmp / "c.sqlite"


@dataclass(frozen=True)
class Row:
    name: str
    build: Callable[[Path], Path]
    fragments: tuple[str, ...]


ROWS = [
    Row("garbage bytes", _garbage, ("not a SQLite checkpoint file",)),
    Row("a text file", _text, ("not a SQLite checkpoint file",)),
    Row("a folder", _folder, ("is a folder",)),
    Row("a SQLite file of another program", _other_schema, ("another program", "checkpoints")),
    Row(
        "a file inside a file",
        lambda t: _text(t) / "c.sqlite",
        ("checkpoint's folder", "is a file, not a folder"),
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_bad_checkpoints_are_one_sentence(row: Row, tmp_path: Path, clip: Path) -> None:
    checkpoint = row.build(tmp_path)
    r = cli(
        "analyze", str(clip), "--profile", "classical", "--out", str(tmp_path / "o"),
        "--checkpoint", str(checkpoint),
    )  # fmt: skip
    assert_refused(r, *row.fragments)


def test_a_pickle_typed_row_is_refused_and_never_unpickled(tmp_path: Path, clip: Path) -> None:
    """Analyze once with a checkpoint, then poison every stored value with a pickle."""
    checkpoint = tmp_path / "c.sqlite"
    r = cli("analyze", str(clip), "-p", "classical", "--out", str(tmp_path / "o"),
            "--checkpoint", str(checkpoint))  # fmt: skip
    assert r.returncode == 0, r.stderr
    evil = pickle.dumps(_Evil())
    with sqlite3.connect(checkpoint) as conn:
        assert conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0] > 0
        conn.execute("UPDATE checkpoints SET type = 'pickle', checkpoint = ?", (evil,))
    r = cli("analyze", str(clip), "-p", "classical", "--out", str(tmp_path / "o"),
            "--checkpoint", str(checkpoint))  # fmt: skip
    assert_refused(r, "holds a state this version cannot read", "pickle")
    assert not PWNED.exists()


@pytest.mark.skipif(not can_unshare(), reason="needs unshare -m for a read-only tmpfs")
def test_a_checkpoint_in_a_read_only_folder_is_one_sentence(tmp_path: Path, clip: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    r = cli_with_mounts(
        [f"mount -t tmpfs -o ro tmpfs {ro}"],
        "analyze", str(clip), "-p", "classical", "--out", str(tmp_path / "o"),
        "--checkpoint", str(ro / "c.sqlite"),
    )  # fmt: skip
    assert_refused(r, "checkpoint's folder", "read-only file system")


def test_a_good_checkpoint_still_resumes(tmp_path: Path, clip: Path) -> None:
    checkpoint = tmp_path / "c.sqlite"
    for _ in range(2):
        r = cli("analyze", str(clip), "-p", "classical", "--out", str(tmp_path / "o"),
                "--checkpoint", str(checkpoint), "--json")  # fmt: skip
        assert_no_traceback(r)
        assert r.returncode == 0, r.stderr
        assert '"is_anomalous"' in r.stdout
