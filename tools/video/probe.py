"""Probing a video file with PyAV: checks, the frame list, keyframes and where decoding ends.

PyAV is the authority on what a file holds: frame timestamps from the stream's time base,
keyframes, codec and damage. ``probe_file`` reads every packet once; the frame sources in
``sources.py`` decode on top of what it found.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vadetective.agent.core.errors import (
    EmptyVideoError,
    NoDecodableFramesError,
    NotAFileError,
    NotAVideoError,
    UnsupportedCodecError,
    VideoError,
    VideoNotFoundError,
)
from vadetective.agent.core.io import content_hash
from vadetective.agent.core.types import VideoInfo

if TYPE_CHECKING:
    import av

logger = logging.getLogger(__name__)

TAIL_GOPS = 4  # GOPs checked from the end of a damaged file before scanning it all


@dataclass(frozen=True)
class Probe:
    """What PyAV learnt about a file: the frame list and where decoding really ends."""

    info: VideoInfo
    pts: np.ndarray  # int64 stream pts per frame, ascending
    keyframes: np.ndarray  # ascending frame indices that start a GOP
    time_base: Fraction


def check_path(path: Path) -> None:
    if not path.exists():
        raise VideoNotFoundError(f"video not found: {path} does not exist; check the path.")
    if path.is_dir():
        raise NotAFileError(
            f"{path} is a folder, not a video file; open it with open_video (which reads a "
            "folder of frames as a video) or pass one video file."
        )
    if not path.is_file():
        raise NotAFileError(f"{path} is not a regular file; pass a video file.")
    if path.stat().st_size == 0:
        raise EmptyVideoError(f"{path} is empty (0 bytes); copy or export the video again.")
    if not os.access(path, os.R_OK):
        raise VideoError(f"{path} cannot be read (permission denied); check its permissions.")


def mp4_index(path: Path) -> str | None:
    """Where an MP4/MOV's index (``moov`` box) stands among its top-level boxes: ``"ok"``,
    ``"missing"`` (a recording cut short before it was written) or ``"cut"`` (it runs past the
    end of the file); None for a file that is not MP4/MOV."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 8 or head[4:8] != b"ftyp":
            return None
        offset = 0
        while offset + 8 <= size:
            fh.seek(offset)
            box = fh.read(16)
            box_size, kind = int.from_bytes(box[:4], "big"), box[4:8]
            if box_size == 1 and len(box) == 16:
                box_size = int.from_bytes(box[8:16], "big")
            if kind == b"moov":
                return "cut" if offset + box_size > size else "ok"
            if box_size < 8:
                break
            offset += box_size
    return "missing"


def file_url(path: Path) -> str:
    """The path as FFmpeg's ``file:`` URL: a local name such as ``http:127.0.0.1:9999`` or
    ``tcp:x`` is opened as a file, never as a network protocol."""
    return "file:" + str(Path(path).absolute())


def _refuse_cut_index(path: Path, cause: BaseException | None = None) -> None:
    """Raise ``NoDecodableFramesError`` when ``path`` is an MP4/MOV whose index is missing or
    cut (FFmpeg then fails, or finds no stream); return otherwise."""
    index = mp4_index(path)
    if index in ("missing", "cut"):
        where = (
            "before its index (moov box) was written"
            if index == "missing"
            else "inside its index (moov box)"
        )
        raise NoDecodableFramesError(
            f"{path} is an MP4/MOV cut short {where}, so no frame can be located; export it "
            "again or repair it (e.g. with untrunc)."
        ) from cause


def open_container(path: Path) -> av.container.InputContainer:
    import av

    try:
        return av.open(file_url(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        _refuse_cut_index(path, exc)
        reason = getattr(exc, "strerror", None) or str(exc)
        raise NotAVideoError(
            f"{path} is not a video FFmpeg can read ({reason}); pass a video file such as "
            ".mp4, .mkv or .avi."
        ) from exc


def video_stream(path: Path, container: av.container.InputContainer) -> av.VideoStream:
    import av

    fmt = container.format.name
    if fmt == "image2" or fmt.endswith("_pipe"):
        raise NotAVideoError(f"{path} is a still image ({fmt}), not a video; pass a video file.")
    # cover art (an attached picture) is a "video stream" of one still image: not a video
    attached = getattr(getattr(av.stream, "Disposition", None), "attached_pic", 0)
    streams = [s for s in container.streams.video if not (getattr(s, "disposition", 0) & attached)]
    if not streams:
        _refuse_cut_index(path)
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


def demux_index(
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


def decoded_frames(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    errors: list[int],
    skip: Callable[[av.Packet], bool] | None = None,
) -> Iterator[av.VideoFrame]:
    """Every frame the decoder yields from the current position; a packet that fails to
    decode is counted in ``errors`` (as its pts) and skipped, never raised.

    ``skip(packet)`` True lets the decoder drop that packet's frame when no other frame refers
    to it (FFmpeg's ``skip_frame=NONREF``): exact, a frame it keeps decodes to the same pixels.
    """
    import av

    ctx = stream.codec_context
    skipping = False
    try:
        for pkt in container.demux(stream):
            if skip is not None and skip(pkt) != skipping:
                skipping = not skipping
                ctx.skip_frame = "NONREF" if skipping else "DEFAULT"
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


def frame_pts(frame: av.VideoFrame) -> int:
    """The frame's pts (its dts when a container gives none; -1 when it has neither)."""
    ts = frame.pts if frame.pts is not None else frame.dts
    return -1 if ts is None else ts


def gop_of(keyframes: np.ndarray, i: int) -> int:
    """The keyframe that starts the GOP of frame ``i``."""
    return int(keyframes[np.searchsorted(keyframes, i, side="right") - 1])


def last_decodable(path: Path, pts: np.ndarray, keyframes: np.ndarray) -> int:
    """Index of the last frame that decodes: decode the last GOPs to the end, latest first,
    and scan the whole file only when none of them decodes (or the file cannot seek)."""
    import av

    index = {int(p): i for i, p in enumerate(pts)}

    def last_from(container: av.container.InputContainer, stream: av.VideoStream) -> int:
        """The last frame a reader would return (same rules as ``PyAVSource._next``)."""
        errors: list[int] = []
        damaged: set[int] = set()
        last = -1
        for frame in decoded_frames(container, stream, errors):
            i = index.get(frame_pts(frame), -1)
            while errors:
                damaged.add(gop_of(keyframes, index.get(errors.pop(), max(i, 0))))
            if i >= 0 and not frame.is_corrupt and gop_of(keyframes, i) not in damaged:
                last = max(last, i)
        return last

    with open_container(path) as container:
        stream = video_stream(path, container)
        for k in keyframes[::-1][:TAIL_GOPS].tolist():
            if k == 0:
                break
            try:
                container.seek(int(pts[k]), stream=stream, backward=True)
            except av.error.FFmpegError:
                break
            if (last := last_from(container, stream)) >= 0:
                return last
    with open_container(path) as container:
        return last_from(container, video_stream(path, container))


def probe_file(path: Path) -> Probe:
    with open_container(path) as container:
        stream = video_stream(path, container)
        codec = stream.codec_context.name
        time_base = stream.time_base or Fraction(1, 1)
        pts, keys, listed, damaged = demux_index(container, stream)
        rate = stream.average_rate or stream.guessed_rate
    if pts.size == 0:
        raise NoDecodableFramesError(
            f"{path} has a {codec} video stream with no frames in it; the file is empty or "
            "corrupt, export it again."
        )
    keyframes = np.flatnonzero(keys)
    if keyframes.size == 0 or keyframes[0] != 0:
        keyframes = np.concatenate([[0], keyframes])
    with open_container(path) as container:
        stream = video_stream(path, container)
        stream.codec_context.thread_type = "AUTO"
        first = next(decoded_frames(container, stream, []), None)
        if first is None:
            raise NoDecodableFramesError(
                f"{path} has a {codec} video stream but none of its {pts.size} frames can be "
                "decoded; the file is corrupt, export or download it again."
            )
        rotation = display_rotation(first)
        resolution = (first.height, first.width) if rotation % 180 else (first.width, first.height)
    last = last_decodable(path, pts, keyframes) if damaged else pts.size - 1
    if last < 0:
        raise NoDecodableFramesError(
            f"{path} has a {codec} video stream whose frames cannot be matched to its "
            "timestamps; the file is corrupt, remux or export it again."
        )
    pts = pts[: last + 1]
    keyframes = keyframes[keyframes <= last]
    t_s = seconds_of(pts, time_base)
    fps = average_fps(t_s, rate)
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
        rotation_deg=rotation,
    )
    return Probe(info=info, pts=pts, keyframes=keyframes, time_base=time_base)


def display_rotation(frame: av.VideoFrame) -> int:
    """How far (degrees counter-clockwise, 0/90/180/270) the file's display matrix turns the
    coded picture for display; 0 when it has none (or one that is not a quarter turn)."""
    deg = float(getattr(frame, "rotation", 0) or 0)
    quarter = round(deg / 90.0)
    if abs(deg - 90.0 * quarter) > 1.0:
        logger.warning("ignoring a display rotation of %.1f degrees (not a quarter turn)", deg)
        return 0
    return int(quarter * 90) % 360


def seconds_of(pts: np.ndarray, time_base: Fraction) -> np.ndarray:
    rel = (pts - pts[0]).astype(np.float64)
    return rel * time_base.numerator / time_base.denominator


def average_fps(t_s: np.ndarray, rate: Fraction | None) -> float:
    """The container's average rate when it agrees with the timestamps, else the timestamps'."""
    measured = (t_s.size - 1) / float(t_s[-1]) if t_s.size > 1 and t_s[-1] > 0 else None
    declared = float(rate) if rate else None
    if declared and declared > 0 and (measured is None or 0.5 < declared / measured < 2.0):
        return declared
    return measured or 25.0


def fit_size(resolution_wh: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    w, h = resolution_wh
    if max_side is None or max(w, h) <= max_side:
        return w, h
    if max_side < 1:
        raise ValueError(f"max_side must be a positive number of pixels, got {max_side}")
    s = max_side / max(w, h)
    return max(1, round(w * s)), max(1, round(h * s))
