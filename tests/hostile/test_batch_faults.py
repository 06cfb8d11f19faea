"""Issue 11 items 6-8: a batch survives dead workers, its workers die with it, and two batches
on one run folder split the work instead of both doing all of it.

Workers are killed the way the OOM killer does it: ``SIGKILL`` to whichever process has the
chosen video open (found in ``/proc/*/fd``), so no test hook lives in the code under test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hostile_kit import ROOT, write_manifest

from vadetective.agent.batch.runner import FAILURES, run_dataset
from vadetective.agent.datasets import load_dataset

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc"),
]


def _holders(path: Path) -> list[int]:
    """Pids of the processes (other than this one) that have ``path`` open."""
    target = str(path.resolve())
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) == target:
                    out.append(int(entry.name))
                    break
        except OSError:  # the process ended, or is not ours to read
            continue
    return out


@dataclass
class Killer:
    """SIGKILLs the process analyzing ``video``, up to ``times`` times."""

    video: Path
    times: int
    kills: int = 0
    stop: bool = False

    def run(self) -> None:
        while not self.stop and self.kills < self.times:
            for pid in _holders(self.video):
                os.kill(pid, signal.SIGKILL)
                self.kills += 1
                time.sleep(0.5)  # let the pool notice before looking again
                break
            time.sleep(0.02)


@pytest.fixture
def killer() -> Iterator[Callable[[Path, int], Killer]]:
    """Start a ``Killer`` on a video (stopped at the end of the test)."""
    started: list[tuple[Killer, threading.Thread]] = []

    def start(video: Path, times: int) -> Killer:
        k = Killer(video, times)
        t = threading.Thread(target=k.run, daemon=True)
        started.append((k, t))
        t.start()
        return k

    yield start
    for k, t in started:
        k.stop = True
        t.join(5)


@pytest.mark.parametrize(
    ("kills", "done", "failed"),
    [(1, 4, 0), (10, 3, 1)],
    ids=["worker killed once: retried, nothing lost", "worker killed every time: recorded once"],
)
def test_a_dead_worker_does_not_sink_the_batch(
    tiny_suite: Path,
    tmp_path: Path,
    killer: Callable[[Path, int], Killer],
    kills: int,
    done: int,
    failed: int,
) -> None:
    ds = load_dataset("manifest", tiny_suite)
    victim = Path(ds.get("v2").path)  # type: ignore[union-attr]
    k = killer(victim, kills)
    out = tmp_path / "run"
    summary = run_dataset(ds, out, profile="classical", workers=2, graph="chain")
    assert (summary.done, summary.failed) == (done, failed)
    assert summary.retried >= 1 and k.kills >= 1
    rows = [json.loads(x) for x in (out / FAILURES).read_text().splitlines()] if failed else []
    assert [r["video_id"] for r in rows] == (["v2"] if failed else [])
    if failed:
        assert "worker process died 2 times" in rows[0]["error"]
    assert len(list((out / "results").glob("*.json"))) == done


def _batch_cmd(manifest: Path, out: Path, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "vadetective", "batch", "manifest", str(manifest),
        "--out", str(out), "--profile", "classical", "--workers", str(workers),
        "--graph", "chain",
    ]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}


def _start_batch(manifest: Path, out: Path, workers: int) -> subprocess.Popen[bytes]:
    """A batch in the background, returned once it has started analyzing a video."""
    proc = subprocess.Popen(
        _batch_cmd(manifest, out, workers),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "traces").is_dir():
        time.sleep(0.05)
    return proc


def _children(pid: int) -> set[int]:
    kids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.add(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_kill_9_of_a_batch_takes_its_workers_with_it(tiny_suite: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _start_batch(tiny_suite, out, 2)
    workers = {p for p in _children(proc.pid) if _alive(p)}
    assert workers, "no worker process seen"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert not [p for p in workers if _alive(p)], "workers outlived their batch"
    written = set((out / "results").glob("*.json"))
    time.sleep(3)
    assert set((out / "results").glob("*.json")) == written, "results written after the kill"


def test_two_batches_on_one_folder_split_the_work(tiny_suite: Path, tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    shutil.copytree(tiny_suite.parent, suite)
    (suite / "videos" / "broken.mp4").write_text("not a video\n" * 20)
    rows = [json.loads(x) for x in (suite / "manifest.jsonl").read_text().splitlines()]
    manifest = write_manifest(suite, [*rows, {"path": "videos/broken.mp4", "label": "normal"}])
    out = tmp_path / "run"
    procs = [
        subprocess.Popen(
            _batch_cmd(manifest, out, 1), env=_env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        for _ in range(2)
    ]  # fmt: skip
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, stderr) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, stderr
        assert "Traceback" not in stderr
    done = [int(" ".join(o.split()).split("done ", 1)[1].split(",")[0]) for o, _ in outputs]
    assert sum(done) == 4, outputs  # every video analyzed once, by one of the two
    assert len((out / FAILURES).read_text().splitlines()) == 1  # the broken one, once
    assert len(list((out / "results").glob("*.json"))) == 4


def test_a_second_batch_takes_over_from_a_killed_one(tiny_suite: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = _start_batch(tiny_suite, out, 1)
    os.kill(first.pid, signal.SIGKILL)  # it dies holding the claim of the video it was on
    first.wait()
    r = subprocess.run(
        _batch_cmd(tiny_suite, out, 1), env=_env(), capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr
    assert len(list((out / "results").glob("*.json"))) == 4
