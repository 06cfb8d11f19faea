"""The adapters every grounding backend shares: phrases, captions, token attribution, boxes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from vadetective.tools.backends.grounding.hf import (
    Frame,
    box_from_grounding_dino,
    chunk_phrases,
    clean_phrases,
    clip_xyxy,
    gdino_caption,
    make_boxes,
    nms,
    owlv2_boxes_to_pixels,
    phrase_scores,
    read_frame,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["a person", "a bag"], ["a person", "a bag"]),
        (
            ["  a   person ", "a person.", "A PERSON"],
            ["a person"],
        ),  # tidy + case-insensitive dedupe
        (["", "  ", "...", "person"], ["person"]),
        ("a person", ["a person"]),  # a bare string is one phrase, not its characters
        (["a man. a dog"], ["a man. a dog"]),  # inner dots are handled by the caption builder
        (["🔥 fire!"], ["🔥 fire"]),
    ],
)
def test_clean_phrases(raw: Any, expected: list[str]) -> None:
    assert clean_phrases(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "at least one thing"),
        (["", " ", "?!"], "at least one thing"),
        ([None], "must be strings"),
        ([3.5], "must be strings"),
        (["x" * 500], "characters long"),
        ([f"thing {i}" for i in range(40)], "at most 32"),
    ],
)
def test_clean_phrases_rejects_with_a_sentence(raw: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        clean_phrases(raw)


def test_caption_spans_point_at_each_phrase() -> None:
    caption, spans = gdino_caption(["A Person", "a red bag?", "a man. a dog"])
    assert caption == "a person. a red bag. a man a dog."
    assert [caption[a:b] for a, b in spans] == ["a person", "a red bag", "a man a dog"]


def test_phrase_scores_take_the_best_token_of_each_phrase() -> None:
    # caption "a person. a red bag." -> [CLS] a person . a red bag . [SEP]
    offsets = [(0, 0), (0, 1), (2, 8), (8, 9), (10, 11), (12, 15), (16, 19), (19, 20), (0, 0)]
    spans = [(0, 8), (10, 19)]
    probs = np.zeros((2, 256))
    probs[0, 2] = 0.9  # "person"
    probs[0, 3] = 0.99  # the separator: belongs to no phrase
    probs[1, 6] = 0.7  # "bag"
    probs[1, 0] = 0.95  # [CLS]: belongs to no phrase
    got = phrase_scores(probs, offsets, spans)
    np.testing.assert_allclose(got, [[0.9, 0.0], [0.0, 0.7]])


def test_chunk_phrases_fits_the_text_window() -> None:
    groups = chunk_phrases(["p0", "p1", "p2", "p3"], [3, 3, 3, 3], max_tokens=10)
    # budget 8 = 10 - [CLS] - [SEP]; each phrase costs 3 + 1 separator
    assert groups == [[0, 1], [2, 3]]
    with pytest.raises(ValueError, match="shorten it"):
        chunk_phrases(["long"], [20], max_tokens=10)


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    xyxy = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=float)
    kept = nms(xyxy, np.array([0.5, 0.9, 0.4]), iou=0.5)
    assert kept.tolist() == [1, 2]
    assert nms(xyxy, np.array([0.5, 0.9, 0.4]), iou=1.0).tolist() == [1, 0, 2]


def test_clip_xyxy_drops_boxes_outside_or_not_finite() -> None:
    raw = np.array([[-5, -5, 50, 40], [210, 10, 260, 50], [10, 10, np.nan, 20], [10, 10, 10.5, 20]])
    out, keep = clip_xyxy(raw, (200, 120))
    assert keep.tolist() == [True, False, False, False]
    assert out[0].tolist() == [0, 0, 50, 40]


def test_box_from_grounding_dino_maps_normalised_centre_boxes_to_pixels() -> None:
    box = box_from_grounding_dino(
        [0.5, 0.5, 0.5, 0.5], (200, 120), t_s=1.0, label="a person", score=0.8
    )
    assert box is not None
    assert box.xyxy == (50.0, 30.0, 150.0, 90.0)
    assert (box.label, box.score, box.t_s) == ("a person", 0.8, 1.0)
    edge = box_from_grounding_dino([0.95, 0.5, 0.2, 0.2], (200, 120), t_s=0.0, score=1.3)
    assert edge is not None and edge.xyxy[2] == 200.0 and edge.score == 1.0  # clipped, clamped
    assert box_from_grounding_dino([1.5, 0.5, 0.2, 0.2], (200, 120), t_s=0.0) is None


def test_owlv2_boxes_are_fractions_of_the_padded_square() -> None:
    norm = np.array([[0.5, 0.0, 1.0, 0.5]])
    # 200x100 frame padded (bottom) to 200x200: y fractions are of 200, not 100
    assert owlv2_boxes_to_pixels(norm, (200, 100), padded=True).tolist() == [[100, 0, 200, 100]]
    assert owlv2_boxes_to_pixels(norm, (200, 100), padded=False).tolist() == [[100, 0, 200, 50]]
    # portrait frames pad on the right
    assert owlv2_boxes_to_pixels(norm, (100, 200), padded=True).tolist() == [[100, 0, 200, 100]]


def test_make_boxes_scales_to_the_original_frame_and_sorts() -> None:
    frame = Frame(
        rgb=np.zeros((60, 100, 3), np.uint8), t_s=0.4, scale=2.0, resolution_wh=(200, 120)
    )
    boxes = make_boxes(
        np.array([[10, 10, 20, 20], [11, 10, 20, 20], [50, 20, 120, 70]], dtype=float),
        np.array([0.3, 0.6, 0.9]),
        ["a bag", "a bag", "a person"],
        frame,
    )
    assert [b.label for b in boxes] == ["a person", "a bag"]  # duplicate bag suppressed
    assert boxes[0].xyxy == (100.0, 40.0, 200.0, 120.0)  # x2 240 clipped to the width
    assert boxes[1].xyxy == (22.0, 20.0, 40.0, 40.0)
    assert all(b.t_s == 0.4 for b in boxes)
    assert make_boxes(np.zeros((0, 4)), np.zeros(0), [], frame) == []


def test_read_frame_gives_exact_time_and_scale(source: Any) -> None:
    frame = read_frame(source, 1.0, max_side=100)
    assert frame.rgb.shape == (60, 100, 3)
    assert frame.scale == pytest.approx(2.0)
    assert frame.resolution_wh == (200, 120)
    assert frame.t_s == pytest.approx(1.0)
    for bad in (-1.0, 99.0, float("nan")):
        with pytest.raises(ValueError, match="t_s"):
            read_frame(source, bad)
