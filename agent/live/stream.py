"""Live sources: open a stream FFmpeg can read, keep a clock that survives reconnects.

``StreamReader`` yields ``StreamFrame`` objects (a working-resolution ``Frame`` on the stream
clock plus the wall time it arrived) and ``StreamGap`` notes, in order:

- **Sources**: RTSP, RTMP, HTTP(S)/HLS, TCP and UDP URLs (anything FFmpeg opens), a local camera
  device (``/dev/video0``, or just ``0``), or a local file (played at real-time speed when
  ``realtime``, else as fast as it decodes).
- **The stream clock**: seconds since the stream's first frame. Inside one connection it follows
  the stream's timestamps (so a file played in real time keeps its own times); a timestamp that
  goes backwards or jumps far ahead is re-anchored; across a reconnect the clock goes on by the
  wall time the source was away, and that stretch is reported as a gap.
- **Faults**: the first connection is retried a bounded number of times, then ``StreamError``
  (one sentence). A stream that drops or stalls (no packet for ``read_timeout_s``) is
  reconnected with exponential backoff and a warning, for at most ``reconnect_for_s``; after that
  the stream is over. A packet that fails to decode, or a frame FFmpeg flags as corrupt, is
  skipped and counted. A stream with a known duration that reaches its end is finished.
- **Keeping up**: a reader thread decodes into a bounded queue; when analysis falls behind, the
  oldest frames are dropped (and counted) rather than letting memory grow or latency pile up.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from vadetective.agent.core.errors import StreamError
from vadetective.agent.core.types import StreamGap
from vadetective.tools.base import Frame

log = logging.getLogger(__name__)

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_END_SLACK_S = 1.5  # a known-duration stream that stops this close to its end has finished
_MAX_JUMP_S = 5.0  # a timestamp jump larger than this (or backwards) re-anchors the clock


@dataclass(frozen=True)
class StreamFrame:
    """One frame of a live source: the frame on the stream clock and its arrival wall time."""

    frame: Frame
    wall_s: float  # time.time() when it was decoded

    @property
    def t_s(self) -> float:
        return self.frame.t_s


@dataclass(frozen=True)
class StreamEnd:
    """The source is over: ``reason`` says why (end of file, never came back, stopped)."""

    reason: str


StreamItem = StreamFrame | StreamGap | StreamEnd


@dataclass(frozen=True)
class SourceSpec:
    """What to open and how: the FFmpeg URL or path, its input format and options."""

    url: str
    kind: str  # "file", "device" or the URL scheme
    fmt: str | None = None
    options: dict[str, str] | None = None

    @property
    def is_file(self) -> bool:
        return self.kind == "file"


def describe_source(source: str, rtsp_transport: str = "tcp") -> SourceSpec:
    """Classify ``source`` (a URL, a camera device, or a local file) and pick FFmpeg options.

    Raises:
        StreamError: a local path that does not exist (and is not a device or a URL).
    """
    s = str(source).strip()
    if s.isdigit():
        s = f"/dev/video{s}"
    if s.startswith("/dev/video"):
        return SourceSpec(url=s, kind="device", fmt="v4l2", options={})
    m = _URL.match(s)
    if m:
        scheme = s.split("://", 1)[0].lower()
        if scheme == "file":
            return describe_source(s[len("file://") :])
        # no "fflags=nobuffer": it throws away what was read while probing (the first second)
        opts: dict[str, str] = {"analyzeduration": "2000000"}
        if scheme in ("rtsp", "rtsps"):
            opts["rtsp_transport"] = rtsp_transport
        if scheme == "udp":
            opts.update({"overrun_nonfatal": "1", "fifo_size": "50000"})
        return SourceSpec(url=s, kind=scheme, options=opts)
    p = Path(s)
    if not p.exists():
        raise StreamError(
            f"{s} is neither a stream URL (rtsp://, rtmp://, http(s)://, tcp://, udp://), "
            "a camera device, nor an existing file"
        )
    if p.is_dir():
        raise StreamError(f"{s} is a folder: give a video file, a camera device or a stream URL")
    # absolute: FFmpeg reads a relative "http:host:port" or "tcp:host:port" as a protocol and
    # would connect to it; a path starting with "/" is always opened as a file
    return SourceSpec(url=str(p.absolute()), kind="file", options={})


def _resize_to(img: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    h, w = img.shape[:2]
    if max_side is None or max(w, h) <= max_side:
        return img, 1.0
    import cv2

    s = max_side / max(w, h)
    nw, nh = max(2, round(w * s)), max(2, round(h * s))
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA), max(w, h) / max(nw, nh)


class _Clock:
    """The stream clock: per-connection timestamps, anchored so it only ever moves forward."""

    def __init__(self) -> None:
        self.last_t: float | None = None
        self.last_wall: float | None = None
        self._anchor: tuple[float, float] | None = None  # (pts seconds, clock value) at anchor
        self._conn_frames = 0
        self._offset = 0.0
        self.step_s = 1.0 / 25.0

    def new_connection(self) -> StreamGap | None:
        """A (re)connection starts: the clock resumes where it was plus the wall time away."""
        now = time.time()
        self._anchor = None
        self._conn_frames = 0
        if self.last_t is None or self.last_wall is None:
            self._offset = 0.0
            return None
        away = max(0.0, now - self.last_wall)
        self._offset = self.last_t + max(away, self.step_s)
        return StreamGap(start_s=self.last_t, end_s=self._offset, reason="reconnected")

    def time_of(self, pts_s: float | None) -> tuple[float, StreamGap | None]:
        now = time.time()
        gap = None
        # where the next frame of this connection is due when nothing else says otherwise
        due = (
            self._offset
            if self._conn_frames == 0 or self.last_t is None
            else self.last_t + self.step_s
        )
        if pts_s is None:  # no timestamp on this frame: it follows the previous one
            t = due
        else:
            if self._anchor is None:
                self._anchor = (pts_s, due)
            t = self._anchor[1] + (pts_s - self._anchor[0])
            last = self.last_t
            if last is not None and (t <= last - 1e-6 or t - last > _MAX_JUMP_S):
                new = last + self.step_s
                if t - last > _MAX_JUMP_S:
                    # a real hole in the stream's time: keep as much of it as the wall clock saw
                    new = last + min(t - last, max(self.step_s, now - (self.last_wall or now)))
                    gap = StreamGap(start_s=last, end_s=new, reason="timestamps jumped")
                self._anchor = (pts_s, new)
                t = new
        if self.last_t is not None and t <= self.last_t:
            t = self.last_t + 1e-3
        self._conn_frames += 1
        self.last_t, self.last_wall = t, now
        return t, gap


class StreamReader:
    """Reads one live source in a background thread (see the module docstring).

    Args:
        source: URL, camera device or file path.
        max_side: working resolution (longer side) of the frames handed on.
        realtime: pace a local file at its own frame rate, as a camera would deliver it.
        connect_retries: attempts at the first connection before giving up.
        reconnect_for_s: how long to keep trying after the stream drops, then it is over.
        open_timeout_s / read_timeout_s: FFmpeg I/O timeouts (a stall longer than
            ``read_timeout_s`` counts as a drop).
        queue_frames: frames buffered between the reader and the analysis.
        rtsp_transport: ``tcp`` (default, robust) or ``udp``.
    """

    def __init__(
        self,
        source: str,
        *,
        max_side: int | None = 640,
        realtime: bool = False,
        connect_retries: int = 3,
        reconnect_for_s: float = 60.0,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 5.0,
        queue_frames: int = 64,
        rtsp_transport: str = "tcp",
    ) -> None:
        self.spec = describe_source(source, rtsp_transport)
        self.source = str(source)
        self.max_side = max_side
        self.realtime = realtime
        self.connect_retries = max(1, connect_retries)
        self.reconnect_for_s = reconnect_for_s
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.fps: float | None = None
        self.resolution_wh: tuple[int, int] | None = None
        self.frames_read = 0
        self.frames_dropped = 0  # analysis fell behind
        self.bad_frames = 0  # failed to decode or flagged corrupt
        self.reconnects = 0
        self.started_at: datetime | None = None  # wall time of the stream's first frame
        self._clock = _Clock()
        self._queue: queue.Queue[StreamItem] = queue.Queue(maxsize=max(2, queue_frames))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._first = threading.Event()

    # ----------------------------------------------------------------------- public
    def open(self) -> None:
        """Connect (bounded retries) and start reading in the background.

        Raises:
            StreamError: the source could not be opened after ``connect_retries`` attempts.
        """
        container = self._connect_first()
        self._thread = threading.Thread(
            target=self._run, args=(container,), name="vadetective-stream", daemon=True
        )
        self._thread.start()

    def items(self) -> Iterator[StreamItem]:
        """Frames and gaps in order, ending with one ``StreamEnd``."""
        if self._thread is None:
            self.open()
        while True:
            try:
                item = self._queue.get(timeout=0.25)
            except queue.Empty:
                if self._thread is not None and not self._thread.is_alive():
                    if self._error is not None:
                        raise StreamError(f"reading {self.source} failed: {self._error}") from None
                    return
                continue
            yield item
            if isinstance(item, StreamEnd):
                return

    def stop(self) -> None:
        """Ask the reader to stop; ``items`` then ends with ``StreamEnd('stopped')``."""
        self._stop.set()

    def close(self) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout=self.read_timeout_s + 2.0)

    # ----------------------------------------------------------------------- connection
    def _open_container(self) -> Any:
        import av

        return av.open(
            self.spec.url,
            format=self.spec.fmt,
            options=dict(self.spec.options or {}),
            timeout=(self.open_timeout_s, self.read_timeout_s),
        )

    def _connect_first(self) -> Any:
        import av

        delay = 0.5
        last = ""
        for attempt in range(1, self.connect_retries + 1):
            if self._stop.is_set():
                break
            try:
                container = self._open_container()
                if not container.streams.video:
                    container.close()
                    raise StreamError(f"{self.source} has no video stream")
                return container
            except (av.error.FFmpegError, OSError) as exc:
                last = _short(exc)
                log.info("opening %s failed (attempt %d): %s", self.source, attempt, last)
                if attempt < self.connect_retries:
                    self._stop.wait(delay)
                    delay = min(delay * 2, 8.0)
        raise StreamError(
            f"cannot open {self.source} after {self.connect_retries} attempt(s): {last or 'stopped'}"
        )

    def _reconnect(self) -> Any | None:
        """Try to get the stream back (backoff), for at most ``reconnect_for_s``."""
        import av

        deadline = time.monotonic() + self.reconnect_for_s
        delay = 0.5
        attempt = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            attempt += 1
            try:
                container = self._open_container()
                if container.streams.video:
                    log.warning("%s is back after %d attempt(s)", self.source, attempt)
                    self.reconnects += 1
                    return container
                container.close()
            except (av.error.FFmpegError, OSError) as exc:
                log.info("reconnecting to %s (attempt %d): %s", self.source, attempt, _short(exc))
            self._stop.wait(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 8.0)
        return None

    # ----------------------------------------------------------------------- reading
    def _put(self, item: StreamItem) -> None:
        """Queue an item; when the queue is full, drop the oldest frame to stay live."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return
            except queue.Full:
                if self.spec.is_file:
                    continue  # a file can wait for the analysis: nothing is lost by waiting
                try:
                    old = self._queue.get_nowait()
                except queue.Empty:
                    continue
                if isinstance(old, StreamFrame):
                    self.frames_dropped += 1
                else:  # keep gaps and ends; drop the frame behind them instead
                    self._queue.put_nowait(old)

    def _run(self, container: Any) -> None:
        reason = "end of stream"
        try:
            while container is not None and not self._stop.is_set():
                gap = self._clock.new_connection()
                if gap is not None:
                    self._put(gap)
                finished = self._read(container)
                container.close()
                container = None
                if self._stop.is_set():
                    reason = "stopped"
                    break
                if finished or self.spec.is_file:
                    reason = "end of stream"
                    break
                log.warning(
                    "%s dropped at %.1f s on the stream clock; reconnecting (up to %.0f s)",
                    self.source, self._clock.last_t or 0.0, self.reconnect_for_s,
                )  # fmt: skip
                container = self._reconnect()
                if container is None and not self._stop.is_set():
                    reason = f"the source did not come back within {self.reconnect_for_s:.0f} s"
                    log.warning("%s: %s; stopping", self.source, reason)
            if self._stop.is_set():
                reason = "stopped"
        except Exception as exc:  # noqa: BLE001 - reported by items() in the consuming thread
            self._error = exc
            reason = f"failed: {_short(exc)}"
        finally:
            if container is not None:
                container.close()
            self._queue_end(StreamEnd(reason))

    def _queue_end(self, end: StreamEnd) -> None:
        while True:
            try:
                self._queue.put(end, timeout=0.1)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()

    def _read(self, container: Any) -> bool:
        """Read one connection until it ends; True when the stream finished (not dropped)."""
        import av

        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        if rate:
            self.fps = float(rate)
            self._clock.step_s = 1.0 / self.fps
        duration_s = float(container.duration) / 1e6 if container.duration else None
        wall0: float | None = None
        t0: float | None = None
        try:
            for packet in container.demux(stream):
                if self._stop.is_set():
                    return False
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as exc:
                    self.bad_frames += 1
                    log.debug("skipping a packet that failed to decode: %s", _short(exc))
                    continue
                for vf in frames:
                    if vf.is_corrupt:
                        self.bad_frames += 1
                        continue
                    pts_s = float(vf.pts * vf.time_base) if vf.pts is not None else None
                    t, jump = self._clock.time_of(pts_s)
                    if jump is not None:
                        self._put(jump)
                    if self.realtime and self.spec.is_file:
                        if wall0 is None or t0 is None:
                            wall0, t0 = time.monotonic(), t
                        wait = (t - t0) - (time.monotonic() - wall0)
                        if wait > 0 and self._stop.wait(wait):
                            return False
                    self._emit(vf, t)
        except av.error.EOFError:
            pass
        except (av.error.FFmpegError, OSError) as exc:
            log.info("%s: read failed: %s", self.source, _short(exc))
            return False
        if self.spec.is_file:
            return True
        last = self._clock.last_t
        # a stream with a known length that stopped near its end has finished
        return duration_s is not None and last is not None and last >= duration_s - _END_SLACK_S

    def _emit(self, vf: Any, t: float) -> None:
        try:
            img = vf.to_ndarray(format="rgb24")
        except (ValueError, RuntimeError) as exc:
            self.bad_frames += 1
            log.debug("skipping a frame that could not be converted: %s", exc)
            return
        if self.resolution_wh is None:
            self.resolution_wh = (int(img.shape[1]), int(img.shape[0]))
        elif (img.shape[1], img.shape[0]) != self.resolution_wh:
            # the source changed size (a camera reconfigured): working frames keep one size
            import cv2

            img = cv2.resize(img, self.resolution_wh, interpolation=cv2.INTER_AREA)
        small, scale = _resize_to(img, self.max_side)
        if self.started_at is None:
            self.started_at = datetime.fromtimestamp(time.time() - t, tz=UTC)
        idx = self.frames_read
        self.frames_read += 1
        self._put(StreamFrame(Frame(idx, t, np.ascontiguousarray(small), scale), time.time()))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


__all__ = [
    "SourceSpec",
    "StreamEnd",
    "StreamFrame",
    "StreamItem",
    "StreamReader",
    "describe_source",
]
