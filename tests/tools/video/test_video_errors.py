"""Bad input gets a typed error with one clear sentence; damaged files are read up to where
they stop decoding, with a warning that says where."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vadetective.agent.core.errors import (
    ConfigError,
    EmptyVideoError,
    NoDecodableFramesError,
    NotAVideoError,
    UnsupportedCodecError,
    VideoError,
    VideoNotFoundError,
)
from vadetective.tools.video.sources import Backend, open_video

Code = Callable[[np.ndarray], int]


@pytest.mark.parametrize(
    ("name", "error", "says"),
    [
        ("missing", VideoNotFoundError, "does not exist"),
        ("folder", NotAVideoError, "is a folder without image frames"),
        ("empty.mp4", EmptyVideoError, "is empty (0 bytes)"),
        ("text.mp4", NotAVideoError, "is not a video FFmpeg can read"),
        ("random.mp4", NotAVideoError, "is not a video FFmpeg can read"),
        ("image", NotAVideoError, "is a still image"),
        ("audio_only", NotAVideoError, "has no video stream (it holds audio)"),
        ("unknown_codec", UnsupportedCodecError, "codec this FFmpeg build cannot decode"),
        ("raw.h264", UnsupportedCodecError, "raw h264 stream without timestamps"),
        ("all_garbage", NoDecodableFramesError, "none of its 200 frames can be decoded"),
        ("cut_no_index", NoDecodableFramesError, "before its index (moov box) was written"),
    ],
)
@pytest.mark.parametrize("backend", ["auto", "pyav"])
def test_bad_input_raises_one_clear_sentence(
    damaged: dict[str, Path], name: str, error: type[VideoError], says: str, backend: Backend
) -> None:
    path = damaged[name]
    with pytest.raises(error) as caught:
        open_video(path, backend=backend)
    message = str(caught.value)
    assert says in message
    assert path.name in message  # names the file
    assert "\n" not in message and message.endswith(".")
    assert "; " in message  # what was wrong; what to do


def test_unknown_backend_is_a_config_error(damaged: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="choose auto, decord or pyav"):
        open_video(damaged["missing"], backend="ffmpeg")  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["auto", "pyav"])
def test_cut_file_is_read_up_to_its_last_decodable_frame(
    damaged: dict[str, Path], frame_code: Code, caplog: pytest.LogCaptureFixture, backend: Backend
) -> None:
    with caplog.at_level(logging.WARNING, logger="vadetective.tools.video.sources"):
        src = open_video(damaged["cut_faststart"], backend=backend)
    with src:
        info = src.info
        assert 90 < info.frame_count < 140  # 60 % of the bytes of a 200-frame file
        assert info.truncated_at_s == pytest.approx(info.frame_count / 25)
        assert info.duration_s == info.truncated_at_s
        warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
        assert f"decoding stops at {info.truncated_at_s:.2f} s" in warning
        assert f"frame {info.frame_count} of the 200" in warning
        last = info.frame_count - 1
        batch = src.read([0, last - 30, last])
        assert [frame_code(f) for f in batch.frames] == [0, last - 30, last]
        with pytest.raises(IndexError):
            src.read([info.frame_count])


def test_explicit_decord_refuses_a_file_it_cannot_read(damaged: dict[str, Path]) -> None:
    with pytest.raises(VideoError, match=r"decord cannot read .*backend='auto' or 'pyav'"):
        open_video(damaged["cut_faststart"], backend="decord")


@pytest.mark.parametrize("backend", ["auto", "pyav"])
def test_garbage_in_the_middle_is_skipped_with_a_warning(
    damaged: dict[str, Path], frame_code: Code, caplog: pytest.LogCaptureFixture, backend: Backend
) -> None:
    with open_video(damaged["garbage_middle"], backend=backend) as src:
        n = src.info.frame_count
        assert n == 200 and src.info.truncated_at_s is None  # the index is intact
        with caplog.at_level(logging.WARNING, logger="vadetective.tools.video.sources"):
            batch = src.read(range(n))
        got = batch.frame_idx.tolist()
        assert 100 <= len(got) < n  # a damaged stretch is left out, the rest decodes
        assert got[0] == 0 and got[-1] == n - 1  # decoding resumes after the damage
        missing = sorted(set(range(n)) - set(got))
        # garbage that still parses leaves no trace on the frame just before the stretch
        # FFmpeg rejects; every other frame must be exactly itself
        clean = [
            (i, f)
            for i, f in zip(got, batch.frames, strict=True)
            if i < missing[0] - 1 or i > missing[-1]
        ]
        assert len(clean) >= len(got) - 1
        assert [frame_code(f) for _, f in clean] == [i for i, _ in clean]
        assert any("could not be decoded" in r.getMessage() for r in caplog.records)
        # asking again for a damaged frame neither crashes nor returns a wrong frame
        again = src.read([missing[0], n - 1])
        assert again.frame_idx.tolist() == [n - 1]
        assert src.info.backend == "pyav"  # decord, if tried, crashed here and handed over
