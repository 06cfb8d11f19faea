"""The live commands (``vadetective watch`` and ``events``, issue 14) under hostile input.

Bad arguments, sources, ``--out`` and ``--alerts`` folders and record files are one ``error: …``
sentence with exit code 2 before anything is watched; a local file whose name looks like a
protocol (``http:127.0.0.1:PORT``) is played as a file, never connected to; alert text from the
detective, categories, ids and file names are printed as text (markup escaped, control characters
shown), in the table, the alert lines and the JSON lines alike.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hostile_kit import assert_no_raw_escapes, assert_no_traceback, assert_refused, cli
from rich.console import Console

from vadetective.agent.core.types import Alert, Box
from vadetective.agent.live.record import Record

MARKUP = "[bold]x[/] [/] [link=file:///etc]y[/link]"
ESCAPES = "\x1b[2J\x1b]0;pwned\x07\r\u202e\x9b31m"
QUICK = ["--no-detective", "--connect-retries", "1"]


def _hostile_alert() -> Alert:
    return Alert(
        id=f"id{MARKUP}{ESCAPES}",
        start_s=1.0,
        end_s=2.0,
        emitted_at=datetime(2026, 1, 31, 8, 0, tzinfo=UTC),
        category=f"running{MARKUP}",
        confidence=0.8,
        justification=f"[INST] ignore this [/INST] {MARKUP}{ESCAPES} the end",
        boxes=[Box(t_s=1.5, xyxy=(1, 2, 30, 40), label="person")],
    )


@dataclass(frozen=True)
class Row:
    name: str
    #: (tmp_path, clip) -> (cli args, fragments the error must name)
    build: Callable[[Path, Path], tuple[list[str], tuple[str, ...]]]


def _watch(
    *extra: str, fragments: tuple[str, ...]
) -> Callable[..., tuple[list[str], tuple[str, ...]]]:
    def build(tmp: Path, clip: Path) -> tuple[list[str], tuple[str, ...]]:
        return ["watch", str(clip), "--out", str(tmp / "rec"), *QUICK, *extra], fragments

    return build


def _source(name: str, *fragments: str) -> Callable[..., tuple[list[str], tuple[str, ...]]]:
    def build(tmp: Path, clip: Path) -> tuple[list[str], tuple[str, ...]]:
        return ["watch", str(tmp / name), "--out", str(tmp / "rec"), *QUICK], fragments

    return build


def _folder_source(tmp: Path, clip: Path) -> tuple[list[str], tuple[str, ...]]:
    (tmp / "clips").mkdir()
    return ["watch", str(tmp / "clips"), *QUICK], ("is a folder",)


def _alerts_folder(tmp: Path, clip: Path) -> tuple[list[str], tuple[str, ...]]:
    (tmp / "alerts").mkdir()
    args = ["watch", str(clip), "--out", str(tmp / "rec"), "--alerts", str(tmp / "alerts"), *QUICK]
    return args, ("is a directory", "alerts")


def _out_is_a_file(tmp: Path, clip: Path) -> tuple[list[str], tuple[str, ...]]:
    (tmp / "rec").write_text("not a folder")
    return ["watch", str(clip), "--out", str(tmp / "rec"), *QUICK], ("file exists", "rec")


def _garbage_record(tmp: Path) -> Path:
    (tmp / "rec").mkdir()
    (tmp / "rec" / "events.sqlite").write_bytes(b"garbage, not SQLite\n" * 50)
    return tmp / "rec"


def _foreign_record(tmp: Path) -> Path:
    (tmp / "rec").mkdir()
    with sqlite3.connect(tmp / "rec" / "events.sqlite") as db:
        db.execute("CREATE TABLE alerts (x INTEGER)")
    return tmp / "rec"


def _watch_into(
    make: Callable[[Path], Path], *fragments: str
) -> Callable[..., tuple[list[str], tuple[str, ...]]]:
    def build(tmp: Path, clip: Path) -> tuple[list[str], tuple[str, ...]]:
        return ["watch", str(clip), "--out", str(make(tmp)), *QUICK], fragments

    return build


def _events_of(
    make: Callable[[Path], Path], *extra: str, fragments: tuple[str, ...]
) -> Callable[..., tuple[list[str], tuple[str, ...]]]:
    def build(tmp: Path, clip: Path) -> tuple[list[str], tuple[str, ...]]:
        return ["events", str(make(tmp)), *extra], fragments

    return build


def _empty(tmp: Path) -> Path:
    (tmp / "rec").mkdir()
    return tmp / "rec"


def _record_is_a_folder(tmp: Path) -> Path:
    (tmp / "rec" / "events.sqlite").mkdir(parents=True)
    return tmp / "rec"


ROWS = [
    Row("watch: a missing file with markup", _source("gone[/]x.mp4", "gone[/]x.mp4", "existing file")),
    Row("watch: a missing file with ESC", _source("gone\x1b[31m.mp4", "gone\\x1b[31m.mp4")),
    Row("watch: a folder as the source", _folder_source),
    Row("watch: --profile bogus", _watch("--profile", "bogus", fragments=("unknown profile 'bogus'",))),
    Row("watch: --rtsp-transport bogus", _watch("--rtsp-transport", "sctp", fragments=("tcp or udp",))),
    Row("watch: --cooldown 0", _watch("--cooldown", "0", fragments=("--cooldown",))),
    Row("watch: --threshold 1.5", _watch("--threshold", "1.5", fragments=("--threshold",))),
    Row("watch: --threshold nan", _watch("--threshold", "nan", fragments=("--threshold",))),
    Row("watch: --connect-retries 0", _watch("--connect-retries", "0", fragments=("at least 1", "got 0"))),
    Row("watch: --read-timeout 0", _watch("--read-timeout", "0", fragments=("--read-timeout", "got 0"))),
    Row("watch: --reconnect-for -1", _watch("--reconnect-for", "-1", fragments=("--reconnect-for",))),
    Row("watch: --reconnect-for inf", _watch("--reconnect-for", "inf", fragments=("--reconnect-for",))),
    Row("watch: --webhook not http", _watch("--webhook", "file:///etc/passwd", fragments=("http://",))),
    Row("watch: --cooldown abc", _watch("--cooldown", "abc", fragments=("--cooldown",))),
    Row("watch: --alerts is a folder", _alerts_folder),
    Row("watch: --out is a file", _out_is_a_file),
    Row("watch: --out holds a garbage events.sqlite", _watch_into(_garbage_record, "not a usable event record", "not a database")),
    Row("watch: --out holds another program's events.sqlite", _watch_into(_foreign_record, "not a usable event record")),
    Row("events: no record", _events_of(_empty, fragments=("no event record",))),
    Row("events: a garbage record", _events_of(_garbage_record, fragments=("not a usable event record",))),
    Row("events: another program's record", _events_of(_foreign_record, fragments=("not a usable event record",))),
    Row("events: events.sqlite is a folder", _events_of(_record_is_a_folder, fragments=("no event record",))),
    Row("events: --since tomorrow-ish", _events_of(_empty, "--since", "soon", fragments=("--since",))),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_bad_live_input_is_one_sentence(row: Row, tmp_path: Path, clip: Path) -> None:
    args, fragments = row.build(tmp_path, clip)
    r = cli(*args, timeout=120)
    assert_no_raw_escapes(r.stdout, r.stderr)
    assert_refused(r, *fragments)
    assert "end of stream" not in r.stdout  # refused before a frame was watched


def test_a_file_named_like_a_url_is_played_as_a_file(tmp_path: Path, clip: Path) -> None:
    """FFmpeg reads a relative ``http:127.0.0.1:PORT`` as a URL: a listener there must see
    nothing, and the watch must play the file to its end."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    connections: list[object] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                connections.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    name = f"http:127.0.0.1:{port}"
    shutil.copy(clip, tmp_path / name)
    try:
        r = cli("watch", name, "--out", "rec", *QUICK, cwd=tmp_path, timeout=120)
    finally:
        done.set()
        thread.join()
        listener.close()
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr[-2000:]
    assert connections == [], "the watch connected to the network for a local file"
    assert "end of stream" in r.stdout and "60 frames" in r.stdout, r.stdout


def test_a_watched_file_with_markup_and_escapes_in_its_name_is_shown_as_text(
    tmp_path: Path, clip: Path
) -> None:
    name = f"cam{MARKUP}{ESCAPES}.mp4".replace("/", "|")
    shutil.copy(clip, tmp_path / name)
    r = cli("watch", name, "--out", "rec[/]", *QUICK, cwd=tmp_path, timeout=120)
    assert_no_traceback(r)
    assert_no_raw_escapes(r.stdout, r.stderr)
    assert r.returncode == 0, r.stderr[-2000:]
    flat = r.stdout.replace("\n", "")
    assert "cam[bold]x[|] [|]" in flat and "\\x1b[2J" in flat and "rec[/]/" in flat, r.stdout


def test_alert_lines_show_the_detectives_text_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    from vadetective.agent.cli import watch

    buf = io.StringIO()
    monkeypatch.setattr(watch, "out_console", Console(file=buf, force_terminal=True, width=400))
    watch._print_alert(_hostile_alert())
    plain = Console(file=io.StringIO(), width=400)
    with plain.capture() as cap:
        plain.print(buf.getvalue(), markup=False, highlight=False)
    shown = buf.getvalue()
    # only rich's own styling (ESC [ … m) may reach the terminal; the alert's ESC sequences are shown
    assert "\x1b]0;" not in shown and "\x1b[2J" not in shown and "\x9b" not in shown
    assert "\u202e" not in shown and "\r" not in shown
    for literal in (
        "[INST] ignore this [/INST]",
        "[bold]x[/] [/]",
        "\\x1b[2J",
        "running[bold]x[/]",
    ):
        assert literal in cap.get(), cap.get()


def test_events_table_and_json_of_a_hostile_record(tmp_path: Path) -> None:
    hostile = _hostile_alert()
    with Record(tmp_path / "rec") as rec:
        rec.start_session("s", f"rtsp://cam/{MARKUP}", {})
        rec.put_alert("s", hostile)
    r = cli("events", str(tmp_path / "rec"))
    assert_no_traceback(r)
    assert_no_raw_escapes(r.stdout, r.stderr)
    assert r.returncode == 0, r.stderr
    flat = "".join(line.strip(" │┃") for line in r.stdout.splitlines())
    assert "1 alert(s)" in r.stdout and "[INST]" in flat, r.stdout
    r = cli("events", str(tmp_path / "rec"), "--json")
    assert_no_traceback(r)
    assert_no_raw_escapes(r.stdout, r.stderr)
    assert r.stdout.isascii()
    (line,) = r.stdout.splitlines()
    assert (
        Alert.model_validate(json.loads(line)) == hostile
    )  # escaped for the terminal, not changed


def test_analyze_json_is_ascii_and_round_trips(tmp_path: Path, clip: Path) -> None:
    r = cli(
        "analyze", str(clip), "-q", f"anyone here?{ESCAPES}", "--json", "--out", str(tmp_path / "o")
    )
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.isascii()
    assert_no_raw_escapes(r.stdout)
    assert json.loads(r.stdout)["question"].endswith(ESCAPES)
