"""Video access: open a file once, then read any frames by index with exact timestamps.

``open_video`` checks the file, probes it with PyAV (the authority on what the file holds: frame
timestamps from the stream's time base, keyframes, codec, damage), then decodes with decord
(fast, primary) or PyAV (fallback, and for what decord rejects or gets wrong). The sampling
helpers at the bottom turn times, rates and spans into frame indices.

Frame ``i`` is the ``i``-th frame in presentation order; ``t_s`` is seconds from the first frame.
A damaged file is read up to its last decodable frame (``VideoInfo.truncated_at_s``); a frame
inside a damaged stretch in the middle is found only when read, and is left out of that batch
with a warning. Sources are not thread-safe: open one per thread or process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from vadetective.agent.core.errors import (
    ConfigError,
    EmptyVideoError,
    NoDecodableFramesError,
    NotAFileError,
    NotAVideoError,
    UnsupportedCodecError,
    VideoError,
    VideoNotFoundError,
)
from vadetective.agent.core.io import content_hash
from vadetective.agent.core.types import TimeSpan, VideoInfo
from vadetective.tools.base import FrameBatch, FrameSource

if TYPE_CHECKING:
    import av

logger = logging.getLogger(__name__)

Backend = Literal["auto", "decord", "pyav"]
Timeline = FrameSource | Sequence[float] | np.ndarray
_CHUNK = 32  # frames per decord call: bounds decord's own buffers on long reads
_TS_TOLERANCE_S = 2e-3  # decord reports float32 seconds; a real mismatch is a frame or more
_TAIL_GOPS = 4  # GOPs checked from the end of a damaged file before scanning it all
_PIXEL_TOLERANCE = 2.0  # mean |decord - PyAV| in levels; the same frame agrees to ~0


@dataclass(frozen=True)
class _Probe:
    """What PyAV learnt about a file: the frame list and where decoding really ends."""

    info: VideoInfo
    pts: np.ndarray  # int64 stream pts per frame, ascending
    keyframes: np.ndarray  # ascending frame indices that start a GOP
    time_base: Fraction


# ----------------------------------------------------------------------------- probing


def _check_path(path: Path) -> None:
    if not path.exists():
        raise VideoNotFoundError(f"video not found: {path} does not exist; check the path.")
    if path.is_dir():
        raise NotAFileError(
            f"{path} is a folder, not a video file; pass one video (for a folder use "
            "run_dataset or `vadetective batch`)."
        )
    if not path.is_file():
        raise NotAFileError(f"{path} is not a regular file; pass a video file.")
    if path.stat().st_size == 0:
        raise EmptyVideoError(f"{path} is empty (0 bytes); copy or export the video again.")
    if not os.access(path, os.R_OK):
        raise VideoError(f"{path} cannot be read (permission denied); check its permissions.")


def _mp4_lacks_index(path: Path) -> bool:
    """True for an MP4/MOV whose top-level boxes have no ``moov`` (a recording cut short)."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 8 or head[4:8] != b"ftyp":
            return False
        offset = 0
        while offset + 8 <= size:
            fh.seek(offset)
            box = fh.read(16)
            box_size, kind = int.from_bytes(box[:4], "big"), box[4:8]
            if kind == b"moov":
                return False
            if box_size == 1 and len(box) == 16:
                box_size = int.from_bytes(box[8:16], "big")
            if box_size < 8:
                break
            offset += box_size
    return True


def _open_container(path: Path) -> av.container.InputContainer:
    import av

    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        if _mp4_lacks_index(path):
            raise NoDecodableFramesError(
                f"{path} is an MP4/MOV cut short before its index (moov box) was written, so no "
                "frame can be located; export it again or repair it (e.g. with untrunc)."
            ) from exc
        reason = getattr(exc, "strerror", None) or str(exc)
        raise NotAVideoError(
            f"{path} is not a video FFmpeg can read ({reason}); pass a video file such as "
            ".mp4, .mkv or .avi."
        ) from exc


def _video_stream(path: Path, container: av.container.InputContainer) -> av.VideoStream:
    import av

    fmt = container.format.name
    if fmt == "image2" or fmt.endswith("_pipe"):
        raise NotAVideoError(f"{path} is a still image ({fmt}), not a video; pass a video file.")
    # cover art (an attached picture) is a "video stream" of one still image: not a video
    attached = getattr(getattr(av.stream, "Disposition", None), "attached_pic", 0)
    streams = [s for s in container.streams.video if not (getattr(s, "disposition", 0) & attached)]
    if not streams:
        kinds: list[str] = sorted({str(s.type) for s in container.streams}) or ["nothing"]
        raise NotAVideoError(
            f"{path} has no video stream (it holds {', '.join(kinds)}); pass a file with video."
        )
    stream = streams[0]
    if stream.codec_context is None:
        raise UnsupportedCodecError(
            f"{path} has a video stream in a codec this FFmpeg build cannot decode; convert it "
            "to H.264 first (ffmpeg -i IN -c:v libx264 OUT.mp4)."
        )
    return stream


def _demux_index(
    container: av.container.InputContainer, stream: av.VideoStream
) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Read every packet (no decoding): pts (ascending, unique) and keyframe flags of the
    frames, how many frames the file should hold, and whether it looked damaged on the way
    (a demux error, a corrupt packet, fewer packets than the container header promises)."""
    import av

    pts: list[int] = []
    keys: list[bool] = []
    demuxed = 0  # packets, counting empty ones (AVI's dropped frames) but not the final flush
    damaged = False
    try:
        for pkt in container.demux(stream):
            if pkt.size == 0 and pkt.pts is None and pkt.dts is None:
                continue
            demuxed += 1
            damaged |= pkt.is_corrupt
            ts = pkt.pts if pkt.pts is not None else pkt.dts
            if pkt.size == 0 or pkt.is_discard or ts is None:
                continue
            pts.append(ts)
            keys.append(pkt.is_keyframe)
    except av.error.FFmpegError as exc:
        logger.debug("demux stopped after %d packets: %s", demuxed, exc)
        damaged = True
    if demuxed and not pts:
        raise UnsupportedCodecError(
            f"{container.name} is a raw {stream.codec_context.name} stream without timestamps; "
            "put it in a container first (ffmpeg -r 25 -i IN -c copy OUT.mp4)."
        )
    unseen = max(0, int(stream.frames or 0) - demuxed)  # promised by the header, never read
    arr = np.asarray(pts, dtype=np.int64)
    order = np.argsort(arr, kind="stable")
    arr, key_arr = arr[order], np.asarray(keys, dtype=bool)[order]
    arr, first = np.unique(arr, return_index=True)
    return arr, key_arr[first], int(arr.size) + unseen, damaged or unseen > 0


def _decoded_frames(
    container: av.container.InputContainer, stream: av.VideoStream, errors: list[int]
) -> Iterator[av.VideoFrame]:
    """Every frame the decoder yields from the current position; a packet that fails to
    decode is counted in ``errors`` (as its pts) and skipped, never raised."""
    import av

    try:
        for pkt in container.demux(stream):
            try:
                yield from stream.decode(pkt)
            except av.error.FFmpegError:
                errors.append(pkt.pts if pkt.pts is not None else -1)
    except av.error.FFmpegError as exc:  # a truncated container ends with a demux error
        logger.debug("demux error while decoding: %s", exc)
        try:
            yield from stream.decode(None)
        except av.error.FFmpegError:
            errors.append(-1)


def _frame_pts(frame: av.VideoFrame) -> int:
    """The frame's pts (its dts when a container gives none; -1 when it has neither)."""
    ts = frame.pts if frame.pts is not None else frame.dts
    return -1 if ts is None else ts


def _gop_of(keyframes: np.ndarray, i: int) -> int:
    """The keyframe that starts the GOP of frame ``i``."""
    return int(keyframes[np.searchsorted(keyframes, i, side="right") - 1])


def _last_decodable(path: Path, pts: np.ndarray, keyframes: np.ndarray) -> int:
    """Index of the last frame that decodes: decode the last GOPs to the end, latest first,
    and scan the whole file only when none of them decodes (or the file cannot seek)."""
    import av

    index = {int(p): i for i, p in enumerate(pts)}

    def last_from(container: av.container.InputContainer, stream: av.VideoStream) -> int:
        """The last frame a reader would return (same rules as ``PyAVSource._next``)."""
        errors: list[int] = []
        damaged: set[int] = set()
        last = -1
        for frame in _decoded_frames(container, stream, errors):
            i = index.get(_frame_pts(frame), -1)
            while errors:
                damaged.add(_gop_of(keyframes, index.get(errors.pop(), max(i, 0))))
            if i >= 0 and not frame.is_corrupt and _gop_of(keyframes, i) not in damaged:
                last = max(last, i)
        return last

    with _open_container(path) as container:
        stream = _video_stream(path, container)
        for k in keyframes[::-1][:_TAIL_GOPS].tolist():
            if k == 0:
                break
            try:
                container.seek(int(pts[k]), stream=stream, backward=True)
            except av.error.FFmpegError:
                break
            if (last := last_from(container, stream)) >= 0:
                return last
    with _open_container(path) as container:
        return last_from(container, _video_stream(path, container))


def _probe(path: Path) -> _Probe:
    with _open_container(path) as container:
        stream = _video_stream(path, container)
        codec = stream.codec_context.name
        time_base = stream.time_base or Fraction(1, 1)
        pts, keys, listed, damaged = _demux_index(container, stream)
        rate = stream.average_rate or stream.guessed_rate
    if pts.size == 0:
        raise NoDecodableFramesError(
            f"{path} has a {codec} video stream with no frames in it; the file is empty or "
            "corrupt, export it again."
        )
    keyframes = np.flatnonzero(keys)
    if keyframes.size == 0 or keyframes[0] != 0:
        keyframes = np.concatenate([[0], keyframes])
    with _open_container(path) as container:
        stream = _video_stream(path, container)
        stream.codec_context.thread_type = "AUTO"
        first = next(_decoded_frames(container, stream, []), None)
        if first is None:
            raise NoDecodableFramesError(
                f"{path} has a {codec} video stream but none of its {pts.size} frames can be "
                "decoded; the file is corrupt, export or download it again."
            )
        resolution = (first.width, first.height)
    last = _last_decodable(path, pts, keyframes) if damaged else pts.size - 1
    if last < 0:
        raise NoDecodableFramesError(
            f"{path} has a {codec} video stream whose frames cannot be matched to its "
            "timestamps; the file is corrupt, remux or export it again."
        )
    pts = pts[: last + 1]
    keyframes = keyframes[keyframes <= last]
    t_s = _seconds(pts, time_base)
    fps = _average_fps(t_s, rate)
    duration = float(t_s[-1]) + 1.0 / fps
    truncated = duration if pts.size < listed else None
    if truncated is not None:
        logger.warning(
            "%s is damaged or cut short: decoding stops at %.2f s (frame %d of the %d the "
            "container lists); analysing up to there.",
            path,
            truncated,
            pts.size,
            listed,
        )
    info = VideoInfo(
        path=str(path.absolute()),
        fps=fps,
        frame_count=int(pts.size),
        duration_s=duration,
        resolution_wh=resolution,
        content_hash=content_hash(path),
        codec=codec,
        truncated_at_s=truncated,
    )
    return _Probe(info=info, pts=pts, keyframes=keyframes, time_base=time_base)


def _seconds(pts: np.ndarray, time_base: Fraction) -> np.ndarray:
    rel = (pts - pts[0]).astype(np.float64)
    return rel * time_base.numerator / time_base.denominator


def _average_fps(t_s: np.ndarray, rate: Fraction | None) -> float:
    """The container's average rate when it agrees with the timestamps, else the timestamps'."""
    measured = (t_s.size - 1) / float(t_s[-1]) if t_s.size > 1 and t_s[-1] > 0 else None
    declared = float(rate) if rate else None
    if declared and declared > 0 and (measured is None or 0.5 < declared / measured < 2.0):
        return declared
    return measured or 25.0


# ----------------------------------------------------------------------------- sources


def _fit(resolution_wh: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    w, h = resolution_wh
    if max_side is None or max(w, h) <= max_side:
        return w, h
    if max_side < 1:
        raise ValueError(f"max_side must be a positive number of pixels, got {max_side}")
    s = max_side / max(w, h)
    return max(1, round(w * s)), max(1, round(h * s))


class VideoSource:
    """One open video (a ``FrameSource``): what both backends share — the probe, index
    checks, resizing, the decode plan."""

    backend: str = ""

    def __init__(self, probe: _Probe) -> None:
        self._probe = probe
        self._info = probe.info.model_copy(update={"backend": self.backend})
        self._t_s = _seconds(probe.pts, probe.time_base)
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
        return _gop_of(self._probe.keyframes, i)

    def _resize(self, img: np.ndarray, max_side: int | None) -> np.ndarray:
        """Downscale one RGB frame (INTER_AREA) so its longer side is at most ``max_side``."""
        import cv2

        nw, nh = _fit(self._info.resolution_wh, max_side)
        if img.shape[1] == nw and img.shape[0] == nh:
            return img
        return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)

    def _batch(self, frames: list[np.ndarray], idx: list[int], max_side: int | None) -> FrameBatch:
        """Stack frames already passed through ``_resize`` into a batch."""
        w, h = self._info.resolution_wh
        nw, nh = _fit((w, h), max_side)
        out = np.stack(frames) if frames else np.empty((0, nh, nw, 3), dtype=np.uint8)
        ia = np.asarray(idx, dtype=np.int64)
        return FrameBatch(
            frames=out, t_s=self._t_s[ia], frame_idx=ia, scale=max(w, h) / max(nw, nh)
        )


class PyAVSource(VideoSource):
    """Frames decoded by PyAV: seeks to the keyframe before a target only when decoding on
    from where it stands would cost more; tolerates packets that fail to decode."""

    backend = "pyav"

    def __init__(self, probe: _Probe, threads: int = 0) -> None:
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
        self._container = _open_container(path)
        self._stream = _video_stream(path, self._container)
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
            i = self._index.get(_frame_pts(frame))
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
            self._frames = _decoded_frames(self._container, self._stream, self._errors)
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

    def __init__(self, probe: _Probe, threads: int = 0, strict: bool = False) -> None:
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
    path: str | os.PathLike[str], backend: Backend = "auto", *, threads: int = 0
) -> VideoSource:
    """Open a video file for random frame access.

    Args:
        path: the video file.
        backend: "decord", "pyav", or "auto" (decord, falling back to PyAV when decord
            rejects the file or disagrees with the stream's timestamps).
        threads: decoder threads (0: let FFmpeg decide).

    Returns:
        A ``FrameSource`` (``DecordSource`` or ``PyAVSource``); also a context manager.

    Raises:
        VideoError: a subclass saying what is wrong with the file (missing, a folder, empty,
            not a video, an unsupported codec, no decodable frames); plain ``VideoError``
            when an explicitly requested decord cannot read it correctly.
        ConfigError: an unknown backend name.
    """
    if backend not in ("auto", "decord", "pyav"):
        raise ConfigError(f"unknown video backend {backend!r}: choose auto, decord or pyav")
    p = Path(path)
    _check_path(p)
    probe = _probe(p)
    if backend == "pyav":
        return PyAVSource(probe, threads=threads)
    try:
        return DecordSource(probe, threads=threads, strict=backend == "decord")
    except VideoError as exc:
        if backend == "decord":
            raise VideoError(f"{exc}; open it with backend='auto' or 'pyav' instead.") from exc
        logger.info("%s; using PyAV instead.", exc)
        return PyAVSource(probe, threads=threads)


# ----------------------------------------------------------------------------- sampling


def _times(timeline: Timeline) -> np.ndarray:
    if isinstance(timeline, FrameSource):
        return timeline.timestamps
    return np.asarray(timeline, dtype=np.float64)


def _end_s(timeline: Timeline, t: np.ndarray) -> float:
    if isinstance(timeline, FrameSource):
        return timeline.info.duration_s
    step = float(np.median(np.diff(t))) if t.size > 1 else 0.0
    return float(t[-1]) + step if t.size else 0.0


def nearest_indices(timeline: Timeline, t_s: Sequence[float] | np.ndarray) -> np.ndarray:
    """The index of the frame nearest to each time (ties go to the earlier frame).

    Args:
        timeline: a FrameSource, or the ascending timestamps (seconds) of its frames.
        t_s: times in seconds, any order; times outside the video map to its ends.

    Returns:
        One int64 index per time, in the order given.
    """
    t = _times(timeline)
    if t.size == 0:
        raise ValueError("the video has no frames to choose from")
    q = np.asarray(t_s, dtype=np.float64).reshape(-1)
    right = np.clip(np.searchsorted(t, q, side="left"), 1, max(1, t.size - 1))
    left = right - 1
    if t.size == 1:
        return np.zeros(q.size, dtype=np.int64)
    pick = np.where(np.abs(t[right] - q) < np.abs(q - t[left]), right, left)
    return pick.astype(np.int64)


def uniform_indices(timeline: Timeline, n: int) -> np.ndarray:
    """``n`` frames spread evenly over the video: the middle frame of ``n`` equal segments.

    Args:
        timeline: a FrameSource, or the timestamps of its frames.
        n: how many frames; all frames when the video has fewer.

    Returns:
        Ascending unique int64 frame indices.
    """
    total = _times(timeline).size
    if n <= 0 or total == 0:
        return np.zeros(0, dtype=np.int64)
    if n >= total:
        return np.arange(total, dtype=np.int64)
    return np.floor((np.arange(n) + 0.5) * total / n).astype(np.int64)


def _in_span(timeline: Timeline, span: TimeSpan | None, samples: np.ndarray) -> np.ndarray:
    """Unique frames nearest to ``samples`` among the frames inside ``span``."""
    t = _times(timeline)
    lo, hi = (
        (0, t.size)
        if span is None
        else (
            int(np.searchsorted(t, span.start_s, side="left")),
            int(np.searchsorted(t, span.end_s, side="right")),
        )
    )
    if hi <= lo:  # a span between two frames: the frame nearest to its middle
        mid = 0.0 if span is None else (span.start_s + span.end_s) / 2
        return np.unique(nearest_indices(t, [mid]))
    return np.unique(nearest_indices(t[lo:hi], samples) + lo)


def indices_at_fps(timeline: Timeline, fps: float, span: TimeSpan | None = None) -> np.ndarray:
    """Frames sampled every ``1 / fps`` seconds, over the whole video or within ``span``.

    Args:
        timeline: a FrameSource, or the timestamps of its frames.
        fps: samples per second; above the video's own rate a frame nearest to several
            samples is returned once.
        span: only sample inside this span (seconds).

    Returns:
        Ascending unique int64 frame indices.
    """
    if not fps > 0:
        raise ValueError(f"fps must be a positive number, got {fps}")
    t = _times(timeline)
    if t.size == 0:
        return np.zeros(0, dtype=np.int64)
    start = 0.0 if span is None else span.start_s
    end = _end_s(timeline, t) if span is None else span.end_s
    samples = start + np.arange(max(1, int(np.ceil((end - start) * fps - 1e-9)))) / fps
    return _in_span(timeline, span, samples)


def indices_in_span(timeline: Timeline, span: TimeSpan, count: int) -> np.ndarray:
    """``count`` frames spread evenly inside ``span`` (the middles of ``count`` equal parts).

    Args:
        timeline: a FrameSource, or the timestamps of its frames.
        span: the span, in seconds.
        count: how many frames; fewer when the span holds fewer frames.

    Returns:
        Ascending unique int64 frame indices (at least one: the nearest frame to the span's
        middle when no frame lies inside it).
    """
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    samples = span.start_s + (np.arange(count) + 0.5) * span.duration_s / count
    return _in_span(timeline, span, samples)


def read_at(
    source: FrameSource, t_s: Sequence[float] | np.ndarray, max_side: int | None = None
) -> FrameBatch:
    """The frames nearest to the given times, decoded in one sorted batch.

    Args:
        source: an open video.
        t_s: times in seconds, any order.
        max_side: downscale so the longer side is at most this many pixels.

    Returns:
        The frames sorted by time, each once (two times nearest to the same frame share it).
    """
    return source.read(nearest_indices(source, t_s).tolist(), max_side=max_side)


def iter_batches(
    source: FrameSource,
    frame_idx: Sequence[int] | np.ndarray | None = None,
    batch_size: int = 64,
    max_side: int | None = None,
) -> Iterator[FrameBatch]:
    """Read many frames in sorted batches of ``batch_size``, bounding memory.

    Args:
        source: an open video.
        frame_idx: which frames (default: every frame).
        batch_size: frames per batch.
        max_side: downscale so the longer side is at most this many pixels.

    Yields:
        FrameBatch after FrameBatch, in time order.
    """
    if frame_idx is None:
        frame_idx = np.arange(source.info.frame_count)
    idx = np.unique(np.asarray(frame_idx, dtype=np.int64))
    for start in range(0, idx.size, max(1, batch_size)):
        yield source.read(idx[start : start + batch_size].tolist(), max_side=max_side)


__all__ = [
    "Backend",
    "DecordSource",
    "PyAVSource",
    "VideoSource",
    "indices_at_fps",
    "indices_in_span",
    "iter_batches",
    "nearest_indices",
    "open_video",
    "read_at",
    "uniform_indices",
]
