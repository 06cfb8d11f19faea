"""The watcher against real streaming servers on 127.0.0.1: GStreamer's RTSP server and FFmpeg's
own MPEG-TS over TCP and UDP, each playing a generated clip with a known anomaly in real time.

Timing is not asserted beyond "the alert came while the stream was still live": latency figures
are measured by ``bench/live.py``.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from live_clips import CLIP_S, Clip

from vadetective.agent.core.types import Alert
from vadetective.agent.live.perception import MotionOnline, Observation
from vadetective.agent.live.record import open_record
from vadetective.agent.live.serve import FFmpegSender, RtspServer, free_port
from vadetective.agent.live.sinks import CallbackSink, JsonlSink
from vadetective.agent.live.watcher import LiveSettings, Watcher
from vadetective.tools.base import Frame

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
ROOT = Path(__file__).resolve().parents[2]


class Spy(MotionOnline):
    """The real perception, remembering the stream clock of every frame it was fed."""

    def __init__(self) -> None:
        super().__init__()
        self.t_s: list[float] = []

    def update(self, frame: Frame) -> Observation | None:
        self.t_s.append(frame.t_s)
        return super().update(frame)


def watcher(url: str, out: Path, alerts: list[Alert], **settings: object) -> Watcher:
    base: dict[str, object] = {"reconnect_for_s": 2.0, "read_timeout_s": 2.0, "connect_retries": 10}
    base.update(settings)
    return Watcher(
        url, out=out, settings=LiveSettings(**base),  # type: ignore[arg-type]
        sinks=[CallbackSink(alerts.append), JsonlSink(out / "alerts.jsonl")], perception=Spy(),
    )  # fmt: skip


def first_revisions(alerts: list[Alert]) -> dict[str, Alert]:
    out: dict[str, Alert] = {}
    for a in alerts:
        out.setdefault(a.id, a)
    return out


def test_rtsp_sprint_raises_one_alert_while_live(
    clips: dict[str, Clip], rtsp_ready: None, tmp_path: Path
) -> None:
    clip = clips["sprint"]
    (truth,) = clip.spans
    alerts: list[Alert] = []
    server = RtspServer(clip.path, free_port())
    with server:
        w = watcher(server.url, tmp_path, alerts)
        summary = w.run()
    assert summary.end_reason == "end of stream", summary
    assert summary.frames >= 0.95 * CLIP_S * 25 and summary.frames_dropped == 0
    first = first_revisions(alerts)
    assert len(first) == 1, [(a.id, a.start_s, a.end_s, a.category) for a in alerts]  # cooldown
    (a,) = first.values()
    assert a.category == "running" and a.confirmed_by == "detective"
    assert abs(a.start_s - truth.start_s) <= 1.5 and abs(a.end_s - truth.end_s) <= 1.5
    assert a.boxes and a.keyframe and (tmp_path / a.keyframe).is_file()
    assert a.justification and any(line.startswith("trace: ") for line in a.evidence)
    # when: emitted while the stream still ran (the stream clock's origin is the first frame)
    origin = w.reader.started_at
    assert origin is not None
    latency = (a.emitted_at - origin).total_seconds() - truth.end_s
    print(f"RTSP sprint alert latency {latency:.2f} s after the event's end")
    assert latency < CLIP_S - truth.end_s
    # one event, one id; the last revision closes it; the JSONL and the record agree
    assert alerts[-1].status == "closed" and {x.id for x in alerts} == {a.id}
    lines = [json.loads(s) for s in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [d["revision"] for d in lines] == list(range(1, len(lines) + 1))
    with open_record(tmp_path) as rec:
        (stored,) = rec.search()
        assert stored.revision == len(lines) and rec.verdict_count(dismissed=False) >= 1


def test_rtsp_reconnects_after_the_server_is_killed(
    clips: dict[str, Clip], rtsp_ready: None, tmp_path: Path
) -> None:
    clip = clips["normal"]
    port = free_port()
    alerts: list[Alert] = []
    server = RtspServer(clip.path, port)
    server.start()
    w = watcher(server.url, tmp_path, alerts, reconnect_for_s=30.0)
    done: list[object] = []
    thread = threading.Thread(target=lambda: done.append(w.run()), daemon=True)
    thread.start()
    try:
        spy = w.perception
        assert isinstance(spy, Spy)
        deadline = time.monotonic() + 60
        while (not spy.t_s or spy.t_s[-1] < 8.0) and time.monotonic() < deadline:
            time.sleep(0.1)
        server.kill()  # the camera loses power
        time.sleep(3.0)
        server = RtspServer(clip.path, port)  # and comes back; its session starts from 0 again
        server.start()
        thread.join(timeout=90)
    finally:
        server.stop()
        w.stop()
    assert done, "the watcher did not finish"
    summary = w.summary
    assert summary is not None and summary.reconnects == 1, summary
    (gap,) = summary.gaps
    assert gap.reason == "reconnected" and 2.5 <= gap.end_s - gap.start_s <= 15.0
    # the stream clock survived: strictly increasing, one jump over the outage, and it went on
    t = spy.t_s
    assert all(b > a for a, b in itertools.pairwise(t))
    steps = [b - a for a, b in itertools.pairwise(t)]
    assert sum(s > 1.0 for s in steps) == 1
    assert t[-1] >= gap.end_s + 0.9 * CLIP_S
    with open_record(tmp_path) as rec:
        (stored_gap,) = rec.gaps()
        assert stored_gap.start_s == pytest.approx(gap.start_s)


def test_tcp_normal_clip_raises_no_alert(clips: dict[str, Clip], tmp_path: Path) -> None:
    port = free_port()
    alerts: list[Alert] = []
    with FFmpegSender(clips["normal"].path, f"tcp://127.0.0.1:{port}?listen=1"):
        time.sleep(0.3)
        summary = watcher(f"tcp://127.0.0.1:{port}", tmp_path, alerts).run()
    assert alerts == []
    assert summary.frames >= 0.95 * CLIP_S * 25
    assert summary.end_reason.startswith("the source did not come back")
    with open_record(tmp_path) as rec:
        assert rec.search() == []


def test_udp_fall_alert_within_ten_seconds_of_its_start(
    clips: dict[str, Clip], tmp_path: Path
) -> None:
    clip = clips["fall"]
    (truth,) = clip.spans
    port = free_port()
    alerts: list[Alert] = []
    w = watcher(f"udp://127.0.0.1:{port}", tmp_path, alerts)
    thread = threading.Thread(target=w.run, daemon=True)
    thread.start()  # the watcher listens first, then FFmpeg sends
    time.sleep(1.0)
    with FFmpegSender(clip.path, f"udp://127.0.0.1:{port}?pkt_size=1316"):
        thread.join(timeout=90)
    first = first_revisions(alerts)
    assert len(first) == 1, [(a.start_s, a.end_s, a.category) for a in first.values()]
    (a,) = first.values()
    assert a.category == "fall"
    origin = w.reader.started_at
    assert origin is not None
    print(
        f"UDP fall alert {(a.emitted_at - origin).total_seconds() - truth.start_s:.2f} s after its start"
    )
    assert a.start_s <= truth.start_s + 10.0 and a.end_s >= truth.start_s


def _corrupt_ts(clip: Path, out: Path) -> Path:
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(clip),
            "-c",
            "copy",
            "-f",
            "mpegts",
            str(out),
        ],
        check=True,
    )
    data = bytearray(out.read_bytes())
    n = len(data) // 188
    for k in range(n // 3, 2 * n // 3, 40):  # damage the payload of every 40th packet in the middle
        p = k * 188
        data[p + 20 : p + 188] = bytes(168)
    out.write_bytes(bytes(data))
    return out


def test_bad_frames_are_skipped_and_the_watch_goes_on(
    clips: dict[str, Clip], tmp_path: Path
) -> None:
    ts = _corrupt_ts(clips["normal"].path, tmp_path / "damaged.ts")
    port = free_port()
    alerts: list[Alert] = []
    with FFmpegSender(ts, f"tcp://127.0.0.1:{port}?listen=1"):
        time.sleep(0.3)
        w = watcher(f"tcp://127.0.0.1:{port}", tmp_path / "rec", alerts)
        summary = w.run()
    assert summary.bad_frames > 0
    spy = w.perception
    assert isinstance(spy, Spy) and spy.t_s[-1] >= 0.9 * CLIP_S  # read to the end


def _run_cli(*args: str, **kw: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "vadetective", *args], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw,  # type: ignore[call-overload]
    )  # fmt: skip


def test_cli_ctrl_c_stops_cleanly_keeping_every_alert(
    clips: dict[str, Clip], tmp_path: Path
) -> None:
    port = free_port()
    jsonl, out = tmp_path / "alerts.jsonl", tmp_path / "rec"
    with FFmpegSender(clips["sprint"].path, f"tcp://127.0.0.1:{port}?listen=1", loops=3):
        proc = _run_cli(
            "watch", f"tcp://127.0.0.1:{port}", "--alerts", str(jsonl), "--out", str(out)
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (jsonl.exists() and jsonl.read_text().strip()):
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-2000:]
    lines = [json.loads(s) for s in jsonl.read_text().splitlines()]
    assert lines and lines[0]["category"] == "running" and lines[-1]["status"] == "closed"
    assert "OPEN" in stdout and "interrupted" in stdout and "Traceback" not in stderr
    with open_record(out) as rec:
        assert [a.id for a in rec.search()] == [lines[0]["id"]]
        (session,) = rec.sessions()
        assert session.end_reason == "stopped"
    assert "running" in (out / "events.html").read_text()


def test_cli_unreachable_source_is_one_sentence_and_exit_2() -> None:
    proc = _run_cli("watch", f"rtsp://127.0.0.1:{free_port()}/cam", "--connect-retries", "2")
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert (
        stderr.count("error:") == 1 and "cannot open" in stderr and "after 2 attempt(s)" in stderr
    )
    assert "Traceback" not in stderr


def test_python_api_plays_a_file_in_real_time(clips: dict[str, Clip], tmp_path: Path) -> None:
    import vadetective as vd

    started = time.monotonic()
    alerts = list(vd.watch(str(clips["sprint"].path), out=tmp_path, realtime=True))
    # paced like a camera: the watch takes the clip's own length
    assert time.monotonic() - started >= 0.9 * CLIP_S
    assert {a.category for a in alerts} == {"running"} and len({a.id for a in alerts}) == 1
    assert (tmp_path / "events.sqlite").is_file()


def test_bench_live_quick(tmp_path: Path) -> None:
    out = tmp_path / "live.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.live", "--quick", "--out", str(out)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=170, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["quick"] is True and "generated scene" in report["footage"]
    assert report["events_staged"] == 2 and report["frames"] > 1000
    assert report["rss_mb"]["max"] >= report["rss_mb"]["start"] > 0
    assert 0 < report["cpu_cores_used"] < 2.5
