"""Fixtures shared by the VLM tests (tests/tools/vlm) and the planner tests
(tests/graphs/planners): a tiny random-weight VLM saved to disk, a scripted OpenAI-compatible
server, and a FrameSource fake over synthetic frames.

Not a test module: each conftest loads it by path with ``load_sibling`` and re-exports the
fixtures (pytest collects fixtures from a conftest's namespace).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from vadetective.agent.core.types import VideoInfo
from vadetective.tools.base import Frame, FrameBatch
from vadetective.tools.video.sampling import iter_frames_by_reading

HERE = Path(__file__).resolve().parent


def load_sibling(name: str) -> ModuleType:
    """Import ``tests/tools/vlm/<name>.py`` once per process under a unique module name."""
    key = f"vadetective_tests_vlm_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


tiny_vlm = load_sibling("tiny_vlm")
fake_openai_server = load_sibling("fake_openai_server")
Reply = fake_openai_server.Reply
FakeOpenAIServer = fake_openai_server.FakeOpenAIServer
closed_port_url = fake_openai_server.closed_port_url


class FakeSource:
    """A FrameSource over in-memory frames at a constant frame rate."""

    def __init__(self, frames: np.ndarray, fps: float = 10.0) -> None:
        self.frames = frames
        self.fps = fps
        self._decoded = 0
        n, h, w = frames.shape[:3]
        self._info = VideoInfo(
            path="synthetic.mp4",
            fps=fps,
            frame_count=n,
            duration_s=n / fps,
            resolution_wh=(w, h),
            content_hash="synthetic",
        )

    @property
    def info(self) -> VideoInfo:
        return self._info

    @property
    def timestamps(self) -> np.ndarray:
        return np.arange(self.frames.shape[0]) / self.fps

    @property
    def frames_decoded(self) -> int:
        return self._decoded

    def iter_frames(
        self,
        max_side: int | None = None,
        fps: float | None = None,
        start_s: float = 0.0,
        end_s: float | None = None,
        frame_idx: Sequence[int] | np.ndarray | None = None,
    ) -> Iterator[Frame]:
        return iter_frames_by_reading(self, max_side, fps, start_s, end_s, frame_idx)

    def read(self, frame_idx: Sequence[int], max_side: int | None = None) -> FrameBatch:
        idx = np.unique(np.asarray(frame_idx, dtype=np.int64))
        self._decoded += int(idx.size)
        frames = self.frames[idx]
        scale = 1.0
        if max_side and max(frames.shape[1:3]) > max_side:
            step = int(np.ceil(max(frames.shape[1:3]) / max_side))
            frames = frames[:, ::step, ::step]
            scale = float(step)
        return FrameBatch(frames=frames, t_s=idx / self.fps, frame_idx=idx, scale=scale)

    def close(self) -> None:
        return None


def synthetic_frames(n: int = 20, hw: tuple[int, int] = (240, 320)) -> np.ndarray:
    """Grey frames with a green 'person' rectangle at (100, 60)-(140, 180) and the frame
    index written into pixel (0, 0), so a test can tell which frame was read."""
    h, w = hw
    frames = np.full((n, h, w, 3), 90, dtype=np.uint8)
    frames[:, 60:180, 100:140] = (40, 200, 40)
    frames[:, 0, 0, 0] = np.arange(n, dtype=np.uint8)
    return frames


@pytest.fixture(scope="session")
def tiny_vlm_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two saved tiny VLMs: ``tools`` (a chat template that renders tools) and ``plain``."""
    import torch

    torch.set_flush_denormal(True)
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny-vlm")
    return {
        "tools": tiny_vlm.build_tiny_vlm(root / "tools", tiny_vlm.TOOLS_TEMPLATE),
        "plain": tiny_vlm.build_tiny_vlm(root / "plain", tiny_vlm.PLAIN_TEMPLATE),
    }


@pytest.fixture
def fake_server() -> Iterator[Any]:
    """A started scripted OpenAI-compatible server on 127.0.0.1 (stopped after the test)."""
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def scene_source() -> FakeSource:
    return FakeSource(synthetic_frames())


class GenerateSpy:
    """Stands in for ``model.generate``: records its inputs and either answers scripted texts
    (encoded with the model's own tokenizer, then decoded by the code under test) or calls
    the real ``generate``."""

    def __init__(self, bundle: Any, texts: Sequence[str] | None = None) -> None:
        self.bundle = bundle
        self.real = bundle.model.generate
        self.texts = list(texts) if texts is not None else None
        self.calls: list[dict[str, Any]] = []

    def prompt(self, i: int = -1) -> str:
        """The decoded prompt of call ``i`` (special tokens kept)."""
        ids = self.calls[i]["input_ids"][0]
        return str(self.bundle.tokenizer.decode(ids, skip_special_tokens=False))

    def __call__(self, **kwargs: Any) -> Any:
        import torch

        self.calls.append(kwargs)
        if self.texts is None:
            return self.real(**kwargs)
        text = self.texts[min(len(self.calls), len(self.texts)) - 1]
        new = self.bundle.tokenizer.encode(text, add_special_tokens=False)
        ids = torch.cat([kwargs["input_ids"], torch.tensor([new], dtype=torch.long)], dim=1)

        class Out:
            sequences = ids
            scores = None

        return Out()
