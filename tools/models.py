"""Where model weights come from: local folders, the Hugging Face cache, or the hub.

Loading an absent model while offline fails fast with one sentence naming the model and the
pull command, instead of the hub client's retry loop. Nothing here downloads at import time.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from vadetective.agent.errors import MissingExtraError, ModelUnavailableError

log = logging.getLogger(__name__)

T = TypeVar("T")

_HUB_REACHABLE: bool | None = None  # probed once per process, only when a download is needed


def is_local_path(model_id: str) -> bool:
    return Path(model_id).expanduser().exists()


def hub_offline() -> bool:
    """True when the user (or we) put the hub client in offline mode."""
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes", "on"}


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """One quick TCP probe of the hub endpoint, cached for the process."""
    global _HUB_REACHABLE
    if hub_offline():
        return False
    if _HUB_REACHABLE is None:
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        parsed = urlparse(endpoint)
        host = parsed.hostname or "huggingface.co"
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                _HUB_REACHABLE = True
        except OSError:
            _HUB_REACHABLE = False
            # Put the hub client in offline mode for the rest of the process, so no library
            # below us starts its own retry loop.
            os.environ["HF_HUB_OFFLINE"] = "1"
            log.info("the Hugging Face hub is unreachable; working offline")
    return _HUB_REACHABLE


def is_cached(model_id: str) -> bool:
    """True when ``model_id`` is a local folder or a hub repo whose config is in the local cache."""
    if is_local_path(model_id):
        return True
    if "/" not in model_id:
        return False
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    for filename in ("config.json", "preprocessor_config.json", "model.safetensors"):
        hit = try_to_load_from_cache(model_id, filename)
        if isinstance(hit, str):
            return True
    return False


def pull_hint(model_id: str, profile: str | None = None) -> str:
    target = f"--profile {profile}" if profile else f"--model {model_id}"
    return f"vadetective models pull {target}"


def require_available(model_id: str, profile: str | None = None) -> bool:
    """Check that ``model_id`` can be loaded; return True when it must come from the local
    cache only (``local_files_only``). Raise ``ModelUnavailableError`` when it cannot be had."""
    if is_local_path(model_id):
        return True
    if is_cached(model_id):
        return True
    if hub_reachable():
        return False
    raise ModelUnavailableError(
        f"model {model_id!r} is not in the local cache and the Hugging Face hub is not reachable: "
        f"run `{pull_hint(model_id, profile)}` where the hub is reachable, or pass a local folder"
    )


def hf_from_pretrained(loader: Callable[..., T], model_id: str, profile: str | None = None, **kwargs: Any) -> T:
    """Call ``loader(model_id, **kwargs)`` (a ``from_pretrained``), offline-first and safely.

    Weights load through safetensors where the checkpoint has them; remote code is never
    trusted unless the caller passes ``trust_remote_code`` explicitly.
    """
    local_only = require_available(model_id, profile)
    kwargs.setdefault("trust_remote_code", False)
    if local_only:
        kwargs.setdefault("local_files_only", True)
    path = str(Path(model_id).expanduser()) if is_local_path(model_id) else model_id
    try:
        return loader(path, **kwargs)
    except OSError as exc:
        raise ModelUnavailableError(
            f"could not load model {model_id!r} ({exc.__class__.__name__}: {str(exc).splitlines()[0]}): "
            f"check the id or path, or run `{pull_hint(model_id, profile)}`"
        ) from exc


def import_or_extra(module: str, extra: str, purpose: str) -> Any:
    """Import an optional dependency or raise an error that names the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module.split(".")[0], extra, purpose) from exc


def resolve_auto_profile(models: dict[str, str] | None = None) -> str:
    """``local`` when the local profile's models are present or downloadable, else ``classical``.

    Says which and why in one log line (the CLI shows it).
    """
    from vadetective.agent.config import DEFAULT_MODELS

    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        log.warning("profile auto -> classical: the 'hf' extra is not installed")
        return "classical"
    needed = [(models or {}).get(k) or DEFAULT_MODELS[k] for k in ("clip", "grounding-dino", "vlm")]
    missing = [m for m in needed if not is_cached(m)]
    if not missing:
        log.warning("profile auto -> local: all models are in the local cache")
        return "local"
    if hub_reachable():
        log.warning("profile auto -> local: %d model(s) will be downloaded on first use", len(missing))
        return "local"
    log.warning(
        "profile auto -> classical: %s not cached and the hub is unreachable (run `%s`)",
        ", ".join(missing),
        pull_hint(missing[0], "local"),
    )
    return "classical"
