"""A bounded cache of decoded frames, so look-backs and repeated reads cost no decoding.

Every frame a source converts (in its one pass or in a random read) is put here, keyed by frame
index and size, and every read looks here first. The cache is bounded by bytes, not by count, so
its memory is the same for a 1-minute and a 60-minute video; when full it drops the least
recently used frames. Cached arrays are read-only: a consumer that wants to draw on a frame
copies it first, so a cached frame is never changed behind another reader's back.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

#: Default budget of a source's frame cache: about 1,500 frames at 320x180, or ten 4K frames.
DEFAULT_CACHE_MB = 256.0

Key = tuple[int, int, int]  # frame_idx, width, height


class FrameCache:
    """Decoded RGB frames by (frame index, width, height), least recently used dropped first.

    Args:
        budget_mb: Most megabytes (10^6 bytes) of pixels held; 0 disables the cache.
    """

    def __init__(self, budget_mb: float = DEFAULT_CACHE_MB) -> None:
        if not budget_mb >= 0:
            raise ValueError(f"budget_mb must be a non-negative number, got {budget_mb}")
        self.budget_bytes = int(budget_mb * 1e6)
        self._frames: OrderedDict[Key, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def nbytes(self) -> int:
        """Bytes of pixels held now."""
        return self._bytes

    def __repr__(self) -> str:
        return (
            f"FrameCache({len(self)} frames, {self._bytes / 1e6:.1f} of "
            f"{self.budget_bytes / 1e6:.0f} MB, {self.hits} hits, {self.misses} misses)"
        )

    def get(self, frame_idx: int, size_wh: tuple[int, int]) -> np.ndarray | None:
        """The cached frame ``frame_idx`` at exactly ``size_wh``, or None."""
        key = (int(frame_idx), int(size_wh[0]), int(size_wh[1]))
        with self._lock:
            img = self._frames.get(key)
            if img is None:
                self.misses += 1
                return None
            self._frames.move_to_end(key)
            self.hits += 1
            return img

    def put(self, frame_idx: int, image: np.ndarray) -> np.ndarray:
        """Keep ``image`` (H, W, 3 uint8) as frame ``frame_idx``; returns it read-only.

        A frame larger than the whole budget is returned without being kept.
        """
        img = image if not image.flags.writeable else image.view()
        img.setflags(write=False)
        size = int(img.nbytes)
        if size > self.budget_bytes:
            return img
        key = (int(frame_idx), int(img.shape[1]), int(img.shape[0]))
        with self._lock:
            old = self._frames.pop(key, None)
            if old is not None:
                self._bytes -= int(old.nbytes)
            self._frames[key] = img
            self._bytes += size
            while self._bytes > self.budget_bytes and self._frames:
                _, dropped = self._frames.popitem(last=False)
                self._bytes -= int(dropped.nbytes)
        return img

    def clear(self) -> None:
        """Drop every frame."""
        with self._lock:
            self._frames.clear()
            self._bytes = 0
