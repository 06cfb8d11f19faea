"""What every grounding backend shares: the ``ground`` flow and its adapters.

``FrameGrounder.ground`` is the one skeleton of all backends (``hf_grounding.py``, ``yolo.py``,
``gdino_py.py``): validate the phrases, decode the frame at ``t_s``, load the model, let the
backend detect, then map the detections to ``Box`` es in pixels of the ORIGINAL frame (clipped,
NMS per phrase, best first, capped). A backend only writes ``_load`` and ``_detect``.

The adapters: phrase cleaning, reading the frame at a time, mapping raw model boxes to frame
pixels (``box_from_grounding_dino``) and a small NMS. Nothing heavy is imported at module level.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vadetective.agent.core.types import Box
from vadetective.tools.base import FrameSource
from vadetective.tools.video.sampling import read_at

if TYPE_CHECKING:
    import torch

#: Most phrases one ``ground`` call accepts (each costs text-encoder work; planners need few).
MAX_PHRASES = 32
#: Longest phrase accepted, in characters.
MAX_PHRASE_CHARS = 200

NMS_IOU = 0.5
MAX_BOXES = 20

_EDGE_PUNCT = " \t\r\n.,;:!?\"'`()[]{}"


# --------------------------------------------------------------------------- adapters
def clean_phrases(
    phrases: Sequence[str] | str,
    max_phrases: int = MAX_PHRASES,
    max_chars: int = MAX_PHRASE_CHARS,
) -> list[str]:
    """Validate and tidy the phrases a planner asked for.

    Whitespace is collapsed, surrounding punctuation dropped, blanks removed and duplicates
    (ignoring case) merged, keeping the first spelling; a bare string counts as one phrase.

    Args:
        phrases: What to look for, e.g. ``["a person", "a bag"]``.
        max_phrases: Most phrases accepted.
        max_chars: Longest phrase accepted, in characters.

    Returns:
        The cleaned phrases, in the order given.

    Raises:
        ValueError: When nothing usable is left, a phrase is not a string, or there are too
            many or too long phrases; the message says what to pass instead.
    """
    if isinstance(phrases, str):
        phrases = [phrases]
    out: list[str] = []
    seen: set[str] = set()
    for p in phrases:
        if not isinstance(p, str):
            raise ValueError(f"phrases must be strings, got {type(p).__name__} {p!r}")
        text = re.sub(r"\s+", " ", p).strip(_EDGE_PUNCT)
        if not text:
            continue
        if len(text) > max_chars:
            raise ValueError(
                f"phrase {text[:40]!r}... is {len(text)} characters long: keep each phrase under "
                f"{max_chars} characters, e.g. 'a person lying on the ground'"
            )
        key = text.lower()
        if key not in seen:
            seen.add(key)
            out.append(text)
    if not out:
        raise ValueError(
            f"phrases must name at least one thing to look for, e.g. ['person', 'bag'], got {list(phrases)!r}"
        )
    if len(out) > max_phrases:
        raise ValueError(f"{len(out)} phrases given: ask for at most {max_phrases} at a time")
    return out


@dataclass(frozen=True)
class Frame:
    """One decoded frame and how its pixels map to the original video frame."""

    rgb: np.ndarray  # (H, W, 3) uint8, possibly downscaled
    t_s: float  # exact timestamp of the decoded frame
    scale: float  # original pixel = decoded pixel * scale
    resolution_wh: tuple[int, int]  # of the original video frame

    @property
    def decoded_wh(self) -> tuple[int, int]:
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


def read_frame(source: FrameSource, t_s: float, max_side: int | None = None) -> Frame:
    """Decode the frame nearest to ``t_s`` (seconds) through ``tools.video.read_at``.

    Args:
        source: The opened video.
        t_s: Time in seconds.
        max_side: Downscale so the longer side is at most this many pixels (None: native).

    Returns:
        The frame, its exact timestamp and its scale to the original resolution.

    Raises:
        ValueError: When ``t_s`` is not a finite time inside the video, or nothing could be
            decoded there.
    """
    if not isinstance(t_s, (int, float)) or not math.isfinite(t_s):
        raise ValueError(f"t_s must be a finite number of seconds, got {t_s!r}")
    duration = source.info.duration_s
    if t_s < 0 or t_s > duration + 1e-6:
        raise ValueError(
            f"t_s ({t_s:.3f}) is outside the video: pick a time in 0..{duration:.3f} s"
        )

    batch = read_at(source, [float(t_s)], max_side=max_side)
    if len(batch) == 0:
        raise ValueError(f"no frame could be decoded at t_s={t_s:.3f} s")
    rgb = np.ascontiguousarray(batch.frames[0])
    return Frame(
        rgb=rgb,
        t_s=float(batch.t_s[0]),
        scale=float(batch.scale),
        resolution_wh=source.info.resolution_wh,
    )


def clip_xyxy(
    xyxy: np.ndarray, resolution_wh: tuple[int, int], min_side_px: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Clip (N, 4) pixel boxes to the frame; also return which ones are worth keeping.

    A box is dropped when a coordinate is not finite or when less than ``min_side_px`` of it
    (in width or height) lies inside the frame, e.g. an OWLv2 box in the padding.
    """
    w, h = resolution_wh
    arr = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    finite = np.isfinite(arr).all(axis=1)
    arr = np.where(np.isfinite(arr), arr, 0.0)
    out = np.stack(
        [
            np.clip(arr[:, 0], 0.0, w),
            np.clip(arr[:, 1], 0.0, h),
            np.clip(arr[:, 2], 0.0, w),
            np.clip(arr[:, 3], 0.0, h),
        ],
        axis=1,
    )
    keep = finite & (out[:, 2] - out[:, 0] >= min_side_px) & (out[:, 3] - out[:, 1] >= min_side_px)
    return out, keep


def cxcywh_to_xyxy(cxcywh: np.ndarray, resolution_wh: tuple[int, int]) -> np.ndarray:
    """(N, 4) normalised centre/size boxes to (N, 4) pixel corners of a ``resolution_wh`` frame."""
    b = np.asarray(cxcywh, dtype=np.float64).reshape(-1, 4)
    w, h = resolution_wh
    half_w, half_h = b[:, 2] / 2, b[:, 3] / 2
    return np.stack(
        [
            (b[:, 0] - half_w) * w,
            (b[:, 1] - half_h) * h,
            (b[:, 0] + half_w) * w,
            (b[:, 1] + half_h) * h,
        ],
        axis=1,
    )


def box_from_grounding_dino(
    cxcywh: Sequence[float],
    resolution_wh: tuple[int, int],
    *,
    t_s: float,
    label: str = "",
    score: float = 1.0,
) -> Box | None:
    """A GroundingDINO box (normalised centre x, centre y, width, height) as a ``Box``.

    GroundingDINO (both the transformers port and the original code) predicts boxes relative to
    the image it was given without padding, so normalised coordinates map straight to the
    original frame whatever the decoding scale.

    Args:
        cxcywh: Raw ``pred_boxes`` row, values in [0, 1].
        resolution_wh: (width, height) of the original frame.
        t_s: Timestamp of the frame, seconds.
        label: The phrase the box matches.
        score: Confidence in [0, 1] (clamped).

    Returns:
        The box in pixels, clipped to the frame, or None when it is degenerate or outside.
    """
    raw = cxcywh_to_xyxy(np.asarray(cxcywh, dtype=np.float64).reshape(1, 4), resolution_wh)
    xyxy, keep = clip_xyxy(raw, resolution_wh)
    if not keep[0]:
        return None
    x1, y1, x2, y2 = (float(v) for v in xyxy[0])
    return Box(t_s=t_s, xyxy=(x1, y1, x2, y2), label=label, score=_unit(score))


def _unit(score: float) -> float:
    s = float(score)
    return min(1.0, max(0.0, s)) if math.isfinite(s) else 0.0


def nms(xyxy: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first."""
    order = np.argsort(-scores, kind="stable")
    if iou >= 1.0 or len(order) <= 1:
        return order
    x1, y1, x2, y2 = xyxy[:, 0], xyxy[:, 1], xyxy[:, 2], xyxy[:, 3]
    area = (x2 - x1) * (y2 - y1)
    kept: list[int] = []
    while order.size:
        i = int(order[0])
        kept.append(i)
        rest = order[1:]
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        union = area[i] + area[rest] - inter
        overlap = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
        order = rest[overlap <= iou]
    return np.asarray(kept, dtype=np.int64)


def make_boxes(
    xyxy: np.ndarray,
    scores: np.ndarray,
    labels: Sequence[str],
    frame: Frame,
    *,
    nms_iou: float = NMS_IOU,
    max_boxes: int = MAX_BOXES,
    in_decoded_pixels: bool = True,
) -> list[Box]:
    """Turn raw detections into ``Box`` es: to original pixels, clipped, NMS per label, sorted.

    Args:
        xyxy: (N, 4) boxes in pixels of the decoded frame (or of the original frame when
            ``in_decoded_pixels`` is False).
        scores: (N,) confidences (clamped to [0, 1]).
        labels: N phrases.
        frame: The frame the detections came from.
        nms_iou: Boxes of the same label overlapping a better one by more than this IoU are
            dropped (1.0 disables NMS).
        max_boxes: Most boxes returned.
        in_decoded_pixels: Whether ``xyxy`` still needs the decoding scale applied.

    Returns:
        Boxes best first.
    """
    arr = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    sc = np.asarray(scores, dtype=np.float64).reshape(-1)
    if arr.shape[0] != sc.shape[0] or arr.shape[0] != len(labels):
        raise ValueError(
            f"got {arr.shape[0]} boxes, {sc.shape[0]} scores and {len(labels)} labels; they must match"
        )
    if in_decoded_pixels:
        arr = arr * frame.scale
    arr, keep = clip_xyxy(arr, frame.resolution_wh)
    sc = np.clip(np.nan_to_num(sc, nan=0.0), 0.0, 1.0)
    idx = [int(i) for i in np.flatnonzero(keep)]
    chosen: list[int] = []
    for label in dict.fromkeys(labels[i] for i in idx):
        group = np.array([i for i in idx if labels[i] == label], dtype=np.int64)
        chosen.extend(int(group[k]) for k in nms(arr[group], sc[group], nms_iou))
    chosen.sort(key=lambda i: (-sc[i], i))
    out: list[Box] = []
    for i in chosen[:max_boxes]:
        x1, y1, x2, y2 = (float(v) for v in arr[i])
        out.append(Box(t_s=frame.t_s, xyxy=(x1, y1, x2, y2), label=labels[i], score=float(sc[i])))
    return out


@dataclass(frozen=True)
class Detections:
    """What a backend found in one frame, before ``make_boxes`` turns it into ``Box`` es."""

    xyxy: np.ndarray  # (N, 4) pixel corners
    scores: np.ndarray  # (N,) confidences
    labels: list[str]  # N phrases, each one of those asked
    in_decoded_pixels: bool = True  # False: ``xyxy`` is already in original-frame pixels


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A tensor as a float numpy array on the CPU."""
    return t.detach().float().cpu().numpy()


def check_unit(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a number in [0, 1]."""
    if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


# --------------------------------------------------------------------------- the ground() flow
class FrameGrounder(ABC):
    """The grounding flow every backend shares; subclasses write ``_load`` and ``_detect``.

    Attributes:
        name: Backend name, as in the registry.
        model_id: What the model is loaded from.
        device_name: The device asked for (``auto`` is resolved when loading).
        box_threshold: The backend's minimum box confidence.
        nms_iou: Per-phrase NMS IoU applied to the boxes (1.0 disables it).
        max_boxes: Most boxes returned per call.
        max_side: Decode frames at most this large (None: native).
    """

    name: str

    def __init__(
        self,
        model_id: str,
        *,
        device: str,
        box_threshold: float,
        nms_iou: float,
        max_boxes: int,
        max_side: int | None,
    ) -> None:
        """Check and keep the settings every backend has; nothing is loaded.

        Args:
            model_id: What the model is loaded from.
            device: ``auto``, ``cpu``, ``cuda[:N]`` or ``mps``.
            box_threshold: Minimum box confidence, in [0, 1].
            nms_iou: Per-phrase NMS IoU, in [0, 1] (1.0 disables it).
            max_boxes: Most boxes returned per call.
            max_side: Decode frames at most this large (None: native).

        Raises:
            ValueError: When a threshold is outside [0, 1].
        """
        check_unit("box_threshold", box_threshold)
        check_unit("nms_iou", nms_iou)
        self.model_id = model_id
        self.device_name = device
        self.box_threshold = box_threshold
        self.nms_iou = nms_iou
        self.max_boxes = max_boxes
        self.max_side = max_side
        self._model: Any = None
        self._device: str | None = None

    def load(self) -> None:
        """Load the model (once); fail fast when it is not available."""
        if self._model is None:
            self._load()

    @abstractmethod
    def _load(self) -> None:
        """Load the model now: set ``_model`` (and ``_device``) or raise."""

    @abstractmethod
    def _detect(self, frame: Frame, phrases: list[str]) -> Detections:
        """Run the loaded model on ``frame`` for the cleaned ``phrases``."""

    def ground(self, source: FrameSource, t_s: float, phrases: Sequence[str]) -> list[Box]:
        """Boxes for ``phrases`` in the frame at ``t_s``, in original-frame pixels, best first.

        Args:
            source: The opened video.
            t_s: Time in seconds.
            phrases: What to look for, e.g. ``["a person", "a bag"]``.

        Returns:
            Boxes labelled with the phrase they match (possibly none).

        Raises:
            ValueError: For unusable phrases or times, or phrases this backend cannot look
                for (see the backend's docstring).
            ModelUnavailableError: When the model is not available offline.
        """
        clean = clean_phrases(phrases)
        frame = read_frame(source, t_s, self.max_side)
        self.load()
        found = self._detect(frame, clean)
        return make_boxes(
            found.xyxy,
            found.scores,
            found.labels,
            frame,
            nms_iou=self.nms_iou,
            max_boxes=self.max_boxes,
            in_decoded_pixels=found.in_decoded_pixels,
        )
