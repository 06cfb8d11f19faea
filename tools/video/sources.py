"""Video access: open a file once, then read any frames by index with exact timestamps.

``open_video`` checks the file, probes it with PyAV (the authority on what the file holds: frame
timestamps from the stream's time base, keyframes, codec, rotation, damage), then decodes with
PyAV (the default: one decoder, scaling inside FFmpeg, exact decode counts) or decord (on
request). The backends live in ``pyav_source.py`` and ``decord_source.py``, what they share in
``source_base.py``, the frame cache in ``frame_cache.py``, probing in ``probe.py`` and the
sampling helpers in ``sampling.py``.

Frame ``i`` is the ``i``-th frame in presentation order; ``t_s`` is seconds from the first frame.
Frames are as displayed (a rotation in the file's display matrix is applied). A damaged file is
read up to its last decodable frame (``VideoInfo.truncated_at_s``); a frame inside a damaged
stretch in the middle is found only when read, and is left out of that batch with a warning.
Sources are not thread-safe: open one per thread or process.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

from vadetective.agent.core.errors import ConfigError, VideoError
from vadetective.tools.video.decord_source import DecordSource
from vadetective.tools.video.folder import FrameFolderSource, open_frame_folder
from vadetective.tools.video.frame_cache import DEFAULT_CACHE_MB, FrameCache
from vadetective.tools.video.probe import check_path, probe_file
from vadetective.tools.video.pyav_source import PyAVSource
from vadetective.tools.video.source_base import VideoSource

logger = logging.getLogger(__name__)

Backend = Literal["auto", "decord", "pyav"]


def open_video(
    path: str | os.PathLike[str],
    backend: Backend = "auto",
    *,
    threads: int = 0,
    cache_mb: float = DEFAULT_CACHE_MB,
    fps: float | None = None,
    fps_source: str | None = None,
) -> VideoSource | FrameFolderSource:
    """Open a video file, or a folder of frames, for random frame access and one-pass reading.

    Args:
        path: the video file, or a folder of images read as one video (``folder.py``).
        backend: "pyav", "decord", or "auto" (PyAV: measured faster for the one pass, exact
            in its decode counts, bounded in memory; see ``docs/frame_access.md``); unused for
            a folder.
        threads: decoder threads (0: let FFmpeg decide).
        cache_mb: budget of the source's frame cache in megabytes (0: no cache).
        fps: the frame rate of a frame folder (a file's stream carries its own timestamps, so
            this is ignored for files).
        fps_source: where ``fps`` came from (a flag, a dataset's convention), recorded in
            ``VideoInfo.fps_source``.

    Returns:
        A ``FrameSource`` (``PyAVSource``, ``DecordSource`` or ``FrameFolderSource``); also a
        context manager.

    Raises:
        VideoError: a subclass saying what is wrong with the file (missing, a folder, empty,
            not a video, an unsupported codec, no decodable frames); plain ``VideoError``
            when an explicitly requested decord cannot read it correctly.
        ConfigError: an unknown backend name.
    """
    if backend not in ("auto", "decord", "pyav"):
        raise ConfigError(f"unknown video backend {backend!r}: choose auto, decord or pyav")
    p = Path(path)
    if p.is_dir():
        return open_frame_folder(p, fps, fps_source=fps_source)
    check_path(p)
    probe = probe_file(p)
    if backend != "decord":
        return PyAVSource(probe, threads=threads, cache_mb=cache_mb)
    try:
        return DecordSource(probe, threads=threads, strict=True, cache_mb=cache_mb)
    except VideoError as exc:
        raise VideoError(f"{exc}; open it with backend='auto' or 'pyav' instead.") from exc


__all__ = [
    "Backend",
    "DecordSource",
    "FrameCache",
    "FrameFolderSource",
    "PyAVSource",
    "VideoSource",
    "open_video",
]
