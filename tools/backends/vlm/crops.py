"""What a crop inspector looks at: the frame at a time, a zoomed window around a box with the box
drawn in it, and the question worded for that window.

Shared by the in-process ``vlm`` inspector (``hf_vlm.py``) and the ``server`` inspector
(``server_vlm.py``) through ``CropInspector``. Nothing heavy is imported at module level (PIL is
imported inside the functions that draw).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vadetective.agent.core.types import Box
from vadetective.tools.base import FrameSource
from vadetective.tools.video.sampling import read_at


@dataclass(frozen=True)
class CropView:
    """The image an inspector looks at: a zoomed crop around a box, the box drawn in it."""

    image: np.ndarray  # RGB uint8, after zoom
    crop_xyxy: tuple[float, float, float, float]  # the crop in pixels of the original frame
    box_xyxy: tuple[float, float, float, float]  # the box in pixels of ``image``
    zoom: float  # pixels of ``image`` per pixel of the original frame
    frame_t_s: float


def crop_for_inspection(
    frame: np.ndarray,
    box: Box,
    *,
    frame_scale: float = 1.0,
    frame_t_s: float | None = None,
    context: float = 0.5,
    min_crop_px: int = 64,
    min_short_side: int = 336,
    max_long_side: int = 1008,
    draw_box: bool = True,
) -> CropView:
    """Crop ``frame`` around ``box`` with context, zoom it, and draw the box.

    Args:
        frame: (H, W, 3) RGB uint8, possibly downscaled from the original frame.
        box: the box in pixels of the original frame.
        frame_scale: original pixels per pixel of ``frame`` (``FrameBatch.scale``).
        frame_t_s: the frame's timestamp (defaults to ``box.t_s``).
        context: margin added on each side, as a fraction of the box's width/height.
        min_crop_px: the crop is at least this many original pixels wide and high (tiny boxes
            need surroundings to be recognisable).
        min_short_side: the zoomed crop's shorter side is at least this long (VLM encoders
            work at ~336-448 px; small crops are upscaled).
        max_long_side: and its longer side at most this long.
        draw_box: draw the box outline in red so the model knows what to look at.

    Raises:
        ValueError: the box does not overlap the frame.
    """
    from PIL import Image, ImageDraw

    h, w = frame.shape[:2]
    s = frame_scale or 1.0
    bx1, by1, bx2, by2 = (v / s for v in box.xyxy)
    if bx2 <= 0 or by2 <= 0 or bx1 >= w or by1 >= h:
        raise ValueError(
            f"box {box.xyxy} lies outside the {round(w * s)}x{round(h * s)} frame; "
            "pass a box in pixels of the original frame"
        )
    bw, bh = bx2 - bx1, by2 - by1
    min_px = min_crop_px / s
    half_w = max(bw * (0.5 + context), min_px / 2)
    half_h = max(bh * (0.5 + context), min_px / 2)
    # At a frame edge the window slides inwards rather than shrinking: same context, off-centre.
    x1, x2 = _window((bx1 + bx2) / 2, half_w, w)
    y1, y2 = _window((by1 + by2) / 2, half_h, h)
    crop = Image.fromarray(np.ascontiguousarray(frame[y1:y2, x1:x2]))
    cw, ch = crop.size
    k = max(1.0, min_short_side / min(cw, ch))
    k = min(k, max_long_side / max(cw, ch))
    size = (max(1, round(cw * k)), max(1, round(ch * k)))
    if size != (cw, ch):
        crop = crop.resize(size, Image.Resampling.BICUBIC)
    zx, zy = size[0] / cw, size[1] / ch
    inner = (
        max(0.0, (bx1 - x1) * zx),
        max(0.0, (by1 - y1) * zy),
        min(size[0] - 1.0, (bx2 - x1) * zx),
        min(size[1] - 1.0, (by2 - y1) * zy),
    )
    if draw_box:
        width = max(2, round(min(size) / 150))
        ImageDraw.Draw(crop).rectangle(inner, outline=(255, 0, 0), width=width)
    return CropView(
        image=np.asarray(crop, dtype=np.uint8),
        crop_xyxy=(x1 * s, y1 * s, x2 * s, y2 * s),
        box_xyxy=inner,
        zoom=zx / s,
        frame_t_s=box.t_s if frame_t_s is None else frame_t_s,
    )


def _window(centre: float, half: float, limit: int) -> tuple[int, int]:
    size = min(float(limit), 2 * half)
    start = min(max(0.0, centre - size / 2), limit - size)
    return max(0, math.floor(start)), min(limit, math.ceil(start + size))


def inspection_prompt(question: str, view: CropView, label: str = "", drawn: bool = True) -> str:
    """The question about a crop, saying what the image is and where to look."""
    what = f" (labelled {label!r})" if label else ""
    if drawn:
        where = f"The red rectangle marks the region to inspect{what}."
    else:
        h, w = view.image.shape[:2]
        x1, y1, x2, y2 = view.box_xyxy
        where = (
            f"The region to inspect{what} spans {100 * x1 / w:.0f}-{100 * x2 / w:.0f}% of the "
            f"image width and {100 * y1 / h:.0f}-{100 * y2 / h:.0f}% of its height."
        )
    return (
        f"This image is a close-up of part of a video frame at {view.frame_t_s:.2f} s, "
        f"enlarged {view.zoom:.1f}x. {where} Look closely and answer in one or two short "
        f"sentences; say so if it cannot be seen.\nQuestion: {question}"
    )


def read_frame(source: FrameSource, t_s: float) -> tuple[np.ndarray, float, float]:
    """The frame nearest to ``t_s`` at full resolution: (RGB frame, its t_s, its scale).

    Raises:
        ValueError: ``t_s`` lies outside the video.
    """
    duration = source.info.duration_s
    if not (math.isfinite(t_s) and -1e-6 <= t_s <= duration + 1e-6):
        raise ValueError(f"t_s ({t_s}) must lie within the video (0 to {duration:.2f} s)")

    batch = read_at(source, [t_s])
    if len(batch) == 0:
        raise ValueError(f"no frame could be decoded at {t_s:.2f} s")
    return batch.frames[0], float(batch.t_s[0]), float(batch.scale)


def crop_facts(
    view: CropView, model_id: str, backend: str
) -> dict[str, float | int | str | bool | None]:
    """What an inspection looked at, as scalar facts for ``Evidence.facts``."""
    x1, y1, x2, y2 = view.crop_xyxy
    return {
        "model": model_id,
        "backend": backend,
        "frame_t_s": round(view.frame_t_s, 3),
        "crop_x1": round(x1, 1),
        "crop_y1": round(y1, 1),
        "crop_x2": round(x2, 1),
        "crop_y2": round(y2, 1),
        "zoom": round(view.zoom, 3),
        "crop_w": int(view.image.shape[1]),
        "crop_h": int(view.image.shape[0]),
    }


class CropInspector:
    """What the crop inspectors share: where they crop and how they ask.

    Subclasses set the four attributes in their constructor and call ``look`` in ``inspect``.

    Attributes:
        context: Margin around the box, as a fraction of its size on each side.
        min_short_side: The crop is upscaled until its shorter side has this many pixels.
        max_long_side: And its longer side at most this many.
        draw_box: Draw the box in red on the crop (else its position is described in words).
    """

    context: float
    min_short_side: int
    max_long_side: int
    draw_box: bool

    def look(
        self, source: FrameSource, t_s: float, box: Box, question: str
    ) -> tuple[CropView, str]:
        """The zoomed crop around ``box`` in the frame nearest to ``t_s``, and the prompt asking
        ``question`` about it.

        Args:
            source: The opened video.
            t_s: Time in seconds.
            box: The box, in pixels of the original frame.
            question: What to ask about the box.

        Returns:
            The crop and the prompt text to send with it.

        Raises:
            ValueError: ``t_s`` is outside the video or the box outside the frame.
        """
        frame, frame_t_s, scale = read_frame(source, t_s)
        view = crop_for_inspection(
            frame,
            box,
            frame_scale=scale,
            frame_t_s=frame_t_s,
            context=self.context,
            min_short_side=self.min_short_side,
            max_long_side=self.max_long_side,
            draw_box=self.draw_box,
        )
        return view, inspection_prompt(question, view, box.label, drawn=self.draw_box)
