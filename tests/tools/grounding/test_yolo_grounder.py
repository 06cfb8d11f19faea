"""ultralytics backends: closed-set COCO YOLO and YOLO-World, models built from yaml offline."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from vadetective.agent.core.config import Config
from vadetective.agent.core.errors import ConfigError, ModelUnavailableError
from vadetective.tools.backends.grounding import yolo as yolo_mod
from vadetective.tools.backends.grounding.yolo import (
    YoloGrounder,
    classes_for_phrase,
    resolve_weights,
)
from vadetective.tools.base import Grounder
from vadetective.tools.registry import build_grounder

RES = (200, 120)
COCO_SAMPLE = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "bus",
    "truck",
    "backpack",
    "handbag",
    "suitcase",
]
COCO_SAMPLE += [
    "knife",
    "cell phone",
    "sports ball",
    "baseball bat",
    "fire hydrant",
    "dog",
    "cat",
    "horse",
]


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("a person", ("person",)),
        ("a man running", ("person",)),
        ("two women", ("person",)),
        ("pedestrians", ("person",)),
        ("a man holding a knife", ("person",)),  # the first noun decides
        ("a knife in a hand", ("knife",)),
        ("an abandoned bag", ("backpack", "handbag", "suitcase")),
        ("a red car", ("car",)),
        ("cars", ("car",)),
        ("a vehicle", ("car", "truck", "motorcycle", "bus")),
        ("a motorbike", ("motorcycle",)),
        ("someone on a bike", ("person",)),
        ("a bike", ("bicycle",)),
        ("a cell phone", ("cell phone",)),  # two-word class names
        ("a fire hydrant", ("fire hydrant",)),
        ("a ball", ("sports ball",)),
        ("a gun", ()),
        ("fire", ()),
        ("smoke", ()),
    ],
)
def test_phrases_map_to_coco_classes(phrase: str, expected: tuple[str, ...]) -> None:
    assert set(classes_for_phrase(phrase, COCO_SAMPLE)) == set(expected)


def test_synonyms_only_name_classes_the_model_has() -> None:
    assert classes_for_phrase("a bag", ["person", "suitcase"]) == ("suitcase",)
    assert classes_for_phrase("a forklift", ["forklift", "pallet"]) == (
        "forklift",
    )  # custom models


@pytest.fixture(scope="module")
def yolo() -> YoloGrounder:
    # yolo11n.yaml: the real architecture with random weights and numbered classes (COCO order)
    return YoloGrounder("yolo11n.yaml", device="cpu", box_threshold=0.0001, imgsz=160, max_boxes=10)


def test_yolo_ground_contract(
    yolo: YoloGrounder, source: Any, caplog: pytest.LogCaptureFixture
) -> None:
    assert isinstance(yolo, Grounder) and yolo.name == "yolo"
    phrases = ["a person", "an abandoned bag", "a gun"]
    with caplog.at_level(logging.INFO, logger="vadetective.tools.backends.grounding.yolo"):
        boxes = yolo.ground(source, 1.0, phrases)
    assert (
        "no class of yolo11n.yaml matches 'a gun'" in caplog.text
    )  # the unmatched phrase is reported...
    assert boxes  # ...and what matched is returned
    for b in boxes:
        assert b.inside(RES, tolerance_px=0.0)
        assert 0.0 <= b.score <= 1.0
        assert b.label in ("a person", "an abandoned bag")
        assert b.t_s == pytest.approx(1.0)
    assert [b.score for b in boxes] == sorted((b.score for b in boxes), reverse=True)
    assert len(boxes) <= 10
    assert yolo.ground(source, 1.0, phrases) == boxes  # deterministic


def test_yolo_without_any_known_class_says_what_it_knows(yolo: YoloGrounder, source: Any) -> None:
    with pytest.raises(ValueError, match=r"only detects its 80 classes \(person, bicycle"):
        yolo.ground(source, 1.0, ["a gun", "smoke"])
    with pytest.raises(ValueError, match="at least one thing"):
        yolo.ground(source, 1.0, ["", "  "])


def test_yolo_boxes_in_original_pixels_when_decoding_small(yolo: YoloGrounder, source: Any) -> None:
    """The detector sees a 100x60 frame; ultralytics returns its pixels; we scale by 2."""
    seen: dict[str, Any] = {}
    yolo.load()
    real_predict = yolo._model.predict

    def spy(img: np.ndarray, **kw: Any) -> Any:
        seen["shape"] = img.shape
        results = real_predict(img, **kw)
        seen["raw"] = results[0].boxes.xyxy.numpy().copy()
        return results

    yolo._model.predict = spy
    yolo.max_side = 100
    try:
        boxes = yolo.ground(source, 1.0, ["person"])
    finally:
        del yolo._model.predict
        yolo.max_side = None
    assert seen["shape"] == (60, 100, 3)
    assert boxes and all(b.inside(RES, tolerance_px=0.0) for b in boxes)
    scaled = np.clip(seen["raw"] * 2.0, 0, [200, 120, 200, 120])
    for b in boxes:  # every box is a detection of the small frame, times 2
        assert np.abs(scaled - np.array(b.xyxy)).max(axis=1).min() < 1e-3


def test_missing_weights_offline_fail_fast(
    source: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # ultralytics also looks for bare names in the working folder
    with pytest.raises(ModelUnavailableError, match=r"'yolo11n.pt' are not on this machine"):
        YoloGrounder("yolo11n.pt", device="cpu").ground(source, 1.0, ["person"])
    assert resolve_weights(str(tmp_path), "yolo") == str(tmp_path)  # local paths pass through


def test_yolo_world_without_text_encoder_is_unavailable(source: Any) -> None:
    grounder = YoloGrounder("yolov8n-worldv2.yaml", backend="yolo-world", device="cpu", imgsz=160)
    assert grounder.name == "yolo-world"
    with pytest.raises(ModelUnavailableError, match="CLIP text encoder"):
        grounder.ground(source, 1.0, ["a person", "a red bag"])
    with pytest.raises(ConfigError, match="not YOLO-World"):
        YoloGrounder("yolo11n.yaml", backend="yolo-world", device="cpu").ground(
            source, 1.0, ["a person"]
        )


def test_yolo_world_sets_classes_from_phrases(source: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a stand-in for the CLIP text encoder (not installable offline), the rest of the
    YOLO-World path runs for real: classes set once per phrase list, labels are the phrases."""
    import torch

    calls: list[list[str]] = []

    def fake_text_pe(
        text: list[str], batch: int = 80, cache_clip_model: bool = False
    ) -> torch.Tensor:
        calls.append(list(text))
        g = torch.Generator().manual_seed(len(text))
        e = torch.randn(1, len(text), 512, generator=g)
        return e / e.norm(dim=-1, keepdim=True)

    monkeypatch.setattr(yolo_mod, "text_encoder_problem", lambda kind: None)
    grounder = YoloGrounder(
        # random contrastive heads start with a -10 logit bias: scores sit near 4.5e-5
        "yolov8n-worldv2.yaml",
        backend="yolo-world",
        device="cpu",
        box_threshold=0.0,
        imgsz=160,
    )
    grounder.load()
    grounder._model.model.get_text_pe = fake_text_pe
    phrases = ["a person lying down", "a red bag"]
    boxes = grounder.ground(source, 1.0, phrases)
    again = grounder.ground(source, 1.0, phrases)
    assert calls == [phrases]  # encoded once for the same phrase list
    assert boxes == again
    assert boxes and all(b.label in phrases and b.inside(RES, tolerance_px=0.0) for b in boxes)
    assert all(b.label == "a dog" for b in grounder.ground(source, 1.0, ["a dog"]))
    assert calls == [phrases, ["a dog"]]  # a new phrase list is encoded again


def test_registry_and_config(monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config(
        grounder="yolo", device="cpu", models={"yolo": "yolo11n.yaml", "yolo-world": "w.pt"}
    )
    g = build_grounder(config)
    assert isinstance(g, YoloGrounder) and (g.name, g.model_id) == ("yolo", "yolo11n.yaml")
    w = build_grounder(config, "yolo-world")
    assert isinstance(w, YoloGrounder) and (w.name, w.model_id) == ("yolo-world", "w.pt")
    assert g._model is None and w._model is None  # nothing loaded yet
    with pytest.raises(ConfigError, match="'yolo' or 'yolo-world'"):
        YoloGrounder(backend="detr")  # type: ignore[arg-type]
