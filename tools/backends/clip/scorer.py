"""CLIP / SigLIP temporal scorer (transformers): embed each frame once, ask it many prompts.

Each frame is embedded once; the prompt bank's families are scored from the image-text
similarities by ``prompt_bank.score_frames`` (softmax head for CLIP, sigmoid head for SigLIP;
the formula is documented there). With ``phrases`` the hypothesis is scored against all the
bank's normal prompts as one family called ``query``.

Image embeddings are cached on disk (``ArrayCache``) per (video content hash, backend, model
revision, dtype, max_side), merged across calls, so a second question, a sub-span or a denser
sampling of the same video embeds only frames it has not seen. Text embeddings (and the logit
scale/bias) are cached in memory and on disk per model, so a fully cached question does not
even load the model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from vadetective.agent.core.config import Config
from vadetective.agent.core.errors import ConfigError, MissingExtraError, VideoError
from vadetective.agent.core.types import ScoreCurve, VideoInfo
from vadetective.tools.base import FrameSource, ScoreResult
from vadetective.tools.cache import ArrayCache
from vadetective.tools.device import resolve_device, resolve_dtype
from vadetective.tools.models import hf_from_pretrained, import_or_extra, model_fingerprint
from vadetective.tools.prompt_bank import Combine, PromptBank, TextHead, default_bank, score_frames

if TYPE_CHECKING:
    import torch


log = logging.getLogger(__name__)

Backend = Literal["clip", "siglip"]

#: CLIP clamps its learned temperature at 100 during training; so do we.
_CLIP_MAX_SCALE = 100.0
#: Videos whose frame embeddings stay in memory (the disk cache holds the rest).
_VIDEOS_IN_MEMORY = 4


@dataclass
class ScorerStats:
    """Running counters of the work a scorer did (for cost accounting and tests)."""

    model_loads: int = 0
    frames_embedded: int = 0
    frames_from_cache: int = 0
    texts_embedded: int = 0
    image_batches: int = 0


def nearest_frames(timestamps: np.ndarray, t_s: np.ndarray) -> np.ndarray:
    """Index of the frame whose timestamp is nearest to each time (ties go to the earlier)."""
    ts = np.asarray(timestamps, dtype=np.float64)
    t = np.asarray(t_s, dtype=np.float64)
    right = np.clip(np.searchsorted(ts, t, side="left"), 0, ts.size - 1)
    left = np.clip(right - 1, 0, ts.size - 1)
    take_left = np.abs(t - ts[left]) <= np.abs(ts[right] - t)
    return np.where(take_left, left, right).astype(np.int64)


class ClipScorer:
    """A ``TemporalScorer`` on CLIP or SigLIP image-text similarity with a prompt bank.

    Args:
        model_id: A hub id or a folder saved with ``save_pretrained`` (model and processor).
        backend: ``clip`` or ``siglip``; names the backend (the head is read from the model).
        device: ``auto`` (cuda, then mps, then cpu) or an explicit device, resolved once.
        dtype: ``auto`` (float16 on CUDA, bfloat16 on CPUs with native bf16, else float32) or
            a torch dtype name.
        max_side: Longest side frames are decoded at before the processor resizes them.
        batch_size: Frames per forward pass.
        bank: The prompt bank; the built-in one when None.
        combine: How the overall score is formed: ``pooled`` or ``max`` (module docstring).
        cache: An ``ArrayCache`` for embeddings, True for the default one, False for none
            (embeddings then live only in this object's memory).
        profile: The profile being run, for the pull command in error messages.
    """

    def __init__(
        self,
        model_id: str,
        backend: Backend = "clip",
        *,
        device: str = "auto",
        dtype: str = "auto",
        max_side: int | None = 640,
        batch_size: int = 16,
        bank: PromptBank | None = None,
        combine: Combine = "pooled",
        cache: ArrayCache | bool = True,
        profile: str | None = None,
    ) -> None:
        if backend not in ("clip", "siglip"):
            raise ConfigError(f"ClipScorer backend must be 'clip' or 'siglip', got {backend!r}")
        if combine not in ("pooled", "max"):
            raise ConfigError(f"combine must be 'pooled' or 'max', got {combine!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if not model_id:
            raise ConfigError(f"no model id or path configured for the {backend} scorer")
        self.name: str = backend
        self.model_id: str = model_id
        self.bank = bank or default_bank()
        self.combine: Combine = combine
        self.max_side = max_side
        self.batch_size = batch_size
        self.profile = profile
        self.stats = ScorerStats()
        self._device_request = device
        self._dtype_request = dtype
        self._device: str | None = None
        self._dtype: torch.dtype | None = None
        self._cache: ArrayCache | None = (
            cache if isinstance(cache, ArrayCache) else ArrayCache() if cache else None
        )
        self._fingerprint: str | None = None
        self._model: Any = None
        self._processor: Any = None
        self._head: TextHead | None = None
        self._text_mem: dict[str, np.ndarray] = {}
        self._frame_mem: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @classmethod
    def from_config(cls, config: Config, backend: str = "clip") -> ClipScorer:
        """The scorer a ``Config`` describes (model id, device, dtype, max_side, cache folder)."""
        if backend not in ("clip", "siglip"):
            raise ConfigError(f"ClipScorer backend must be 'clip' or 'siglip', got {backend!r}")
        cache = ArrayCache(Path(config.cache_dir) / "arrays") if config.cache_dir else ArrayCache()
        return cls(
            config.model_id(backend),
            backend,  # type: ignore[arg-type]
            device=config.device,
            dtype=config.dtype,
            max_side=config.max_side,
            cache=cache,
            profile=config.profile,
        )

    def __repr__(self) -> str:
        return f"ClipScorer({self.model_id!r}, backend={self.name!r}, loaded={self.loaded})"

    # -- resources --------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        """True once the model weights are in memory."""
        return self._model is not None

    @property
    def device(self) -> str:
        """The resolved device (resolved once, on first access)."""
        if self._device is None:
            import_or_extra("torch", "hf", f"the {self.name} scorer")
            self._device = resolve_device(self._device_request)
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        """The resolved torch dtype of the model's weights."""
        if self._dtype is None:
            try:
                self._dtype = resolve_dtype(self._dtype_request, self.device)
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
        return self._dtype

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    @property
    def model(self) -> Any:
        """The transformers model (loaded on first access)."""
        self.load()
        return self._model

    @property
    def processor(self) -> Any:
        """The transformers processor (image processor + tokenizer), loaded on first access."""
        self.load()
        return self._processor

    def load(self) -> None:
        """Load the model and processor once, on the resolved device and dtype."""
        if self._model is not None:
            return
        purpose = f"the {self.name} scorer"
        import_or_extra("torch", "hf", purpose)
        transformers = import_or_extra("transformers", "hf", purpose)
        device, dtype = self.device, self.dtype
        try:
            model = hf_from_pretrained(
                transformers.AutoModel.from_pretrained, self.model_id, self.profile
            )
            if not (hasattr(model, "get_image_features") and hasattr(model, "get_text_features")):
                raise ConfigError(
                    f"{self.model_id!r} is a {type(model).__name__}, not a CLIP/SigLIP dual "
                    f"encoder: configure a CLIP or SigLIP model for the {self.name} backend"
                )
            processor = hf_from_pretrained(
                transformers.AutoProcessor.from_pretrained, self.model_id, self.profile
            )
        except ImportError as exc:  # e.g. SigLIP's SentencePiece tokenizer
            named = getattr(exc, "name", None) or next(
                (p for p in ("sentencepiece", "protobuf", "tiktoken") if p in str(exc).lower()),
                "sentencepiece",
            )
            package = named.split(".")[0]
            raise MissingExtraError(package, "hf", f"{purpose} ({self.model_id})") from exc
        if (
            getattr(processor, "image_processor", None) is None
            or getattr(processor, "tokenizer", None) is None
        ):
            raise ConfigError(
                f"{self.model_id!r} has no image processor and tokenizer: save the processor "
                "beside the model (processor.save_pretrained(folder))"
            )
        # Read the head in float32 before any cast to a low-precision dtype.
        self._head = _read_head(model)
        model.to(device=device, dtype=dtype)
        model.eval()
        self._model, self._processor = model, processor
        self.stats.model_loads += 1
        log.info(
            "loaded %s scorer %s on %s (%s, %s head)",
            self.name,
            self.model_id,
            device,
            self.dtype_name,
            self._head.head,
        )

    def fingerprint(self) -> str:
        """Names the exact weights in cache keys (loading the model first if it must be
        downloaded to be known)."""
        if self._fingerprint is None:
            fp = model_fingerprint(self.model_id)
            if fp is None:
                self.load()  # downloads it, or raises ModelUnavailableError
                fp = model_fingerprint(self.model_id) or f"{self.model_id}@unknown-revision"
            self._fingerprint = fp
        return self._fingerprint

    # -- embeddings ---------------------------------------------------------------------------

    def _frames_key(self, info: VideoInfo) -> str | None:
        if not info.content_hash:
            return None
        return ArrayCache.key(
            kind="clip-frames",
            video=info.content_hash,
            backend=self.name,
            model=self.fingerprint(),
            dtype=self.dtype_name,
            max_side=self.max_side,
        )

    def _text_key(self) -> str:
        return ArrayCache.key(
            kind="clip-texts", backend=self.name, model=self.fingerprint(), dtype=self.dtype_name
        )

    def embed_frames(
        self, source: FrameSource, frame_idx: Sequence[int] | np.ndarray
    ) -> np.ndarray:
        """L2-normalised image embeddings (float32, one row per index, in the given order).

        Frames already embedded (in memory or in the disk cache) are not decoded again. The
        row of a frame the source could not decode (a damaged stretch) is NaN.
        """
        idx = np.asarray(frame_idx, dtype=np.int64)
        key = self._frames_key(source.info) if idx.size else None
        known_idx, known_emb = self._frame_mem.get(key, (None, None)) if key else (None, None)
        if known_idx is None and key is not None and self._cache is not None:
            entry = self._cache.get(key)
            if entry is not None and {"frame_idx", "emb"} <= entry.keys():
                known_idx, known_emb = entry["frame_idx"].astype(np.int64), entry["emb"]
        if key is None and idx.size:  # no content hash names this video: keep nothing
            log.debug("%s has no content hash; embedding without a cache", source.info.path)
        wanted = np.unique(idx)
        missing = wanted if known_idx is None else np.setdiff1d(wanted, known_idx)
        self.stats.frames_from_cache += int(wanted.size - missing.size)
        if missing.size:
            got, new = self._embed_images(source, missing)
            if known_idx is None or known_emb is None:
                known_idx, known_emb = got, new
            else:
                order = np.argsort(np.concatenate([known_idx, got]), kind="stable")
                known_idx = np.concatenate([known_idx, got])[order]
                known_emb = np.concatenate([known_emb, new])[order]
            if key is not None and self._cache is not None and got.size:
                self._cache.put(key, {"frame_idx": known_idx, "emb": known_emb})
        if key is not None and known_idx is not None and known_emb is not None:
            # Most recent videos only: a batch worker scores thousands of videos in one process.
            self._frame_mem.pop(key, None)
            self._frame_mem[key] = (known_idx, known_emb)
            while len(self._frame_mem) > _VIDEOS_IN_MEMORY:
                self._frame_mem.pop(next(iter(self._frame_mem)))
        if known_idx is None or known_emb is None or known_idx.size == 0:
            return np.full((idx.size, 0), np.nan, dtype=np.float32)
        pos = np.clip(np.searchsorted(known_idx, idx), 0, known_idx.size - 1)
        out = known_emb[pos].astype(np.float32, copy=True)
        out[known_idx[pos] != idx] = np.nan
        return out

    def _embed_images(
        self, source: FrameSource, frame_idx: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(indices the source returned, their embeddings) for ascending ``frame_idx``."""
        import torch

        self.load()
        got_all: list[np.ndarray] = []
        out: list[np.ndarray] = []
        for start in range(0, frame_idx.size, self.batch_size):
            chunk = frame_idx[start : start + self.batch_size]
            batch = source.read(chunk.tolist(), max_side=self.max_side)
            got = np.asarray(batch.frame_idx, dtype=np.int64)
            if not np.isin(got, chunk).all() or np.unique(got).size != got.size:
                raise VideoError(
                    f"{source.info.path}: the frame source returned frames {got.tolist()[:6]} "
                    f"when asked for {chunk.tolist()[:6]}; it must return requested frames only"
                )
            if got.size < chunk.size:
                log.warning(
                    "%s: %d of %d frames could not be decoded and are left out of the scores",
                    source.info.path,
                    chunk.size - got.size,
                    chunk.size,
                )
            if got.size == 0:
                continue
            pixels = self.pixel_values(batch.frames)
            with torch.inference_mode():
                feats = _pooled(self._model.get_image_features(pixel_values=pixels))
                feats = torch.nn.functional.normalize(feats.float(), dim=-1)
            order = np.argsort(got, kind="stable")
            got_all.append(got[order])
            out.append(feats.cpu().numpy()[order])
            self.stats.image_batches += 1
            self.stats.frames_embedded += int(got.size)
        if not out:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        return np.concatenate(got_all), np.concatenate(out).astype(np.float32, copy=False)

    def pixel_values(self, frames: np.ndarray) -> torch.Tensor:
        """The model's input tensor for (N, H, W, 3) uint8 RGB frames, on device and dtype."""
        import torch

        # Channels-first and contiguous: the torchvision-backed processors resize a permuted
        # (channels-last strided) view 5-8x slower (measured: ~60 vs ~300-580 frames/s, 640x360).
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous()
        pixels = self.processor.image_processor(images=x, return_tensors="pt")["pixel_values"]
        return pixels.to(device=self.device, dtype=self.dtype)

    def embed_texts(self, texts: Sequence[str]) -> tuple[np.ndarray, TextHead]:
        """L2-normalised text embeddings (float32, one row per text) and the logit head."""
        texts = list(texts)
        if self._head is None or any(t not in self._text_mem for t in texts):
            self._load_texts_from_cache()
        missing = list(dict.fromkeys(t for t in texts if t not in self._text_mem))
        if missing or self._head is None:
            self.load()
            if missing:
                emb = self._encode_texts(missing)
                self._text_mem.update(zip(missing, emb, strict=True))
                self.stats.texts_embedded += len(missing)
            self._save_texts_to_cache()
        assert self._head is not None
        if not texts:
            return np.zeros((0, 0), dtype=np.float32), self._head
        return np.stack([self._text_mem[t] for t in texts]), self._head

    def _encode_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        tok = self._processor.tokenizer
        text_config = getattr(self._model.config, "text_config", self._model.config)
        max_len = int(getattr(text_config, "max_position_embeddings", 0) or tok.model_max_length)
        assert self._head is not None
        if self._head.head == "sigmoid":
            # SigLIP was trained on max-length padded text without an attention mask and pools
            # the last token: feed it exactly that.
            enc = tok(
                texts,
                padding="max_length",
                max_length=max_len,
                truncation=True,
                return_tensors="pt",
            )
            inputs = {"input_ids": enc["input_ids"]}
        else:
            enc = tok(texts, padding=True, max_length=max_len, truncation=True, return_tensors="pt")
            inputs = {k: enc[k] for k in ("input_ids", "attention_mask") if k in enc}
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.inference_mode():
            feats = _pooled(self._model.get_text_features(**inputs))
            feats = torch.nn.functional.normalize(feats.float(), dim=-1)
        return feats.cpu().numpy().astype(np.float32, copy=False)

    def _load_texts_from_cache(self) -> None:
        if self._cache is None:
            return
        entry = self._cache.get(self._text_key())
        if entry is None or not {"text", "emb", "head", "scale_bias"} <= entry.keys():
            return
        head = str(entry["head"][0])
        if head not in ("softmax", "sigmoid"):
            return
        scale, bias = (float(v) for v in entry["scale_bias"][:2])
        if self._head is None:
            self._head = TextHead(head=head, logit_scale=scale, logit_bias=bias)  # type: ignore[arg-type]
        for t, e in zip(entry["text"].tolist(), entry["emb"], strict=True):
            self._text_mem.setdefault(str(t), e)

    def _save_texts_to_cache(self) -> None:
        if self._cache is None or self._head is None or not self._text_mem:
            return
        texts = list(self._text_mem)
        self._cache.put(
            self._text_key(),
            {
                "text": np.array(texts, dtype=str),
                "emb": np.stack([self._text_mem[t] for t in texts]),
                "head": np.array([self._head.head], dtype=str),
                "scale_bias": np.array([self._head.logit_scale, self._head.logit_bias]),
            },
        )

    # -- the TemporalScorer protocol -------------------------------------------------------------

    def score(
        self,
        source: FrameSource,
        t_s: Sequence[float],
        phrases: Sequence[str] | None = None,
    ) -> ScoreResult:
        """Score the frames nearest to ``t_s`` against the prompt bank, or against ``phrases``.

        Args:
            source: The video's frames.
            t_s: Times in seconds; they are sorted, and each maps to its nearest decodable frame.
            phrases: A hypothesis to test ("a person lying on the ground"), scored against the
                bank's normal prompts; None for the built-in bank.

        Returns:
            One score per time at the exact timestamps of the frames used, with one curve per
            family (``query`` for phrases), and what was spent in ``details``. A frame the
            source cannot decode (a damaged stretch) is left out, and counted in ``details``.

        Raises:
            ValueError: When ``phrases`` is empty or blank, or a time is not finite.
            VideoError: When none of the sampled frames can be decoded.
            ModelUnavailableError: When the model is absent and cannot be fetched.
            MissingExtraError: When torch/transformers are not installed.
        """
        bank = self.bank if phrases is None else self.bank.for_phrases(phrases)
        times = np.sort(np.asarray(list(t_s), dtype=np.float64))
        if not np.all(np.isfinite(times)):
            raise ValueError("t_s must hold finite times in seconds")
        details: dict[str, float | str] = {
            "backend": self.name,
            "combine": self.combine,
            "prompt_bank": bank.name,
            "prompts": float(len(bank.prompts)),
        }
        if times.size == 0:
            empty = ScoreCurve(t_s=[], score=[], families={f: [] for f in bank.family_names})
            return ScoreResult(curve=empty, model_id=self.model_id, details=details)
        timestamps = np.asarray(source.timestamps, dtype=np.float64)
        if timestamps.size == 0:
            raise VideoError(f"{source.info.path} has no decodable frames to score")
        idx = nearest_frames(timestamps, times)
        before = (
            self.stats.frames_embedded,
            self.stats.frames_from_cache,
            self.stats.texts_embedded,
        )
        img = self.embed_frames(source, idx)
        ok = np.isfinite(img).all(axis=1) & (img.shape[1] > 0)
        if not ok.any():
            raise VideoError(f"{source.info.path}: none of the {idx.size} sampled frames decoded")
        idx, img = idx[ok], img[ok]
        prompts = bank.prompts
        txt, head = self.embed_texts([bank.render(p) for p in prompts])
        overall, families = score_frames(img @ txt.T, prompts, bank, head, self.combine)
        curve = ScoreCurve(
            t_s=timestamps[idx].tolist(),
            score=overall.tolist(),
            families={k: v.tolist() for k, v in families.items()},
        )
        peak = max(families, key=lambda k: float(families[k].max()))
        details.update(
            {
                "head": head.head,
                "device": self.device,
                "dtype": self.dtype_name,
                "model_revision": self.fingerprint(),
                "frames_embedded": float(self.stats.frames_embedded - before[0]),
                "frames_cached": float(self.stats.frames_from_cache - before[1]),
                "texts_embedded": float(self.stats.texts_embedded - before[2]),
                "frames_undecodable": float((~ok).sum()),
                "peak_family": peak,
            }
        )
        return ScoreResult(curve=curve, model_id=self.model_id, details=details)


def _pooled(out: Any) -> torch.Tensor:
    """The projected embedding from ``get_*_features`` (a tensor in transformers 4, an output
    object with ``pooler_output`` in transformers 5)."""
    return out if not hasattr(out, "pooler_output") else out.pooler_output


def _read_head(model: Any) -> TextHead:
    scale = float(model.logit_scale.detach().float().exp().item())
    bias = getattr(model, "logit_bias", None)
    if bias is not None:
        return TextHead(
            head="sigmoid", logit_scale=scale, logit_bias=float(bias.detach().float().item())
        )
    return TextHead(head="softmax", logit_scale=min(scale, _CLIP_MAX_SCALE))
