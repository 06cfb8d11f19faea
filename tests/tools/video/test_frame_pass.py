"""The one pass (``iter_frames``) and the frame cache behind every read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vadetective.tools.video.frame_cache import FrameCache
from vadetective.tools.video.source_base import VideoSource
from vadetective.tools.video.sources import Backend, open_video

Code = Callable[[np.ndarray], int]


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_one_pass_decodes_each_frame_once(
    videos: dict[str, Path], frame_code: Code, backend: Backend
) -> None:
    # long GOP (keyframes at 0 and 100): a sparse pass still decodes sequentially, once
    want = [3, 40, 41, 99, 100, 150, 199]
    with open_video(videos["long_gop_p"], backend=backend) as src:
        frames = list(src.iter_frames(max_side=80, frame_idx=[*want[::-1], 40]))
        assert [f.frame_idx for f in frames] == want
        assert [frame_code(f.image) for f in frames] == want
        assert all(f.image.shape == (48, 80, 3) and f.scale == 2.0 for f in frames)
        assert [f.t_s for f in frames] == [float(src.timestamps[i]) for i in want]
        assert src.frames_decoded == 200  # 0..199, each once: never a keyframe group again


def test_pass_by_rate_and_span(videos: dict[str, Path], frame_code: Code) -> None:
    with open_video(videos["cfr"]) as src:  # 50 frames at 25 fps
        every = [f.frame_idx for f in src.iter_frames(max_side=40)]
        assert every == list(range(50))
        assert src.frames_decoded == 50
        part = list(src.iter_frames(fps=5.0, start_s=0.4, end_s=1.5))
        assert [f.frame_idx for f in part] == [10, 15, 20, 25, 30, 35]
        assert [frame_code(f.image) for f in part] == [10, 15, 20, 25, 30, 35]


def test_reads_after_the_pass_come_from_the_cache(videos: dict[str, Path]) -> None:
    with open_video(videos["long_gop"]) as src:
        assert isinstance(src, VideoSource)  # a file, not a frame folder: it has a cache
        pass_frames = {f.frame_idx: f.image for f in src.iter_frames(max_side=80, fps=5.0)}
        decoded = src.frames_decoded
        again = src.read([150, 10, 5], max_side=80)  # all three were kept by the pass
        assert src.frames_decoded == decoded
        for i, img in zip(again.frame_idx.tolist(), again.frames, strict=True):
            np.testing.assert_array_equal(img, pass_frames[i])
        assert src.cache.hits >= 3
        # another size is not in the cache, but the decoded picture is recent: converted again
        # without decoding anything
        full = src.read([150], max_side=None)
        assert src.frames_decoded == decoded and full.frames.shape[1:] == (96, 160, 3)


def test_cached_frames_are_read_only(videos: dict[str, Path]) -> None:
    with open_video(videos["cfr"]) as src:
        frame = next(iter(src.iter_frames(frame_idx=[4])))
        with pytest.raises(ValueError, match="read-only"):
            frame.image[0, 0, 0] = 7


def test_cache_is_bounded_by_bytes() -> None:
    cache = FrameCache(budget_mb=0.01)  # 10,000 bytes: three 40x30 frames (3,600 bytes each)
    for i in range(5):
        cache.put(i, np.full((30, 40, 3), i, np.uint8))
    assert len(cache) == 2 and cache.nbytes == 7200
    assert cache.get(0, (40, 30)) is None and cache.get(4, (40, 30)) is not None
    cache.get(3, (40, 30))  # used: kept over 4 when the next one comes
    cache.put(5, np.zeros((30, 40, 3), np.uint8))
    assert cache.get(3, (40, 30)) is not None and cache.get(4, (40, 30)) is None
    big = cache.put(9, np.zeros((100, 100, 3), np.uint8))  # larger than the budget: not kept
    assert cache.get(9, (100, 100)) is None and not big.flags.writeable
    with pytest.raises(ValueError, match="budget_mb"):
        FrameCache(budget_mb=-1)


def test_without_cache_or_ring_a_read_decodes_again(
    videos: dict[str, Path], frame_code: Code, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vadetective.tools.video import pyav_source

    monkeypatch.setattr(pyav_source, "RING_MB", 0.0)  # one picture: the last one decoded
    with open_video(videos["long_gop_p"], cache_mb=0) as src:
        assert isinstance(src, VideoSource)
        src.read([10], max_side=80)
        assert src.frames_decoded == 11 and len(src.cache) == 0
        src.read([10], max_side=80)  # still the ring's one picture: free
        assert src.frames_decoded == 11
        src.read([5, 10], max_side=80)  # behind the decoder: back to the keyframe, 0..10
        assert src.frames_decoded == 22
        assert [frame_code(f) for f in src.read([5, 10]).frames] == [5, 10]


def test_frames_nobody_wants_are_skipped_and_the_rest_are_exact(
    videos: dict[str, Path], frame_code: Code
) -> None:
    # B-frames nothing refers to are dropped unless wanted; what is decoded is bit-identical
    with open_video(videos["long_gop"], cache_mb=0) as full:
        every = full.read(list(range(200)), max_side=80)  # all wanted: nothing skipped
        assert full.frames_decoded == 200
    want = [3, 40, 41, 99, 100, 150, 199]
    with open_video(videos["long_gop"], cache_mb=0) as src:
        sparse = list(src.iter_frames(max_side=80, frame_idx=want))
        assert [f.frame_idx for f in sparse] == want
        assert len(want) < src.frames_decoded < 200
        for f in sparse:
            np.testing.assert_array_equal(f.image, every.frames[f.frame_idx])
        # a frame the pass let the decoder drop is decoded when a later read wants it
        later = src.read([42, 45, 151], max_side=80)
        assert later.frame_idx.tolist() == [42, 45, 151]
        for i, img in zip(later.frame_idx.tolist(), later.frames, strict=True):
            assert frame_code(img) == i
            np.testing.assert_array_equal(img, every.frames[i])


def test_decode_mode_follows_the_requested_size_only() -> None:
    from vadetective.tools.video.pyav_source import decode_mode

    assert decode_mode("h264", (640, 360), (320, 180)) == (False, 0)  # 2x: exact
    assert decode_mode("h264", (3840, 2160), (320, 180)) == (True, 0)  # no deblocking
    assert decode_mode("mpeg4", (1920, 1080), (320, 180)) == (True, 2)  # 480x270 decoded
    assert decode_mode("mjpeg", (3840, 2160), (320, 180)) == (True, 3)
    assert decode_mode("mpeg4", (1920, 1080), (1920, 1080)) == (False, 0)


@pytest.mark.parametrize("name", ["long_gop", "mpeg4"])
def test_a_small_read_decodes_fast_and_looks_like_the_exact_one(
    videos: dict[str, Path], frame_code: Code, name: str
) -> None:
    # 160x96 shown at 40x24 (4x smaller): decoded without deblocking (and at half size for
    # MPEG-4); the frames are the right ones and barely differ from the exact frames shrunk
    import cv2

    with open_video(videos[name], cache_mb=0) as src:
        exact = src.read([0, 30, 49], max_side=None).frames
        small = src.read([0, 30, 49], max_side=40)
        assert small.frames.shape == (3, 24, 40, 3)
        for img, ref in zip(small.frames, exact, strict=True):
            shrunk = cv2.resize(ref, (40, 24), interpolation=cv2.INTER_AREA)
            assert np.abs(img.astype(int) - shrunk).mean() < 4.0
        assert [frame_code(f) for f in small.frames] == [0, 30, 49]
        full_again = src.read([30], max_side=None).frames[0]  # back to exact decoding
        np.testing.assert_array_equal(full_again, exact[1])
