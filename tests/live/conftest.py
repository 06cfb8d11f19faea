"""Fixtures of the live tests: generated clips with a known anomaly (and a normal one), encoded
for streaming, and the real streaming tools they are served with.

The streaming tests need the ``ffmpeg`` program and GStreamer's RTSP server (Debian packages,
installed by ``.ci/run``). Locally a missing tool skips them with the install command; under CI
(``CI`` set) it fails them, so a broken install can never pass as green.
"""

from __future__ import annotations

import os

import pytest
from live_clips import CLIP_S, Clip

from vadetective.agent.live.serve import missing_tools, prepare_clip
from vadetective.agent.synth.scene import generate_scene


def need_streaming_tools(rtsp: bool = False) -> None:
    missing = missing_tools(rtsp=rtsp)
    if not missing:
        return
    msg = "the live streaming tests need " + "; ".join(missing)
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Clip]:
    need_streaming_tools()
    folder = tmp_path_factory.mktemp("live-clips")
    out = {}
    for kind in ("sprint", "fall", "normal"):
        truth = generate_scene(
            folder, kind=kind, seed=1, duration_s=CLIP_S, fps=25.0, resolution_wh=(480, 270)
        )
        out[kind] = Clip(prepare_clip(truth.video_path, folder / f"{kind}.mkv"), list(truth.spans))
    return out


@pytest.fixture()
def rtsp_ready() -> None:
    need_streaming_tools(rtsp=True)
