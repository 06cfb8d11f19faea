"""Tiny random-weight CLIP and SigLIP models (built from configs, saved with save_pretrained and
loaded back through the same ``from_pretrained(path)`` code users run) and an in-memory frame
source.

The tokenizers are built locally too: a byte-level BPE with no merges for CLIP (every character
is a token, exactly the CLIP pre-tokenisation) and a word-level ``tokenizers`` model for SigLIP
(the real one is SentencePiece, which is not installed here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vadetective.agent.core.types import VideoInfo
from vadetective.tools.base import Frame, FrameBatch
from vadetective.tools.prompt_bank import default_bank
from vadetective.tools.video.sampling import iter_frames_by_reading

IMAGE_SIZE = 32


@pytest.fixture(scope="session", autouse=True)
def _torch_cpu() -> None:
    """Random weights make denormals, which make CPU maths slow and timings meaningless."""
    import torch

    torch.set_flush_denormal(True)
    torch.set_num_threads(2)


def _words() -> list[str]:
    bank = default_bank()
    text = " ".join(bank.render(p) for p in bank.prompts) + " a person lying on the ground"
    return sorted({w.strip(".,").lower() for w in text.split()})


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = sorted(set(bytes_to_unicode().values()))
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in chars:
        vocab[c] = len(vocab)
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=64)
    special: dict[str, Any] = {"bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1}
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 64,
            "projection_dim": 16,
            **special,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": IMAGE_SIZE,
            "patch_size": 8,
            "projection_dim": 16,
        },
        projection_dim=16,
        **special,
    )
    torch.manual_seed(0)
    model = CLIPModel(config).eval()
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": IMAGE_SIZE},
            crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        ),
        tokenizer=tokenizer,
    )
    path = tmp_path_factory.mktemp("tiny-clip")
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_siglip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import (
        PreTrainedTokenizerFast,
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
        SiglipProcessor,
    )

    words = _words()
    vocab = {"<pad>": 0, "<unk>": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(behavior="removed")]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        unk_token="<unk>",
        eos_token="</s>",
        model_max_length=16,
    )
    special: dict[str, Any] = {"bos_token_id": None, "eos_token_id": 2, "pad_token_id": 0}
    config = SiglipConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "projection_size": 32,
            **special,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": IMAGE_SIZE,
            "patch_size": 8,
        },
    )
    torch.manual_seed(1)
    model = SiglipModel(config).eval()
    with torch.no_grad():  # the head of a trained SigLIP, not the zeros of a fresh one
        model.logit_scale.fill_(float(np.log(10.0)))
        model.logit_bias.fill_(-2.0)
    processor = SiglipProcessor(
        image_processor=SiglipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
        tokenizer=tokenizer,
    )
    path = tmp_path_factory.mktemp("tiny-siglip")
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


@pytest.fixture(params=["clip", "siglip"])
def tiny_model(request: pytest.FixtureRequest) -> tuple[str, Path]:
    """(backend, folder) for each of the two model families."""
    name = request.param
    return name, request.getfixturevalue(f"tiny_{name}_dir")


class ArraySource:
    """A ``FrameSource`` over frames held in memory, counting what it decodes.

    ``undecodable`` frames are left out of any batch that asks for them, as a damaged stretch
    of a real file would be.
    """

    def __init__(
        self,
        frames: np.ndarray,
        fps: float = 4.0,
        content_hash: str = "fake-video-1",
        undecodable: Sequence[int] = (),
    ) -> None:
        self.frames = frames
        self.undecodable = set(undecodable)
        self.reads: list[list[int]] = []
        self._decoded = 0
        h, w = frames.shape[1:3]
        self._info = VideoInfo(
            path=f"memory://{content_hash}",
            fps=fps,
            frame_count=len(frames),
            duration_s=len(frames) / fps,
            resolution_wh=(w, h),
            content_hash=content_hash,
        )

    @property
    def info(self) -> VideoInfo:
        return self._info

    @property
    def timestamps(self) -> np.ndarray:
        return np.arange(len(self.frames), dtype=np.float64) / self._info.fps

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
        idx = np.array(sorted(i for i in frame_idx if i not in self.undecodable), dtype=np.int64)
        self.reads.append([int(i) for i in frame_idx])
        self._decoded += idx.size
        return FrameBatch(
            frames=self.frames[idx], t_s=idx / self._info.fps, frame_idx=idx, scale=1.0
        )

    def close(self) -> None:
        pass


def scene_frames(n: int = 24, h: int = 36, w: int = 48, seed: int = 0) -> np.ndarray:
    """``n`` RGB frames: a textured background and a bright square crossing it."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 160, (h, w, 3), dtype=np.uint8)
    frames = np.repeat(background[None], n, axis=0)
    for i in range(n):
        x = (i * 3) % (w - 8)
        frames[i, 10:18, x : x + 8] = (255, 240, 40)
    return frames


@pytest.fixture
def source() -> ArraySource:
    return ArraySource(scene_frames())


@pytest.fixture
def make_source() -> type[ArraySource]:
    """The in-memory ``FrameSource`` class, for tests that need their own frames."""
    return ArraySource


@pytest.fixture
def make_frames() -> Callable[..., np.ndarray]:
    """``scene_frames(n, h, w, seed)``: synthetic frames with a moving square."""
    return scene_frames
