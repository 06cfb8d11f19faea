"""A folder of frames as a video: sorted images, a frame rate from a flag or a convention.

Several benchmarks ship their test videos as frame folders: ShanghaiTech Campus
(``testing/frames/01_0014/000.jpg``), UCSD Ped1/Ped2 (``Test/Test001/001.tif``, grayscale).
``open_frame_folder`` turns such a folder into a ``FrameSource`` that every tool reads like a
decoded video: frame ``i`` is the ``i``-th image in natural order (``2.jpg`` before ``10.jpg``)
and sits at ``t_s = i / fps``.

Images carry no timestamps, so the frame rate comes from the caller (a ``--fps`` flag, or the
dataset's convention, e.g. 24 fps for ShanghaiTech), else ``DEFAULT_FOLDER_FPS`` with a warning;
where it came from is recorded in ``VideoInfo.fps_source`` and therefore in every result.
An image that cannot be read is left out of its batch with a warning, like a damaged stretch of
a video; an image of another size than the first is resized to it (warned once).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np

from vadetective.agent.core.errors import (
    ConfigError,
    NoDecodableFramesError,
    NotAVideoError,
    VideoError,
    VideoNotFoundError,
)
from vadetective.agent.core.io import content_hash
from vadetective.agent.core.types import VideoInfo
from vadetective.tools.base import Frame, FrameBatch
from vadetective.tools.video.probe import fit_size
from vadetective.tools.video.sampling import frames_between

logger = logging.getLogger(__name__)

#: File name endings read as frames.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: The frame rate assumed when neither the caller nor a dataset convention gives one.
DEFAULT_FOLDER_FPS = 25.0
BACKEND = "folder"

_DIGITS = re.compile(r"(\d+)")


def _natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """``frame2.jpg`` before ``frame10.jpg``: digit runs compare as numbers."""
    return tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in _DIGITS.split(name) if p)


def frame_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The frames of a folder in natural order: images with the folder's most common ending
    (a stray thumbnail of another type is left out, logged), hidden files skipped."""
    folder = Path(folder)
    images = [
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    ]
    if not images:
        return []
    endings = Counter(p.suffix.lower() for p in images)
    main, _ = endings.most_common(1)[0]
    if len(endings) > 1:
        others = sorted(set(endings) - {main})
        logger.info(
            "%s: reading the %d %s images as frames; %d file(s) ending %s left out",
            folder,
            endings[main],
            main,
            sum(endings[e] for e in others),
            ", ".join(others),
        )
    return sorted(
        (p for p in images if p.suffix.lower() == main), key=lambda p: _natural_key(p.name)
    )


def is_frame_folder(path: str | os.PathLike[str]) -> bool:
    """True for a folder that holds at least one image file."""
    p = Path(path)
    return p.is_dir() and bool(frame_files(p))


def _folder_hash(files: Sequence[Path], fps: float) -> str:
    """A cheap content key: the frame rate (timestamps depend on it), every file's name and
    size, and the sampled content of the first, middle and last frame."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"folder|{fps:.6f}|{len(files)}".encode())
    for f in files:
        h.update(f"{f.name}:{f.stat().st_size};".encode())
    for f in {files[0], files[len(files) // 2], files[-1]}:
        h.update(content_hash(f).encode())
    return h.hexdigest()


def _read_rgb(path: Path) -> np.ndarray | None:
    """One image as (H, W, 3) uint8 RGB (grayscale expanded), or None when unreadable."""
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8)  # bytes first: cv2.imread chokes on odd paths
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class FrameFolderSource:
    """A folder of images read as a video (a ``FrameSource``); also a context manager."""

    backend = BACKEND

    def __init__(self, folder: Path, files: list[Path], fps: float, fps_source: str) -> None:
        self._folder = folder
        self._files = files
        self._decoded = 0
        self._closed = False
        self._warned_size = False
        first = self._first_readable()
        h, w = first.shape[:2]
        self._wh = (int(w), int(h))
        self._t_s = np.arange(len(files), dtype=np.float64) / fps
        self._t_s.setflags(write=False)
        self._info = VideoInfo(
            path=str(folder.absolute()),
            fps=fps,
            frame_count=len(files),
            duration_s=len(files) / fps,
            resolution_wh=self._wh,
            content_hash=_folder_hash(files, fps),
            codec=f"image sequence ({files[0].suffix.lower().lstrip('.')})",
            backend=BACKEND,
            fps_source=fps_source,
        )

    def _first_readable(self) -> np.ndarray:
        for f in self._files[:8]:
            img = _read_rgb(f)
            if img is not None:
                return img
        raise NoDecodableFramesError(
            f"{self._folder}: none of its first {min(8, len(self._files))} images could be read "
            f"(e.g. {self._files[0].name}); check that they are valid image files."
        )

    # -------------------------------------------------------------- FrameSource
    @property
    def info(self) -> VideoInfo:
        return self._info

    @property
    def timestamps(self) -> np.ndarray:
        return self._t_s

    @property
    def frames_decoded(self) -> int:
        return self._decoded

    @property
    def files(self) -> list[Path]:
        """The image file of every frame, in frame order."""
        return list(self._files)

    def _targets(self, frame_idx: Sequence[int] | np.ndarray) -> np.ndarray:
        if self._closed:
            raise VideoError(f"{self._folder.name} was closed; open it again to read.")
        idx = np.unique(np.asarray(frame_idx, dtype=np.int64).reshape(-1))
        n = len(self._files)
        if idx.size and (idx[0] < 0 or idx[-1] >= n):
            bad = int(idx[0] if idx[0] < 0 else idx[-1])
            raise IndexError(f"frame_idx {bad} is out of range: the video has frames 0..{n - 1}")
        return idx

    def _load(self, i: int, max_side: int | None) -> np.ndarray | None:
        import cv2

        img = _read_rgb(self._files[i])
        self._decoded += 1
        if img is None:
            return None
        if (img.shape[1], img.shape[0]) != self._wh:
            if not self._warned_size:
                logger.warning(
                    "%s: %s is %dx%d, not %dx%d like the first frame; resizing such frames",
                    self._folder,
                    self._files[i].name,
                    img.shape[1],
                    img.shape[0],
                    *self._wh,
                )
                self._warned_size = True
            img = cv2.resize(img, self._wh, interpolation=cv2.INTER_AREA)
        nw, nh = fit_size(self._wh, max_side)
        if (nw, nh) != self._wh:
            img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
        return img

    def _scale(self, max_side: int | None) -> float:
        nw, nh = fit_size(self._wh, max_side)
        return max(self._wh) / max(nw, nh)

    def read(
        self, frame_idx: Sequence[int] | np.ndarray, max_side: int | None = None
    ) -> FrameBatch:
        """Read the given frames (sorted, duplicates once); unreadable images are left out
        with a warning.

        Args:
            frame_idx: frame indices, any order.
            max_side: downscale so the longer side is at most this many pixels.

        Returns:
            The frames that could be read, with their timestamps.
        """
        frames: list[np.ndarray] = []
        got: list[int] = []
        bad: list[str] = []
        for i in self._targets(frame_idx).tolist():
            img = self._load(i, max_side)
            if img is None:
                bad.append(self._files[i].name)
                continue
            frames.append(img)
            got.append(i)
        if bad:
            logger.warning(
                "%s: %d image(s) could not be read and are left out (%s)",
                self._folder,
                len(bad),
                ", ".join(bad[:3]) + (", ..." if len(bad) > 3 else ""),
            )
        nw, nh = fit_size(self._wh, max_side)
        out = np.stack(frames) if frames else np.empty((0, nh, nw, 3), dtype=np.uint8)
        ia = np.asarray(got, dtype=np.int64)
        return FrameBatch(frames=out, t_s=self._t_s[ia], frame_idx=ia, scale=self._scale(max_side))

    def iter_frames(
        self,
        max_side: int | None = None,
        fps: float | None = None,
        start_s: float = 0.0,
        end_s: float | None = None,
        frame_idx: Sequence[int] | np.ndarray | None = None,
    ) -> Iterator[Frame]:
        """One sequential pass (see ``FrameSource.iter_frames``): each wanted image is read
        once, at working resolution; either exactly ``frame_idx`` (yielded ascending, each
        once) or every frame / about ``fps`` per second between ``start_s`` and ``end_s``."""
        wanted = (
            self._targets(frame_idx)
            if frame_idx is not None
            else self._targets(frames_between(self, fps, start_s, end_s))
        )
        scale = self._scale(max_side)
        for i in wanted.tolist():
            img = self._load(i, max_side)
            if img is None:
                logger.warning("%s: %s could not be read; skipped", self._folder, self._files[i])
                continue
            yield Frame(i, float(self._t_s[i]), img, scale)

    def close(self) -> None:
        """Nothing is held open between reads; reading afterwards raises (idempotent)."""
        self._closed = True

    def __enter__(self) -> FrameFolderSource:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self._info
        return f"FrameFolderSource({self._folder.name!r}, {i.frame_count} frames, {i.fps:.2f} fps)"


def open_frame_folder(
    path: str | os.PathLike[str], fps: float | None = None, *, fps_source: str | None = None
) -> FrameFolderSource:
    """Open a folder of frames as a video.

    Args:
        path: the folder (its images, in natural order, are the frames).
        fps: frames per second; default ``DEFAULT_FOLDER_FPS`` (with a warning).
        fps_source: where ``fps`` came from, recorded in ``VideoInfo.fps_source`` (default:
            "given" when ``fps`` is passed).

    Returns:
        A ``FrameSource``.

    Raises:
        VideoNotFoundError: the folder does not exist.
        NotAVideoError: the folder holds no image files.
        NoDecodableFramesError: its first images cannot be read.
        ConfigError: ``fps`` is not a positive number.
    """
    folder = Path(path)
    if not folder.exists():
        raise VideoNotFoundError(f"video not found: {folder} does not exist; check the path.")
    if not folder.is_dir():
        raise NotAVideoError(f"{folder} is not a folder of frames")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ConfigError(f"fps must be a positive number of frames per second, got {fps}")
    files = frame_files(folder)
    if not files:
        raise NotAVideoError(
            f"{folder} is a folder without image frames ({', '.join(IMAGE_EXTENSIONS)}); pass a "
            "video file or a folder of frames (a whole dataset goes to `vadetective batch`)."
        )
    if fps is None:
        logger.warning(
            "%s: frames carry no timestamps and no frame rate was given; assuming %g fps "
            "(pass --fps / fps= to set it)",
            folder,
            DEFAULT_FOLDER_FPS,
        )
        fps, fps_source = DEFAULT_FOLDER_FPS, f"default ({DEFAULT_FOLDER_FPS:g} fps assumed)"
    return FrameFolderSource(folder, files, float(fps), fps_source or "given")


__all__ = [
    "DEFAULT_FOLDER_FPS",
    "IMAGE_EXTENSIONS",
    "FrameFolderSource",
    "frame_files",
    "is_frame_folder",
    "open_frame_folder",
]
