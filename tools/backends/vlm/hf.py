"""An in-process vision-language model (transformers): the shared loader, generation, and the
``vlm`` crop inspector.

The model is loaded once per process per (model id, device, dtype) by ``load_vlm``; the local
planner (``vadetective.graphs.planners.local``) and ``VlmInspector`` share it. Nothing heavy is
imported until a model is loaded.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vadetective.agent.core.config import DEFAULT_MODELS, Config
from vadetective.agent.core.types import Box
from vadetective.tools.backends.vlm.crops import CropInspector, crop_facts

# Re-exported: the crop helpers were first defined here.
from vadetective.tools.backends.vlm.crops import CropView as CropView
from vadetective.tools.backends.vlm.crops import crop_for_inspection as crop_for_inspection
from vadetective.tools.backends.vlm.crops import inspection_prompt as inspection_prompt
from vadetective.tools.backends.vlm.crops import read_frame as read_frame
from vadetective.tools.base import FrameSource, Inspection
from vadetective.tools.device import resolve_device, resolve_dtype
from vadetective.tools.models import hf_from_pretrained, import_or_extra

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Loading, once per process


@dataclass(frozen=True)
class VlmBundle:
    """A loaded VLM: the model (eval mode, on its device), its processor, where it runs."""

    model: Any
    processor: Any
    model_id: str
    device: str
    dtype: Any

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)

    @property
    def chat_template(self) -> str:
        """The chat template text ("" when the processor has none)."""
        template = getattr(self.processor, "chat_template", None) or getattr(
            self.tokenizer, "chat_template", None
        )
        if isinstance(template, dict):
            template = template.get("default") or next(iter(template.values()), "")
        return template or ""


_BUNDLES: dict[tuple[str, str, str], VlmBundle] = {}
_LOAD_LOCK = threading.Lock()


def load_vlm(model_id: str, device: str = "auto", dtype: str = "auto") -> VlmBundle:
    """Load ``model_id`` (hub id or local folder) with ``AutoModelForImageTextToText`` and
    ``AutoProcessor``, offline-first; the same arguments return the same bundle for the life of
    the process.

    Raises:
        ModelUnavailableError: the model is neither local nor downloadable.
        MissingExtraError: transformers/torch are not installed.
    """
    import_or_extra("transformers", "hf", "the local vision-language model")
    import_or_extra("PIL", "hf", "the local vision-language model")
    from transformers import AutoModelForImageTextToText, AutoProcessor

    resolved_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, resolved_device)
    key = (model_id, resolved_device, str(torch_dtype))
    with _LOAD_LOCK:  # one load even when two threads ask at once
        bundle = _BUNDLES.get(key)
        if bundle is not None:
            return bundle
        log.info("loading VLM %s on %s (%s)", model_id, resolved_device, torch_dtype)
        processor = hf_from_pretrained(AutoProcessor.from_pretrained, model_id, profile="local")
        model: Any = hf_from_pretrained(
            AutoModelForImageTextToText.from_pretrained,
            model_id,
            profile="local",
            dtype=torch_dtype,
        )
        model = model.to(resolved_device).eval()
        bundle = VlmBundle(model, processor, model_id, resolved_device, torch_dtype)
        _BUNDLES[key] = bundle
        return bundle


def clear_vlm_cache() -> None:
    """Forget every loaded VLM (tests; freeing memory)."""
    with _LOAD_LOCK:
        _BUNDLES.clear()


# --------------------------------------------------------------------------------------------
# Generation


@dataclass(frozen=True)
class Generation:
    """The text a VLM generated and what it cost."""

    text: str
    input_tokens: int
    output_tokens: int
    confidence: float | None = None


def generate(
    bundle: VlmBundle,
    messages: list[dict[str, Any]],
    images: Sequence[Image.Image] = (),
    *,
    tools: list[dict[str, Any]] | None = None,
    max_new_tokens: int = 256,
    stop: Sequence[str] | None = None,
    want_confidence: bool = False,
) -> Generation:
    """Greedy generation for a chat in the transformers format.

    Args:
        bundle: the loaded model.
        messages: ``[{"role": ..., "content": [{"type": "text", ...} | {"type": "image"}]}]``;
            each ``{"type": "image"}`` placeholder takes the next image of ``images``.
        images: the images, in the order of their placeholders.
        tools: OpenAI-format tool schemas passed to the chat template (``tools=``), or None.
        max_new_tokens: generation length limit.
        stop: strings at which the text is cut.
        want_confidence: also return the mean token probability of the generated text (the
            model's own certainty, not a calibrated probability).

    Returns:
        The decoded new text (special tokens removed) and token counts.
    """
    import torch

    processor = bundle.processor
    prompt = processor.apply_chat_template(
        messages, tools=tools, add_generation_prompt=True, tokenize=False
    )
    inputs = processor(text=[prompt], images=list(images) or None, return_tensors="pt")
    model_inputs: dict[str, Any] = {}
    for key, value in inputs.items():
        if isinstance(value, torch.Tensor):
            value = value.to(bundle.device)
            if torch.is_floating_point(value):
                value = value.to(bundle.dtype)
        model_inputs[key] = value
    n_prompt = int(model_inputs["input_ids"].shape[1])
    with torch.inference_mode():
        out = bundle.model.generate(
            **model_inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            output_scores=want_confidence,
            return_dict_in_generate=True,
        )
    sequences = out.sequences if hasattr(out, "sequences") else out
    new_ids = sequences[0, n_prompt:]
    text = bundle.tokenizer.decode(new_ids, skip_special_tokens=True)
    for s in stop or ():
        if s and s in text:
            text = text[: text.index(s)]
    confidence = None
    scores = getattr(out, "scores", None)
    if want_confidence and scores:
        confidence = _mean_token_probability(scores, new_ids, bundle.tokenizer)
    return Generation(text, n_prompt, int(new_ids.shape[0]), confidence)


def _mean_token_probability(scores: Sequence[Any], new_ids: Any, tokenizer: Any) -> float | None:
    import torch

    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    logps: list[float] = []
    for step, logits in enumerate(scores):
        if step >= int(new_ids.shape[0]):
            break
        token = int(new_ids[step])
        if token in special:
            continue
        logp = torch.log_softmax(logits[0].float(), dim=-1)[token]
        if torch.isfinite(logp):
            logps.append(float(logp))
    if not logps:
        return None
    return float(min(1.0, max(0.0, math.exp(sum(logps) / len(logps)))))


# --------------------------------------------------------------------------------------------
# Images


def image_from_block(block: dict[str, Any]) -> Image.Image:
    """A PIL image (RGB) from an OpenAI ``image_url`` block or a LangChain ``image`` block.

    Data URIs and local files are read; remote URLs are refused (nothing is downloaded).
    """
    from PIL import Image

    data: bytes | None = None
    url: str | None = None
    if block.get("type") == "image_url":
        ref = block.get("image_url")
        url = ref.get("url") if isinstance(ref, dict) else ref
    elif block.get("type") == "image":
        if block.get("base64") or block.get("data"):
            data = _b64(str(block.get("base64") or block.get("data")))
        else:
            url = block.get("url") or block.get("path")
    if data is None:
        if not isinstance(url, str) or not url:
            raise ValueError(f"image block without an image: {sorted(block)}")
        if url.startswith("data:"):
            _, _, payload = url.partition(",")
            data = _b64(payload)
        elif url.startswith(("http://", "https://")):
            raise ValueError(
                f"remote image URLs are not fetched; send a data URI instead of {url[:60]}"
            )
        else:
            path = Path(url.removeprefix("file://"))
            if not path.is_file():
                raise ValueError(f"no image file at {path}")
            data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


def _b64(payload: str) -> bytes:
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"image data is not valid base64 ({exc})") from None


def fit_image(img: Image.Image, max_side: int | None) -> Image.Image:
    """Downscale so the longer side is at most ``max_side`` (VLM tokens grow with pixels)."""
    from PIL import Image

    if not max_side or max(img.size) <= max_side:
        return img
    k = max_side / max(img.size)
    size = (max(1, round(img.width * k)), max(1, round(img.height * k)))
    return img.resize(size, Image.Resampling.BICUBIC)


def jpeg_data_uri(image: np.ndarray, quality: int = 90) -> str:
    """An RGB uint8 array as a ``data:image/jpeg;base64,...`` URI."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# --------------------------------------------------------------------------------------------
# The inspector


class VlmInspector(CropInspector):
    """``inspect_crop`` with an in-process VLM: zoom on the box, ask the question about it.

    Args:
        model_id: hub id or local folder of an image-text-to-text model.
        device: ``auto`` (cuda, then mps, then cpu) or an explicit device.
        dtype: ``auto`` (see ``tools.device.resolve_dtype``) or a torch dtype name.
        max_new_tokens: answer length limit (greedy decoding).
        context: margin around the box, as a fraction of its size on each side.
        min_short_side: the crop is upscaled until its shorter side has this many pixels.
        max_long_side: and its longer side at most this many.
        draw_box: draw the box in red on the crop (else its position is described in words).
    """

    name = "vlm"

    def __init__(
        self,
        model_id: str = DEFAULT_MODELS["vlm"],
        *,
        device: str = "auto",
        dtype: str = "auto",
        max_new_tokens: int = 96,
        context: float = 0.5,
        min_short_side: int = 336,
        max_long_side: int = 1008,
        draw_box: bool = True,
    ) -> None:
        self.model_id = model_id
        self.device = device
        self.dtype = dtype
        self.max_new_tokens = max_new_tokens
        self.context = context
        self.min_short_side = min_short_side
        self.max_long_side = max_long_side
        self.draw_box = draw_box

    @classmethod
    def from_config(cls, config: Config, **overrides: Any) -> VlmInspector:
        """The inspector for ``config.model_id("vlm")`` on ``config.device``/``config.dtype``."""
        values: dict[str, Any] = {"device": config.device, "dtype": config.dtype, **overrides}
        return cls(config.model_id("vlm"), **values)

    def inspect(self, source: FrameSource, t_s: float, box: Box, question: str) -> Inspection:
        """Answer ``question`` about ``box`` in the frame nearest to ``t_s``.

        Raises:
            ValueError: ``t_s`` is outside the video or the box outside the frame.
            ModelUnavailableError: the model cannot be loaded.
        """
        from PIL import Image

        view, prompt = self.look(source, t_s, box, question)
        bundle = load_vlm(self.model_id, self.device, self.dtype)
        messages = [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}
        ]
        gen = generate(
            bundle,
            messages,
            [Image.fromarray(view.image)],
            max_new_tokens=self.max_new_tokens,
            want_confidence=True,
        )
        return Inspection(
            answer=gen.text.strip(),
            facts=crop_facts(view, self.model_id, "vlm"),
            confidence=gen.confidence,
            crop=view.image,
        )
