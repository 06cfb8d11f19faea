"""A folder of frames read as a video: order, timestamps, frame rate and its source, damage."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from vadetective.agent.core.errors import ConfigError, NoDecodableFramesError, NotAVideoError
from vadetective.tools.base import FrameSource
from vadetective.tools.video.folder import (
    DEFAULT_FOLDER_FPS,
    FrameFolderSource,
    frame_files,
    open_frame_folder,
)
from vadetective.tools.video.sources import open_video


def _frame(i: int, wh: tuple[int, int] = (64, 48)) -> np.ndarray:
    """An RGB frame whose pixels encode its index (exact through PNG)."""
    w, h = wh
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[..., 0] = i * 7 % 256
    img[..., 1] = 255 - i
    img[:, : 1 + i % w, 2] = 200
    return img


def _write(folder: Path, n: int, name: str = "{}.png", wh: tuple[int, int] = (64, 48)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / name.format(i)), cv2.cvtColor(_frame(i, wh), cv2.COLOR_RGB2BGR))
    return folder


def test_frames_are_in_natural_order_with_exact_timestamps(tmp_path: Path) -> None:
    folder = _write(tmp_path / "clip", 12)  # 0.png ... 11.png: "10" sorts after "9"
    (tmp_path / "clip" / ".hidden.png").write_bytes(b"junk")
    assert [p.name for p in frame_files(folder)][8:] == ["8.png", "9.png", "10.png", "11.png"]
    with open_video(folder, fps=4.0, fps_source="test convention") as src:
        assert isinstance(src, FrameFolderSource) and isinstance(src, FrameSource)
        info = src.info
        assert (info.frame_count, info.fps, info.duration_s) == (12, 4.0, 3.0)
        assert info.resolution_wh == (64, 48) and info.backend == "folder"
        assert info.fps_source == "test convention" and info.codec == "image sequence (png)"
        assert src.timestamps.tolist() == [i / 4.0 for i in range(12)]
        batch = src.read([10, 2, 2])
        assert batch.frame_idx.tolist() == [2, 10] and batch.t_s.tolist() == [0.5, 2.5]
        assert np.array_equal(batch.frames[1], _frame(10))
        assert src.frames_decoded == 2


def test_one_pass_reads_each_frame_once_at_working_size(tmp_path: Path) -> None:
    folder = _write(tmp_path / "clip", 20, wh=(200, 100))
    src = open_frame_folder(folder, fps=10.0)
    frames = list(src.iter_frames(max_side=100, fps=5.0, start_s=0.4))
    assert [f.frame_idx for f in frames] == [4, 6, 8, 10, 12, 14, 16, 18]
    assert frames[0].image.shape == (50, 100, 3) and frames[0].scale == pytest.approx(2.0)
    assert src.frames_decoded == len(frames)
    chosen = list(src.iter_frames(frame_idx=[7, 3, 3]))  # the one-pass contract's frame_idx
    assert [f.frame_idx for f in chosen] == [3, 7] and src.frames_decoded == len(frames) + 2
    src.close()
    with pytest.raises(Exception, match="closed"):
        src.read([0])


def test_default_frame_rate_is_said_and_recorded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _write(tmp_path / "clip", 3)
    with caplog.at_level(logging.WARNING):
        src = open_video(folder)
    assert src.info.fps == DEFAULT_FOLDER_FPS
    assert src.info.fps_source is not None and "default" in src.info.fps_source
    assert "no frame rate was given" in caplog.text
    assert open_video(folder, fps=10.0).info.fps_source == "given"


def test_the_content_key_depends_on_frames_and_frame_rate(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", 5)
    b = _write(tmp_path / "b", 5)
    cv2.imwrite(str(b / "4.png"), np.zeros((48, 64, 3), np.uint8))
    key = open_video(a, fps=10.0).info.content_hash
    assert key == open_video(tmp_path / "a", fps=10.0).info.content_hash
    assert key != open_video(a, fps=12.0).info.content_hash  # timestamps differ
    assert key != open_video(b, fps=10.0).info.content_hash


def test_grayscale_tif_frames_come_out_rgb(tmp_path: Path) -> None:
    folder = tmp_path / "Test001"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i + 1:03d}.tif"), np.full((158, 238), 40 * i, np.uint8))
    src = open_video(folder, fps=10.0)
    batch = src.read([0, 2])
    assert batch.frames.shape == (2, 158, 238, 3)
    assert batch.frames[1].min() == batch.frames[1].max() == 80


def test_unreadable_and_odd_sized_frames(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = _write(tmp_path / "clip", 6)
    (folder / "3.png").write_bytes(b"not an image")
    cv2.imwrite(str(folder / "5.png"), np.zeros((10, 20, 3), np.uint8))
    src = open_video(folder, fps=5.0)
    with caplog.at_level(logging.WARNING):
        batch = src.read(range(6))
    assert batch.frame_idx.tolist() == [0, 1, 2, 4, 5]  # 3 is left out, like damaged video
    assert batch.frames.shape == (5, 48, 64, 3)  # 5.png was resized to the first frame's size
    assert "could not be read" in caplog.text and "resizing" in caplog.text
    assert [f.frame_idx for f in src.iter_frames()] == [0, 1, 2, 4, 5]


def test_a_stray_file_of_another_type_is_not_a_frame(tmp_path: Path) -> None:
    folder = _write(tmp_path / "clip", 4, name="{:03d}.jpg")
    cv2.imwrite(str(folder / "thumbnail.png"), np.zeros((8, 8, 3), np.uint8))
    assert [p.suffix for p in frame_files(folder)] == [".jpg"] * 4


@pytest.mark.parametrize(
    ("setup", "error", "says"),
    [
        ("empty", NotAVideoError, "is a folder without image frames"),
        ("garbage", NoDecodableFramesError, "could be read"),
        ("fps", ConfigError, "fps must be a positive number"),
    ],
)
def test_bad_folders_raise_one_sentence(
    tmp_path: Path, setup: str, error: type[Exception], says: str
) -> None:
    folder = tmp_path / "clip"
    folder.mkdir()
    fps: float | None = None
    if setup == "garbage":
        for i in range(3):
            (folder / f"{i}.jpg").write_bytes(b"\xff\xd8 broken")
    if setup == "fps":
        _write(folder, 2)
        fps = -1.0
    with pytest.raises(error, match=says) as caught:
        open_video(folder, fps=fps)
    assert "\n" not in str(caught.value)


def test_a_session_analyses_a_frame_folder(tmp_path: Path, small_clip: Path) -> None:
    """analyze(), the session API and every tool read a folder like a video file."""
    from vadetective import Detective

    with open_video(small_clip) as video:
        frames = video.read(range(video.info.frame_count)).frames
        fps = video.info.fps
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:04d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    with Detective(folder, profile="classical", out=tmp_path / "out", fps=fps) as d:
        verdict = d.ask()
        trace = d.last_trace
    assert trace is not None and trace.video is not None
    assert trace.video.backend == "folder" and trace.video.fps == fps
    assert trace.video.fps_source == "given"
    assert verdict.frame_scores is not None and len(verdict.frame_scores) > 0
    assert max(verdict.frame_scores.t_s) <= trace.video.duration_s


@pytest.mark.slow
def test_cli_analyzes_a_frame_folder_with_its_frame_rate(tmp_path: Path, small_clip: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    with open_video(small_clip) as video:
        frames = video.read(range(video.info.frame_count)).frames
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "vadetective", "analyze", str(folder), "--fps", "12",
         "--profile", "classical", "--out", str(out)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"},
        check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "12.0 fps" in r.stdout and "frame rate: --fps flag" in r.stdout
    trace = json.loads((out / "trace.json").read_text())
    assert trace["video"]["fps"] == 12.0 and trace["video"]["fps_source"] == "--fps flag"
    assert trace["video"]["duration_s"] == pytest.approx(len(frames) / 12)
