"""What every file-backed frame source shares: the probe, index checks, sizes, the frame cache.

A backend implements one generator, ``_walk(frame_idx, size_wh)``: decode the given frames
(ascending, unique, none of them cached) at the given *displayed* size and yield
``(frame_idx, image)`` in order, leaving out frames a damaged stretch cannot give, and counting
every frame it decodes in ``self._decoded``. ``read`` (random access) and ``iter_frames`` (the one
sequential pass) are built on it here, both through the source's ``FrameCache``: a frame that
was converted once at a size is never decoded again while it stays cached.

Frames are as displayed: a file whose display matrix rotates the picture (phone clips) is read
rotated, ``VideoInfo.resolution_wh`` is the displayed size, and boxes are in that frame.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np

from vadetective.agent.core.errors import VideoError
from vadetective.agent.core.types import VideoInfo
from vadetective.tools.base import Frame, FrameBatch
from vadetective.tools.video.frame_cache import DEFAULT_CACHE_MB, FrameCache
from vadetective.tools.video.probe import Probe, fit_size, gop_of, seconds_of
from vadetective.tools.video.sampling import frames_between

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 64e6  # frames held at once by one chunk of a pass (cached references included)


class VideoSource:
    """One open video (a ``FrameSource``); see the module docstring for the backend contract.

    Args:
        probe: What ``probe_file`` found.
        cache_mb: Budget of the frame cache in megabytes (0: no cache).
    """

    backend: str = ""

    def __init__(self, probe: Probe, cache_mb: float = DEFAULT_CACHE_MB) -> None:
        self._probe = probe
        self._info = probe.info.model_copy(update={"backend": self.backend})
        self._t_s = seconds_of(probe.pts, probe.time_base)
        self._t_s.setflags(write=False)
        self._decoded = 0
        self._closed = False
        self.cache = FrameCache(cache_mb)

    # ------------------------------------------------------------------ FrameSource
    @property
    def info(self) -> VideoInfo:
        return self._info

    @property
    def timestamps(self) -> np.ndarray:
        return self._t_s

    @property
    def frames_decoded(self) -> int:
        return self._decoded

    def read(
        self, frame_idx: Sequence[int] | np.ndarray, max_side: int | None = None
    ) -> FrameBatch:
        """Decode the given frames (read in sorted order, returned sorted, duplicates once).

        Args:
            frame_idx: frame indices, any order.
            max_side: downscale so the longer side is at most this many pixels.

        Returns:
            The frames that decoded (a frame in a damaged stretch is left out with a warning);
            frames already in the cache at that size cost no decoding.
        """
        targets = self._targets(frame_idx)
        size = fit_size(self._info.resolution_wh, max_side)
        got = list(self._frames(targets, size))
        self._warn_missing(targets, [i for i, _ in got])
        w, h = self._info.resolution_wh
        nw, nh = size
        frames = np.stack([img for _, img in got]) if got else np.empty((0, nh, nw, 3), np.uint8)
        ia = np.asarray([i for i, _ in got], dtype=np.int64)
        return FrameBatch(
            frames=frames, t_s=self._t_s[ia], frame_idx=ia, scale=max(w, h) / max(nw, nh)
        )

    def iter_frames(
        self,
        max_side: int | None = None,
        fps: float | None = None,
        start_s: float = 0.0,
        end_s: float | None = None,
        frame_idx: Sequence[int] | np.ndarray | None = None,
    ) -> Iterator[Frame]:
        """One sequential pass at working resolution (see ``FrameSource.iter_frames``): each
        frame decoded at most once, scaled inside the decoder, and kept in the frame cache."""
        if frame_idx is None:
            idx = frames_between(self, fps, start_s, end_s)
        else:
            idx = self._targets(frame_idx)
        size = fit_size(self._info.resolution_wh, max_side)
        w, h = self._info.resolution_wh
        scale = max(w, h) / max(size)
        for i, img in self._frames(idx, size):
            yield Frame(int(i), float(self._t_s[i]), img, scale)

    def close(self) -> None:
        """Release the decoder, the file and the cached frames (idempotent); reading
        afterwards raises."""
        if not self._closed:
            self._closed = True
            self.cache.clear()
            self._release()

    # ------------------------------------------------------------------ the rest
    def __enter__(self) -> VideoSource:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self._info
        return f"{type(self).__name__}({Path(i.path).name!r}, {i.frame_count} frames, {i.fps_text})"

    def _release(self) -> None:  # backends that hold resources override this
        return None

    def _expect(self, frame_idx: np.ndarray) -> None:
        """Hook: the frames a read or pass is about to walk (all of them, ascending), told once
        before it starts, so a decoder can drop the others early. Optional."""
        return None

    def _walk(
        self, frame_idx: np.ndarray, size_wh: tuple[int, int]
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Decode ``frame_idx`` (ascending, unique) at ``size_wh``; see the module docstring."""
        raise NotImplementedError

    def _frames(
        self, idx: np.ndarray, size_wh: tuple[int, int]
    ) -> Iterator[tuple[int, np.ndarray]]:
        """The frames ``idx`` (ascending, unique) at ``size_wh`` in order: from the cache where
        they are, the others decoded by ``_walk`` and cached. Works in chunks, so that at most
        ``_CHUNK_BYTES`` of cached frames are referenced at once."""
        per_frame = 3 * size_wh[0] * size_wh[1]
        chunk = max(1, int(_CHUNK_BYTES // per_frame))
        self._expect(idx)
        for c0 in range(0, idx.size, chunk):
            part = idx[c0 : c0 + chunk].tolist()
            have = {i: img for i in part if (img := self.cache.get(i, size_wh)) is not None}
            todo = np.asarray([i for i in part if i not in have], dtype=np.int64)
            walk = self._walk(todo, size_wh) if todo.size else iter(())
            for i, img in walk:
                while part and part[0] < i:  # cached frames before the decoded one
                    j = part.pop(0)
                    if j in have:
                        yield j, have.pop(j)
                if part and part[0] == i:
                    part.pop(0)
                yield i, self.cache.put(i, img)
            for j in part:
                if j in have:
                    yield j, have[j]

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

    def _warn_missing(self, wanted: np.ndarray, got: list[int]) -> None:
        missing = np.setdiff1d(wanted, np.asarray(got, dtype=np.int64))
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


def coded_size(size_wh: tuple[int, int], rotation_deg: int) -> tuple[int, int]:
    """The size to scale a coded picture to so that, rotated for display, it is ``size_wh``."""
    return (size_wh[1], size_wh[0]) if rotation_deg % 180 else size_wh


def to_display(img: np.ndarray, rotation_deg: int) -> np.ndarray:
    """Rotate a coded picture as its display matrix says (``rotation_deg`` counter-clockwise,
    a multiple of 90)."""
    k = (rotation_deg // 90) % 4
    return np.ascontiguousarray(np.rot90(img, k)) if k else img
