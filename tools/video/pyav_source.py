"""Frames decoded by PyAV: one decoder that decodes on, or seeks when that is cheaper.

Scaling and the YUV -> RGB conversion happen in one FFmpeg ``swscale`` call per kept frame
(area averaging when shrinking), straight from the decoder's YUV picture: no full-resolution RGB
frame is ever made for a downscaled read. Frames the caller did not ask for are never
converted, and are not even decoded when no other frame refers to them (FFmpeg's
``skip_frame=NONREF``, per packet; exact: a frame that is decoded has the same pixels). A read
that shrinks the picture by ``FAST_SCALE`` or more decodes the fast way: without the deblocking
filter and, for codecs that can, at a reduced resolution (``lowres``); which way is a function
of the requested size only, so a frame at a given size always has the same pixels. The last
decoded pictures (YUV, ``RING_MB`` of them) are kept,
so a read just behind the decoder, or of a frame just read at another size, costs no decoding
and no seek. Damaged packets are tolerated: frames built on a packet that
failed to decode are dropped rather than returned with concealed pixels.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vadetective.tools.video.frame_cache import DEFAULT_CACHE_MB
from vadetective.tools.video.probe import (
    Probe,
    decoded_frames,
    frame_pts,
    open_container,
    video_stream,
)
from vadetective.tools.video.source_base import VideoSource, coded_size, to_display

if TYPE_CHECKING:
    import av

logger = logging.getLogger(__name__)

#: Megabytes of the most recently decoded pictures kept (YUV 4:2:0: ~185 frames at 640x360,
#: ~20 at 1080p, 5 at 4K).
RING_MB = 64.0
#: A read that shrinks each side by at least this factor decodes without the deblocking filter
#: (invisible once shrunk: measured 28% less decoder CPU at 4K) and at reduced resolution
#: where the codec allows.
FAST_SCALE = 3.0
#: Decoders that can decode at 1/2, 1/4, 1/8 of the size (FFmpeg ``max_lowres`` 3).
_LOWRES_CODECS = frozenset(
    {"mjpeg", "mpeg1video", "mpeg2video", "mpeg4", "h263", "msmpeg4v1", "msmpeg4v2",
     "msmpeg4v3", "wmv1", "wmv2", "flv1", "dvvideo"}
)  # fmt: skip
#: Containers whose packet pts is the pts of the frame it holds (so a packet can be skipped by
#: the frame it carries); AVI and raw streams are decoded in full.
_SKIP_FORMATS = frozenset({"mov", "mp4", "matroska", "webm", "mpegts"})

#: How a decoder is opened: (deblocking skipped, lowres level).
Mode = tuple[bool, int]
_EXACT: Mode = (False, 0)


def decode_mode(codec: str, coded_wh: tuple[int, int], size_wh: tuple[int, int]) -> Mode:
    """How to decode pictures of ``coded_wh`` that will be shown at ``size_wh`` (coded
    orientation): exact, or fast when each side shrinks by ``FAST_SCALE`` or more; the lowres
    level keeps the decoded picture at least 1.5x the requested size."""
    shrink = min(coded_wh[0] / max(1, size_wh[0]), coded_wh[1] / max(1, size_wh[1]))
    if shrink < FAST_SCALE:
        return _EXACT
    lowres = 0
    if codec in _LOWRES_CODECS:
        while lowres < 3 and shrink / 2 ** (lowres + 1) >= 1.5:
            lowres += 1
    return (True, lowres)


def convert(frame: av.VideoFrame, size_wh: tuple[int, int], rotation_deg: int = 0) -> np.ndarray:
    """One decoded picture as RGB uint8 at the displayed size ``size_wh``: scaled and converted
    by swscale in one step (area averaging), then rotated for display.

    Every source and every read goes through this one function, so a frame has the same pixels
    whichever path decoded it.
    """
    cw, ch = coded_size(size_wh, rotation_deg)
    if (cw, ch) == (frame.width, frame.height):
        img = frame.to_ndarray(format="rgb24")
    else:
        img = frame.to_ndarray(width=cw, height=ch, format="rgb24", interpolation="AREA", threads=1)
    return to_display(img, rotation_deg)


class PyAVSource(VideoSource):
    """Frames decoded by PyAV (see the module docstring).

    Args:
        probe: What ``probe_file`` found.
        threads: decoder threads (0: let FFmpeg decide).
        cache_mb: Budget of the frame cache in megabytes.
    """

    backend = "pyav"

    def __init__(self, probe: Probe, threads: int = 0, cache_mb: float = DEFAULT_CACHE_MB) -> None:
        super().__init__(probe, cache_mb=cache_mb)
        self._threads = threads
        self._open()
        self._index = {int(p): i for i, p in enumerate(probe.pts)}
        self._frames_it: Iterator[av.VideoFrame] | None = None
        self._pending: tuple[int, av.VideoFrame] | None = None
        self._pos = -1  # index of the last frame taken from the decoder
        self._good = -1  # index of the last undamaged frame taken
        self._prev = -1  # the undamaged frame taken before that one
        self._hole = (0, 0)  # frames strictly inside failed to decode on the way to _pending
        self._errors: list[int] = []  # pts of packets that failed since the last seek
        self._damaged: set[int] = set()  # GOPs (keyframe indices) hit by those failures
        self._ring: OrderedDict[int, tuple[Mode, av.VideoFrame]] = OrderedDict()  # recent pictures
        self._wanted: set[int] = set()  # frames the current read or pass will convert
        self._skipped: set[int] = set()  # frames fed to the decoder as skippable since the seek
        w, h = probe.info.resolution_wh
        self._ring_size = max(1, int(RING_MB * 1e6 // (1.5 * w * h)))

    def _open(self, mode: Mode = _EXACT) -> None:
        path = Path(self._info.path)
        self._container = open_container(path)
        self._stream = video_stream(path, self._container)
        ctx = self._stream.codec_context
        ctx.thread_type = "AUTO"
        ctx.thread_count = self._threads
        options = {"skip_loop_filter": "all"} if mode[0] else {}
        if mode[1]:
            options["lowres"] = str(mode[1])
        if options:
            ctx.options = options
        self._mode = mode
        self._can_skip = self._container.format.name.split(",")[0] in _SKIP_FORMATS

    def _expect(self, frame_idx: np.ndarray) -> None:
        self._wanted = set(frame_idx.tolist())

    def _skippable(self, pkt: av.Packet) -> bool:
        """The packet's frame is not wanted (the decoder may drop it if nothing refers to it)."""
        if not self._can_skip or pkt.pts is None or pkt.is_keyframe:
            return False
        i = self._index.get(int(pkt.pts))
        if i is None or i in self._wanted:
            return False
        self._skipped.add(i)
        return True

    def _release(self) -> None:
        self._frames_it = self._pending = None
        self._ring.clear()
        self._container.close()

    def _next(self) -> tuple[int, av.VideoFrame] | None:
        """The next decoded frame that belongs to the frame list, with its index."""
        if self._pending is not None:
            item, self._pending = self._pending, None
            return item
        assert self._frames_it is not None
        for frame in self._frames_it:
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
            self._ring[i] = (self._mode, frame)
            while len(self._ring) > self._ring_size:
                self._ring.popitem(last=False)
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
                self._open(self._mode)
                kf = 0
            self._frames_it = decoded_frames(
                self._container, self._stream, self._errors, self._skippable
            )
            self._pending, self._pos, self._good, self._prev = None, -1, -1, -1
            self._errors.clear()
            self._skipped.clear()
            self._damaged.clear()
            head = self._next()
            # the demuxer may land past the keyframe we asked for: step back one GOP
            if kf > 0 and (head is None or head[0] > target):
                kf = self._keyframe_of(kf - 1)
                continue
            self._pending = head
            return

    def _walk(
        self, frame_idx: np.ndarray, size_wh: tuple[int, int]
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Decode the frames in order, converting only the wanted ones (see ``VideoSource``)."""
        rotation = self._info.rotation_deg
        coded = coded_size(self._info.resolution_wh, rotation)
        mode = decode_mode(self._info.codec or "", coded, coded_size(size_wh, rotation))
        if mode != self._mode:  # decoder options are fixed when it opens: reopen, then seek
            self._container.close()
            self._open(mode)
            self._frames_it = self._pending = None
        self._wanted.update(frame_idx.tolist())
        for target in frame_idx.tolist():
            recent = self._ring.get(target)
            if recent is not None and recent[0] == mode:  # decoded a moment ago: no decoding
                yield target, convert(recent[1], size_wh, rotation)
                continue
            skipped = target in self._skipped  # fed as unwanted by an earlier read
            if self._pending and self._hole[0] < target < self._hole[1] and not skipped:
                continue  # decoding went straight past it: damaged, seeking will not help
            behind = target < self._pending[0] if self._pending else target <= self._pos
            if self._frames_it is None or behind or self._keyframe_of(target) > self._pos + 1:
                self._seek(target)
            while (item := self._next()) is not None and item[0] < target:
                pass
            if item is not None and item[0] > target and target in self._skipped:
                self._seek(target)  # the decoder dropped it as unwanted: decode it again
                while (item := self._next()) is not None and item[0] < target:
                    pass
            if item is not None and item[0] > target:
                self._pending, self._hole = item, (self._prev, item[0])
                continue
            if item is not None:
                yield target, convert(item[1], size_wh, rotation)
