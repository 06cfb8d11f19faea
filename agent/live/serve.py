"""Serve a clip as a live stream on 127.0.0.1, to rehearse a watch without a camera (and for the
tests and the benchmark): FFmpeg's own MPEG-TS over TCP or UDP, or GStreamer's RTSP server.

- ``prepare_clip(src, dst)``: re-encode a clip for streaming (H.264, a keyframe every second,
  no B-frames, Matroska), optionally rescaled.
- ``FFmpegSender(clip, url)``: ``ffmpeg -re`` sending the clip (copied, not re-encoded) as
  MPEG-TS to ``tcp://127.0.0.1:P?listen=1`` (FFmpeg waits for the watcher to connect) or to
  ``udp://127.0.0.1:P`` (the watcher listens).
- ``RtspServer(clip, port)``: GStreamer's RTSP server (``rtsp_gst.py`` under the system Python);
  every client session plays the clip from its start in real time.

Each is a context manager around one subprocess, stopped (by its own pid) on exit. They need
the ``ffmpeg`` program, and for RTSP Debian's ``gir1.2-gst-rtsp-server-1.0``,
``gstreamer1.0-plugins-{base,good,bad}`` and ``python3-gi``; ``missing_tools()`` says what is
absent.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

SYSTEM_PYTHON = "/usr/bin/python3"
_GST_CHECK = (
    "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
    "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
    "import sys; sys.exit(0 if all(Gst.ElementFactory.find(e) for e in "
    "('matroskademux', 'h264parse', 'rtph264pay')) else 3)"
)


def missing_tools(rtsp: bool = True) -> list[str]:
    """What is missing to serve streams: the ffmpeg program, and (for RTSP) GStreamer's RTSP
    server under the system Python. Empty when everything is there."""
    missing = []
    if shutil.which("ffmpeg") is None:
        missing.append("ffmpeg (apt-get install ffmpeg)")
    if rtsp:
        ok = Path(SYSTEM_PYTHON).exists() and (
            subprocess.run(
                [SYSTEM_PYTHON, "-c", _GST_CHECK], capture_output=True, timeout=60
            ).returncode
            == 0
        )
        if not ok:
            missing.append(
                "GStreamer's RTSP server (apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "
                "gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)"
            )
    return missing


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare_clip(
    src: str | Path,
    dst: str | Path,
    *,
    size_wh: tuple[int, int] | None = None,
    fps: float | None = None,
) -> Path:
    """Re-encode ``src`` for streaming into ``dst`` (``.mkv``); see the module docstring."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    filters = []
    if size_wh is not None:
        filters.append(f"scale={size_wh[0]}:{size_wh[1]}")
    if fps is not None:
        filters.append(f"fps={fps}")
    chain = ",".join(filters) or "null"
    g = round(fps) if fps else 25
    cmd = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), "-vf", chain, "-an",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", str(g),
        "-bf", "0", "-pix_fmt", "yuv420p", str(dst),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=3600)
    return dst


class _Process:
    """One server subprocess; stopped by its own pid when the block ends."""

    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s)."""
        p, self.proc = self.proc, None
        if p is None:
            return
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL): a camera losing power."""
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            p.kill()
            p.wait(timeout=5)

    def __enter__(self) -> _Process:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class FFmpegSender(_Process):
    """``ffmpeg -re`` streaming ``clip`` as MPEG-TS to ``url`` (``tcp://…?listen=1`` or
    ``udp://…``), ``loops`` extra times (-1: forever)."""

    def __init__(self, clip: str | Path, url: str, loops: int = 0) -> None:
        self.clip, self.url, self.loops = Path(clip), url, loops

    def start(self) -> None:
        cmd = [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
            "-stream_loop", str(self.loops), "-i", str(self.clip), "-c", "copy",
            "-f", "mpegts", self.url,
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


class RtspServer(_Process):
    """GStreamer's RTSP server on ``127.0.0.1:port`` serving ``clip`` at ``/mount``."""

    def __init__(self, clip: str | Path, port: int, mount: str = "cam") -> None:
        self.clip, self.port, self.mount = Path(clip), port, mount

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{self.mount}"

    def start(self, timeout_s: float = 30.0) -> None:
        script = Path(__file__).with_name("rtsp_gst.py")
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(script), str(self.port), self.mount, str(self.clip)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        line = self.proc.stdout.readline()  # "ready" once it listens
        if line.strip() != b"ready" or time.monotonic() > deadline:
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            self.stop()
            raise RuntimeError(f"the RTSP server did not start: {err.strip()[-500:]}")


__all__ = ["FFmpegSender", "RtspServer", "free_port", "missing_tools", "prepare_clip"]
