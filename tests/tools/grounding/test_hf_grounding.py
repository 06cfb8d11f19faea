"""GroundingDINO and OWLv2 through transformers, on tiny random models loaded from folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vadetective.agent.core.config import Config
from vadetective.agent.core.errors import ModelUnavailableError
from vadetective.agent.core.types import Box
from vadetective.tools.backends.grounding.hf import GroundingDinoGrounder, Owlv2Grounder
from vadetective.tools.base import Grounder
from vadetective.tools.registry import build_grounder

RES = (200, 120)  # the fixture video's frame size
PHRASES = ["a person", "a red bag", "a car"]


def _check_boxes(boxes: list[Box], phrases: list[str], t_s: float) -> None:
    assert boxes, "the low thresholds used here should let random weights produce boxes"
    for b in boxes:
        assert b.inside(RES, tolerance_px=0.0), b
        assert 0.0 <= b.score <= 1.0
        assert b.label in phrases
        assert b.t_s == pytest.approx(t_s, abs=0.11)  # the nearest frame at 5 fps
    scores = [b.score for b in boxes]
    assert scores == sorted(scores, reverse=True)


@pytest.fixture(scope="module")
def gdino(tiny_gdino_dir: Path) -> GroundingDinoGrounder:
    return GroundingDinoGrounder(
        str(tiny_gdino_dir), device="cpu", box_threshold=0.05, text_threshold=0.05, max_boxes=10
    )


@pytest.fixture(scope="module")
def owl(tiny_owlv2_dir: Path) -> Owlv2Grounder:
    return Owlv2Grounder(str(tiny_owlv2_dir), device="cpu", box_threshold=0.01, max_boxes=10)


@pytest.mark.parametrize("name", ["gdino", "owl"])
def test_ground_contract_and_determinism(
    name: str, request: pytest.FixtureRequest, source: Any
) -> None:
    grounder = request.getfixturevalue(name)
    assert isinstance(grounder, Grounder)
    boxes = grounder.ground(source, 1.0, PHRASES)
    _check_boxes(boxes, PHRASES, 1.0)
    assert len(boxes) <= 10
    assert grounder.ground(source, 1.0, PHRASES) == boxes  # same frame, same answer


@pytest.mark.parametrize("name", ["gdino", "owl"])
def test_boxes_stay_in_original_pixels_when_decoding_small(
    name: str, request: pytest.FixtureRequest, source: Any
) -> None:
    grounder = request.getfixturevalue(name)
    grounder.max_side = 100  # decode at half size: boxes must still be in 200x120 pixels
    try:
        half = grounder.ground(source, 0.4, PHRASES)
    finally:
        grounder.max_side = None
    _check_boxes(half, PHRASES, 0.4)


@pytest.mark.parametrize("name", ["gdino", "owl"])
def test_phrases_are_validated_before_loading(
    name: str, request: pytest.FixtureRequest, source: Any
) -> None:
    grounder = request.getfixturevalue(name)
    with pytest.raises(ValueError, match="at least one thing"):
        grounder.ground(source, 1.0, [])
    with pytest.raises(ValueError, match="outside the video"):
        grounder.ground(source, 5.0, ["a person"])
    weird = ["", "A PERSON!!", "a person", "🔥 zebra-crossing", "a man. a dog", "x" * 150]
    boxes = grounder.ground(source, 1.0, weird)
    expected = ["A PERSON", "🔥 zebra-crossing", "a man. a dog", "x" * 150]
    assert all(b.label in expected for b in boxes)


def test_gdino_splits_long_phrase_lists(gdino: GroundingDinoGrounder, source: Any) -> None:
    many = [f"a red bag number {'x' * (i % 7 + 1)} {i}" for i in range(32)]
    boxes = gdino.ground(source, 1.0, many)  # ~ 400 tokens: more than one 256-token pass
    assert all(b.label in many for b in boxes)


def _stub_model(real: Any, output: Any) -> Any:
    class Stub:
        config = real.config

        def __call__(self, **inputs: Any) -> Any:
            self.inputs = inputs
            return output

    return Stub()


@pytest.mark.parametrize("max_side", [None, 100])
def test_gdino_attributes_boxes_to_the_phrase_whose_tokens_fire(
    gdino: GroundingDinoGrounder, source: Any, max_side: int | None
) -> None:
    """Known logits and boxes in, exact labels and original pixels out (real processor)."""
    import torch
    from transformers.models.grounding_dino.modeling_grounding_dino import (
        GroundingDinoObjectDetectionOutput,
    )

    gdino.load()
    real = gdino._model
    caption_ids = gdino._processor.tokenizer("a person. a red bag. a car.")["input_ids"]
    # [CLS] a person . a red bag . a car . [SEP]
    logits = torch.full((1, 3, 256), -10.0)
    logits[0, :, len(caption_ids) :] = float("-inf")
    logits[0, 0, 6] = 3.0  # "bag" -> a red bag
    logits[0, 1, 2] = 2.0  # "person" -> a person
    logits[0, 1, 3] = 5.0  # ...its separator fires even more: belongs to no phrase
    boxes = torch.tensor([[[0.5, 0.5, 0.5, 0.5], [0.95, 0.25, 0.3, 0.5], [0.1, 0.1, 0.1, 0.1]]])
    out = GroundingDinoObjectDetectionOutput(logits=logits, pred_boxes=boxes)
    gdino._model = _stub_model(real, out)
    gdino.max_side = max_side
    try:
        got = gdino.ground(source, 1.0, PHRASES)
    finally:
        gdino._model, gdino.max_side = real, None
    assert [b.label for b in got] == ["a red bag", "a person"]
    assert got[0].xyxy == pytest.approx((50.0, 30.0, 150.0, 90.0))
    assert got[0].score == pytest.approx(torch.sigmoid(torch.tensor(3.0)).item())
    assert got[1].xyxy == pytest.approx((160.0, 0.0, 200.0, 60.0))  # clipped at the right edge
    assert got[1].score == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item())


@pytest.mark.parametrize("max_side", [None, 100])
def test_owlv2_maps_padded_square_boxes_back_to_a_non_square_frame(
    owl: Owlv2Grounder, source: Any, max_side: int | None
) -> None:
    """OWLv2 pads 200x120 to a 200x200 square: y fractions are of 200, not of 120."""
    import torch
    from transformers.models.owlv2.modeling_owlv2 import Owlv2ObjectDetectionOutput

    owl.load()
    real = owl._model
    logits = torch.tensor([[[-9.0, 4.0, -9.0], [-9.0, -9.0, -9.0]]])  # query 0 -> "a red bag"
    boxes = torch.tensor([[[0.5, 0.25, 0.5, 0.5], [0.2, 0.2, 0.1, 0.1]]])  # normalised cx, cy, w, h
    owl._model = _stub_model(real, Owlv2ObjectDetectionOutput(logits=logits, pred_boxes=boxes))
    owl.max_side = max_side
    try:
        got = owl.ground(source, 1.0, PHRASES)
    finally:
        owl._model, owl.max_side = real, None
    assert len(got) == 1
    assert got[0].label == "a red bag"
    assert got[0].xyxy == pytest.approx((50.0, 0.0, 150.0, 100.0))
    assert got[0].score == pytest.approx(torch.sigmoid(torch.tensor(4.0)).item())


def test_registry_builds_backends_from_config(
    tiny_gdino_dir: Path, tiny_owlv2_dir: Path, source: Any
) -> None:
    config = Config(
        grounder="owlv2",
        device="cpu",
        models={"owlv2": str(tiny_owlv2_dir), "grounding-dino": str(tiny_gdino_dir)},
    )
    owl = build_grounder(config)
    assert isinstance(owl, Owlv2Grounder) and owl.model_id == str(tiny_owlv2_dir)
    gd = build_grounder(config, "grounding-dino")
    assert isinstance(gd, GroundingDinoGrounder) and gd.name == "grounding-dino"
    assert gd._model is None  # lazy: nothing loaded until the first ground()


@pytest.mark.parametrize("cls", [GroundingDinoGrounder, Owlv2Grounder])
def test_missing_model_offline_fails_fast_with_one_sentence(
    cls: Any, source: Any, tmp_path: Path
) -> None:
    grounder = cls("nobody/no-such-grounder", device="cpu", profile="local")
    with pytest.raises(ModelUnavailableError, match=r"vadetective models pull --profile local"):
        grounder.ground(source, 1.0, ["a person"])
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(ModelUnavailableError, match="could not load model"):
        cls(str(empty), device="cpu").ground(source, 1.0, ["a person"])


def test_thresholds_are_checked() -> None:
    with pytest.raises(ValueError, match="box_threshold"):
        GroundingDinoGrounder(box_threshold=1.5)
    with pytest.raises(ValueError, match="nms_iou"):
        Owlv2Grounder(nms_iou=-0.1)
