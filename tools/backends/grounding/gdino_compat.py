"""Make groundingdino-py 0.4 (the original GroundingDINO code) run on transformers >= 5.

What breaks, found by building and running the model on transformers 5.23:

1. ``groundingdino.models.GroundingDINO.bertwarper.BertModelWarper.__init__`` copies three
   helpers from the BERT instance it wraps, ``get_extended_attention_mask``,
   ``invert_attention_mask`` and ``get_head_mask``, and calls the first as
   ``(attention_mask, input_shape, device)``. transformers 5.0 dropped ``get_head_mask`` and
   changed the third argument of ``get_extended_attention_mask`` to ``dtype`` (a device passed
   there fails in ``Tensor.to``); later 5.x releases removed all three from ``PreTrainedModel``
   (masks are now built inside each model), so building the model fails with
   ``AttributeError: 'BertModel' object has no attribute 'get_extended_attention_mask'``.
2. ``BertModelWarper.forward`` calls ``self.embeddings(..., past_key_values_length=...)``;
   transformers 5.24 renamed that argument of ``BertEmbeddings.forward`` to ``cache_length``, so
   every call fails with ``TypeError: ... unexpected keyword argument 'past_key_values_length'``.
   The shim gives the BERT's embeddings *instance* a ``forward`` that passes the value under the
   name the installed transformers takes (nothing is changed where the old name still exists).
3. Nothing else is fatal: ``BertEncoder.forward`` in transformers 5 takes the additive 4-D mask
   the warper builds, and swallows the extra keyword arguments it passes (``head_mask``,
   ``output_attentions``, ...). The warper reads the deprecated ``config.use_return_dict``,
   which only logs a deprecation line once. The package also ``print`` s the text encoder path
   while building; ``build_quietly`` sends that to the log instead.

The fix restores the three helpers (and renames the embeddings' argument), with transformers 4.x semantics, on the BERT *instance* the
package creates, and only while ``GroundingDinoPyGrounder`` builds its model: no class and no
module is patched at import time, and the temporary hook on the package's BERT loader is removed
when the build ends. On a transformers that still has the helpers, nothing is changed.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import threading
import types
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

_SHIM_ATTR = "_vadetective_bert_shim"
_LOCK = threading.Lock()


def get_extended_attention_mask(
    self: Any,
    attention_mask: torch.Tensor,
    input_shape: tuple[int, ...] | None = None,
    device: Any = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """transformers 4.x ``ModuleUtilsMixin.get_extended_attention_mask`` for an encoder.

    A 2-D (batch, keys) or 3-D (batch, queries, keys) mask of 1 = attend / 0 = ignore becomes
    an additive mask broadcastable to (batch, heads, queries, keys): 0 where attended, the
    dtype's most negative value elsewhere. GroundingDINO passes 3-D masks that keep each phrase
    attending only to its own tokens.
    """
    import torch

    if dtype is None:
        dtype = _param_dtype(self)
    if attention_mask.dim() == 3:
        extended = attention_mask[:, None, :, :]
    elif attention_mask.dim() == 2:
        extended = attention_mask[:, None, None, :]
    else:
        raise ValueError(
            f"attention_mask must have 2 or 3 dimensions (batch, [queries,] keys), got shape {tuple(attention_mask.shape)}"
        )
    extended = extended.to(dtype=dtype)
    return (1.0 - extended) * torch.finfo(dtype).min


def invert_attention_mask(self: Any, encoder_attention_mask: torch.Tensor) -> torch.Tensor:
    """transformers 4.x ``invert_attention_mask``: the additive form of a cross-attention mask."""
    return get_extended_attention_mask(self, encoder_attention_mask)


def get_head_mask(
    self: Any, head_mask: torch.Tensor | None, num_hidden_layers: int, **_: Any
) -> list[None] | torch.Tensor:
    """transformers 4.x ``get_head_mask`` for the only case GroundingDINO uses (no head mask).

    transformers 5 dropped head masking from BERT; a real mask cannot be honoured, so it is
    refused rather than silently ignored.
    """
    if head_mask is not None:
        raise NotImplementedError("head_mask is not supported by BERT in transformers >= 5")
    return [None] * num_hidden_layers


def _param_dtype(module: Any) -> torch.dtype:
    import torch

    try:
        return next(module.parameters()).dtype
    except (StopIteration, AttributeError):
        return torch.float32


_HELPERS: dict[str, Callable[..., Any]] = {
    "get_extended_attention_mask": get_extended_attention_mask,
    "invert_attention_mask": invert_attention_mask,
    "get_head_mask": get_head_mask,
}


_OLD_LENGTH_ARG = "past_key_values_length"  # what BertModelWarper passes to the embeddings
_NEW_LENGTH_ARG = "cache_length"  # its name from transformers 5.24


def _params(fn: Callable[..., Any]) -> list[str]:
    return [p for p in inspect.signature(fn).parameters if p != "self"]


def _helper_differs(bert_model: Any, name: str) -> bool:
    """True when ``bert_model`` lacks helper ``name`` or has it with another signature."""
    existing = getattr(bert_model, name, None)
    if existing is None:
        return True
    ours = [p for p in _params(_HELPERS[name]) if p != "_"]
    return _params(existing)[: len(ours)] != ours


def _embeddings_need_rename(bert_model: Any) -> bool:
    embeddings = getattr(bert_model, "embeddings", None)
    if embeddings is None:
        return False
    params = inspect.signature(embeddings.forward).parameters
    return _OLD_LENGTH_ARG not in params and not any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )


def needs_bert_shim(bert_model: Any) -> bool:
    """True when ``bert_model`` lacks a helper ``BertModelWarper`` copies (transformers >= 5),
    or its embeddings no longer take ``past_key_values_length`` (transformers >= 5.24)."""
    return any(_helper_differs(bert_model, name) for name in _HELPERS) or _embeddings_need_rename(
        bert_model
    )


def _rename_length_arg(embeddings: Any) -> None:
    """Let ``embeddings`` accept ``past_key_values_length`` again, on this instance only."""
    original = embeddings.forward
    takes_new = _NEW_LENGTH_ARG in inspect.signature(original).parameters

    def forward(*args: Any, past_key_values_length: int = 0, **kwargs: Any) -> Any:
        if takes_new:
            kwargs.setdefault(_NEW_LENGTH_ARG, past_key_values_length)
        elif past_key_values_length:
            raise NotImplementedError(
                "this transformers' BertEmbeddings takes no cache length; GroundingDINO never "
                "passes one"
            )
        return original(*args, **kwargs)

    object.__setattr__(embeddings, "forward", forward)


def shim_bert(bert_model: Any) -> Any:
    """Give one BERT instance the helpers it lacks (or has with another signature), as bound
    methods; return it.

    Only those helpers are set, only on this instance (``type(bert_model)`` is untouched).
    """
    added = []
    for name, fn in _HELPERS.items():
        if _helper_differs(bert_model, name):
            # nn.Module.__setattr__ stores plain attributes (not parameters or modules) normally.
            object.__setattr__(bert_model, name, types.MethodType(fn, bert_model))
            added.append(name)
    if _embeddings_need_rename(bert_model):
        _rename_length_arg(bert_model.embeddings)
        added.append(f"embeddings({_OLD_LENGTH_ARG}=)")
    if added:
        object.__setattr__(bert_model, _SHIM_ATTR, tuple(added))
        log.debug("groundingdino-py: restored %s on the BERT text encoder", ", ".join(added))
    return bert_model


@contextlib.contextmanager
def bert_shim_applied() -> Iterator[None]:
    """While active, the BERT that groundingdino-py loads carries the restored helpers.

    The package builds its text encoder with
    ``groundingdino.util.get_tokenlizer.get_pretrained_language_model``; this wraps that one
    module attribute for the duration of the block and restores the original afterwards.
    """
    from groundingdino.util import get_tokenlizer

    with _LOCK:
        original = get_tokenlizer.get_pretrained_language_model

        def loader(text_encoder_type: Any) -> Any:
            return shim_bert(original(text_encoder_type))

        get_tokenlizer.get_pretrained_language_model = loader
        try:
            yield
        finally:
            get_tokenlizer.get_pretrained_language_model = original


def build_quietly(build: Callable[[], Any], shim: bool = True) -> Any:
    """Run ``build()`` (a groundingdino-py model build) with the shim, its prints logged.

    Args:
        build: A function that builds the model, e.g. ``lambda: build_model(args)``.
        shim: Apply ``bert_shim_applied`` (False reproduces the unpatched failure in tests).

    Returns:
        Whatever ``build`` returns.
    """
    out = io.StringIO()
    try:
        with (
            contextlib.redirect_stdout(out),
            bert_shim_applied() if shim else contextlib.nullcontext(),
        ):
            return build()
    finally:
        for line in out.getvalue().splitlines():
            if line.strip():
                log.debug("groundingdino-py: %s", line.strip())
