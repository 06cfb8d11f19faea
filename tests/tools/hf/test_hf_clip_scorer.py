"""ClipScorer on tiny random-weight CLIP and SigLIP models, loaded from folders like real ones.

Random weights cannot show that the scores mean anything; these tests hold the contracts:
shapes, ranges, families, determinism, cache hits (counted, not timed), device/dtype choice
and the failures a user meets (absent model offline, missing extra, wrong kind of model).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vadetective.agent.core.config import Config
from vadetective.agent.core.errors import (
    ConfigError,
    MissingExtraError,
    ModelUnavailableError,
    VideoError,
)
from vadetective.tools import models as models_mod
from vadetective.tools.backends.clip.scorer import ClipScorer, nearest_frames
from vadetective.tools.base import TemporalScorer
from vadetective.tools.cache import ArrayCache
from vadetective.tools.prompt_bank import QUERY_FAMILY, default_bank
from vadetective.tools.registry import build_scorer

TIMES = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]


def make(backend: str, path: Path, **kwargs: Any) -> ClipScorer:
    kwargs.setdefault("device", "cpu")
    kwargs.setdefault("dtype", "float32")
    kwargs.setdefault("cache", False)
    return ClipScorer(str(path), backend, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Fail loudly if anything opens a network connection; returns the attempts."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise AssertionError(f"unexpected network connection to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, a))  # type: ignore[arg-type]
    return attempts


def test_scores_hold_the_contract(tiny_model: tuple[str, Path], source: Any) -> None:
    backend, path = tiny_model
    scorer = make(backend, path)
    assert isinstance(scorer, TemporalScorer)
    assert not scorer.loaded  # lazy: nothing loaded by the constructor
    result = scorer.score(source, [4.5, 0.0, 2.2, 1.0])  # any order in
    curve = result.curve
    assert len(curve) == 4
    # exact timestamps of the nearest frames (4 fps), ascending
    assert curve.t_s == [0.0, 1.0, 2.25, 4.5]
    assert all(0.0 <= s <= 1.0 for s in curve.score)
    assert set(curve.families) == set(default_bank().family_names)
    assert all(0.0 <= v <= 1.0 for vals in curve.families.values() for v in vals)
    assert len(set(curve.score)) > 1  # different frames, different scores
    assert result.model_id == str(path)
    assert result.details["head"] == ("sigmoid" if backend == "siglip" else "softmax")
    assert result.details["dtype"] == "float32"
    assert result.details["device"] == "cpu"
    assert result.details["peak_family"] in curve.families
    assert scorer.loaded and scorer.stats.model_loads == 1


def test_scores_are_deterministic(tiny_model: tuple[str, Path], source: Any) -> None:
    backend, path = tiny_model
    a = make(backend, path).score(source, TIMES)
    b = make(backend, path).score(source, TIMES)
    assert a.curve == b.curve


def test_bfloat16_scores_stay_close_to_float32(tiny_clip_dir: Path, source: Any) -> None:
    fp32 = make("clip", tiny_clip_dir).score(source, TIMES).curve.score
    bf16 = make("clip", tiny_clip_dir, dtype="bfloat16").score(source, TIMES).curve.score
    np.testing.assert_allclose(bf16, fp32, atol=0.05)


def test_second_question_reuses_embeddings(
    tiny_model: tuple[str, Path], source: Any, tmp_path: Path
) -> None:
    backend, path = tiny_model
    cache = ArrayCache(tmp_path / "arrays")
    scorer = make(backend, path, cache=cache)
    first = scorer.score(source, TIMES)
    assert first.details["frames_embedded"] == len(TIMES)
    decoded = source.frames_decoded
    batches = scorer.stats.image_batches

    again = scorer.score(source, TIMES)
    assert again.curve == first.curve
    assert again.details["frames_embedded"] == 0
    assert again.details["frames_cached"] == len(TIMES)
    assert again.details["texts_embedded"] == 0
    assert source.frames_decoded == decoded and scorer.stats.image_batches == batches

    # a new process (a fresh scorer on the same cache) does not even load the model
    fresh = make(backend, path, cache=cache)
    third = fresh.score(source, TIMES)
    assert third.curve == first.curve
    assert not fresh.loaded and fresh.stats.frames_embedded == 0
    assert source.frames_decoded == decoded

    # a different video (another content hash) is embedded anew
    other = type(source)(source.frames, content_hash="another-video")
    assert fresh.score(other, TIMES).details["frames_embedded"] == len(TIMES)


def test_denser_sampling_embeds_only_new_frames(
    tiny_clip_dir: Path, source: Any, tmp_path: Path
) -> None:
    scorer = make("clip", tiny_clip_dir, cache=ArrayCache(tmp_path))
    scorer.score(source, [0.0, 1.0, 2.0, 3.0])
    denser = scorer.score(source, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    assert denser.details["frames_embedded"] == 3
    assert denser.details["frames_cached"] == 4
    # and the merged cache answers a fresh scorer for all seven
    fresh = make("clip", tiny_clip_dir, cache=ArrayCache(tmp_path))
    assert fresh.score(source, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]).curve == denser.curve
    assert not fresh.loaded


def test_phrases_score_a_hypothesis(tiny_model: tuple[str, Path], source: Any) -> None:
    backend, path = tiny_model
    scorer = make(backend, path)
    bank_curve = scorer.score(source, TIMES).curve
    hyp = scorer.score(source, TIMES, phrases=["a person lying on the ground"])
    assert list(hyp.curve.families) == [QUERY_FAMILY]
    assert hyp.curve.families[QUERY_FAMILY] == hyp.curve.score
    assert hyp.curve.score != bank_curve.score
    assert hyp.details["texts_embedded"] == 1  # the normal prompts were already embedded
    assert hyp.details["frames_embedded"] == 0
    with pytest.raises(ValueError, match="phrases"):
        scorer.score(source, TIMES, phrases=[])
    with pytest.raises(ValueError, match="phrases"):
        scorer.score(source, TIMES, phrases=["  "])


def test_no_times_costs_nothing(tiny_clip_dir: Path, source: Any) -> None:
    scorer = make("clip", tiny_clip_dir)
    result = scorer.score(source, [])
    assert len(result.curve) == 0 and set(result.curve.families) == set(default_bank().family_names)
    assert not scorer.loaded and source.frames_decoded == 0
    with pytest.raises(ValueError, match="finite"):
        scorer.score(source, [0.0, float("nan")])


def test_undecodable_frames_are_left_out(
    tiny_clip_dir: Path, make_source: Callable[..., Any], make_frames: Callable[..., np.ndarray]
) -> None:
    src = make_source(make_frames(), undecodable={2, 3})
    result = make("clip", tiny_clip_dir).score(src, TIMES)
    assert result.details["frames_undecodable"] == 1  # 0.5 s is frame 2; frame 3 is not asked for
    assert 0.5 not in result.curve.t_s and len(result.curve) == len(TIMES) - 1
    broken = make_source(make_frames(), undecodable=range(100))
    with pytest.raises(VideoError, match="none of the"):
        make("clip", tiny_clip_dir).score(broken, TIMES)


def test_nearest_frames_ties_go_to_the_earlier_frame() -> None:
    ts = np.array([0.0, 0.25, 0.5, 0.75])
    idx = nearest_frames(ts, np.array([-1.0, 0.1, 0.125, 0.13, 0.74, 9.0]))
    assert idx.tolist() == [0, 0, 0, 1, 3, 3]


def test_from_config_through_the_registry(
    tiny_model: tuple[str, Path], source: Any, tmp_path: Path
) -> None:
    backend, path = tiny_model
    config = Config(
        scorer=backend,
        models={backend: str(path)},
        device="cpu",
        dtype="float32",
        max_side=64,
        cache_dir=str(tmp_path / "c"),
    )
    scorer = build_scorer(config)
    assert isinstance(scorer, ClipScorer)
    assert (scorer.name, scorer.model_id, scorer.max_side) == (backend, str(path), 64)
    assert not scorer.loaded
    scorer.score(source, TIMES[:3])
    assert list((tmp_path / "c" / "arrays").rglob("*.npz"))  # embeddings went to config.cache_dir
    with pytest.raises(ConfigError, match="clip"):
        ClipScorer.from_config(config, backend="owlv2")


@pytest.mark.parametrize(("fast_bf16", "expected"), [(True, "bfloat16"), (False, "float32")])
def test_auto_dtype_follows_the_cpu(
    monkeypatch: pytest.MonkeyPatch, tiny_clip_dir: Path, fast_bf16: bool, expected: str
) -> None:
    import torch

    monkeypatch.setattr("vadetective.tools.device.cpu_has_fast_bf16", lambda: fast_bf16)
    scorer = make("clip", tiny_clip_dir, dtype="auto")
    assert scorer.dtype_name == expected
    assert next(scorer.model.parameters()).dtype == getattr(torch, expected)


def test_device_is_resolved_once(
    monkeypatch: pytest.MonkeyPatch, tiny_clip_dir: Path, source: Any
) -> None:
    import vadetective.tools.backends.clip.scorer as hf_clip

    calls: list[str] = []

    def counting(device: str = "auto") -> str:
        calls.append(device)
        return "cpu"

    monkeypatch.setattr(hf_clip, "resolve_device", counting)
    scorer = make("clip", tiny_clip_dir, device="auto")
    scorer.score(source, TIMES[:4])
    scorer.score(source, TIMES[4:])
    assert calls == ["auto"]
    assert next(scorer.model.parameters()).device.type == "cpu"


def test_absent_model_offline_fails_fast_without_network(
    no_network: list[object], source: Any
) -> None:
    scorer = ClipScorer("nobody/no-such-clip-model", "clip", device="cpu", cache=False)
    with pytest.raises(ModelUnavailableError, match="vadetective models pull") as info:
        scorer.score(source, TIMES)
    assert "nobody/no-such-clip-model" in str(info.value)
    assert str(info.value).count(". ") == 0  # one sentence
    assert no_network == []


def test_unreachable_hub_switches_to_offline_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a local port with nobody listening: the probe is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(models_mod, "_HUB_REACHABLE", None)
    with pytest.raises(ModelUnavailableError, match="not reachable"):
        models_mod.require_available("nobody/no-such-model", profile="local")
    import os

    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # no library below retries on its own


def test_missing_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tiny_clip_dir: Path, source: Any
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    scorer = make("clip", tiny_clip_dir)
    with pytest.raises(MissingExtraError, match=r'pip install "vadetective\[hf\]"'):
        scorer.score(source, TIMES)


def test_a_model_that_is_not_a_dual_encoder_is_refused(tmp_path: Path, source: Any) -> None:
    from transformers import BertConfig, BertModel

    BertModel(
        BertConfig(
            vocab_size=32,
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=8,
        )
    ).save_pretrained(tmp_path / "bert")
    with pytest.raises(ConfigError, match="not a CLIP/SigLIP"):
        make("clip", tmp_path / "bert").score(source, TIMES)


def test_scores_a_real_video_file(
    tiny_clip_dir: Path, tmp_path: Path, make_frames: Callable[..., np.ndarray]
) -> None:
    import av

    from vadetective.tools.video.sources import open_video

    path = tmp_path / "clip.mp4"
    frames = make_frames(n=16, h=48, w=64)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    cache = ArrayCache(tmp_path / "arrays")
    video: Any  # a FrameSource
    with open_video(path) as video:
        first = make("clip", tiny_clip_dir, cache=cache).score(video, [0.0, 0.5, 1.0, 1.5])
        assert first.curve.t_s == pytest.approx([0.0, 0.5, 1.0, 1.5])
    with open_video(path) as video:  # reopened: same content hash, so a cache hit
        fresh = make("clip", tiny_clip_dir, cache=cache)
        assert fresh.score(video, [0.0, 0.5, 1.0, 1.5]).curve == first.curve
        assert not fresh.loaded and video.frames_decoded == 0


def test_siglip_sentencepiece_tokenizer_needs_an_extra(
    tiny_siglip_dir: Path, tmp_path: Path, source: Any
) -> None:
    """Real SigLIP checkpoints ship a SentencePiece tokenizer (``spiece.model``)."""
    import json
    import shutil

    folder = tmp_path / "siglip-spm"
    shutil.copytree(tiny_siglip_dir, folder)
    (folder / "tokenizer.json").unlink()
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "SiglipTokenizer"
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    (folder / "spiece.model").write_bytes(b"\0" * 16)
    try:
        import sentencepiece  # noqa: F401
    except ImportError:
        with pytest.raises(MissingExtraError, match="sentencepiece"):
            make("siglip", folder).score(source, TIMES)
    else:  # installed: the fake model file is what fails, as a load error
        with pytest.raises((ModelUnavailableError, OSError, RuntimeError)):
            make("siglip", folder).score(source, TIMES)


def test_memory_keeps_only_the_latest_videos(tiny_clip_dir: Path, source: Any) -> None:
    scorer = make("clip", tiny_clip_dir)  # no disk cache: memory is all there is
    videos = [type(source)(source.frames, content_hash=f"video-{i}") for i in range(6)]
    for v in videos:
        assert scorer.score(v, TIMES[:2]).details["frames_embedded"] == 2
    assert scorer.score(videos[-1], TIMES[:2]).details["frames_embedded"] == 0  # still held
    assert scorer.score(videos[0], TIMES[:2]).details["frames_embedded"] == 2  # evicted


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"), [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]
)
def test_auto_device_prefers_cuda_then_mps_then_cpu(
    monkeypatch: pytest.MonkeyPatch, cuda: bool, mps: bool, expected: str
) -> None:
    import torch

    from vadetective.tools.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert resolve_device("auto") == expected
    assert resolve_device("cpu") == "cpu"  # explicit values pass through


def test_bad_dtype_names_are_config_errors(tiny_clip_dir: Path) -> None:
    from vadetective.tools.device import resolve_dtype

    with pytest.raises(ValueError, match="torch dtype name"):
        resolve_dtype("cuda", "cpu")  # an attribute of torch, not a dtype
    with pytest.raises(ConfigError, match="torch dtype name"):
        _ = make("clip", tiny_clip_dir, dtype="float31").dtype
