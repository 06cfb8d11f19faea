"""Grounding with the original GroundingDINO code (package ``groundingdino`` from groundingdino-py).

Install with the ``gdino`` extra. The package predates transformers 5 and needs the small
compatibility shim in ``gdino_compat.py``, applied only while this backend builds its model.

Where the model comes from (``Config.models["groundingdino-py"]``):

- ``"<config.py>::<weights.pth>"``: a local GroundingDINO config file and checkpoint, e.g.
  ``"~/gdino/GroundingDINO_SwinT_OGC.py::~/gdino/groundingdino_swint_ogc.pth"``;
- a local folder holding exactly one config ``.py`` and one checkpoint (``.pth``, ``.pt`` or
  ``.safetensors``);
- a hub repo (default ``ShilongLiu/GroundingDINO``: ``GroundingDINO_SwinT_OGC.cfg.py`` and
  ``groundingdino_swint_ogc.pth``), or ``"<repo>::<config file>::<weights file>"``.

The BERT text encoder comes from ``Config.models["groundingdino-py-text"]`` (a local folder
saved with ``save_pretrained`` or a hub id), else from the config's ``text_encoder_type``
(``bert-base-uncased``), taken from the local Hugging Face cache first.

Safety: the config file is read as literal assignments (``ast``), never executed, and the
checkpoint is loaded with ``torch.load(weights_only=True)`` (or safetensors).
"""

from __future__ import annotations

import ast
import json
import logging
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vadetective.agent.core.config import Config
from vadetective.agent.core.errors import ConfigError, ModelUnavailableError
from vadetective.tools.backends.grounding.common import (
    MAX_BOXES,
    NMS_IOU,
    Detections,
    Frame,
    FrameGrounder,
    check_unit,
    cxcywh_to_xyxy,
    to_numpy,
)
from vadetective.tools.backends.grounding.gdino_compat import build_quietly
from vadetective.tools.backends.grounding.hf import (
    GDINO_BOX_THRESHOLD,
    GDINO_TEXT_THRESHOLD,
    gdino_detections,
)
from vadetective.tools.device import resolve_device
from vadetective.tools.models import hub_reachable, import_or_extra, pull_hint

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

DEFAULT_REPO_FILES = ("GroundingDINO_SwinT_OGC.cfg.py", "groundingdino_swint_ogc.pth")
TEXT_ENCODER_KEY = "groundingdino-py-text"
_WEIGHT_SUFFIXES = (".pth", ".pt", ".safetensors")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------- files
def resolve_model_files(model_id: str, profile: str | None = None) -> tuple[Path, Path]:
    """The (config, checkpoint) files named by ``model_id`` (see the module docstring).

    Raises:
        ModelUnavailableError: When a file is missing locally or cannot be fetched offline.
        ConfigError: When a folder does not hold exactly one config and one checkpoint.
    """
    parts = [p.strip() for p in model_id.split("::")]
    first = Path(parts[0]).expanduser()
    if len(parts) == 2 and (first.exists() or first.suffix in {".py", ".json"}):
        cfg, weights = first, Path(parts[1]).expanduser()
        for kind, path in (("config", cfg), ("checkpoint", weights)):
            if not path.is_file():
                raise ModelUnavailableError(
                    f"groundingdino-py {kind} file {str(path)!r} does not exist: check the path"
                )
        return cfg, weights
    if len(parts) == 1 and first.is_dir():
        cfgs = sorted(p for p in first.iterdir() if p.suffix in {".py", ".json"})
        ckpts = sorted(p for p in first.iterdir() if p.suffix in _WEIGHT_SUFFIXES)
        if len(cfgs) != 1 or len(ckpts) != 1:
            raise ConfigError(
                f"{str(first)!r} should hold one config (.py) and one checkpoint (.pth): found "
                f"{[p.name for p in cfgs]} and {[p.name for p in ckpts]}; pass '<config.py>::<weights.pth>' instead"
            )
        return cfgs[0], ckpts[0]
    if len(parts) in (1, 3) and "/" in parts[0] and not first.exists():
        names = DEFAULT_REPO_FILES if len(parts) == 1 else (parts[1], parts[2])
        repo = parts[0]
        return _hub_file(repo, names[0], profile), _hub_file(repo, names[1], profile)
    raise ModelUnavailableError(
        f"cannot find a groundingdino-py model at {model_id!r}: pass '<config.py>::<weights.pth>', a folder "
        "with both, or a hub repo such as 'ShilongLiu/GroundingDINO'"
    )


def _hub_file(repo: str, filename: str, profile: str | None) -> Path:
    """One file of a hub repo, from the local cache, else downloaded when the hub is reachable."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo, filename, local_files_only=True))
    except (LocalEntryNotFoundError, OSError):
        pass
    if not hub_reachable():
        raise ModelUnavailableError(
            f"{filename} of {repo!r} is not in the local cache and the Hugging Face hub is not reachable: "
            f"run `{pull_hint(repo, profile)}` where the hub is reachable, or pass local files as "
            "'<config.py>::<weights.pth>'"
        )
    return Path(hf_hub_download(repo, filename))


def read_config(path: str | Path) -> dict[str, Any]:
    """A GroundingDINO config as a dict, without executing it.

    ``.py`` configs must consist of ``name = <literal>`` assignments (as the shipped ones do);
    ``.json`` configs are read as JSON.

    Raises:
        ConfigError: When the file holds anything but literal assignments, or is unreadable.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a JSON object of settings")
        return data
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as exc:
        raise ConfigError(f"{path} is not valid Python (line {exc.lineno}): {exc.msg}") from exc
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
                continue
            except ValueError:
                pass
        raise ConfigError(
            f"{path} line {getattr(node, 'lineno', '?')}: only 'name = <literal>' settings are read from "
            "GroundingDINO configs (the file is never executed)"
        )
    if "modelname" not in out:
        raise ConfigError(
            f"{path} does not look like a GroundingDINO config: it sets no 'modelname'"
        )
    return out


def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The model state dict of a GroundingDINO checkpoint, loaded safely.

    Accepts ``{"model": state_dict, ...}`` (the released ``.pth`` files), a bare state dict, or
    a ``.safetensors`` file; strips a ``module.`` prefix.

    Raises:
        ModelUnavailableError: When the file holds objects a weights-only load refuses.
    """
    import torch

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state: Any = load_file(str(path))
    else:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise ModelUnavailableError(
                f"{path} holds more than tensors, which a safe (weights_only) load refuses "
                f"({str(exc).splitlines()[0]}); re-save its state dict from a trusted session: "
                "torch.save({'model': ckpt['model']}, path)"
            ) from exc
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ModelUnavailableError(
            f"{path} does not hold a state dict (got {type(state).__name__})"
        )
    return {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}


def resolve_text_encoder(name: str, profile: str | None = None) -> str:
    """A local folder for the BERT text encoder ``name`` (folder or hub id), offline-first.

    groundingdino-py only accepts the literal ``bert-base-uncased`` (fetched from the hub) or
    an existing folder, so hub ids are resolved to their cached snapshot folder here.

    Raises:
        ModelUnavailableError: When it is neither local, cached, nor downloadable.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    candidates = [name] + (
        [f"google-bert/{name}"] if "/" not in name and name.startswith("bert-") else []
    )
    patterns = ["*.json", "*.txt", "*.safetensors"]
    for repo in candidates:
        try:
            return str(snapshot_download(repo, allow_patterns=patterns, local_files_only=True))
        except (LocalEntryNotFoundError, OSError, ValueError):
            continue
    if not hub_reachable():
        raise ModelUnavailableError(
            f"text encoder {name!r} for groundingdino-py is not in the local cache and the Hugging Face hub "
            f"is not reachable: run `{pull_hint(candidates[-1], profile)}` where it is reachable, or set "
            f"Config.models[{TEXT_ENCODER_KEY!r}] to a local folder"
        )
    return str(snapshot_download(candidates[-1], allow_patterns=patterns))


# --------------------------------------------------------------------------- model
def build_model(cfg: dict[str, Any], text_encoder_dir: str, shim: bool = True) -> Any:
    """Build a GroundingDINO model (random weights) from a config dict and a local BERT folder.

    Gradient checkpointing is turned off (inference only). ``shim=False`` builds without the
    transformers-5 compatibility shim, to show what it fixes.
    """

    import_or_extra("groundingdino", "gdino", "the groundingdino-py grounder")
    from groundingdino.models import build_model as gd_build
    from groundingdino.util.slconfig import SLConfig

    settings = {
        **cfg,
        "text_encoder_type": text_encoder_dir,
        "use_checkpoint": False,
        "use_transformer_ckpt": False,
    }
    args = SLConfig(settings)
    return build_quietly(lambda: gd_build(args), shim=shim)


def preprocess(rgb: np.ndarray, size: int, max_size: int) -> torch.Tensor:
    """The original demo's transform: resize the short side to ``size`` (long side at most
    ``max_size``), scale to [0, 1], normalise with ImageNet statistics. Returns (1, 3, H, W)."""
    import torch
    import torch.nn.functional as F

    h, w = rgb.shape[:2]
    short, long = float(min(w, h)), float(max(w, h))
    target = float(size)
    if long / short * target > max_size:
        target = float(round(max_size * short / long))
    if w < h:
        nw, nh = int(target), int(target * h / w)
    else:
        nh, nw = int(target), int(target * w / h)
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


class GroundingDinoPyGrounder(FrameGrounder):
    """GroundingDINO with the original implementation; same outputs as ``GroundingDinoGrounder``."""

    name = "groundingdino-py"

    def __init__(
        self,
        model_id: str = "ShilongLiu/GroundingDINO",
        *,
        text_encoder: str | None = None,
        device: str = "auto",
        box_threshold: float = GDINO_BOX_THRESHOLD,
        text_threshold: float = GDINO_TEXT_THRESHOLD,
        nms_iou: float = NMS_IOU,
        max_boxes: int = MAX_BOXES,
        image_size: int = 800,
        max_image_size: int = 1333,
        max_side: int | None = None,
        profile: str | None = None,
    ) -> None:
        """Configure the backend; the model loads on the first ``ground`` call.

        Args:
            model_id: ``"<config.py>::<weights.pth>"``, a folder, or a hub repo (module docstring).
            text_encoder: BERT folder or hub id (None: the config's ``text_encoder_type``).
            device: ``auto``, ``cpu``, ``cuda[:N]`` or ``mps``.
            box_threshold: Keep a box when its best token probability exceeds this.
            text_threshold: ...and when its best phrase's probability exceeds this.
            nms_iou: Per-phrase NMS IoU (1.0 disables it).
            max_boxes: Most boxes returned per call.
            image_size: Short side the frame is resized to (the original uses 800).
            max_image_size: Longest side allowed after resizing (the original uses 1333).
            max_side: Decode frames at most this large (None: native).
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
        check_unit("text_threshold", text_threshold)
        if image_size < 32 or max_image_size < image_size:
            raise ValueError(
                f"image_size ({image_size}) must be >= 32 and max_image_size ({max_image_size}) >= image_size"
            )
        self.text_encoder = text_encoder
        self.text_threshold = text_threshold
        self.image_size = image_size
        self.max_image_size = max_image_size
        self.profile = profile

    @classmethod
    def from_config(cls, config: Config, **fixed: Any) -> GroundingDinoPyGrounder:
        """Build from a ``Config``: ``models['groundingdino-py']`` and ``models['groundingdino-py-text']``."""
        kwargs: dict[str, Any] = {
            "model_id": config.model_id("groundingdino-py"),
            "text_encoder": config.models.get(TEXT_ENCODER_KEY),
            "device": config.device,
            "profile": config.profile,
        }
        kwargs.update(fixed)
        return cls(**kwargs)

    def _load(self) -> None:
        """Read the config, build the model with the shim, load the checkpoint."""

        import_or_extra("groundingdino", "gdino", "the groundingdino-py grounder")
        cfg_path, weights_path = resolve_model_files(self.model_id, self.profile)
        cfg = read_config(cfg_path)
        text = self.text_encoder or str(cfg.get("text_encoder_type", "bert-base-uncased"))
        text_dir = resolve_text_encoder(text, self.profile)
        model = build_model(cfg, text_dir)
        state = load_checkpoint(weights_path)
        result = model.load_state_dict(state, strict=False)
        if result.missing_keys:
            log.warning(
                "groundingdino-py: %d weights missing from %s (e.g. %s); those layers keep random values",
                len(result.missing_keys),
                weights_path.name,
                result.missing_keys[0],
            )
        if result.unexpected_keys:
            log.info(
                "groundingdino-py: %d unused entries in %s",
                len(result.unexpected_keys),
                weights_path.name,
            )
        device = resolve_device(self.device_name)
        self._model = model.to(device).eval()
        self._device = device
        log.info("groundingdino-py: loaded %s (text encoder %s) on %s", self.model_id, text, device)

    def _detect(self, frame: Frame, phrases: list[str]) -> Detections:
        import torch

        model = self._model
        image = preprocess(frame.rgb, self.image_size, self.max_image_size).to(self._device)

        def run(caption: str) -> tuple[np.ndarray, np.ndarray]:
            with torch.inference_mode():
                out = model(image, captions=[caption])
            probs = to_numpy(torch.sigmoid(out["pred_logits"][0]))  # (queries, 256)
            boxes = to_numpy(out["pred_boxes"][0])  # (queries, 4) normalised cx, cy, w, h
            keep = probs.max(axis=1) > self.box_threshold
            # GroundingDINO's normalised boxes map straight to the original frame (no padding).
            return probs[keep], cxcywh_to_xyxy(boxes[keep], frame.resolution_wh)

        return gdino_detections(
            phrases,
            model.tokenizer,
            int(model.max_text_len),
            self.text_threshold,
            run,
            in_decoded_pixels=False,
        )
