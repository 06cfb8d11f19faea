"""The event lifecycle (open after min_on_s, hysteresis, cooldown) and the stream clock."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from vadetective.agent.core.errors import StreamError
from vadetective.agent.live.events import EventTracker
from vadetective.agent.live.stream import _Clock, describe_source


def feed(
    tracker: EventTracker, scores: list[float], step: float = 0.25
) -> list[tuple[str, float, float]]:
    out = []
    for k, s in enumerate(scores):
        for what, ev in tracker.update(k * step, s, "speed"):
            out.append((what, ev.start_s, ev.end_s))
    return [o for o in out if o[0] != "extended"]


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        # a single high sample is not an event (min_on_s = 0.5 s = three samples at 4/s)
        ([0, 0.9, 0, 0, 0], []),
        # held for 0.5 s: opens at its first high sample
        ([0, 0.9, 0.9, 0.9, 0.1] + [0.1] * 24, [("opened", 0.25, 0.75), ("closed", 0.25, 0.75)]),
        # a dip shorter than the cooldown is the same event: one open, one close
        (
            [0.9] * 4 + [0.1] * 8 + [0.9] * 4 + [0.1] * 24,
            [("opened", 0.0, 0.5), ("closed", 0.0, 3.75)],
        ),
        # hysteresis: 0.4 is under the opening threshold but keeps an open event going
        (
            [0.9] * 4 + [0.4] * 12 + [0.1] * 24,
            [("opened", 0.0, 0.5), ("closed", 0.0, 3.75)],
        ),
        # a gap longer than the cooldown makes two events
        (
            [0.9] * 4 + [0.1] * 24 + [0.9] * 4 + [0.1] * 24,
            [
                ("opened", 0.0, 0.5),
                ("closed", 0.0, 0.75),
                ("opened", 7.0, 7.5),
                ("closed", 7.0, 7.75),
            ],
        ),
    ],
)
def test_event_lifecycle(scores: list[float], expected: list[tuple[str, float, float]]) -> None:
    tracker = EventTracker(on_threshold=0.5, off_threshold=0.35, min_on_s=0.5, cooldown_s=5.0)
    got = feed(tracker, scores)
    assert [(w, round(a, 2), round(b, 2)) for w, a, b in got] == expected


def test_event_ids_are_unique_and_thresholds_checked() -> None:
    tracker = EventTracker(min_on_s=0.0, cooldown_s=0.5, id_prefix="cam")
    ids = []
    for k, s in enumerate([0.9, 0.0, 0.0, 0.0, 0.9, 0.0, 0.0, 0.0]):
        ids += [ev.id for what, ev in tracker.update(k * 0.25, s) if what == "opened"]
    assert ids == ["cam-0001", "cam-0002"]
    with pytest.raises(ValueError, match="off_threshold"):
        EventTracker(on_threshold=0.3, off_threshold=0.5)


def test_clock_follows_timestamps_and_survives_reconnects() -> None:
    clock = _Clock()
    assert clock.new_connection() is None
    ts = [clock.time_of(p)[0] for p in (None, 100.04, 100.08, 100.12)]
    # a first frame without a timestamp starts the clock at 0; timestamps then drive it
    assert ts == pytest.approx([0.0, 0.04, 0.08, 0.12])
    # timestamps going backwards are re-anchored: the clock never goes back
    t_back, gap = clock.time_of(3.0)
    assert t_back > ts[-1] and gap is None
    # a jump far ahead is kept only as far as the wall clock saw (here: no time passed)
    t_jump, gap = clock.time_of(3.0 + 3600.0)
    assert t_jump - t_back < 1.0 and gap is not None and gap.reason == "timestamps jumped"
    # a reconnection: the new connection's timestamps restart, the clock goes on
    time.sleep(0.3)
    gap = clock.new_connection()
    assert gap is not None and gap.start_s == pytest.approx(t_jump)
    assert gap.end_s - gap.start_s == pytest.approx(0.3, abs=0.1)
    t_after, _ = clock.time_of(0.0)
    assert t_after == pytest.approx(gap.end_s)


@pytest.mark.parametrize(
    ("source", "kind", "fmt"),
    [
        ("rtsp://127.0.0.1:8554/cam", "rtsp", None),
        ("rtmp://127.0.0.1/live/cam", "rtmp", None),
        ("https://example.invalid/live/index.m3u8", "https", None),
        ("tcp://127.0.0.1:9000", "tcp", None),
        ("udp://127.0.0.1:9000", "udp", None),
        ("/dev/video0", "device", "v4l2"),
        ("0", "device", "v4l2"),
    ],
)
def test_sources_are_classified(source: str, kind: str, fmt: str | None) -> None:
    spec = describe_source(source)
    assert (spec.kind, spec.fmt) == (kind, fmt)
    if kind == "rtsp":
        assert spec.options == {"analyzeduration": "2000000", "rtsp_transport": "tcp"}


def test_a_missing_file_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(StreamError, match="neither a stream URL"):
        describe_source(str(tmp_path / "nope.mp4"))
    with pytest.raises(StreamError, match="is a folder"):
        describe_source(str(tmp_path))
