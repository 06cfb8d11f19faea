"""The SQLite record and its search, the events page, and the alert sinks (JSONL, webhook)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from vadetective.agent.cli import app
from vadetective.agent.core.types import Alert, Box, StreamGap
from vadetective.agent.live.record import Record, open_record
from vadetective.agent.live.sinks import JsonlSink, WebhookSink
from vadetective.agent.report.events_page import events_html

T0 = datetime(2026, 1, 31, 8, 0, tzinfo=UTC)


def alert(i: int, category: str, why: str, minutes: int, **kw: object) -> Alert:
    return Alert(
        id=f"s-{i:04d}", start_s=10.0 * i, end_s=10.0 * i + 3, emitted_at=T0 + timedelta(minutes=minutes),
        category=category, confidence=0.7, justification=why,
        boxes=[Box(t_s=10.0 * i + 1, xyxy=(10, 20, 50, 120), label="person")], **kw,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture()
def record(tmp_path: Path) -> Iterator[Path]:
    with Record(tmp_path) as rec:
        rec.start_session("s", "rtsp://cam/1", {"cooldown_s": 5.0})
        rec.put_alert("s", alert(1, "running", "a person sprints across the lawn", 0))
        rec.put_alert("s", alert(2, "fall", "a person lies on the road for 12 s", 30))
        # a later revision of the same alert replaces the earlier one
        rec.put_alert(
            "s",
            alert(2, "fall", "a person lies on the road for 20 s", 31, revision=2, status="closed"),
        )
        rec.put_alert("s", alert(3, "running", "someone runs 100% flat out", 90))
        rec.put_gap("s", StreamGap(start_s=40.0, end_s=52.5, reason="reconnected"))
        rec.end_session("s", "stopped")
    yield tmp_path


@pytest.mark.parametrize(
    ("since", "category", "text", "ids"),
    [
        (None, None, None, ["s-0001", "s-0002", "s-0003"]),
        (T0 + timedelta(minutes=30), None, None, ["s-0002", "s-0003"]),
        (None, "RUNNING", None, ["s-0001", "s-0003"]),
        (None, None, "lies road", ["s-0002"]),
        (None, None, "lies lawn", []),
        (None, None, "100%", ["s-0003"]),  # LIKE wildcards in the text are literal
        (None, None, "%", ["s-0003"]),
        (None, "fall", "20 s", ["s-0002"]),
    ],
)
def test_search(
    record: Path, since: datetime | None, category: str | None, text: str | None, ids: list[str]
) -> None:
    with open_record(record) as rec:
        assert [a.id for a in rec.search(since=since, category=category, text=text)] == ids


def test_record_keeps_latest_revision_sessions_and_gaps(record: Path) -> None:
    with open_record(record) as rec:
        fall = rec.search(category="fall")[0]
        assert (fall.revision, fall.status) == (2, "closed") and "20 s" in fall.justification
        (session,) = rec.sessions()
        assert (session.source, session.end_reason) == ("rtsp://cam/1", "stopped")
        (gap,) = rec.gaps()
        assert (gap.start_s, gap.end_s, gap.reason) == (40.0, 52.5, "reconnected")


def test_open_record_needs_a_record(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no event record"):
        open_record(tmp_path)


def test_events_command(record: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["events", str(record), "--category", "running", "--json"])
    assert res.exit_code == 0, res.output
    assert [json.loads(line)["id"] for line in res.output.splitlines()] == ["s-0001", "s-0003"]
    since = (T0 + timedelta(minutes=60)).isoformat()
    res = runner.invoke(app, ["events", str(record), "--since", since, "--json"])
    assert [json.loads(line)["id"] for line in res.output.splitlines()] == ["s-0003"]
    page = record / "found.html"
    res = runner.invoke(app, ["events", str(record), "--text", "road", "--html", str(page)])
    assert res.exit_code == 0 and "s-0002" in res.output and "1 alert(s)" in res.output
    assert "lies on the road" in page.read_text() and "sprints" not in page.read_text()
    for bad in (["--since", "yesterday"], []):
        target = str(record) if bad else str(record / "nothing-here")
        res = runner.invoke(app, ["events", target, *bad])
        assert res.exit_code == 2
        assert res.output.count("error:") == 1 and "Traceback" not in res.output


def test_events_page_is_self_contained_and_escaped(tmp_path: Path) -> None:
    kf = tmp_path / "keyframes" / "a.jpg"
    kf.parent.mkdir()
    cv2.imwrite(str(kf), np.full((36, 64, 3), 200, np.uint8))
    hostile = alert(
        1,
        "<script>alert(1)</script>",
        "a [bold]x[/] & <img src=x onerror=y>",
        0,
        keyframe="keyframes/a.jpg",
    )
    html = events_html(
        [hostile, alert(2, "fall", "plain", 1)],
        tmp_path,
        gaps=[StreamGap(start_s=1, end_s=2, reason="reconnected")],
    )
    assert "<script>alert" not in html and "&lt;script&gt;" in html and "<img src=x" not in html
    assert 'src="data:image/jpeg;base64,' in html and "default-src 'none'" in html
    assert "no keyframe" in html and "reconnected" in html
    assert "http://" not in html and "https://" not in html  # nothing to fetch


def test_jsonl_sink_flushes_each_alert(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    sink = JsonlSink(path)
    sink.send(alert(1, "running", "x", 0))
    # readable before the sink is closed: a killed watcher keeps every alert written so far
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["s-0001"]
    sink.send(alert(1, "running", "x", 1, revision=2, status="closed"))
    sink.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(d["id"], d["revision"]) for d in lines] == [("s-0001", 1), ("s-0001", 2)]
    for key in (
        "id",
        "start_s",
        "end_s",
        "emitted_at",
        "category",
        "confidence",
        "boxes",
        "justification",
        "evidence",
        "keyframe",
    ):
        assert key in lines[0]


class _Hook(BaseHTTPRequestHandler):
    failures_left = 0
    received: list[dict[str, object]] = []  # noqa: RUF012 - shared by the handler instances

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            self.send_response(503)
            self.end_headers()
            return
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def test_webhook_retries_with_backoff_and_never_blocks() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _Hook.failures_left, _Hook.received = 2, []
        sink = WebhookSink(f"http://127.0.0.1:{server.server_port}/hook", backoff_s=0.05)
        sink.send(alert(1, "running", "x", 0))
        sink.close(wait_s=10)
        assert [d["id"] for d in _Hook.received] == ["s-0001"]  # delivered on the third try
        assert (sink.delivered, sink.failed) == (1, 0)
    finally:
        server.shutdown()
        server.server_close()
    # a dead endpoint: send returns at once, the alert is retried in the background and given up
    dead = WebhookSink(f"http://127.0.0.1:{server.server_port}/hook", attempts=3, backoff_s=0.05)
    t0 = time.perf_counter()
    for i in range(5):
        dead.send(alert(i, "running", "x", 0))
    assert time.perf_counter() - t0 < 0.5
    dead.close(wait_s=10)
    assert dead.delivered == 0 and dead.failed == 5
    with pytest.raises(ValueError, match="http"):
        WebhookSink("ftp://example.invalid/")
