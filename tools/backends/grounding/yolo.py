"""Grounding with ultralytics YOLO: closed-set COCO detectors and open-vocabulary YOLO-World.

Two backends share one class:

- ``yolo``: a closed-set detector (default ``yolo11n.pt``, the 80 COCO classes). Phrases are
  mapped to class names through a small synonym table ("a man running" -> person, "a bag" ->
  backpack / handbag / suitcase, "vehicle" -> car / truck / bus / motorcycle). Phrases that map
  to no class are named in a log line and skipped; when none maps, ``ground`` raises a
  ``ValueError`` saying which classes exist, so the planner does not read "no box" as "absent".
- ``yolo-world``: YOLO-World / YOLOE, whose classes are set from the phrases with
  ``set_classes``. That needs the CLIP (or MobileCLIP) text encoder of ultralytics; when it is
  not installed or its weights are not on the machine while offline, ``ground`` fails with a
  ``ModelUnavailableError`` naming what is missing.

The model id is an ultralytics name (``yolo11n.pt``, downloaded by ultralytics into its weights
folder when online), a local ``.pt`` path, or a model ``.yaml`` (random weights: tests only).
Ultralytics ``.pt`` checkpoints are pickles loaded by ultralytics itself: only use files you
trust.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vadetective.agent.core.config import Config
from vadetective.agent.core.errors import ConfigError, ModelUnavailableError
from vadetective.tools.backends.grounding.common import (
    MAX_BOXES,
    NMS_IOU,
    Detections,
    Frame,
    FrameGrounder,
)
from vadetective.tools.device import resolve_device
from vadetective.tools.models import import_or_extra

log = logging.getLogger(__name__)

YoloBackend = Literal["yolo", "yolo-world"]

#: Words (and two-word names) that mean a COCO class; first match in the phrase wins.
_PEOPLE = (
    "person persons people man men woman women pedestrian pedestrians human humans child children "
    "kid kids boy boys girl girls guy guys someone somebody individual adult teenager figure thief "
    "robber burglar shoplifter intruder suspect victim attacker fighter officer policeman worker "
    "driver cyclist rider crowd player"
)
_VEHICLES = ("car", "truck", "bus", "motorcycle")
SYNONYMS: dict[str, tuple[str, ...]] = {
    **{w: ("person",) for w in _PEOPLE.split()},
    **{
        w: ("backpack", "handbag", "suitcase")
        for w in ("bag", "bags", "luggage", "baggage", "package", "parcel")
    },
    "rucksack": ("backpack",),
    "purse": ("handbag",),
    **{w: _VEHICLES for w in ("vehicle", "vehicles", "traffic")},
    **{w: ("car",) for w in ("cars", "sedan", "taxi", "suv", "automobile")},
    "van": ("car", "truck"),
    "lorry": ("truck",),
    **{w: ("motorcycle",) for w in ("motorbike", "motorbikes", "scooter", "moped", "motorcycles")},
    **{w: ("bicycle",) for w in ("bike", "bikes", "bicycles")},
    **{w: ("airplane",) for w in ("plane", "aircraft", "aeroplane")},
    **{w: ("knife",) for w in ("knives", "blade")},
    **{w: ("cell phone",) for w in ("phone", "phones", "cellphone", "smartphone", "mobile phone")},
    "ball": ("sports ball",),
    "bat": ("baseball bat",),
    "hydrant": ("fire hydrant",),
    "table": ("dining table",),
    "plant": ("potted plant",),
    "tv": ("tv",),
    "television": ("tv",),
    "animal": ("dog", "cat", "horse", "bird", "sheep", "cow"),
}


def coco_names() -> list[str]:
    """The 80 COCO class names in ultralytics' order (from its packaged ``coco.yaml``)."""
    from ultralytics.utils import YAML
    from ultralytics.utils.checks import check_yaml

    names = YAML.load(check_yaml("coco.yaml"))["names"]
    return [str(names[i]) for i in sorted(names)]


def classes_for_phrase(phrase: str, class_names: Sequence[str]) -> tuple[str, ...]:
    """The class names a phrase asks for, or ``()`` when the model has none of them.

    Words are scanned left to right (three-, two-, then one-word names at each position); the
    first that is a class name, a plural of one, or a synonym of available classes wins, so the
    head noun usually decides: "a man holding a knife" -> person.
    """
    available = {n.lower(): n for n in class_names}
    words = re.findall(r"[a-z]+", phrase.lower())
    for i in range(len(words)):
        for n in (3, 2, 1):
            if i + n > len(words):
                continue
            gram = " ".join(words[i : i + n])
            for cand in (gram, gram[:-1] if gram.endswith("s") else None):
                if cand and cand in available:
                    return (available[cand],)
            if gram in SYNONYMS:
                hits = tuple(available[c] for c in SYNONYMS[gram] if c in available)
                if hits:
                    return hits
    return ()


class YoloGrounder(FrameGrounder):
    """Boxes from an ultralytics detector; see the module docstring for the two backends.

    ``ground`` raises ``ValueError`` (``yolo``) when no phrase names a class the model knows,
    and ``ModelUnavailableError`` when the weights or YOLO-World's text encoder are missing.
    """

    def __init__(
        self,
        model_id: str = "yolo11n.pt",
        *,
        backend: YoloBackend = "yolo",
        device: str = "auto",
        box_threshold: float = 0.25,
        nms_iou: float = NMS_IOU,
        max_boxes: int = MAX_BOXES,
        imgsz: int = 640,
        max_side: int | None = None,
    ) -> None:
        """Configure the backend; the model loads on the first ``ground`` call.

        Args:
            model_id: ultralytics name (``yolo11n.pt``), local ``.pt`` path or model ``.yaml``.
            backend: ``yolo`` (closed-set, phrases mapped to class names) or ``yolo-world``
                (classes set from the phrases; needs ultralytics' CLIP text encoder).
            device: ``auto``, ``cpu``, ``cuda[:N]`` or ``mps``.
            box_threshold: Minimum detection confidence.
            nms_iou: NMS IoU, per class in ultralytics and again per phrase here.
            max_boxes: Most boxes returned per call.
            imgsz: Inference size (pixels of the longer side) given to ultralytics.
            max_side: Decode frames at most this large (None: native).
        """
        if backend not in ("yolo", "yolo-world"):
            raise ConfigError(f"backend must be 'yolo' or 'yolo-world', got {backend!r}")
        super().__init__(
            model_id,
            device=device,
            box_threshold=box_threshold,
            nms_iou=nms_iou,
            max_boxes=max_boxes,
            max_side=max_side,
        )
        self.name = backend
        self.backend: YoloBackend = backend
        self.imgsz = imgsz
        self._names: list[str] = []  # class names by index
        self._vocabulary: tuple[str, ...] | None = None  # yolo-world: classes currently set

    @classmethod
    def from_config(
        cls, config: Config, backend: YoloBackend = "yolo", **fixed: Any
    ) -> YoloGrounder:
        """Build from a ``Config`` (model id from ``config.models[backend]``)."""
        kwargs: dict[str, Any] = {"model_id": config.model_id(backend), "device": config.device}
        kwargs.update(fixed)
        return cls(backend=backend, **kwargs)

    # ------------------------------------------------------------------ loading
    def _load(self) -> None:
        """Load the ultralytics model; fail fast when its weights cannot be had."""

        ultralytics = import_or_extra("ultralytics", "yolo", f"the {self.backend} grounder")
        path = resolve_weights(self.model_id, self.backend)
        try:
            model = ultralytics.YOLO(path)
        except (ConnectionError, FileNotFoundError) as exc:
            raise ModelUnavailableError(
                f"could not load YOLO model {self.model_id!r} ({exc.__class__.__name__}: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'no detail'}): pass a local "
                f"path in Config.models[{self.backend!r}]"
            ) from exc
        kind = type(model).__name__
        if self.backend == "yolo-world" and kind not in ("YOLOWorld", "YOLOE"):
            raise ConfigError(
                f"{self.model_id!r} is a {kind} model, not YOLO-World or YOLOE: use backend 'yolo' "
                "for it, or a model such as 'yolov8s-worldv2.pt'"
            )
        self._device = resolve_device(self.device_name)
        self._model = model
        self._names = _class_names(model)
        log.info(
            "%s: loaded %s (%s, %d classes) on %s",
            self.backend,
            self.model_id,
            kind,
            len(self._names),
            self._device,
        )

    # ------------------------------------------------------------------ grounding
    def _detect(self, frame: Frame, phrases: list[str]) -> Detections:
        if self.backend == "yolo":
            wanted = self._phrases_to_classes(phrases)
        else:
            self._set_vocabulary(phrases)
            wanted = {i: [p] for i, p in enumerate(phrases)}
        bgr = np.ascontiguousarray(frame.rgb[..., ::-1])  # ultralytics reads numpy arrays as BGR
        result = self._model.predict(
            bgr,
            conf=self.box_threshold,
            iou=self.nms_iou,
            imgsz=self.imgsz,
            device=self._device,
            classes=sorted(wanted),
            max_det=max(self.max_boxes * 3, 50),
            verbose=False,
        )[0]
        det = result.boxes
        xyxy = det.xyxy.detach().float().cpu().numpy().reshape(-1, 4)
        conf = det.conf.detach().float().cpu().numpy().reshape(-1)
        cls = det.cls.detach().cpu().numpy().astype(np.int64).reshape(-1)
        rows: list[int] = []
        labels: list[str] = []
        for i, c in enumerate(cls):
            for phrase in wanted.get(int(c), []):
                rows.append(i)
                labels.append(phrase)
        return Detections(xyxy=xyxy[rows], scores=conf[rows], labels=labels)

    def _phrases_to_classes(self, phrases: Sequence[str]) -> dict[int, list[str]]:
        """Class index -> the phrases that asked for it (closed-set models)."""
        index = {n: i for i, n in enumerate(self._names)}
        wanted: dict[int, list[str]] = {}
        unmatched: list[str] = []
        for p in phrases:
            hits = classes_for_phrase(p, self._names)
            if not hits:
                unmatched.append(p)
            for name in hits:
                wanted.setdefault(index[name], []).append(p)
        if unmatched:
            log.info(
                "%s: no class of %s matches %s; a closed-set model cannot look for that "
                "(the grounding-dino, owlv2 or yolo-world backends can)",
                self.backend,
                self.model_id,
                ", ".join(repr(p) for p in unmatched),
            )
        if not wanted:
            sample = ", ".join(self._names[:12])
            raise ValueError(
                f"{self.model_id} only detects its {len(self._names)} classes ({sample}, ...) and none of "
                f"{list(phrases)!r} is one of them: ask for one of those, or use an open-vocabulary grounder"
            )
        return wanted

    def _set_vocabulary(self, phrases: Sequence[str]) -> None:
        """Make the YOLO-World/YOLOE classes exactly ``phrases`` (text-encoded once per set)."""
        vocab = tuple(phrases)
        if vocab == self._vocabulary:
            return
        if list(vocab) != list(self._names):
            problem = text_encoder_problem(type(self._model).__name__)
            if problem:
                raise ModelUnavailableError(problem)
            self._model.set_classes(list(vocab))
        self._vocabulary = vocab
        self._names = list(vocab)


def _class_names(model: Any) -> list[str]:
    """Class names by index; COCO names for an 80-class model built from yaml (digits only)."""
    raw = model.names
    names = [str(raw[i]) for i in sorted(raw)] if isinstance(raw, dict) else [str(n) for n in raw]
    if len(names) == 80 and all(n.isdigit() for n in names):
        log.info(
            "the model has numbered classes only; assuming the 80 COCO classes in their usual order"
        )
        return coco_names()
    return names


def resolve_weights(model_id: str, backend: str) -> str:
    """Where ultralytics should load ``model_id`` from; fail fast when it cannot be had offline.

    Args:
        model_id: A local path, a model ``.yaml``, or an ultralytics weights name.
        backend: The backend name, for the message.

    Returns:
        A path or name to pass to ``ultralytics.YOLO``.

    Raises:
        ModelUnavailableError: When the weights are neither local nor downloadable.
    """
    p = Path(model_id).expanduser()
    if p.exists():
        return str(p)
    if p.suffix.lower() in {".yaml", ".yml"}:
        log.warning(
            "%s: building %s from its yaml: RANDOM weights, only useful for tests",
            backend,
            model_id,
        )
        return model_id
    from ultralytics.utils import ONLINE, WEIGHTS_DIR

    if (WEIGHTS_DIR / p.name).exists():
        return str(WEIGHTS_DIR / p.name)
    if not ONLINE:
        raise ModelUnavailableError(
            f"YOLO weights {model_id!r} are not on this machine (not a local file, not in {WEIGHTS_DIR}) "
            f"and ultralytics is offline: download {p.name} into {WEIGHTS_DIR} where the internet is "
            f"reachable, or pass a local path in Config.models[{backend!r}]"
        )
    return model_id


def text_encoder_problem(kind: str) -> str | None:
    """Why YOLO-World / YOLOE cannot encode new class names here, or None when it can.

    YOLO-World uses OpenAI CLIP ViT-B/32 and YOLOE MobileCLIP, both through the ``clip`` package
    ultralytics installs from git at run time (which we never let it do) and weights it
    downloads on first use.
    """
    if importlib.util.find_spec("clip") is None:
        return (
            f"{kind} needs ultralytics' CLIP text encoder to turn phrases into classes, and the 'clip' "
            "package is not installed (pip install git+https://github.com/ultralytics/CLIP.git, then "
            "fetch its weights once online); use the grounding-dino, owlv2 or yolo backend meanwhile"
        )
    from ultralytics.utils import ONLINE, WEIGHTS_DIR

    if kind == "YOLOE":
        files = [
            Path("mobileclip_blt.ts"),
            WEIGHTS_DIR / "mobileclip_blt.ts",
            WEIGHTS_DIR / "mobileclip2_b.ts",
        ]
    else:
        files = [WEIGHTS_DIR / "clip" / "ViT-B-32.pt"]
    if not any(f.exists() for f in files) and not ONLINE:
        return (
            f"{kind}'s text encoder weights ({files[-1].name}) are not in {WEIGHTS_DIR} and ultralytics is "
            "offline: run it once where the internet is reachable, or use the grounding-dino, owlv2 or "
            "yolo backend"
        )
    return None
