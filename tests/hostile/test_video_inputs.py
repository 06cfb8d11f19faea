"""Hostile video inputs (issue 11, the video layer): one row per fault, each input built here
with the FFmpeg command line (CI installs Debian's ``ffmpeg``)."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vadetective.agent.core.errors import NoDecodableFramesError
from vadetective.tools.toolbox import Toolbox
from vadetective.tools.video.sources import open_video


@pytest.fixture(scope="module")
def ffmpeg() -> Callable[..., None]:
    exe = shutil.which("ffmpeg")
    if exe is None:  # not a skip: CI installs it (.ci/run), and a developer should too
        pytest.fail("the ffmpeg command is needed to build these inputs: apt-get install ffmpeg")

    def run(*args: str) -> None:
        subprocess.run([exe, "-v", "error", "-y", *args], check=True, timeout=120)

    return run


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, ffmpeg: Callable[..., None]) -> Path:
    """A 3 s 320x180 H.264 clip: a test pattern with a moving box (real encoder output)."""
    out = tmp_path_factory.mktemp("hostile-video") / "clip.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=320x180:rate=25:duration=3",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", str(out),
    )  # fmt: skip
    return out


# ----------------------------------------------------------------------------- rotation


@pytest.mark.parametrize("rotate", [90, 180, 270])
@pytest.mark.parametrize("backend", ["auto", "pyav", "decord"])
def test_rotated_video_is_read_as_displayed(
    clip: Path, ffmpeg: Callable[..., None], tmp_path: Path, rotate: int, backend: str
) -> None:
    rotated = tmp_path / f"r{rotate}.mp4"
    ffmpeg("-i", str(clip), "-c", "copy", "-metadata:s:v", f"rotate={rotate}", str(rotated))
    shown = tmp_path / "shown.png"  # what FFmpeg itself displays (it applies the matrix)
    ffmpeg("-i", str(rotated), "-frames:v", "1", str(shown))
    import cv2

    png = cv2.imread(str(shown))
    assert png is not None
    want = cv2.cvtColor(png, cv2.COLOR_BGR2RGB)
    with open_video(rotated, backend=backend) as src:  # type: ignore[arg-type]
        h, w = want.shape[:2]
        assert src.info.resolution_wh == (w, h)
        assert src.info.rotation_deg % 180 == rotate % 180
        first = src.read([0]).frames[0]
        assert np.abs(first.astype(int) - want).mean() < 1.0
        small = next(iter(src.iter_frames(max_side=90, frame_idx=[0]))).image
        assert max(small.shape[:2]) == 90 and (small.shape[1] > small.shape[0]) == (w > h)


def test_rotated_video_boxes_lie_in_the_displayed_frame(
    clip: Path, ffmpeg: Callable[..., None], tmp_path: Path
) -> None:
    from vadetective.agent.session import Detective

    rotated = tmp_path / "r90.mp4"
    ffmpeg("-i", str(clip), "-c", "copy", "-metadata:s:v", "rotate=90", str(rotated))
    with Detective(
        rotated, profile="classical", out=tmp_path / "run", cache_dir=str(tmp_path)
    ) as d:
        assert d.info.resolution_wh == (180, 320)
        verdict = d.ask()  # the whole question runs on the rotated file
        found = d.toolbox.ground(1.5, ["object"])  # the test pattern's moving parts
    assert verdict.answer and found.error is None
    boxes = [*found.boxes, *verdict.boxes]
    assert found.boxes, "the motion grounder should find the moving parts of the test pattern"
    assert all(b.inside((180, 320), tolerance_px=0.5) for b in boxes)


# ----------------------------------------------------------------------------- local names


@pytest.mark.parametrize("scheme", ["http", "tcp", "rtmp"])
@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_a_local_name_that_looks_like_a_url_is_opened_as_a_file(
    clip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scheme: str,
    backend: str,
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        name = f"{scheme}:127.0.0.1:{port}"
        shutil.copy(clip, tmp_path / name)
        monkeypatch.chdir(tmp_path)  # the relative name FFmpeg would take for a protocol
        with open_video(name, backend=backend) as src:  # type: ignore[arg-type]
            assert src.info.frame_count == 75 and len(src.read([0, 74])) == 2
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected


# ----------------------------------------------------------------------------- caches


def _toolbox(video: Path, cache: Path, run: Path) -> Toolbox:
    from vadetective.agent.core.config import config_for

    cfg = config_for("classical", cache_dir=str(cache))
    return Toolbox(open_video(video), cfg, run)


def _poison_nan(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: (np.full_like(v, np.nan) if k == "score" else v) for k, v in arrays.items()}


def _poison_short(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v[: max(1, v.size // 2)] for k, v in arrays.items()}


def _poison_range(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: (v + 5.0 if k == "score" else v) for k, v in arrays.items()}


@pytest.mark.parametrize(
    "poison",
    [_poison_nan, _poison_short, _poison_range, None],
    ids=["nan", "implausible-length", "out-of-range", "corrupt-file"],
)
def test_a_bad_cached_timeline_is_a_miss_and_is_recomputed(
    clip: Path,
    tmp_path: Path,
    poison: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None,
) -> None:
    from vadetective.tools.backends.motion.perception import clear_cache
    from vadetective.tools.cache import ArrayCache

    cache_dir = tmp_path / "cache"
    box = _toolbox(clip, cache_dir, tmp_path / "run1")
    good, _, _ = box.timeline()
    box.source.close()
    store = ArrayCache(cache_dir / "arrays")
    entries = [p for p in (cache_dir / "arrays").rglob("*.npz")]
    timeline = [p for p in entries if "__meta_json__" not in np.load(p).files]
    assert len(timeline) == 1
    if poison is None:
        timeline[0].write_bytes(b"PK\x03\x04 not really a zip")
    else:
        store.put(timeline[0].stem, poison(store.get(timeline[0].stem) or {}))
    clear_cache()
    again = _toolbox(clip, cache_dir, tmp_path / "run2")
    raw, _, _ = again.timeline()
    again.source.close()
    assert all(np.isfinite(raw.score)) and raw.score == good.score
    fixed = store.get(timeline[0].stem)
    assert fixed is not None and np.all(np.isfinite(fixed["score"]))


def test_a_corrupt_perception_record_is_recomputed(clip: Path, tmp_path: Path) -> None:
    from vadetective.tools.backends.motion.perception import clear_cache, perceive
    from vadetective.tools.cache import ArrayCache

    store = ArrayCache(tmp_path)
    clear_cache()  # earlier rows analysed the same clip in this process
    with open_video(clip) as src:
        first = perceive(src, cache=store)
    record = next(p for p in tmp_path.rglob("*.npz") if "__meta_json__" in np.load(p).files)
    arrays, meta = store.get_record(record.stem) or ({}, {})
    arrays["raw_speed"] = np.full_like(arrays["raw_speed"], np.nan)
    store.put_record(record.stem, arrays, meta)
    clear_cache()
    with open_video(clip) as src:
        again = perceive(src, cache=store)
        assert again.activity.frames_decoded > 0  # recomputed, not read back
    np.testing.assert_allclose(again.activity.raw["speed"], first.activity.raw["speed"])


# ----------------------------------------------------------------------------- messages


def test_clean_vp9_reads_without_a_damage_warning(
    clip: Path, ffmpeg: Callable[..., None], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    vp9 = tmp_path / "clean.webm"
    ffmpeg("-i", str(clip), "-c:v", "libvpx-vp9", "-deadline", "realtime", "-b:v", "300k", str(vp9))
    with caplog.at_level(logging.INFO), open_video(vp9) as src:
        assert src.info.codec == "vp9"
        assert len(list(src.iter_frames(max_side=160))) == src.info.frame_count == 75
    assert not [r for r in caplog.records if "damaged" in r.getMessage()]


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_no_raw_ffmpeg_log_lines_on_stderr(clip: Path, tmp_path: Path, backend: str) -> None:
    data = bytearray(clip.read_bytes())
    rng = np.random.default_rng(0)
    mid = len(data) // 2
    data[mid : mid + 4000] = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    bad = tmp_path / "damaged.mp4"
    bad.write_bytes(bytes(data))
    code = (  # an explicit decord refuses damage in a sentence; PyAV leaves damaged frames out
        "import sys\nfrom vadetective.agent.core.errors import VideoError\n"
        "from vadetective.tools.video.sources import open_video\n"
        f"s = open_video(sys.argv[1], backend={backend!r})\n"
        "try:\n    s.read(list(range(s.info.frame_count)))\n    list(s.iter_frames(max_side=64))\n"
        "except VideoError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(bad)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "@ 0x" not in done.stderr  # FFmpeg's "[h264 @ 0x55...] error while decoding MB"


def test_mp4_cut_inside_its_index_is_cut_short_not_not_a_video(
    clip: Path, ffmpeg: Callable[..., None], tmp_path: Path
) -> None:
    fast = tmp_path / "faststart.mp4"  # index (moov) first, then the frames
    ffmpeg("-i", str(clip), "-c", "copy", "-movflags", "faststart", str(fast))
    data = fast.read_bytes()
    moov = data.find(b"moov")
    cut = tmp_path / "cut_in_moov.mp4"
    cut.write_bytes(data[: moov + 200])
    with pytest.raises(NoDecodableFramesError, match="cut short inside its index"):
        open_video(cut)


def test_six_frames_over_an_hour_is_not_zero_fps(
    ffmpeg: Callable[..., None], tmp_path: Path
) -> None:
    slow = tmp_path / "slow.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=64x48:rate=1/720", "-frames:v", "6",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(slow),
    )  # fmt: skip
    with open_video(slow) as src:
        info = src.info
        assert info.frame_count == 6 and info.duration_s == pytest.approx(4320.0)
        assert info.fps == pytest.approx(1 / 720)
        assert info.fps_text == "0.00139 fps" and "0.00139 fps" in repr(src)
