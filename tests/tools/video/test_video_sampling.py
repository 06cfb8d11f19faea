"""Sampling helpers: pure functions of the frame timestamps (table-driven), plus read_at."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vadetective.agent.core.types import TimeSpan
from vadetective.tools.video.sampling import (
    indices_at_fps,
    indices_in_span,
    nearest_indices,
    read_at,
    uniform_indices,
)
from vadetective.tools.video.sources import open_video

CFR_25 = np.arange(250) / 25  # 10 s at 25 fps
VFR = np.array([0.0, 0.04, 0.08, 0.2, 0.21, 0.22, 0.4, 1.0, 1.033, 1.066])


@pytest.mark.parametrize(
    ("n_frames", "n", "expected"),
    [
        (100, 4, [12, 37, 62, 87]),
        (10, 3, [1, 5, 8]),
        (5, 5, [0, 1, 2, 3, 4]),
        (5, 9, [0, 1, 2, 3, 4]),
        (5, 0, []),
        (0, 3, []),
    ],
)
def test_uniform_indices(n_frames: int, n: int, expected: list[int]) -> None:
    assert uniform_indices(np.arange(n_frames) / 25, n).tolist() == expected


@pytest.mark.parametrize(
    ("t_s", "expected"),
    [
        ([0.0, 0.04, 0.039, 0.041], [0, 1, 1, 1]),
        ([0.02], [0]),  # a tie goes to the earlier frame
        ([-3.0, 99.0], [0, 249]),  # outside the video: its ends
        ([9.96, 0.0, 5.0], [249, 0, 125]),  # order kept, not sorted
    ],
)
def test_nearest_indices_cfr(t_s: list[float], expected: list[int]) -> None:
    assert nearest_indices(CFR_25, t_s).tolist() == expected


def test_nearest_indices_vfr_and_degenerate() -> None:
    assert nearest_indices(VFR, [0.3, 0.32, 0.69, 0.71, 2.0]).tolist() == [5, 6, 6, 7, 9]
    assert nearest_indices([1.5], [0.0, 9.0]).tolist() == [0, 0]
    with pytest.raises(ValueError, match="no frames"):
        nearest_indices([], [1.0])


def test_indices_at_fps_whole_video() -> None:
    idx = indices_at_fps(CFR_25, 2.0)
    assert idx.size == 20  # 10 s at 2 fps
    np.testing.assert_allclose(CFR_25[idx], np.arange(20) * 0.5, atol=0.5 / 25)
    # faster than the video: every frame once
    assert indices_at_fps(CFR_25, 100.0).tolist() == list(range(250))
    with pytest.raises(ValueError, match="fps must be a positive"):
        indices_at_fps(CFR_25, 0)


@pytest.mark.parametrize(
    ("span", "fps", "expected"),
    [
        (TimeSpan(start_s=2.0, end_s=4.0), 1.0, [50, 75]),
        (TimeSpan(start_s=2.0, end_s=2.5), 4.0, [50, 56]),
        (TimeSpan(start_s=9.9, end_s=30.0), 1.0, [248, 249]),  # clipped to the frames inside
    ],
)
def test_indices_at_fps_in_span(span: TimeSpan, fps: float, expected: list[int]) -> None:
    assert indices_at_fps(CFR_25, fps, span).tolist() == expected


def test_indices_at_fps_vfr_uses_real_times() -> None:
    # 5 fps over a VFR clip: samples at 0, .2, .4, .6, .8, 1.0 (duration ~1.1 s)
    assert indices_at_fps(VFR, 5.0).tolist() == [0, 3, 6, 7]


@pytest.mark.parametrize(
    ("span", "count", "expected"),
    [
        (TimeSpan(start_s=0.0, end_s=10.0), 4, [31, 94, 156, 219]),
        (TimeSpan(start_s=1.0, end_s=1.3), 3, [26, 29, 31]),
        (TimeSpan(start_s=1.0, end_s=1.05), 10, [25, 26]),  # only two frames inside
        (TimeSpan(start_s=1.0, end_s=2.0), 0, []),
    ],
)
def test_indices_in_span(span: TimeSpan, count: int, expected: list[int]) -> None:
    assert indices_in_span(CFR_25, span, count).tolist() == expected


def test_span_between_two_frames_gives_the_nearest_frame() -> None:
    span = TimeSpan(start_s=0.5, end_s=0.8)  # no VFR frame lies in (0.4, 1.0)
    assert indices_in_span(VFR, span, 3).tolist() == [6]
    assert indices_at_fps(VFR, 10.0, span).tolist() == [6]


def test_helpers_accept_a_source_and_read_at_sorts_and_dedupes(
    videos: dict[str, Path], frame_code: Callable[[np.ndarray], int]
) -> None:
    with open_video(videos["cfr"]) as src:
        assert uniform_indices(src, 5).tolist() == [5, 15, 25, 35, 45]
        assert indices_at_fps(src, 1.0).tolist() == [0, 25]
        batch = read_at(src, [1.0, 0.2, 1.01, 0.0], max_side=80)
        assert batch.frame_idx.tolist() == [0, 5, 25]
        assert batch.t_s.tolist() == pytest.approx([0.0, 0.2, 1.0])
        assert [frame_code(f) for f in batch.frames] == [0, 5, 25]
        assert batch.frames.shape[1:] == (48, 80, 3) and batch.scale == 2.0


@pytest.mark.parametrize("backend", ["pyav", "decord"])
@pytest.mark.parametrize(
    ("fps", "start_s", "end_s", "expected"),
    [
        (None, 0.0, None, list(range(50))),
        (5.0, 0.0, None, list(range(0, 50, 5))),
        (None, 1.0, 1.2, [25, 26, 27, 28, 29, 30]),
        (10.0, 0.4, 0.9, [10, 12, 15, 17, 20]),  # 0.7 s lies between frames 17 and 18
    ],
)
def test_iter_frames_is_one_ordered_pass_at_working_resolution(
    videos: dict[str, Path],
    frame_code: Callable[[np.ndarray], int],
    backend: str,
    fps: float | None,
    start_s: float,
    end_s: float | None,
    expected: list[int],
) -> None:
    with open_video(videos["cfr"], backend=backend) as src:  # type: ignore[arg-type]
        frames = list(src.iter_frames(max_side=80, fps=fps, start_s=start_s, end_s=end_s))
    assert [f.frame_idx for f in frames] == expected
    assert [frame_code(f.image) for f in frames] == expected  # the pixels are those frames
    assert [f.t_s for f in frames] == pytest.approx([i / 25 for i in expected])
    assert all(f.image.shape == (48, 80, 3) and f.scale == 2.0 for f in frames)
