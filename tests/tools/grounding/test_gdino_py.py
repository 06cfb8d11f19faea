"""groundingdino-py (the original GroundingDINO code) on transformers 5, through the shim."""

from __future__ import annotations

import pickle
from argparse import Namespace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vadetective.agent.core.config import Config
from vadetective.agent.core.errors import ConfigError, ModelUnavailableError
from vadetective.tools.backends.grounding import gdino_compat
from vadetective.tools.backends.grounding.gdino_py import (
    GroundingDinoPyGrounder,
    build_model,
    load_checkpoint,
    preprocess,
    read_config,
    resolve_model_files,
    resolve_text_encoder,
)
from vadetective.tools.base import Grounder
from vadetective.tools.registry import build_grounder

RES = (200, 120)
PHRASES = ["a person", "a red bag", "a car"]


# --------------------------------------------------------------------------- the shim
@pytest.fixture
def bert(tiny_bert_dir: Path) -> Any:
    """A fresh BERT per test: the shim changes the instance it is given."""
    from transformers import BertModel

    return BertModel.from_pretrained(str(tiny_bert_dir)).eval()


def test_unpatched_bert_breaks_the_warper_and_the_shim_fixes_it(bert: Any) -> None:
    import torch
    from groundingdino.models.GroundingDINO.bertwarper import BertModelWarper

    assert gdino_compat.needs_bert_shim(bert)  # transformers 5 removed or changed the helpers
    with pytest.raises(AttributeError, match=r"get_extended_attention_mask|get_head_mask"):
        BertModelWarper(bert_model=bert)
    shimmed = gdino_compat.shim_bert(bert)
    assert shimmed is bert and not gdino_compat.needs_bert_shim(bert)
    warper = BertModelWarper(bert_model=bert)
    ids = torch.tensor([[2, 9, 10, 5, 9, 15, 12, 5, 3]])  # [CLS] a person . a red bag . [SEP]
    mask = torch.ones_like(ids)
    mask[0, -2:] = 0  # padding-like positions, honoured the same way by both paths
    with torch.inference_mode():
        ours = warper(input_ids=ids, attention_mask=mask)["last_hidden_state"]
        native = bert(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(ours, native, rtol=1e-5, atol=1e-5)


def test_shimmed_warper_honours_groundingdinos_per_phrase_masks(bert: Any) -> None:
    """A 3-D mask that keeps the first four tokens to themselves gives them the output of
    running BERT on those four tokens alone."""
    import torch
    from groundingdino.models.GroundingDINO.bertwarper import BertModelWarper

    warper = BertModelWarper(bert_model=gdino_compat.shim_bert(bert))
    ids = torch.tensor([[2, 9, 10, 5, 9, 15, 12, 5, 3]])
    block = torch.zeros(1, 9, 9, dtype=torch.long)
    block[0, :4, :4] = 1
    block[0, 4:, 4:] = 1
    with torch.inference_mode():
        ours = warper(input_ids=ids, attention_mask=block)["last_hidden_state"]
        alone = bert(input_ids=ids[:, :4]).last_hidden_state
    torch.testing.assert_close(ours[:, :4], alone, rtol=1e-5, atol=1e-5)


def test_shim_is_scoped_to_the_build(bert: Any) -> None:
    import torch
    from groundingdino.util import get_tokenlizer
    from transformers import BertModel

    original = get_tokenlizer.get_pretrained_language_model
    before = {n: getattr(BertModel, n, None) for n in ("get_extended_attention_mask", "forward")}
    embeddings_forward = type(bert.embeddings).forward
    with gdino_compat.bert_shim_applied():
        assert get_tokenlizer.get_pretrained_language_model is not original
    assert get_tokenlizer.get_pretrained_language_model is original
    gdino_compat.shim_bert(bert)
    # Only the instance changed: the classes were never patched.
    assert {n: getattr(BertModel, n, None) for n in before} == before
    assert type(bert.embeddings).forward is embeddings_forward
    with pytest.raises(NotImplementedError, match="head_mask"):
        gdino_compat.get_head_mask(bert, torch.ones(2), 2)


@pytest.mark.slow
def test_the_package_cannot_build_on_transformers_5_without_the_shim(
    gdino_py_files: dict[str, Path],
) -> None:
    cfg = read_config(gdino_py_files["config"])
    with pytest.raises(AttributeError, match=r"get_extended_attention_mask|get_head_mask"):
        build_model(cfg, str(gdino_py_files["bert"]), shim=False)


# --------------------------------------------------------------------------- files, safely
def test_config_is_read_without_executing_it(tmp_path: Path) -> None:
    import groundingdino
    from groundingdino.util.slconfig import SLConfig

    shipped = Path(groundingdino.__file__).parent / "config" / "GroundingDINO_SwinT_OGC.py"
    ours = read_config(shipped)
    assert ours == SLConfig.fromfile(str(shipped))._cfg_dict.to_dict()  # same settings as exec
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.py"
    evil.write_text(f"modelname = 'groundingdino'\nimport os\nos.system('touch {marker}')\n")
    with pytest.raises(ConfigError, match="line 2: only 'name = <literal>'"):
        read_config(evil)
    assert not marker.exists()
    (tmp_path / "noname.py").write_text("backbone = 'swin_T_224_1k'\n")
    with pytest.raises(ConfigError, match="sets no 'modelname'"):
        read_config(tmp_path / "noname.py")


def test_model_files_forms(tmp_path: Path) -> None:
    cfg, weights = tmp_path / "c.py", tmp_path / "w.pth"
    cfg.write_text("modelname = 'groundingdino'\n")
    weights.write_bytes(b"")
    assert resolve_model_files(f"{cfg}::{weights}") == (cfg, weights)
    assert resolve_model_files(str(tmp_path)) == (cfg, weights)
    with pytest.raises(ModelUnavailableError, match=r"checkpoint file .* does not exist"):
        resolve_model_files(f"{cfg}::{tmp_path / 'missing.pth'}")
    (tmp_path / "other.py").write_text("modelname = 'groundingdino'\n")
    with pytest.raises(ConfigError, match="one config"):
        resolve_model_files(str(tmp_path))
    with pytest.raises(ModelUnavailableError, match="vadetective models pull --profile local"):
        resolve_model_files("ShilongLiu/GroundingDINO", profile="local")  # offline, not cached


def test_default_model_offline_fails_fast_through_the_backend(source: Any) -> None:
    grounder = GroundingDinoPyGrounder(device="cpu", profile="local")  # ShilongLiu/GroundingDINO
    with pytest.raises(ModelUnavailableError, match=r"GroundingDINO_SwinT_OGC\.cfg\.py"):
        grounder.ground(source, 1.0, ["a person"])


def test_checkpoints_load_weights_only(tmp_path: Path) -> None:
    import torch

    sd = {"module.layer.weight": torch.ones(2, 2)}
    torch.save({"model": sd, "epoch": 3}, tmp_path / "ok.pth")
    got = load_checkpoint(tmp_path / "ok.pth")
    assert list(got) == ["layer.weight"] and torch.equal(got["layer.weight"], torch.ones(2, 2))
    with open(tmp_path / "args.pth", "wb") as fh:  # a checkpoint that pickles an object
        pickle.dump({"model": {}, "args": Namespace(lr=1.0)}, fh)
    with pytest.raises(ModelUnavailableError, match="safe \\(weights_only\\) load refuses"):
        load_checkpoint(tmp_path / "args.pth")


def test_text_encoder_resolution(tiny_bert_dir: Path) -> None:
    assert resolve_text_encoder(str(tiny_bert_dir)) == str(tiny_bert_dir)
    with pytest.raises(ModelUnavailableError, match="groundingdino-py-text"):
        resolve_text_encoder("bert-base-uncased")  # offline and not cached here


def test_preprocess_matches_the_original_resize_rule() -> None:
    from groundingdino.datasets import transforms as T
    from PIL import Image

    rgb = np.zeros((120, 200, 3), np.uint8)
    for size, max_size in ((800, 1333), (96, 160), (100, 120)):
        want, _ = T.RandomResize([size], max_size=max_size)(Image.fromarray(rgb), None)
        assert tuple(preprocess(rgb, size, max_size).shape) == (1, 3, want.height, want.width)
    x = preprocess(np.full((120, 200, 3), 255, np.uint8), 96, 160)
    assert x[0, 0].mean().item() == pytest.approx((1 - 0.485) / 0.229, rel=1e-4)


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def gdino_py(gdino_py_files: dict[str, Path]) -> GroundingDinoPyGrounder:
    spec = f"{gdino_py_files['config']}::{gdino_py_files['weights']}"
    config = Config(
        grounder="groundingdino-py",
        device="cpu",
        models={"groundingdino-py": spec, "groundingdino-py-text": str(gdino_py_files["bert"])},
    )
    grounder = build_grounder(config)
    assert isinstance(grounder, GroundingDinoPyGrounder)
    grounder.box_threshold = grounder.text_threshold = 0.05  # random weights score low
    grounder.image_size, grounder.max_image_size = 96, 160
    return grounder


@pytest.mark.slow
def test_ground_end_to_end(
    gdino_py: GroundingDinoPyGrounder, gdino_py_files: dict[str, Path], source: Any
) -> None:
    import torch

    assert isinstance(gdino_py, Grounder) and gdino_py._model is None
    boxes = gdino_py.ground(source, 1.0, PHRASES)
    saved = torch.load(gdino_py_files["weights"], weights_only=True)["model"]
    model: Any = gdino_py._model
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in saved.items())  # the checkpoint, not a re-init
    assert boxes
    for b in boxes:
        assert b.inside(RES, tolerance_px=0.0) and 0.0 <= b.score <= 1.0 and b.label in PHRASES
        assert b.t_s == pytest.approx(1.0)
    assert [b.score for b in boxes] == sorted((b.score for b in boxes), reverse=True)
    assert gdino_py.ground(source, 1.0, PHRASES) == boxes
    with pytest.raises(ValueError, match="at least one thing"):
        gdino_py.ground(source, 1.0, [" "])
    weird = gdino_py.ground(source, 0.0, ["A PERSON?", "a man. a dog", "🔥"])
    assert all(b.label in ("A PERSON", "a man. a dog", "🔥") for b in weird)
