"""Fixtures for the grounding backends: a small non-square video and tiny random models.

Every model is built from a config with random weights, saved to a temp folder the way a user's
model is (``save_pretrained`` / a checkpoint file) and loaded back by the backend through the
same code users run. Tokenizers are built locally: a BERT WordPiece vocabulary for
GroundingDINO and a CLIP byte-level BPE vocabulary with merges for OWLv2.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

W, H, FPS, SECONDS = 200, 120, 5, 2  # non-square on purpose (OWLv2 pads to a square)
PHRASES = ["a person", "a red bag", "a car"]

_WORDS = ["a", "the", "person", "man", "woman", "red", "bag", "car", "dog", "on", "ground", "lying"]


@pytest.fixture(scope="session", autouse=True)
def _fast_torch() -> None:
    """Few threads (the machine is shared) and no denormals (random weights make many)."""
    import torch

    torch.set_num_threads(2)
    torch.set_flush_denormal(True)


def scene(i: int) -> np.ndarray:
    """Frame ``i`` (RGB): grey street, a red 'bag' and a tall dark 'person' moving right."""
    img = np.full((H, W, 3), 110, np.uint8)
    img[90:, :] = (80, 80, 85)
    img[70:95, 30:55] = (200, 30, 30)
    x = 100 + 5 * i
    img[35:100, x : x + 18] = (30, 30, 40)
    return img


@pytest.fixture(scope="session")
def video_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s, 5 fps, 200x120 H.264 clip (real file, real decoder)."""
    path = tmp_path_factory.mktemp("grounding-video") / "street.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(FPS * SECONDS):
            for packet in stream.encode(av.VideoFrame.from_ndarray(scene(i), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture
def source(video_path: Path) -> Iterator[Any]:
    """The clip opened with the project's frame source (decord, PyAV fallback)."""
    from vadetective.tools.video.sources import open_video

    src = open_video(video_path)
    yield src
    src.close()


# --------------------------------------------------------------------------- tokenizers
def bert_vocab() -> list[str]:
    """A tiny WordPiece vocabulary: specials, a few words, single letters and '##' pieces."""
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "?", ",", "!"]
    words += [w for w in _WORDS if w not in words]
    words += [c for c in letters if c not in words]
    words += [f"##{c}" for c in letters]
    return words


def save_bert_tokenizer(folder: Path) -> Any:
    from transformers import BertTokenizer

    vocab = bert_vocab()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    tok.save_pretrained(str(folder))
    return tok


def clip_tokenizer() -> Any:
    """A tiny CLIP BPE tokenizer: characters, their end-of-word forms, merges for a few words.

    As in the real vocabulary, the start/end tokens have the highest ids: OWLv2 treats a query
    whose first id is 0 as padding.
    """
    from transformers import CLIPTokenizer

    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list(".,!?'-")
    vocab: dict[str, int] = {"!": 0}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    for c in chars:
        vocab.setdefault(c + "</w>", len(vocab))
    merges: list[tuple[str, str]] = []
    for word in ("person", "bag", "car", "red"):
        cur = word[0]
        for j, c in enumerate(word[1:]):
            nxt = c + ("</w>" if j == len(word) - 2 else "")
            merges.append((cur, nxt))
            cur += nxt
            vocab.setdefault(cur, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    # the tokenizers backend takes merges as (left, right) pairs; the stub says list[str]
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=16)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- tiny models
@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer BERT (hidden 32) with its tokenizer: groundingdino-py's text encoder."""
    import torch
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    tok = save_bert_tokenizer(folder)
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=300,
    )
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_gdino_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny transformers GroundingDINO (Swin backbone, 1-layer BERT) with its processor."""
    import torch
    from transformers import (
        BertConfig,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    folder = tmp_path_factory.mktemp("tiny-gdino")
    tok = save_bert_tokenizer(folder / "tok")
    swin: dict[str, Any] = {
        "embed_dim": 16,
        "depths": [1, 1, 1, 1],
        "num_heads": [1, 1, 1, 1],
        "window_size": 4,
        "image_size": 64,
        "out_features": ["stage2", "stage3", "stage4"],
    }
    backbone = SwinConfig(**swin)
    text = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    cfg = GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,  # >= 2: the box heads are tied across decoder layers
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_n_points=2,
        decoder_n_points=2,
        num_queries=30,
    )
    torch.manual_seed(0)
    GroundingDinoForObjectDetection(cfg).save_pretrained(str(folder))
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 96, "longest_edge": 160})
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tok).save_pretrained(
        str(folder)
    )
    return folder


@pytest.fixture(scope="session")
def tiny_owlv2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny OWLv2 (64 px input, 16 px patches) with a tiny CLIP tokenizer."""
    import torch
    from transformers import (
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessor,
        Owlv2Processor,
    )

    folder = tmp_path_factory.mktemp("tiny-owlv2")
    tok = clip_tokenizer()
    n = len(tok)
    cfg = Owlv2Config(
        text_config={
            "vocab_size": n,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "bos_token_id": n - 2,
            "eos_token_id": n - 1,
            "pad_token_id": n - 1,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 64,
            "patch_size": 16,
        },
        projection_dim=32,
    )
    torch.manual_seed(0)
    Owlv2ForObjectDetection(cfg).save_pretrained(str(folder))
    processor = Owlv2Processor(
        image_processor=Owlv2ImageProcessor(size={"height": 64, "width": 64}), tokenizer=tok
    )
    processor.save_pretrained(str(folder))
    return folder


#: The package's SwinT config, shrunk where it does not change the architecture's kind: one
#: encoder layer, two decoder layers, 30 queries, a narrow FFN (the Swin-T backbone is fixed).
_SHRINK = {"enc_layers": 1, "dec_layers": 2, "num_queries": 30, "dim_feedforward": 64}


@pytest.fixture(scope="session")
def gdino_py_files(
    tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path
) -> dict[str, Path]:
    """A shrunk groundingdino-py config (.py, written as literal settings) and a random-weight
    checkpoint ``{"model": state_dict}`` saved with ``torch.save``, as released checkpoints are."""
    import groundingdino
    import torch

    from vadetective.tools.backends.grounding.gdino_py import build_model, read_config

    folder = tmp_path_factory.mktemp("tiny-gdino-py")
    shipped = Path(groundingdino.__file__).parent / "config" / "GroundingDINO_SwinT_OGC.py"
    text = shipped.read_text(encoding="utf-8")
    for key, value in _SHRINK.items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value!r}", text)
        assert n == 1, f"{key} not found in {shipped}"
    cfg_path = folder / "GroundingDINO_tiny.py"
    cfg_path.write_text(text, encoding="utf-8")
    torch.manual_seed(0)
    model = build_model(read_config(cfg_path), str(tiny_bert_dir))
    weights = folder / "tiny.pth"
    torch.save({"model": model.state_dict()}, weights)
    return {"config": cfg_path, "weights": weights, "bert": tiny_bert_dir}
