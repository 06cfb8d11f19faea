"""Helpers of the hostile-input suite: run the CLI as a user does, and check what they see."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m vadetective ARGS`` as a user would, capturing both streams."""
    full_env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "vadetective", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=full_env,
        errors="surrogateescape",
    )


def assert_no_traceback(r: subprocess.CompletedProcess[str]) -> None:
    for stream in (r.stdout, r.stderr):
        assert "Traceback" not in stream, stream[-3000:]
        assert "MarkupError" not in stream, stream[-3000:]


def assert_refused(r: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit code 2, one ``error: …`` line on stderr naming every fragment, no traceback.

    Returns:
        The error line.
    """
    assert_no_traceback(r)
    assert r.returncode == 2, (
        f"exit {r.returncode}\nstdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}"
    )
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, r.stderr
    line = errors[0]
    for fragment in fragments:
        assert fragment.lower() in line.lower(), line
    return line


def assert_no_raw_escapes(*streams: str) -> None:
    """No terminal control character reached the user's terminal raw."""
    for stream in streams:
        bad = sorted(
            {c for c in stream if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F}
        )
        assert not bad, f"raw control characters {bad!r} in {stream[-500:]!r}"


def write_manifest(folder: Path, rows: list[dict[str, Any]]) -> Path:
    """A JSONL manifest in ``folder`` (paths relative to it)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def report_with_truth(run: Path, html: Path, truth: Path) -> list[str]:
    """The arguments of ``vadetective report`` on ``run``'s trace with a ground-truth file."""
    return ["report", str(run / "trace.json"), "-o", str(html), "--ground-truth", str(truth)]


def can_unshare() -> bool:
    """True when this user may make a private mount namespace (``unshare -m``): root here."""
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0
    except OSError:
        return False


def cli_with_mounts(
    mounts: list[str],
    *args: str,
    after: str = "true",
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """``cli(*args)`` inside a private mount namespace after running the ``mounts`` commands
    (e.g. ``mount -t tmpfs -o size=300k tmpfs DIR``): a full or read-only file system for one
    command, gone when it ends, nothing changed outside. ``after`` runs in the same namespace
    once the command ended (e.g. to copy out what it wrote); the command's exit code is kept."""
    import shlex

    full_env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(ROOT), **(env or {})}
    run = shlex.join([sys.executable, "-m", "vadetective", *args])
    command = " && ".join([*mounts, f"{{ {run}; rc=$?; {after}; exit $rc; }}"])
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        errors="surrogateescape",
    )
