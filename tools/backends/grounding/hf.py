"""Open-vocabulary grounding with transformers: GroundingDINO and OWLv2.

Both backends find boxes for free-text phrases in one frame of a video and return ``Box`` es in
pixels of the ORIGINAL frame, labelled with the phrase they match, best first. The ``ground``
flow and the adapters every grounding backend shares live in ``grounding_common.py`` (and are
re-exported here, where they were first defined); GroundingDINO's captions and per-phrase
scores from its token logits, which ``gdino_py.py`` uses too, live here. Nothing heavy is
imported at module level.

Usage::

    grounder = GroundingDinoGrounder.from_config(config)      # loads nothing yet
    boxes = grounder.ground(source, t_s=3.0, phrases=["a person", "a bag"])
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np

from vadetective.agent.core.config import Config
from vadetective.agent.core.errors import ModelUnavailableError
from vadetective.tools.backends.grounding.common import (
    MAX_BOXES,
    MAX_PHRASE_CHARS,
    MAX_PHRASES,
    NMS_IOU,
    Detections,
    Frame,
    FrameGrounder,
    box_from_grounding_dino,
    check_unit,
    clean_phrases,
    clip_xyxy,
    cxcywh_to_xyxy,
    make_boxes,
    nms,
    read_frame,
    to_numpy,
)
from vadetective.tools.device import resolve_device
from vadetective.tools.models import hf_from_pretrained, import_or_extra

__all__ = [
    "GDINO_BOX_THRESHOLD",
    "GDINO_TEXT_THRESHOLD",
    "MAX_BOXES",
    "MAX_PHRASES",
    "MAX_PHRASE_CHARS",
    "NMS_IOU",
    "OWLV2_THRESHOLD",
    "Frame",
    "GroundingDinoGrounder",
    "Owlv2Grounder",
    "box_from_grounding_dino",
    "chunk_phrases",
    "clean_phrases",
    "clip_xyxy",
    "cxcywh_to_xyxy",
    "gdino_caption",
    "make_boxes",
    "nms",
    "owlv2_boxes_to_pixels",
    "phrase_scores",
    "read_frame",
]

log = logging.getLogger(__name__)

# GroundingDINO's own demo defaults; OWLv2's scores are calibrated lower (HF default 0.1).
GDINO_BOX_THRESHOLD = 0.35
GDINO_TEXT_THRESHOLD = 0.25
OWLV2_THRESHOLD = 0.1


# --------------------------------------------------------------------------- GroundingDINO text
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


def gdino_detections(
    phrases: Sequence[str],
    tokenizer: Any,
    max_text_len: int,
    text_threshold: float,
    run: Callable[[str], tuple[np.ndarray, np.ndarray]],
    *,
    in_decoded_pixels: bool,
) -> Detections:
    """GroundingDINO over as many captions as its text window needs; each box gets one phrase.

    The phrases are split into captions that fit ``max_text_len`` tokens; for each caption,
    ``run`` does one forward pass, and every box it keeps is attributed to the phrase whose
    tokens score highest (``phrase_scores``), that score being the box's score.

    Args:
        phrases: Cleaned phrases (``clean_phrases``).
        tokenizer: The model's text tokenizer (a BERT tokenizer with offset mapping).
        max_text_len: Text positions the model reads (256 for the released models).
        text_threshold: Keep a box when its best phrase's probability exceeds this.
        run: One forward pass for a caption: the (K, T) token probabilities of the K boxes
            that passed the box threshold, and those K boxes (K, 4) in pixel corners.
        in_decoded_pixels: Whether the boxes ``run`` returns are in pixels of the decoded
            frame (else of the original frame).

    Returns:
        The detections of all captions, labelled with the phrases given.

    Raises:
        ValueError: When a single phrase is too long for the text window.
    """
    counts = [
        len(tokenizer(gdino_caption([p])[0][:-1], add_special_tokens=False)["input_ids"])
        for p in phrases
    ]
    all_xyxy: list[np.ndarray] = []
    all_scores: list[np.ndarray] = []
    labels: list[str] = []
    for group in chunk_phrases(phrases, counts, max_text_len):
        caption, spans = gdino_caption([phrases[i] for i in group])
        probs, boxes = run(caption)
        offsets = tokenizer(caption, return_offsets_mapping=True)["offset_mapping"]
        per_phrase = phrase_scores(probs, offsets, spans)
        best = per_phrase.argmax(axis=1)
        score = per_phrase[np.arange(len(best)), best]
        ok = score > text_threshold
        all_xyxy.append(boxes[ok])
        all_scores.append(score[ok])
        labels.extend(phrases[group[int(k)]] for k in best[ok])
    return Detections(
        xyxy=np.concatenate(all_xyxy) if all_xyxy else np.zeros((0, 4)),
        scores=np.concatenate(all_scores) if all_scores else np.zeros(0),
        labels=labels,
        in_decoded_pixels=in_decoded_pixels,
    )


_G = TypeVar("_G", bound="_TransformersGrounder")


class _TransformersGrounder(FrameGrounder):
    """A grounder whose processor and model load with transformers' ``from_pretrained``."""

    #: transformers class names of the processor and the model.
    processor_class: ClassVar[str]
    model_class: ClassVar[str]
    profile: str | None = None  # only words the "pull" hint of a missing model
    _processor: Any = None

    @classmethod
    def from_config(cls: type[_G], config: Config, **fixed: Any) -> _G:
        """Build from a ``Config`` (model id from ``config.models[<backend name>]``)."""
        kwargs: dict[str, Any] = {
            "model_id": config.model_id(cls.name),
            "device": config.device,
            "profile": config.profile,
        }
        kwargs.update(fixed)
        return cls(**kwargs)

    def _load(self) -> None:
        """Load processor and model, offline-first; fail fast when absent."""

        transformers = import_or_extra("transformers", "hf", f"the {self.name} grounder")
        import_or_extra("torch", "hf", f"the {self.name} grounder")
        device = resolve_device(self.device_name)
        processor = _load_hf(
            getattr(transformers, self.processor_class), self.model_id, self.profile
        )
        model = _load_hf(getattr(transformers, self.model_class), self.model_id, self.profile)
        # float32: GroundingDINO's deformable attention is not validated in half precision on CPU.
        self._model = model.to(device).eval()
        self._processor = processor
        self._device = device
        log.info("%s: loaded %s on %s", self.name, self.model_id, device)


# --------------------------------------------------------------------------- GroundingDINO
class GroundingDinoGrounder(_TransformersGrounder):
    """GroundingDINO through transformers (``GroundingDinoForObjectDetection``).

    One forward pass per frame for up to ~60 short phrases (the text window is 256 tokens;
    longer lists are split into several passes). Each box is attributed to the phrase whose
    tokens score highest, and that score is the box's score.
    """

    name = "grounding-dino"
    processor_class = "AutoProcessor"
    model_class = "GroundingDinoForObjectDetection"

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
        super().__init__(
            model_id,
            device=device,
            box_threshold=box_threshold,
            nms_iou=nms_iou,
            max_boxes=max_boxes,
            max_side=max_side,
        )
        self.profile = profile
        check_unit("text_threshold", text_threshold)
        self.text_threshold = text_threshold

    def _detect(self, frame: Frame, phrases: list[str]) -> Detections:
        import torch

        h, w = frame.rgb.shape[:2]

        def run(caption: str) -> tuple[np.ndarray, np.ndarray]:
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
            # rows line up with its boxes (in pixels of the decoded frame).
            probs = to_numpy(torch.sigmoid(outputs.logits[0]))
            rows = probs[probs.max(axis=1) > self.box_threshold]
            boxes = to_numpy(results["boxes"]).reshape(-1, 4)
            if rows.shape[0] != boxes.shape[0]:
                raise RuntimeError(
                    f"grounding-dino post-processing kept {boxes.shape[0]} boxes but {rows.shape[0]} "
                    "queries passed the threshold; the transformers version changed its selection rule"
                )
            return rows, boxes

        return gdino_detections(
            phrases,
            self._processor.tokenizer,
            int(getattr(self._model.config, "max_text_len", 256)),
            self.text_threshold,
            run,
            in_decoded_pixels=True,
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


class Owlv2Grounder(_TransformersGrounder):
    """OWLv2 through transformers (``Owlv2ForObjectDetection``): each phrase is one query."""

    name = "owlv2"
    processor_class = "Owlv2Processor"
    model_class = "Owlv2ForObjectDetection"

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
        super().__init__(
            model_id,
            device=device,
            box_threshold=box_threshold,
            nms_iou=nms_iou,
            max_boxes=max_boxes,
            max_side=max_side,
        )
        self.profile = profile

    def _detect(self, frame: Frame, phrases: list[str]) -> Detections:
        import torch

        queries = [p.lower() for p in phrases]
        inputs = self._processor(
            text=[queries], images=frame.rgb, return_tensors="pt", truncation=True
        ).to(self._device)
        with torch.inference_mode():
            outputs = self._model(**inputs)
        result = self._processor.post_process_grounded_object_detection(
            outputs, threshold=self.box_threshold, target_sizes=None, text_labels=[phrases]
        )[0]
        padded = bool(getattr(self._processor.image_processor, "do_pad", True))
        return Detections(
            xyxy=owlv2_boxes_to_pixels(to_numpy(result["boxes"]), frame.decoded_wh, padded),
            scores=to_numpy(result["scores"]),
            labels=[phrases[int(i)] for i in result["labels"].tolist()],
        )


def _load_hf(cls: Any, model_id: str, profile: str | None) -> Any:
    """``cls.from_pretrained(model_id)`` offline-first; a folder that is not a saved model (which
    transformers reports as ``ValueError``) becomes a ``ModelUnavailableError`` too."""

    try:
        return hf_from_pretrained(cls.from_pretrained, model_id, profile)
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ModelUnavailableError(
            f"could not load model {model_id!r} as {cls.__name__} ({first[:200]}): pass a folder "
            "written by save_pretrained or a hub id of that kind of model"
        ) from exc
