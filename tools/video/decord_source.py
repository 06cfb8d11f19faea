"""Frames decoded by decord, checked against the PyAV probe when opened.

decord is fast at random batches but decodes to full-resolution RGB (the frames are shrunk
afterwards with OpenCV), estimates its own decoding work, and cannot be told where to stop
reading ahead; it stays supported (``backend="decord"``), while the default is PyAV
(``docs/frame_access.md`` says why). On a decord failure while reading, the source hands over
to PyAV for the rest of the video (unless ``strict``, then it raises ``VideoError``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vadetective.agent.core.errors import VideoError
from vadetective.tools.video.frame_cache import DEFAULT_CACHE_MB
from vadetective.tools.video.probe import Probe
from vadetective.tools.video.pyav_source import PyAVSource
from vadetective.tools.video.source_base import VideoSource

logger = logging.getLogger(__name__)

_CHUNK = 32  # frames per decord call: bounds decord's own buffers on long reads
_TS_TOLERANCE_S = 2e-3  # decord reports float32 seconds; a real mismatch is a frame or more
_PIXEL_TOLERANCE = 2.0  # mean |decord - PyAV| in levels; the same frame agrees to ~0


class DecordSource(VideoSource):
    """Frames decoded by decord (see the module docstring).

    Args:
        probe: What ``probe_file`` found.
        threads: decoder threads (0: let FFmpeg decide).
        strict: raise instead of handing over to PyAV when decord fails while reading.
        cache_mb: Budget of the frame cache in megabytes.
    """

    backend = "decord"

    def __init__(
        self,
        probe: Probe,
        threads: int = 0,
        strict: bool = False,
        cache_mb: float = DEFAULT_CACHE_MB,
    ) -> None:
        super().__init__(probe, cache_mb=cache_mb)
        import decord
        import decord.logging

        # decord's own FFmpeg would write raw log lines to stderr; failures still raise
        decord.logging.set_level(decord.logging.QUIET)

        self._strict = strict
        self._threads = threads
        self._vr: Any = None
        self._fallback: PyAVSource | None = None
        self._pos = -1
        path = probe.info.path
        try:
            # an absolute path: FFmpeg never reads a local name such as "http:x" as a protocol
            self._vr = decord.VideoReader(str(Path(path).absolute()), num_threads=threads)
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
        with PyAVSource(self._probe, threads=self._threads, cache_mb=0) as reference:
            ref = reference.read(idx)
        mine = self._vr.get_batch(ref.frame_idx.tolist()).asnumpy()
        for i, a, b in zip(ref.frame_idx.tolist(), mine, ref.frames, strict=True):
            if a.shape != b.shape:
                raise VideoError(
                    f"decord decodes frames of {self._info.path} as {a.shape[1]}x{a.shape[0]} "
                    f"where the displayed size is {b.shape[1]}x{b.shape[0]}"
                )
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

    def _walk(
        self, frame_idx: np.ndarray, size_wh: tuple[int, int]
    ) -> Iterator[tuple[int, np.ndarray]]:
        import cv2
        import decord

        if self._fallback is not None:
            yield from self._fallback._walk(frame_idx, size_wh)
            return
        done = 0
        try:
            for start in range(0, frame_idx.size, _CHUNK):
                chunk = frame_idx[start : start + _CHUNK]
                decoded = self._vr.get_batch(chunk.tolist()).asnumpy()
                self._count(chunk)
                for i, img in zip(chunk.tolist(), decoded, strict=True):
                    if (img.shape[1], img.shape[0]) != size_wh:
                        img = cv2.resize(img, size_wh, interpolation=cv2.INTER_AREA)
                    done += 1
                    yield i, img
        except decord.DECORDError as exc:
            where = f"{self._t_s[frame_idx[done]]:.2f} s"
            msg = f"decord failed near {where} of {Path(self._info.path).name}"
            if self._strict:
                raise VideoError(f"{msg}; open it with backend='auto' or 'pyav' instead.") from exc
            logger.warning("%s (damaged data?); switching to PyAV for this video.", msg)
            self._fallback = PyAVSource(self._probe, threads=self._threads, cache_mb=0)
            self._info = self._info.model_copy(update={"backend": "pyav"})
            yield from self._fallback._walk(frame_idx[done:], size_wh)

    def _count(self, chunk: np.ndarray) -> None:
        """Estimate decord's work with the same rule PyAVSource follows."""
        for i in chunk.tolist():
            kf = self._keyframe_of(i)
            start = kf if (i <= self._pos or kf > self._pos + 1) else self._pos + 1
            self._decoded += i - start + 1
            self._pos = i
