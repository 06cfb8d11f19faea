"""Video access: open a file once, then read any frames by index with exact timestamps.

``open_video`` checks the file, probes it with PyAV (the authority on what the file holds: frame
timestamps from the stream's time base, keyframes, codec, damage), then decodes with decord
(fast, primary) or PyAV (fallback, and for what decord rejects or gets wrong). The sampling
helpers live in ``sampling.py``; probing in ``probe.py``.

Frame ``i`` is the ``i``-th frame in presentation order; ``t_s`` is seconds from the first frame.
A damaged file is read up to its last decodable frame (``VideoInfo.truncated_at_s``); a frame
inside a damaged stretch in the middle is found only when read, and is left out of that batch
with a warning. Sources are not thread-safe: open one per thread or process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from vadetective.agent.core.errors import (
    ConfigError,
    VideoError,
)
from vadetective.agent.core.types import VideoInfo
from vadetective.tools.base import Frame, FrameBatch
from vadetective.tools.video.folder import FrameFolderSource, open_frame_folder
from vadetective.tools.video.probe import (
    Probe,
    check_path,
    decoded_frames,
    fit_size,
    frame_pts,
    gop_of,
    open_container,
    probe_file,
    seconds_of,
    video_stream,
)
from vadetective.tools.video.sampling import iter_frames_by_reading

if TYPE_CHECKING:
    import av

logger = logging.getLogger(__name__)

Backend = Literal["auto", "decord", "pyav"]
_CHUNK = 32  # frames per decord call: bounds decord's own buffers on long reads
_TS_TOLERANCE_S = 2e-3  # decord reports float32 seconds; a real mismatch is a frame or more
_PIXEL_TOLERANCE = 2.0  # mean |decord - PyAV| in levels; the same frame agrees to ~0


class VideoSource:
    """One open video (a ``FrameSource``): what both backends share — the probe, index
    checks, resizing, the decode plan."""

    backend: str = ""

    def __init__(self, probe: Probe) -> None:
        self._probe = probe
        self._info = probe.info.model_copy(update={"backend": self.backend})
        self._t_s = seconds_of(probe.pts, probe.time_base)
        self._t_s.setflags(write=False)
        self._decoded = 0
        self._closed = False

    @property
    def info(self) -> VideoInfo:
        return self._info

    @property
    def timestamps(self) -> np.ndarray:
        return self._t_s

    @property
    def frames_decoded(self) -> int:
        return self._decoded

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the decoder and the file (idempotent); reading afterwards raises."""
        if not self._closed:
            self._closed = True
            self._release()

    def _release(self) -> None:  # backends that hold resources override this
        return None

    def __repr__(self) -> str:
        i = self._info
        return (
            f"{type(self).__name__}({Path(i.path).name!r}, {i.frame_count} frames, {i.fps:.2f} fps)"
        )

    def read(
        self, frame_idx: Sequence[int] | np.ndarray, max_side: int | None = None
    ) -> FrameBatch:
        """Decode the given frames (read in sorted order, returned sorted, duplicates once)."""
        raise NotImplementedError

    def iter_frames(
        self,
        max_side: int | None = None,
        fps: float | None = None,
        start_s: float = 0.0,
        end_s: float | None = None,
    ) -> Iterator[Frame]:
        """One sequential pass at working resolution (see ``FrameSource.iter_frames``).

        This base version reads sorted chunks through ``read``; sources override it to decode
        once and scale inside the decoder.
        """
        return iter_frames_by_reading(self, max_side, fps, start_s, end_s, chunk=_CHUNK)

    def _targets(self, frame_idx: Sequence[int] | np.ndarray) -> np.ndarray:
        if self._closed:
            raise VideoError(f"{Path(self._info.path).name} was closed; open it again to read.")
        idx = np.unique(np.asarray(frame_idx, dtype=np.int64).reshape(-1))
        n = self._info.frame_count
        if idx.size and (idx[0] < 0 or idx[-1] >= n):
            bad = int(idx[0] if idx[0] < 0 else idx[-1])
            raise IndexError(f"frame_idx {bad} is out of range: the video has frames 0..{n - 1}")
        return idx

    def _keyframe_of(self, i: int) -> int:
        return gop_of(self._probe.keyframes, i)

    def _resize(self, img: np.ndarray, max_side: int | None) -> np.ndarray:
        """Downscale one RGB frame (INTER_AREA) so its longer side is at most ``max_side``."""
        import cv2

        nw, nh = fit_size(self._info.resolution_wh, max_side)
        if img.shape[1] == nw and img.shape[0] == nh:
            return img
        return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)

    def _batch(self, frames: list[np.ndarray], idx: list[int], max_side: int | None) -> FrameBatch:
        """Stack frames already passed through ``_resize`` into a batch."""
        w, h = self._info.resolution_wh
        nw, nh = fit_size((w, h), max_side)
        out = np.stack(frames) if frames else np.empty((0, nh, nw, 3), dtype=np.uint8)
        ia = np.asarray(idx, dtype=np.int64)
        return FrameBatch(
            frames=out, t_s=self._t_s[ia], frame_idx=ia, scale=max(w, h) / max(nw, nh)
        )


class PyAVSource(VideoSource):
    """Frames decoded by PyAV: seeks to the keyframe before a target only when decoding on
    from where it stands would cost more; tolerates packets that fail to decode."""

    backend = "pyav"

    def __init__(self, probe: Probe, threads: int = 0) -> None:
        super().__init__(probe)
        self._threads = threads
        self._open()
        self._index = {int(p): i for i, p in enumerate(probe.pts)}
        self._frames: Iterator[av.VideoFrame] | None = None
        self._pending: tuple[int, av.VideoFrame] | None = None
        self._pos = -1  # index of the last frame taken from the decoder
        self._good = -1  # index of the last undamaged frame taken
        self._prev = -1  # the undamaged frame taken before that one
        self._hole = (0, 0)  # frames strictly inside failed to decode on the way to _pending
        self._errors: list[int] = []  # pts of packets that failed since the last seek
        self._damaged: set[int] = set()  # GOPs (keyframe indices) hit by those failures

    def _open(self) -> None:
        path = Path(self._info.path)
        self._container = open_container(path)
        self._stream = video_stream(path, self._container)
        self._stream.codec_context.thread_type = "AUTO"
        self._stream.codec_context.thread_count = self._threads

    def _release(self) -> None:
        self._frames = self._pending = None
        self._container.close()

    def _next(self) -> tuple[int, av.VideoFrame] | None:
        """The next decoded frame that belongs to the frame list, with its index."""
        if self._pending is not None:
            item, self._pending = self._pending, None
            return item
        assert self._frames is not None
        for frame in self._frames:
            self._decoded += 1
            i = self._index.get(frame_pts(frame))
            if i is None:
                continue
            self._pos = i
            # A packet that failed to decode leaves its GOP's later frames built on missing
            # references: FFmpeg conceals them (wrong pixels, often unflagged), so drop them.
            while self._errors:
                failed = self._index.get(self._errors.pop(), i)
                self._damaged.add(self._keyframe_of(failed))
            if frame.is_corrupt or self._keyframe_of(i) in self._damaged:
                continue
            self._prev, self._good = self._good, i
            return i, frame
        return None

    def _seek_to(self, pts: int) -> bool:
        import av

        try:
            self._container.seek(pts, stream=self._stream, backward=True)
        except av.error.FFmpegError as exc:
            logger.debug("seek to pts %d failed: %s", pts, exc)
            return False
        return True

    def _seek(self, target: int) -> None:
        """Position the decoder so that the next frames lead to ``target``."""
        kf = self._keyframe_of(target)
        while True:
            # Timestamp seeks can land late (MPEG-TS) or fail (unseekable input); for the
            # first GOP, reopening is exact and cheap.
            if kf == 0 or not self._seek_to(int(self._probe.pts[kf])):
                self._container.close()
                self._open()
                kf = 0
            self._frames = decoded_frames(self._container, self._stream, self._errors)
            self._pending, self._pos, self._good, self._prev = None, -1, -1, -1
            self._errors.clear()
            self._damaged.clear()
            head = self._next()
            # the demuxer may land past the keyframe we asked for: step back one GOP
            if kf > 0 and (head is None or head[0] > target):
                kf = self._keyframe_of(kf - 1)
                continue
            self._pending = head
            return

    def read(
        self, frame_idx: Sequence[int] | np.ndarray, max_side: int | None = None
    ) -> FrameBatch:
        """Decode the given frames, in sorted order, returned sorted (duplicates once).

        Args:
            frame_idx: frame indices, any order.
            max_side: downscale so the longer side is at most this many pixels.

        Returns:
            The frames that decoded; a frame in a damaged stretch is left out with a warning.
        """
        frames: list[np.ndarray] = []
        got: list[int] = []
        for target in self._targets(frame_idx).tolist():
            if self._pending and self._hole[0] < target < self._hole[1]:
                continue  # decoding went straight past it: damaged, seeking will not help
            behind = target < self._pending[0] if self._pending else target <= self._pos
            if self._frames is None or behind or self._keyframe_of(target) > self._pos + 1:
                self._seek(target)
            while (item := self._next()) is not None and item[0] < target:
                pass
            if item is not None and item[0] > target:
                self._pending, self._hole = item, (self._prev, item[0])
                continue
            if item is not None:
                # swscale, as decord does: both backends give the same pixels (cv2's YUV->RGB is
                # ~4x faster but about one level darker, and results should not depend on
                # which backend decoded them)
                rgb = item[1].to_ndarray(format="rgb24")
                frames.append(self._resize(rgb, max_side))
                got.append(target)
        self._warn_missing(frame_idx, got)
        return self._batch(frames, got, max_side)

    def _warn_missing(self, frame_idx: Sequence[int] | np.ndarray, got: list[int]) -> None:
        missing = np.setdiff1d(np.asarray(frame_idx, dtype=np.int64), got)
        if missing.size:
            t = self._t_s[missing]
            logger.warning(
                "%s: %d requested frame(s) between %.2f s and %.2f s could not be decoded "
                "(damaged data); they are left out.",
                Path(self._info.path).name,
                missing.size,
                t[0],
                t[-1],
            )


class DecordSource(VideoSource):
    """Frames decoded by decord, checked against the PyAV probe at open; on a decord failure
    while reading it hands over to PyAV (unless ``strict``, then it raises ``VideoError``)."""

    backend = "decord"

    def __init__(self, probe: Probe, threads: int = 0, strict: bool = False) -> None:
        super().__init__(probe)
        import decord

        self._strict = strict
        self._threads = threads
        self._vr: Any = None
        self._fallback: PyAVSource | None = None
        self._pos = -1
        path = probe.info.path
        try:
            self._vr = decord.VideoReader(path, num_threads=threads)
            self._check_timestamps()
            self._check_pixels()
        except decord.DECORDError as exc:
            raise VideoError(
                f"decord cannot read {path}: {str(exc).splitlines()[0][:200]}"
            ) from exc

    def _check_timestamps(self) -> None:
        """decord's frame table must match the stream's (it is garbage for B-frame AVIs)."""
        n = self._info.frame_count
        if len(self._vr) < n:
            raise VideoError(f"decord lists {len(self._vr)} frames where PyAV decodes {n}")
        ts = self._vr.get_frame_timestamp(np.arange(n))[:, 0].astype(np.float64)
        # within float32 rounding, and well under one frame even for high-speed video
        step = float(np.min(np.diff(self._t_s))) if n > 1 else 1.0
        tolerance = min(_TS_TOLERANCE_S, step / 4) + 1e-6 * self._t_s
        err = np.abs((ts - ts[0]) - self._t_s)
        if not np.all(err <= tolerance):
            bad = int(np.argmax(err > tolerance))
            raise VideoError(
                f"decord misplaces frames of {self._info.path} (frame {bad}: "
                f"{ts[bad] - ts[0]:.3f} s, stream says {self._t_s[bad]:.3f} s)"
            )

    def _check_pixels(self) -> None:
        """decord must decode the same pixels as PyAV at the first, a middle and the last
        keyframe (cheap to decode in both). It returns frames a GOP late in MPEG-TS files,
        with a correct frame table."""
        kf = self._probe.keyframes
        idx = sorted({0, int(kf[kf.size // 2]), int(kf[-1])})
        with PyAVSource(self._probe, threads=self._threads) as reference:
            ref = reference.read(idx)
        mine = self._vr.get_batch(ref.frame_idx.tolist()).asnumpy()
        for i, a, b in zip(ref.frame_idx.tolist(), mine, ref.frames, strict=True):
            diff = float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())
            if diff > _PIXEL_TOLERANCE:
                raise VideoError(
                    f"decord decodes other pixels than PyAV at frame {i} of {self._info.path} "
                    f"(mean difference {diff:.1f} levels)"
                )

    @property
    def frames_decoded(self) -> int:
        """Frames decoded so far; decord's own count is estimated from the keyframe index."""
        return self._decoded + (self._fallback.frames_decoded if self._fallback else 0)

    def _release(self) -> None:
        self._vr = None
        if self._fallback is not None:
            self._fallback.close()

    def read(
        self, frame_idx: Sequence[int] | np.ndarray, max_side: int | None = None
    ) -> FrameBatch:
        """Decode the given frames, in sorted order, returned sorted (duplicates once).

        Args:
            frame_idx: frame indices, any order.
            max_side: downscale so the longer side is at most this many pixels.

        Returns:
            The decoded frames with their exact timestamps.
        """
        import decord

        targets = self._targets(frame_idx)
        if self._fallback is not None:
            return self._fallback.read(targets, max_side)
        frames: list[np.ndarray] = []
        try:
            for start in range(0, targets.size, _CHUNK):
                chunk = targets[start : start + _CHUNK]
                decoded = self._vr.get_batch(chunk.tolist()).asnumpy()
                frames.extend(self._resize(img, max_side) for img in decoded)
                self._count(chunk)
        except decord.DECORDError as exc:
            where = f"{self._t_s[targets[len(frames)]]:.2f} s"
            msg = f"decord failed near {where} of {Path(self._info.path).name}"
            if self._strict:
                raise VideoError(f"{msg}; open it with backend='auto' or 'pyav' instead.") from exc
            logger.warning("%s (damaged data?); switching to PyAV for this video.", msg)
            self._fallback = PyAVSource(self._probe, threads=self._threads)
            self._info = self._info.model_copy(update={"backend": "pyav"})
            return self._fallback.read(targets, max_side)
        return self._batch(frames, targets.tolist(), max_side)

    def _count(self, chunk: np.ndarray) -> None:
        """Estimate decord's work with the same rule PyAVSource follows."""
        for i in chunk.tolist():
            kf = self._keyframe_of(i)
            start = kf if (i <= self._pos or kf > self._pos + 1) else self._pos + 1
            self._decoded += i - start + 1
            self._pos = i


def open_video(
    path: str | os.PathLike[str],
    backend: Backend = "auto",
    *,
    threads: int = 0,
    fps: float | None = None,
    fps_source: str | None = None,
) -> VideoSource | FrameFolderSource:
    """Open a video file, or a folder of frames, for random frame access.

    Args:
        path: the video file, or a folder of images read as one video (``folder.py``).
        backend: "decord", "pyav", or "auto" (decord, falling back to PyAV when decord
            rejects the file or disagrees with the stream's timestamps); unused for a folder.
        threads: decoder threads (0: let FFmpeg decide).
        fps: the frame rate of a frame folder (a file's stream carries its own timestamps, so
            this is ignored for files).
        fps_source: where ``fps`` came from (a flag, a dataset's convention), recorded in
            ``VideoInfo.fps_source``.

    Returns:
        A ``FrameSource`` (``DecordSource``, ``PyAVSource`` or ``FrameFolderSource``); also a
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
    if backend == "pyav":
        return PyAVSource(probe, threads=threads)
    try:
        return DecordSource(probe, threads=threads, strict=backend == "decord")
    except VideoError as exc:
        if backend == "decord":
            raise VideoError(f"{exc}; open it with backend='auto' or 'pyav' instead.") from exc
        logger.info("%s; using PyAV instead.", exc)
        return PyAVSource(probe, threads=threads)


__all__ = ["Backend", "DecordSource", "PyAVSource", "VideoSource", "open_video"]
