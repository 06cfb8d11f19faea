"""Issue 11 item 4: untrusted text is printed as text, never as rich markup or terminal codes.

A question ``[INST] … [/INST]``, a file named ``clip[/]x.mp4`` or a manifest id holding ``[/]``
used to raise rich's ``MarkupError`` in the middle of the run (losing it); ESC sequences in file
names and questions reached the terminal raw.
"""

from __future__ import annotations

import io
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hostile_kit import (
    assert_no_raw_escapes,
    assert_no_traceback,
    assert_refused,
    cli,
    write_manifest,
)

MARKUP = "[INST] is anyone [bold]here[/bold]? [/INST] [/] [link=file:///etc]x[/link]"
ESCAPES = "\x1b[2J\x1b]0;pwned\x07\r\u202e\x9b31m"


@dataclass(frozen=True)
class Row:
    name: str
    #: (tmp_path, clip) -> (cli args, the literal text the user must see)
    build: Callable[[Path, Path], tuple[list[str], str]]
    refused: bool = False


def _named(tmp: Path, clip: Path, name: str) -> Path:
    target = tmp / name  # "clip[/]x.mp4" is the file "]x.mp4" in the folder "clip["
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(clip, target)
    return target


def _q(question: str) -> Callable[[Path, Path], tuple[list[str], str]]:
    def build(tmp: Path, clip: Path) -> tuple[list[str], str]:
        return ["analyze", str(clip), "-q", question, "--out", str(tmp / "o")], "is anyone"

    return build


def _file(name: str, shown: str) -> Callable[[Path, Path], tuple[list[str], str]]:
    def build(tmp: Path, clip: Path) -> tuple[list[str], str]:
        return ["analyze", str(_named(tmp, clip, name)), "--out", str(tmp / "o")], shown

    return build


def _missing(name: str, shown: str) -> Callable[[Path, Path], tuple[list[str], str]]:
    def build(tmp: Path, clip: Path) -> tuple[list[str], str]:
        return ["analyze", str(tmp / name), "--out", str(tmp / "o")], shown

    return build


def _out(name: str, shown: str) -> Callable[[Path, Path], tuple[list[str], str]]:
    def build(tmp: Path, clip: Path) -> tuple[list[str], str]:
        return ["analyze", str(clip), "--out", str(tmp / name)], shown

    return build


ROWS = [
    Row("question with [INST] markup", _q(MARKUP)),
    Row("question with ESC sequences", _q("is anyone here?" + ESCAPES)),
    Row("file named clip[/]x.mp4", _file("clip[/]x.mp4", "]x.mp4: 6.0 s")),
    Row("file named with [bold] markup", _file("[bold red]clip.mp4", "[bold red]clip.mp4")),
    Row("file name with ESC sequences", _file("clip\x1b[2J\x1b]0;t\x07.mp4", "clip\\x1b[2J")),
    Row("--out folder with markup", _out("out[/]dir", "out[/]dir")),
    Row("missing file with markup", _missing("gone[/]x.mp4", "gone[/]x.mp4"), refused=True),
    Row("missing file with ESC", _missing("gone\x1b[31m.mp4", "gone\\x1b[31m.mp4"), refused=True),
]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_untrusted_text_is_printed_verbatim(row: Row, tmp_path: Path, clip: Path) -> None:
    args, shown = row.build(tmp_path, clip)
    r = cli(*args, "--profile", "classical")
    assert_no_raw_escapes(r.stdout, r.stderr)
    if row.refused:
        assert_refused(r, shown)
    else:
        assert_no_traceback(r)
        assert r.returncode == 0, r.stderr
        assert shown in r.stdout, r.stdout
        assert "verdict" in r.stdout


def test_batch_progress_and_failure_lines_escape_manifest_ids(tmp_path: Path, clip: Path) -> None:
    (tmp_path / "v").mkdir()
    shutil.copy(clip, tmp_path / "v" / "good.mp4")
    (tmp_path / "v" / "bad.mp4").write_text("not a video\n" * 20)
    manifest = write_manifest(
        tmp_path,
        [
            {"path": "v/good.mp4", "id": "good[bold]one\x1b[2J"},
            {"path": "v/bad.mp4", "id": "bad[bold]id[link=x]"},
        ],
    )
    r = cli("batch", "manifest", str(manifest), "--out", str(tmp_path / "run"), "-p", "classical")
    assert_no_traceback(r)
    assert_no_raw_escapes(r.stdout, r.stderr)
    assert r.returncode == 0, r.stderr
    assert "failed bad[bold]id[link=x]: " in r.stdout
    assert "done 1, " in " ".join(r.stdout.split())
    assert [p.name for p in (tmp_path / "run" / "results").glob("*.json")] == [
        "good[bold]one\x1b[2J.json"
    ]


def test_a_manifest_id_with_a_slash_and_markup_is_refused_in_one_sentence(
    tmp_path: Path, clip: Path
) -> None:
    shutil.copy(clip, tmp_path / "good.mp4")
    manifest = write_manifest(tmp_path, [{"path": "good.mp4", "id": "a[/]b"}])
    r = cli("batch", "manifest", str(manifest), "--out", str(tmp_path / "run"), "-p", "classical")
    assert_refused(r, "manifest.jsonl:1", "'a[/]b'")


def test_replay_shows_control_characters_of_a_trace(tmp_path: Path) -> None:
    from rich.console import Console

    from vadetective.agent.core.types import Trace, TraceStep, Verdict, utcnow
    from vadetective.agent.report.replay import replay_trace

    trace = Trace(
        question="what? " + ESCAPES + MARKUP,
        steps=[
            TraceStep(
                index=0, kind="plan", summary="hi" + ESCAPES, text=MARKUP, started_at=utcnow()
            )
        ],
        verdict=Verdict(
            question="q", answer="a" + ESCAPES, is_anomalous=None, justification=MARKUP
        ),
    )
    buf = io.StringIO()
    replay_trace(trace, console=Console(file=buf, width=200, force_terminal=False))
    text = buf.getvalue()
    assert_no_raw_escapes(text)
    assert "\\x1b[2J" in text and "[/INST]" in text


def test_log_lines_show_control_characters(capsys: pytest.CaptureFixture[str]) -> None:
    from vadetective.agent.cli import common

    common.err_console.file = io.StringIO()
    try:
        common.setup_logging(verbose=False)
        logging.getLogger("vadetective.test").warning("opened %s", "clip\x1b[2J[/].mp4")
        text = common.err_console.file.getvalue()
    finally:
        common.err_console.file = None  # type: ignore[assignment]
        logging.getLogger().handlers.clear()
    assert_no_raw_escapes(text)
    assert "clip\\x1b[2J[/].mp4" in text
