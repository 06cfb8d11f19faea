"""Images for the HTML report: load the files a trace references, draw boxes, embed as data URIs.

A trace references its frames and crops by a path relative to its folder and a sha256
(``ImageRef``). Here they are read (never outside the trace folder), checked against their hash,
decoded with OpenCV (so nothing but a real image is ever embedded), annotated with their boxes,
downscaled and re-encoded as ``data:`` URIs. A missing or unreadable file becomes a visible
placeholder with the reason, never an exception.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vadetective.agent.core.types import Box, ImageRef, TimeSpan, Trace

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

_DECODED_CACHE_SIZE = 8

#: Box colours (BGR), picked per label so one label keeps one colour across the whole report.
_PALETTE_BGR: tuple[tuple[int, int, int], ...] = (
    (40, 39, 214),  # red
    (180, 119, 31),  # blue
    (44, 160, 44),  # green
    (14, 127, 255),  # orange
    (189, 103, 148),  # purple
    (194, 190, 23),  # teal
    (34, 189, 188),  # olive
    (194, 119, 227),  # pink
)


def label_color_bgr(label: str) -> tuple[int, int, int]:
    """A stable colour for a box label (the same label is the same colour everywhere)."""
    return _PALETTE_BGR[zlib.crc32(label.encode("utf-8")) % len(_PALETTE_BGR)]


def label_color_hex(label: str) -> str:
    """``label_color_bgr`` as a CSS ``#rrggbb`` colour, for captions and tables."""
    b, g, r = label_color_bgr(label)
    return f"#{r:02x}{g:02x}{b:02x}"


@dataclass(frozen=True)
class EmbeddedImage:
    """An image ready for the page: a data URI, or the reason there is none.

    Attributes:
        ref: The trace's reference to the image.
        data_uri: ``data:image/...;base64,...`` or None when the image could not be used.
        problem: Why there is no image (missing file, not an image, outside the trace folder).
        hash_ok: False when the file's sha256 differs from the one the trace recorded.
        size_wh: Size of the file's image in pixels (before any downscale), when decoded.
    """

    ref: ImageRef
    data_uri: str | None
    problem: str | None = None
    hash_ok: bool = True
    size_wh: tuple[int, int] | None = None


@dataclass(frozen=True)
class KeyFrame:
    """A frame chosen to illustrate a verdict span, with the verdict boxes drawn on it.

    Attributes:
        span: The verdict span it illustrates (None for boxes when the verdict has no span).
        t_s: The moment it illustrates (a box time, or a point inside the span).
        ref: The nearest frame image in the trace, or None when the trace holds none.
        boxes: Verdict boxes to draw on it.
    """

    span: TimeSpan | None
    t_s: float
    ref: ImageRef | None
    boxes: list[Box] = field(default_factory=list)

    @property
    def offset_s(self) -> float | None:
        """How far the frame image is from the moment it stands for (seconds)."""
        if self.ref is None or self.ref.t_s is None:
            return None
        return abs(self.ref.t_s - self.t_s)


class ImageEmbedder:
    """Turns a trace's ``ImageRef`` into data URIs, caching the decoded files.

    Args:
        trace_dir: The folder the trace's image paths are relative to.
        resolution_wh: The video's original resolution, which box coordinates refer to; frames
            stored at another size get their boxes scaled. None: boxes are in image pixels.
    """

    def __init__(self, trace_dir: Path, resolution_wh: tuple[int, int] | None) -> None:
        self.trace_dir = trace_dir.resolve()
        self.resolution_wh = resolution_wh
        # A few decoded images (a keyframe is usually also shown in its step), and the size of
        # every image seen; never all pixels of a long run at once.
        self._recent: OrderedDict[str, tuple[np.ndarray | None, str | None, bool]] = OrderedDict()
        self._pixels: dict[str, int] = {}

    def _read(self, ref: ImageRef) -> tuple[np.ndarray | None, str | None, bool]:
        """Decoded BGR pixels (or None and a reason) and whether the hash matched."""
        if ref.path in self._recent:
            self._recent.move_to_end(ref.path)
            return self._recent[ref.path]
        result = self._read_uncached(ref)
        image = result[0]
        self._pixels[ref.path] = 0 if image is None else int(image.shape[0] * image.shape[1])
        self._recent[ref.path] = result
        while len(self._recent) > _DECODED_CACHE_SIZE:
            self._recent.popitem(last=False)
        return result

    def _read_uncached(self, ref: ImageRef) -> tuple[np.ndarray | None, str | None, bool]:
        import cv2
        import numpy as np

        if "\x00" in ref.path:
            return None, f"{ref.path!r} holds a NUL byte (not a file name)", True
        rel = Path(ref.path)
        if rel.is_absolute():
            return None, f"absolute path {ref.path} (trace images must be relative)", True
        path = (self.trace_dir / rel).resolve()
        if not path.is_relative_to(self.trace_dir):
            return None, f"{ref.path} points outside the trace folder", True
        try:
            if path.stat().st_size > MAX_IMAGE_BYTES:
                return None, f"{ref.path} is larger than {MAX_IMAGE_BYTES >> 20} MB", True
            data = path.read_bytes()
        except FileNotFoundError:
            logger.warning("report: image %s is missing", path)
            return None, f"missing file {ref.path}", True
        except OSError as exc:
            logger.warning("report: cannot read image %s: %s", path, exc)
            return None, f"unreadable file {ref.path} ({exc.strerror or exc})", True
        hash_ok = hashlib.sha256(data).hexdigest() == ref.sha256.lower()
        if not hash_ok:
            logger.warning("report: image %s does not match its recorded sha256", path)
        too_big = _too_many_pixels(data)
        if too_big is not None:
            return None, f"{ref.path} is {too_big}, too large to embed", hash_ok
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            return None, f"{ref.path} is not a decodable image", hash_ok
        return image, None, hash_ok

    def embed(
        self, ref: ImageRef, boxes: list[Box] | None = None, max_side: int = 480
    ) -> EmbeddedImage:
        """The image as a data URI, with ``boxes`` (default: the ref's own) drawn on frames.

        Boxes are drawn only on ``kind="frame"`` images: their coordinates are pixels of the
        original frame, which do not map onto crops.

        Args:
            ref: Which image.
            boxes: Boxes to draw; None draws ``ref.boxes``.
            max_side: Longest side of the embedded image in pixels (larger images are shrunk).

        Returns:
            The embedded image, or one with ``data_uri=None`` and the reason in ``problem``.
        """
        image, problem, hash_ok = self._read(ref)
        if image is None:
            return EmbeddedImage(ref=ref, data_uri=None, problem=problem, hash_ok=hash_ok)
        h, w = image.shape[:2]
        draw = ref.boxes if boxes is None else boxes
        if draw and ref.kind == "frame":
            # Resize to the display size first (up to 4x for small stored frames), then draw,
            # so labels come out crisp and the same size whatever the stored frame's size.
            scale = min(max_side / max(h, w), 4.0)
            if scale != 1.0:
                import cv2

                size = (max(1, round(w * scale)), max(1, round(h * scale)))
                interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
                image = cv2.resize(image, size, interpolation=interp)
            image = draw_boxes(image, draw, self.resolution_wh or (w, h))
        fmt = "png" if ref.kind == "plot" else "jpeg"
        uri = encode_data_uri(image, max_side=max_side, fmt=fmt)
        return EmbeddedImage(ref=ref, data_uri=uri, hash_ok=hash_ok, size_wh=(w, h))

    def pixel_count(self, ref: ImageRef) -> int:
        """Pixels of the stored image (0 when it cannot be read), to prefer sharper frames."""
        if ref.path not in self._pixels:
            self._read(ref)
        return self._pixels[ref.path]


#: Images a trace refers to are decoded only below these sizes: a hostile 16000x16000 PNG is a
#: few kilobytes on disk and a gigabyte of pixels.
MAX_IMAGE_BYTES = 64 << 20
MAX_IMAGE_PIXELS = 40_000_000


def _too_many_pixels(data: bytes) -> str | None:
    """``"WxH pixels"`` when the image's header declares more than ``MAX_IMAGE_PIXELS``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            w, h = img.size
    except Image.DecompressionBombError:
        return "a decompression bomb"
    except (UnidentifiedImageError, OSError, ValueError):
        return None  # not an image Pillow knows: OpenCV decides
    return f"{w}x{h} pixels" if w * h > MAX_IMAGE_PIXELS else None


def draw_boxes(
    image: np.ndarray, boxes: list[Box], resolution_wh: tuple[int, int] | None
) -> np.ndarray:
    """A copy of ``image`` (BGR) with labelled boxes drawn by OpenCV.

    Args:
        image: BGR uint8 pixels, possibly a downscaled copy of the original frame.
        boxes: Boxes in pixels of the original frame.
        resolution_wh: Original frame size, to scale boxes onto a downscaled image; None when
            the image is at the original size.

    Returns:
        The annotated copy; the input is left untouched.
    """
    import cv2

    out = image.copy()
    h, w = out.shape[:2]
    sx, sy = (w / resolution_wh[0], h / resolution_wh[1]) if resolution_wh else (1.0, 1.0)
    thickness = max(1, round(min(w, h) / 180))
    font_scale = max(0.4, min(w, h) / 450)
    for box in boxes:
        x1, y1, x2, y2 = box.xyxy
        p1 = (round(x1 * sx), round(y1 * sy))
        p2 = (round(x2 * sx), round(y2 * sy))
        color = label_color_bgr(box.label)
        cv2.rectangle(out, p1, p2, color, thickness, lineType=cv2.LINE_AA)
        # Hershey fonts are ASCII only: say so with '?' rather than draw garbage.
        text = f"{box.label} {box.score:.2f}".strip().encode("ascii", "replace").decode("ascii")
        weight = max(1, thickness // 2)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, weight)
        ty = p1[1] - 3 if p1[1] - th - base - 3 >= 0 else p1[1] + th + 3
        tx = max(0, min(p1[0], w - tw - 4))  # keep the whole label inside the frame
        cv2.rectangle(out, (tx, ty - th - 2), (tx + tw + 4, ty + base - 1), color, cv2.FILLED)
        cv2.putText(
            out,
            text,
            (tx + 2, ty - 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (255, 255, 255),
            weight,
            cv2.LINE_AA,
        )
    return out


def encode_data_uri(image: np.ndarray, max_side: int = 480, fmt: str = "jpeg") -> str:
    """Encode BGR pixels as a ``data:`` URI, shrunk so the longest side is at most ``max_side``.

    Args:
        image: BGR uint8 pixels.
        max_side: Longest side in pixels after shrinking (never enlarged).
        fmt: ``"jpeg"`` (photos) or ``"png"`` (plots, line art).

    Returns:
        ``data:image/jpeg;base64,...`` or ``data:image/png;base64,...``.
    """
    import cv2

    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    if fmt == "png":
        ok, buf = cv2.imencode(".png", image)
        mime = "image/png"
    else:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        mime = "image/jpeg"
    if not ok:  # pragma: no cover - OpenCV encodes any valid uint8 image
        raise ValueError(f"OpenCV could not encode a {w}x{h} image as {fmt}")
    return f"data:{mime};base64,{base64.b64encode(buf.tobytes()).decode('ascii')}"


def frame_refs(trace: Trace) -> list[ImageRef]:
    """Every frame image of the trace that has a timestamp, once each, in time order."""
    seen: dict[str, ImageRef] = {}
    for ev in trace.evidence:
        for ref in ev.images:
            if ref.kind == "frame" and ref.t_s is not None:
                seen.setdefault(ref.path, ref)
    for step in trace.steps:
        for ref in step.images:
            if ref.kind == "frame" and ref.t_s is not None:
                seen.setdefault(ref.path, ref)
    return sorted(seen.values(), key=lambda r: (r.t_s or 0.0, r.path))


def _nearest(
    frames: list[ImageRef], t_s: float, pixels: Callable[[ImageRef], int] | None = None
) -> ImageRef | None:
    """The frame nearest ``t_s``; among equally near frames, the one with the most pixels."""

    def key(r: ImageRef) -> tuple[float, int]:
        return (round(abs((r.t_s or 0.0) - t_s), 6), -(pixels(r) if pixels else 0))

    return min(frames, key=key, default=None)


def _span_for(box: Box, spans: list[TimeSpan]) -> TimeSpan:
    """The span containing the box's time, else the nearest span."""
    inside = [s for s in spans if s.contains(box.t_s)]
    if inside:
        return inside[0]
    return min(spans, key=lambda s: min(abs(s.start_s - box.t_s), abs(s.end_s - box.t_s)))


def select_keyframes(
    trace: Trace, per_span: int = 3, pixels: Callable[[ImageRef], int] | None = None
) -> list[KeyFrame]:
    """Frames that illustrate each verdict span, with the verdict's boxes assigned to them.

    For a span with boxes, each box goes to the trace frame nearest its time, and the frames
    holding the most boxes are kept (at most ``per_span``, shown in time order). For a span
    without boxes, the frames nearest its start, middle and end are used (preferring frames
    inside the span). Boxes outside every span join the nearest span; a verdict with boxes
    but no spans gets keyframes for its boxes alone.

    Args:
        trace: The trace; its verdict says what to illustrate and its evidence holds frames.
        per_span: At most this many keyframes per span.
        pixels: Size of a frame image in pixels, to prefer the sharpest of equally near frames
            (e.g. ``ImageEmbedder.pixel_count``); None ignores size.

    Returns:
        Keyframes in span order, then time order; ``ref`` is None when the trace holds no
        frame image at all.
    """
    verdict = trace.verdict
    if verdict is None:
        return []
    frames = frame_refs(trace)
    spans = list(verdict.spans)
    groups: dict[int, list[Box]] = {i: [] for i in range(len(spans))}
    loose: list[Box] = []
    for box in verdict.boxes:
        if spans:
            groups[spans.index(_span_for(box, spans))].append(box)
        else:
            loose.append(box)
    keyframes: list[KeyFrame] = []
    for i, span in enumerate(spans):
        keyframes.extend(_span_keyframes(span, groups[i], frames, per_span, pixels))
    if loose:
        keyframes.extend(_span_keyframes(None, loose, frames, per_span, pixels))
    return keyframes


def _span_keyframes(
    span: TimeSpan | None,
    boxes: list[Box],
    frames: list[ImageRef],
    per_span: int,
    pixels: Callable[[ImageRef], int] | None,
) -> list[KeyFrame]:
    if boxes:
        by_frame: dict[str, tuple[ImageRef | None, list[Box]]] = {}
        for box in sorted(boxes, key=lambda b: b.t_s):
            ref = _nearest(frames, box.t_s, pixels)
            key = ref.path if ref is not None else f"@{box.t_s:.3f}"
            by_frame.setdefault(key, (ref, []))[1].append(box)
        chosen = sorted(by_frame.values(), key=lambda rb: (-len(rb[1]), rb[1][0].t_s))[:per_span]
        return [
            KeyFrame(span=span, t_s=bx[0].t_s, ref=ref, boxes=bx)
            for ref, bx in sorted(chosen, key=lambda rb: rb[1][0].t_s)
        ]
    if span is None:
        return []
    inside = [r for r in frames if r.t_s is not None and span.contains(r.t_s)]
    pool = inside or frames
    mid = (span.start_s + span.end_s) / 2
    targets = [span.start_s, mid, span.end_s] if per_span >= 3 else [mid]
    picked: dict[str, KeyFrame] = {}
    for t in targets:
        ref = _nearest(pool, t, pixels)
        key = ref.path if ref is not None else "@none"
        picked.setdefault(key, KeyFrame(span=span, t_s=t, ref=ref))
    return sorted(picked.values(), key=lambda k: k.t_s)
