"""Open-vocabulary grounding with transformers: GroundingDINO and OWLv2.

Both backends find boxes for free-text phrases in one frame of a video and return ``Box`` es in
pixels of the ORIGINAL frame, labelled with the phrase they match, best first.

This module also holds the adapters every grounding backend shares (``yolo.py`` and
``gdino_py.py`` import them): phrase cleaning, reading the frame at a time, mapping raw model
boxes to frame pixels (``box_from_grounding_dino``), per-phrase scores from GroundingDINO's
token logits, and a small NMS. Nothing heavy is imported at module level.

Usage::

    grounder = GroundingDinoGrounder.from_config(config)      # loads nothing yet
    boxes = grounder.ground(source, t_s=3.0, phrases=["a person", "a bag"])
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vadetective.agent.config import Config
from vadetective.agent.types import Box
from vadetective.tools.base import FrameSource

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: Most phrases one ``ground`` call accepts (each costs text-encoder work; planners need few).
MAX_PHRASES = 32
#: Longest phrase accepted, in characters.
MAX_PHRASE_CHARS = 200

# GroundingDINO's own demo defaults; OWLv2's scores are calibrated lower (HF default 0.1).
GDINO_BOX_THRESHOLD = 0.35
GDINO_TEXT_THRESHOLD = 0.25
OWLV2_THRESHOLD = 0.1
NMS_IOU = 0.5
MAX_BOXES = 20

_EDGE_PUNCT = " \t\r\n.,;:!?\"'`()[]{}"


# --------------------------------------------------------------------------- shared adapters
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
    from vadetective.tools.video import read_at

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


def gdino_caption(phrases: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The text GroundingDINO expects ("a person. a red bag.") and each phrase's char span.

    Phrases are lowercased (the model's text encoder is uncased) and any '.' or '?' inside a
    phrase becomes a space, since those characters separate phrases for the model.
    """
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for p in phrases:
        text = re.sub(r"\s+", " ", re.sub(r"[.?]", " ", p.lower())).strip()
        spans.append((pos, pos + len(text)))
        parts.append(text)
        pos += len(text) + 2  # ". "
    return ". ".join(parts) + ".", spans


def phrase_scores(
    token_probs: np.ndarray, offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]
) -> np.ndarray:
    """Per-phrase scores from GroundingDINO's per-token probabilities.

    The decoded ``text_labels`` of the post-processing are sub-word fragments that can straddle
    two phrases; attributing by token positions gives each box exactly one of the phrases asked.

    Args:
        token_probs: (Q, T) sigmoid of the logits for Q boxes over T text positions.
        offsets: (start, end) character offsets of each token of the caption (special tokens
            have start == end).
        spans: (start, end) character span of each phrase in the caption.

    Returns:
        (Q, P) array: the highest probability over each phrase's tokens (0 if none).
    """
    q = token_probs.shape[0]
    out = np.zeros((q, len(spans)), dtype=np.float64)
    t_max = token_probs.shape[1]
    for k, (a, b) in enumerate(spans):
        cols = [j for j, (s, e) in enumerate(offsets) if j < t_max and e > s and s >= a and e <= b]
        if cols:
            out[:, k] = token_probs[:, cols].max(axis=1)
    return out


def chunk_phrases(
    phrases: Sequence[str], token_counts: Sequence[int], max_tokens: int
) -> list[list[int]]:
    """Split phrase indices into groups whose caption fits in ``max_tokens`` text positions.

    Each phrase costs its tokens plus one separator; a caption also has [CLS] and [SEP].

    Raises:
        ValueError: When a single phrase is too long for the model's text window.
    """
    budget = max_tokens - 2
    groups: list[list[int]] = []
    used = budget + 1
    for i, n in enumerate(token_counts):
        cost = n + 1
        if cost > budget:
            raise ValueError(
                f"phrase {phrases[i][:40]!r} is {n} tokens long, more than the model reads ({budget}): shorten it"
            )
        if used + cost > budget:
            groups.append([])
            used = 0
        groups[-1].append(i)
        used += cost
    return groups


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


# --------------------------------------------------------------------------- GroundingDINO
class GroundingDinoGrounder:
    """GroundingDINO through transformers (``GroundingDinoForObjectDetection``).

    One forward pass per frame for up to ~60 short phrases (the text window is 256 tokens;
    longer lists are split into several passes). Each box is attributed to the phrase whose
    tokens score highest, and that score is the box's score.
    """

    name = "grounding-dino"

    def __init__(
        self,
        model_id: str = "IDEA-Research/grounding-dino-tiny",
        *,
        device: str = "auto",
        box_threshold: float = GDINO_BOX_THRESHOLD,
        text_threshold: float = GDINO_TEXT_THRESHOLD,
        nms_iou: float = NMS_IOU,
        max_boxes: int = MAX_BOXES,
        max_side: int | None = None,
        profile: str | None = None,
    ) -> None:
        """Configure the backend; the model loads on the first ``ground`` call.

        Args:
            model_id: Hub id or local folder saved with ``save_pretrained``.
            device: ``auto``, ``cpu``, ``cuda[:N]`` or ``mps``.
            box_threshold: Keep a box when its best token probability exceeds this.
            text_threshold: ...and when its best phrase's probability exceeds this.
            nms_iou: Per-phrase NMS IoU (1.0 disables it).
            max_boxes: Most boxes returned per call.
            max_side: Decode frames at most this large (None: native; the processor resizes).
            profile: Profile name, only to word the "pull" hint of a missing model.
        """
        _check_unit("box_threshold", box_threshold)
        _check_unit("text_threshold", text_threshold)
        _check_unit("nms_iou", nms_iou)
        self.model_id = model_id
        self.device_name = device
        self.box_threshold = box_threshold
        self.text_threshold = text_threshold
        self.nms_iou = nms_iou
        self.max_boxes = max_boxes
        self.max_side = max_side
        self.profile = profile
        self._model: Any = None
        self._processor: Any = None
        self._device: str | None = None

    @classmethod
    def from_config(cls, config: Config, **fixed: Any) -> GroundingDinoGrounder:
        """Build from a ``Config`` (model id from ``config.models['grounding-dino']``)."""
        kwargs: dict[str, Any] = {
            "model_id": config.model_id("grounding-dino"),
            "device": config.device,
            "profile": config.profile,
        }
        kwargs.update(fixed)
        return cls(**kwargs)

    def load(self) -> None:
        """Load processor and model (once), offline-first; fail fast when absent."""
        if self._model is not None:
            return
        from vadetective.tools.device import resolve_device
        from vadetective.tools.models import import_or_extra

        transformers = import_or_extra("transformers", "hf", "the grounding-dino grounder")
        import_or_extra("torch", "hf", "the grounding-dino grounder")
        device = resolve_device(self.device_name)
        processor = _load_hf(transformers.AutoProcessor, self.model_id, self.profile)
        model = _load_hf(transformers.GroundingDinoForObjectDetection, self.model_id, self.profile)
        # float32: the deformable attention is not validated in half precision on CPU.
        self._model = model.to(device).eval()
        self._processor = processor
        self._device = device
        log.info("grounding-dino: loaded %s on %s", self.model_id, device)

    def ground(self, source: FrameSource, t_s: float, phrases: Sequence[str]) -> list[Box]:
        """Boxes for ``phrases`` in the frame at ``t_s``, in original-frame pixels, best first.

        Args:
            source: The opened video.
            t_s: Time in seconds.
            phrases: What to look for, e.g. ``["a person", "a bag"]``.

        Returns:
            Boxes labelled with the phrase they match (possibly none).

        Raises:
            ValueError: For unusable phrases or times.
            ModelUnavailableError: When the model is not available offline.
        """
        clean = clean_phrases(phrases)
        frame = read_frame(source, t_s, self.max_side)
        self.load()
        import torch

        tokenizer = self._processor.tokenizer
        counts = [
            len(tokenizer(gdino_caption([p])[0][:-1], add_special_tokens=False)["input_ids"])
            for p in clean
        ]
        max_len = int(getattr(self._model.config, "max_text_len", 256))
        h, w = frame.rgb.shape[:2]
        all_xyxy: list[np.ndarray] = []
        all_scores: list[np.ndarray] = []
        all_labels: list[str] = []
        for group in chunk_phrases(clean, counts, max_len):
            caption, spans = gdino_caption([clean[i] for i in group])
            inputs = self._processor(images=frame.rgb, text=caption, return_tensors="pt").to(
                self._device
            )
            with torch.inference_mode():
                outputs = self._model(**inputs)
            results = self._processor.post_process_grounded_object_detection(
                outputs,
                inputs["input_ids"],
                threshold=self.box_threshold,
                text_threshold=self.text_threshold,
                target_sizes=[(h, w)],
            )[0]
            # The same selection the post-processing made (best token > box_threshold), so the
            # rows line up with its boxes; then attribute each row to one phrase.
            probs = _to_numpy(torch.sigmoid(outputs.logits[0]))
            rows = probs[probs.max(axis=1) > self.box_threshold]
            boxes = _to_numpy(results["boxes"]).reshape(-1, 4)
            if rows.shape[0] != boxes.shape[0]:
                raise RuntimeError(
                    f"grounding-dino post-processing kept {boxes.shape[0]} boxes but {rows.shape[0]} "
                    "queries passed the threshold; the transformers version changed its selection rule"
                )
            offsets = tokenizer(caption, return_offsets_mapping=True)["offset_mapping"]
            per_phrase = phrase_scores(rows, offsets, spans)
            best = per_phrase.argmax(axis=1) if len(spans) else np.zeros(0, dtype=np.int64)
            score = per_phrase[np.arange(len(best)), best] if len(best) else np.zeros(0)
            ok = score > self.text_threshold
            all_xyxy.append(boxes[ok])
            all_scores.append(score[ok])
            all_labels.extend(clean[group[int(k)]] for k in best[ok])
        return make_boxes(
            np.concatenate(all_xyxy) if all_xyxy else np.zeros((0, 4)),
            np.concatenate(all_scores) if all_scores else np.zeros(0),
            all_labels,
            frame,
            nms_iou=self.nms_iou,
            max_boxes=self.max_boxes,
        )


# --------------------------------------------------------------------------- OWLv2
def owlv2_boxes_to_pixels(
    boxes_norm_xyxy: np.ndarray, input_wh: tuple[int, int], padded: bool
) -> np.ndarray:
    """OWLv2 boxes (normalised x1, y1, x2, y2) to pixels of the image given to the processor.

    OWLv2's processor pads the image at the bottom and right to a square before resizing, so
    its normalised coordinates are fractions of the longer side, not of the width and height.

    Args:
        boxes_norm_xyxy: (N, 4) normalised boxes from the post-processing (no target size).
        input_wh: (width, height) of the image given to the processor.
        padded: Whether the processor padded to a square (``image_processor.do_pad``).

    Returns:
        (N, 4) boxes in pixels of that image (not clipped).
    """
    w, h = input_wh
    side = float(max(w, h))
    factor = np.array([side, side, side, side] if padded else [w, h, w, h], dtype=np.float64)
    return np.asarray(boxes_norm_xyxy, dtype=np.float64).reshape(-1, 4) * factor


class Owlv2Grounder:
    """OWLv2 through transformers (``Owlv2ForObjectDetection``): each phrase is one query."""

    name = "owlv2"

    def __init__(
        self,
        model_id: str = "google/owlv2-base-patch16-ensemble",
        *,
        device: str = "auto",
        box_threshold: float = OWLV2_THRESHOLD,
        nms_iou: float = NMS_IOU,
        max_boxes: int = MAX_BOXES,
        max_side: int | None = None,
        profile: str | None = None,
    ) -> None:
        """Configure the backend; the model loads on the first ``ground`` call.

        Args:
            model_id: Hub id or local folder saved with ``save_pretrained``.
            device: ``auto``, ``cpu``, ``cuda[:N]`` or ``mps``.
            box_threshold: Keep a box when its best phrase's probability exceeds this.
            nms_iou: Per-phrase NMS IoU (1.0 disables it).
            max_boxes: Most boxes returned per call.
            max_side: Decode frames at most this large (None: native; the processor resizes).
            profile: Profile name, only to word the "pull" hint of a missing model.
        """
        _check_unit("box_threshold", box_threshold)
        _check_unit("nms_iou", nms_iou)
        self.model_id = model_id
        self.device_name = device
        self.box_threshold = box_threshold
        self.nms_iou = nms_iou
        self.max_boxes = max_boxes
        self.max_side = max_side
        self.profile = profile
        self._model: Any = None
        self._processor: Any = None
        self._device: str | None = None

    @classmethod
    def from_config(cls, config: Config, **fixed: Any) -> Owlv2Grounder:
        """Build from a ``Config`` (model id from ``config.models['owlv2']``)."""
        kwargs: dict[str, Any] = {
            "model_id": config.model_id("owlv2"),
            "device": config.device,
            "profile": config.profile,
        }
        kwargs.update(fixed)
        return cls(**kwargs)

    def load(self) -> None:
        """Load processor and model (once), offline-first; fail fast when absent."""
        if self._model is not None:
            return
        from vadetective.tools.device import resolve_device
        from vadetective.tools.models import import_or_extra

        transformers = import_or_extra("transformers", "hf", "the owlv2 grounder")
        import_or_extra("torch", "hf", "the owlv2 grounder")
        device = resolve_device(self.device_name)
        processor = _load_hf(transformers.Owlv2Processor, self.model_id, self.profile)
        model = _load_hf(transformers.Owlv2ForObjectDetection, self.model_id, self.profile)
        self._model = model.to(device).eval()
        self._processor = processor
        self._device = device
        log.info("owlv2: loaded %s on %s", self.model_id, device)

    def ground(self, source: FrameSource, t_s: float, phrases: Sequence[str]) -> list[Box]:
        """Boxes for ``phrases`` in the frame at ``t_s``, in original-frame pixels, best first.

        Args:
            source: The opened video.
            t_s: Time in seconds.
            phrases: What to look for, e.g. ``["a person", "a bag"]``.

        Returns:
            Boxes labelled with the phrase they match (possibly none).

        Raises:
            ValueError: For unusable phrases or times.
            ModelUnavailableError: When the model is not available offline.
        """
        clean = clean_phrases(phrases)
        frame = read_frame(source, t_s, self.max_side)
        self.load()
        import torch

        queries = [p.lower() for p in clean]
        inputs = self._processor(
            text=[queries], images=frame.rgb, return_tensors="pt", truncation=True
        ).to(self._device)
        with torch.inference_mode():
            outputs = self._model(**inputs)
        result = self._processor.post_process_grounded_object_detection(
            outputs, threshold=self.box_threshold, target_sizes=None, text_labels=[clean]
        )[0]
        padded = bool(getattr(self._processor.image_processor, "do_pad", True))
        xyxy = owlv2_boxes_to_pixels(_to_numpy(result["boxes"]), frame.decoded_wh, padded)
        label_idx = result["labels"].tolist()
        return make_boxes(
            xyxy,
            _to_numpy(result["scores"]),
            [clean[int(i)] for i in label_idx],
            frame,
            nms_iou=self.nms_iou,
            max_boxes=self.max_boxes,
        )


def _load_hf(cls: Any, model_id: str, profile: str | None) -> Any:
    """``cls.from_pretrained(model_id)`` offline-first; a folder that is not a saved model (which
    transformers reports as ``ValueError``) becomes a ``ModelUnavailableError`` too."""
    from vadetective.agent.errors import ModelUnavailableError
    from vadetective.tools.models import hf_from_pretrained

    try:
        return hf_from_pretrained(cls.from_pretrained, model_id, profile)
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ModelUnavailableError(
            f"could not load model {model_id!r} as {cls.__name__} ({first[:200]}): pass a folder "
            "written by save_pretrained or a hub id of that kind of model"
        ) from exc


def _check_unit(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
