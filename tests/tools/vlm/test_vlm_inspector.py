"""inspect_crop with an in-process VLM: the crop geometry, and the inspector on a tiny
random-weight Qwen2.5-VL loaded through from_pretrained(path)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from vadetective.agent.core.config import config_for
from vadetective.agent.core.errors import ModelUnavailableError
from vadetective.agent.core.types import Box
from vadetective.tools.backends.vlm.hf import (
    VlmInspector,
    crop_for_inspection,
    image_from_block,
    inspection_prompt,
    jpeg_data_uri,
    load_vlm,
    read_frame,
)
from vadetective.tools.base import Inspection, Inspector
from vadetective.tools.registry import build_inspector

PERSON = Box(t_s=1.0, xyxy=(100, 60, 140, 180), label="person")


def frame(h: int = 240, w: int = 320) -> np.ndarray:
    f = np.full((h, w, 3), 90, dtype=np.uint8)
    f[60:180, 100:140] = (40, 200, 40)
    return f


# (id, box xyxy, context, expected crop xyxy in original pixels)
CROPS = [
    ("centred-with-half-margins", (100, 60, 140, 180), 0.5, (80, 0, 160, 240)),
    ("no-context-but-min-size", (100, 60, 140, 180), 0.0, (88, 60, 152, 180)),
    ("tiny-box-gets-min-size", (150, 100, 154, 104), 0.5, (120, 70, 184, 134)),
    ("slides-in-at-the-corner", (0, 0, 40, 30), 0.5, (0, 0, 80, 64)),
    ("partly-outside", (300, 200, 400, 300), 0.0, (220, 140, 320, 240)),
    ("larger-than-the-frame", (10, 10, 310, 230), 0.5, (0, 0, 320, 240)),
]


@pytest.mark.parametrize(
    ("xyxy", "context", "expected"), [c[1:] for c in CROPS], ids=[c[0] for c in CROPS]
)
def test_crop_geometry(
    xyxy: tuple[float, float, float, float], context: float, expected: tuple[float, ...]
) -> None:
    view = crop_for_inspection(frame(), Box(t_s=0, xyxy=xyxy), context=context, draw_box=False)
    assert view.crop_xyxy == pytest.approx(expected)
    h, w = view.image.shape[:2]
    assert min(h, w) >= 336 or max(h, w) == 1008  # zoomed to the VLM's working size
    assert view.zoom == pytest.approx(w / (expected[2] - expected[0]), rel=0.02)


def test_crop_content_and_drawn_box() -> None:
    plain = crop_for_inspection(frame(), PERSON, context=0.5, draw_box=False)
    drawn = crop_for_inspection(frame(), PERSON, context=0.5, draw_box=True)
    # The person's green fills the middle of the crop, grey surrounds it.
    h, w = plain.image.shape[:2]
    assert tuple(plain.image[h // 2, w // 2]) == (40, 200, 40)
    assert tuple(plain.image[h // 2, 2]) == (90, 90, 90)
    # The drawn outline is red and sits on the box's edges.
    x1, y1, x2, y2 = (round(v) for v in drawn.box_xyxy)
    assert x1 == pytest.approx(w / 4, abs=2) and x2 == pytest.approx(3 * w / 4, abs=2)
    r, g, b = (int(v) for v in drawn.image[(y1 + y2) // 2, x1 + 1])
    assert r > 200 and g < 50 and b < 50
    assert np.array_equal(drawn.image[h // 2, w // 2], plain.image[h // 2, w // 2])


def test_crop_respects_a_downscaled_frame() -> None:
    """The box is in original pixels; the frame was decoded at half size."""
    half = frame()[::2, ::2]
    view = crop_for_inspection(half, PERSON, frame_scale=2.0, context=0.5, draw_box=False)
    assert view.crop_xyxy == pytest.approx((80, 0, 160, 240))
    h, w = view.image.shape[:2]
    assert tuple(view.image[h // 2, w // 2]) == (40, 200, 40)


def test_box_outside_the_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the 320x240 frame"):
        crop_for_inspection(frame(), Box(t_s=0, xyxy=(400, 10, 500, 60)))


def test_prompt_says_where_to_look() -> None:
    view = crop_for_inspection(frame(), PERSON)
    text = inspection_prompt("Is this person lying down?", view, "person")
    assert (
        "red rectangle" in text
        and "'person'" in text
        and text.endswith("Question: Is this person lying down?")
    )
    undrawn = inspection_prompt(
        "q?", crop_for_inspection(frame(), PERSON, draw_box=False), drawn=False
    )
    assert "25-75% of the image width" in undrawn


def test_images_round_trip_through_data_uris() -> None:
    img = image_from_block({"type": "image_url", "image_url": {"url": jpeg_data_uri(frame())}})
    assert img.size == (320, 240) and img.mode == "RGB"
    with pytest.raises(ValueError, match="not valid base64"):
        image_from_block({"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,@@@"}})


def test_read_frame_picks_the_nearest_frame(scene_source: Any) -> None:
    f, t_s, scale = read_frame(scene_source, 1.04)
    assert t_s == pytest.approx(1.0) and scale == 1.0
    assert int(f[0, 0, 0]) == 10  # frame index 10 at 10 fps
    with pytest.raises(ValueError, match="must lie within the video"):
        read_frame(scene_source, 99.0)


def test_vlm_inspector_on_a_tiny_model(
    tiny_vlm_dirs: dict[str, Path],
    scene_source: Any,
    vlm_kit: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = str(tiny_vlm_dirs["plain"])
    config = config_for("local", models={"vlm": folder}, device="cpu", dtype="float32")
    inspector = build_inspector(config)  # through the registry, as the toolbox builds it
    assert isinstance(inspector, VlmInspector) and isinstance(inspector, Inspector)
    inspector.max_new_tokens = 6
    bundle = load_vlm(folder, "cpu", "float32")
    spy = vlm_kit.GenerateSpy(bundle)  # records, then runs the real generate
    monkeypatch.setattr(bundle.model, "generate", spy)
    result = inspector.inspect(scene_source, 1.0, PERSON, "Is this person lying on the ground?")
    assert isinstance(result, Inspection)
    assert isinstance(result.answer, str)
    assert result.facts["model"] == folder and result.facts["backend"] == "vlm"
    assert result.facts["frame_t_s"] == pytest.approx(1.0)
    assert (result.facts["crop_x1"], result.facts["crop_x2"]) == (80.0, 160.0)
    assert result.confidence is None or 0.0 <= result.confidence <= 1.0
    assert result.crop is not None and min(result.crop.shape[:2]) >= 336
    (call,) = spy.calls
    assert call["do_sample"] is False and call["max_new_tokens"] == 6
    assert call["image_grid_thw"].shape[0] == 1  # the crop became pixel inputs
    prompt = spy.prompt()
    assert "Is this person lying on the ground?" in prompt and "<|vision_start|>" in prompt
    # Greedy decoding is deterministic.
    again = inspector.inspect(scene_source, 1.0, PERSON, "Is this person lying on the ground?")
    assert again.answer == result.answer


def test_confidence_is_the_mean_token_probability(
    tiny_vlm_dirs: dict[str, Path], scene_source: Any
) -> None:
    inspector = VlmInspector(
        str(tiny_vlm_dirs["plain"]), device="cpu", dtype="float32", max_new_tokens=4
    )
    result = inspector.inspect(scene_source, 0.5, PERSON, "What is this?")
    vocab = len(load_vlm(str(tiny_vlm_dirs["plain"]), "cpu", "float32").tokenizer)
    # Random weights: greedy tokens are likelier than uniform, far from certain.
    assert result.confidence is not None
    assert 1.0 / vocab < result.confidence < 0.5


def test_missing_model_is_a_clear_error(tmp_path: Path, scene_source: Any) -> None:
    inspector = VlmInspector("nobody/no-such-vlm", device="cpu")
    with pytest.raises(ModelUnavailableError, match="nobody/no-such-vlm"):
        inspector.inspect(scene_source, 1.0, PERSON, "what?")
