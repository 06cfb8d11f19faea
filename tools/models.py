"""Where model weights come from: local folders, the Hugging Face cache, or the hub.

Loading an absent model while offline fails fast with one sentence naming the model and the
pull command, instead of the hub client's retry loop. ``list_models`` says which models each
profile needs and whether they are present; ``pull_models`` downloads them (the CLI's
``vadetective models list|pull``). Nothing here downloads at import time.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from hashlib import blake2b
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse

from pydantic import Field

from vadetective.agent.core.catalog import DEFAULT_MODELS, PROFILES
from vadetective.agent.core.config import config_for
from vadetective.agent.core.deps import require_tested
from vadetective.agent.core.errors import ConfigError, MissingExtraError, ModelUnavailableError
from vadetective.agent.core.io import content_hash
from vadetective.agent.core.types import Frozen

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
    """True when ``model_id`` is a local folder or a hub repo whose snapshot (with weights) is in
    the local Hugging Face cache."""
    if is_local_path(model_id):
        return True
    return local_snapshot(model_id) is not None


#: Files that make a hub snapshot usable: a partial download (config only) is not "cached".
_WEIGHT_GLOBS = ("*.safetensors", "*.bin", "*.pth", "*.pt")


def local_snapshot(model_id: str) -> Path | None:
    """The folder of ``model_id``'s cached hub snapshot when it holds weights, else None.

    Never touches the network (``local_files_only``).
    """
    if "/" not in model_id or is_local_path(model_id):
        return None
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        folder = Path(snapshot_download(model_id, local_files_only=True))
    # LocalEntryNotFoundError is an OSError; a malformed repo id is a ValueError.
    except (OSError, ValueError) as exc:
        log.debug("%s is not in the local hub cache: %s", model_id, exc)
        return None
    if any(next(folder.glob(g), None) is not None for g in _WEIGHT_GLOBS):
        return folder
    log.debug("the cached snapshot of %s at %s holds no weights", model_id, folder)
    return None


def model_fingerprint(model_id: str) -> str | None:
    """A cache key part naming the exact weights: a hash of a local folder's config and
    weights, or ``repo@commit`` of a cached hub snapshot; None when neither is on disk."""
    if is_local_path(model_id):
        folder = Path(model_id).expanduser()
        files = (
            [folder]
            if folder.is_file()
            else sorted({p for g in ("config.json", *_WEIGHT_GLOBS) for p in folder.glob(g)})
        )
        h = blake2b(digest_size=12)
        for f in files:
            h.update(f.name.encode())
            h.update(content_hash(f).encode())
        return f"local:{h.hexdigest()}"
    snap = local_snapshot(model_id)
    return f"{model_id}@{snap.name}" if snap is not None else None


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
    why = (
        "the Hugging Face hub is not reachable"
        if _HUB_REACHABLE is False
        else "the Hugging Face hub client is offline (HF_HUB_OFFLINE is set)"
    )
    raise ModelUnavailableError(
        f"model {model_id!r} is not in the local cache and {why}: "
        f"run `{pull_hint(model_id, profile)}` where the hub is reachable, or pass a local folder"
    )


def hf_from_pretrained(
    loader: Callable[..., T], model_id: str, profile: str | None = None, **kwargs: Any
) -> T:
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
    """Import an optional dependency or raise an error that names the extra to install.

    The extra's packages must also be inside the version ranges vadetective is tested on
    (``core.deps.require_tested``): a newer transformers that changed the internals a backend
    rests on is one sentence naming it, not a traceback from deep inside it.
    """
    import importlib

    try:
        imported = importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module.split(".")[0], extra, purpose) from exc
    require_tested(extra, purpose)
    return imported


def resolve_auto_profile(models: dict[str, str] | None = None) -> str:
    """``local`` when the local profile's models are present or downloadable, else ``classical``.

    Says which and why in one log line (the CLI shows it).
    """

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
        log.warning(
            "profile auto -> local: %d model(s) will be downloaded on first use", len(missing)
        )
        return "local"
    log.warning(
        "profile auto -> classical: %s not cached and the hub is unreachable (run `%s`)",
        ", ".join(missing),
        pull_hint(missing[0], "local"),
    )
    return "classical"


# --- model management: `vadetective models list|pull` ---------------------------------------

ModelSource = Literal["path", "hub", "ultralytics"]

#: Backends whose weights come from ultralytics' GitHub release assets, not the hub.
ULTRALYTICS_BACKENDS: frozenset[str] = frozenset({"yolo", "yolo-world"})

#: What to fetch for hub repos that hold more than one model (default: the whole repo minus
#: duplicate weight formats, see ``_hub_ignore_patterns``).
HUB_ALLOW_PATTERNS: dict[str, list[str]] = {
    "groundingdino-py": [
        "GroundingDINO_SwinT_OGC.cfg.py",
        "groundingdino_swint_ogc.pth",
        "*.json",
        "*.md",
    ],
}

#: Formats no backend here loads: never downloaded.
_FOREIGN_WEIGHTS = [
    "*.h5",
    "*.msgpack",
    "*.onnx",
    "*.ot",
    "*.tflite",
    "*.gguf",
    "*.mlmodel",
    "onnx/*",
    "openvino/*",
    "coreml/*",
    "flax_model*",
    "tf_model*",
]

#: The profiles whose models ``list_models`` reports (``auto`` needs exactly ``local``'s).
_PROFILES_WITH_MODELS = ("classical", "local", "server")

ProgressCallback = Callable[[str, int, int], None]


class ModelStatus(Frozen):
    """One model a backend uses, and whether it is already on this machine."""

    backend: str = Field(description="backend name from the registry, or 'custom' for a bare id")
    model_id: str = Field(description="hub repo id, ultralytics weights name, or a local folder")
    profiles: tuple[str, ...] = Field(default=(), description="profiles that use this backend")
    present: bool
    local_path: str | None = None
    source: ModelSource = "hub"
    note: str = ""


def profile_backends(profile: str) -> tuple[str, ...]:
    """The model-backed backends a profile uses (``auto`` counts as ``local``).

    Raises:
        ConfigError: When ``profile`` is not a known profile.
    """

    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    cfg = config_for("local" if profile == "auto" else profile)
    names = [cfg.scorer, cfg.grounder, cfg.inspector]
    if cfg.planner == "local":  # the in-process planner is the VLM
        names.append("vlm")
    return tuple(n for n in dict.fromkeys(names) if n in DEFAULT_MODELS)


def _ultralytics_weights(model_id: str) -> Path | None:
    """Where ultralytics would find ``model_id`` without downloading it, else None."""
    path = Path(model_id).expanduser()
    if path.is_file():
        return path
    try:
        from ultralytics.utils import SETTINGS
    except ImportError:
        return None
    candidate = Path(SETTINGS["weights_dir"]) / path.name
    return candidate if candidate.is_file() else None


def model_status(backend: str, model_id: str, profiles: Sequence[str] = ()) -> ModelStatus:
    """Whether ``model_id`` (used by ``backend``) is present locally, and where."""
    if backend in ULTRALYTICS_BACKENDS or (backend == "custom" and model_id.endswith(".pt")):
        found = _ultralytics_weights(model_id)
        return ModelStatus(
            backend=backend,
            model_id=model_id,
            profiles=tuple(profiles),
            present=found is not None,
            local_path=str(found) if found else None,
            source="ultralytics",
            note="" if found else "ultralytics downloads it on first use when online",
        )
    if is_local_path(model_id):
        path = Path(model_id).expanduser().resolve()
        return ModelStatus(
            backend=backend,
            model_id=model_id,
            profiles=tuple(profiles),
            present=True,
            local_path=str(path),
            source="path",
        )
    snap = local_snapshot(model_id)
    return ModelStatus(
        backend=backend,
        model_id=model_id,
        profiles=tuple(profiles),
        present=snap is not None,
        local_path=str(snap) if snap else None,
        source="hub",
    )


def list_models(
    profile: str | None = None, models: dict[str, str] | None = None
) -> list[ModelStatus]:
    """The models a profile needs (every backend's model when ``profile`` is None), each with
    the profiles that use it and whether it is in the local cache.

    Args:
        profile: ``classical``, ``local``, ``server`` or ``auto`` (same as ``local``); None for
            every backend with a model, including those no profile picks by default.
        models: Per-backend overrides (``Config.models``): hub ids or local folders.

    Raises:
        ConfigError: When ``profile`` is not a known profile.
    """

    users: dict[str, list[str]] = {}
    for name in _PROFILES_WITH_MODELS:
        for backend in profile_backends(name):
            users.setdefault(backend, []).append(name)
    backends = list(DEFAULT_MODELS) if profile is None else list(profile_backends(profile))
    overrides = models or {}
    return [
        model_status(b, overrides.get(b) or DEFAULT_MODELS[b], users.get(b, ())) for b in backends
    ]


def _targets(
    profile: str | None, model_ids: Sequence[str] | None, models: dict[str, str] | None
) -> list[ModelStatus]:

    if model_ids is None:
        return list_models(profile or "local", models)
    if isinstance(model_ids, str):
        model_ids = [model_ids]
    by_id = {v: k for k, v in {**DEFAULT_MODELS, **(models or {})}.items()}
    return [model_status(by_id.get(m, "custom"), m) for m in dict.fromkeys(model_ids)]


def _hub_files(repo_id: str) -> list[str]:
    """The file names of a hub repo (network)."""
    from huggingface_hub import HfApi

    return list(HfApi().list_repo_files(repo_id))


def _hub_ignore_patterns(files: Sequence[str]) -> list[str]:
    """Skip formats we never load; when safetensors exist, skip the pickle-based duplicates."""
    patterns = list(_FOREIGN_WEIGHTS)
    if any(f.endswith(".safetensors") for f in files):
        patterns += ["*.bin", "*.pth", "*.pt"]
    return patterns


def _pull_hub(status: ModelStatus) -> str:
    from huggingface_hub import snapshot_download

    allow = HUB_ALLOW_PATTERNS.get(status.backend)
    if allow is not None:
        return str(snapshot_download(status.model_id, allow_patterns=allow))
    ignore = _hub_ignore_patterns(_hub_files(status.model_id))
    return str(snapshot_download(status.model_id, ignore_patterns=ignore))


def _pull_ultralytics(status: ModelStatus) -> str:
    from ultralytics.utils import SETTINGS
    from ultralytics.utils.downloads import attempt_download_asset

    # Into ultralytics' weights folder, where YOLO("<name>.pt") looks before downloading,
    # rather than the current directory.
    target = Path(SETTINGS["weights_dir"]) / Path(status.model_id).name
    target.parent.mkdir(parents=True, exist_ok=True)
    return str(attempt_download_asset(target))


def ultralytics_online() -> bool:
    """True when ultralytics may download weights (not ``YOLO_OFFLINE``, and online)."""
    if os.environ.get("YOLO_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return False
    try:
        from ultralytics.utils import is_online
    except ImportError:
        return False
    return bool(is_online())


def pull_models(
    profile: str | None = None,
    model_ids: list[str] | None = None,
    progress: ProgressCallback | None = None,
    *,
    models: dict[str, str] | None = None,
) -> list[str]:
    """Download the models a profile needs (or the given ids) into the local caches.

    Hub models go to the Hugging Face cache (``huggingface_hub.snapshot_download``, without
    duplicate weight formats); ultralytics weights go to ultralytics' weights folder. Models
    already present are not fetched again when offline. Everything is checked before anything is
    downloaded, so an offline machine fails at once, not half-way.

    Args:
        profile: The profile whose models to fetch; None means ``local`` (what ``auto`` needs).
            Ignored when ``model_ids`` is given.
        model_ids: Hub ids or ultralytics weight names to fetch instead of a profile's models.
        progress: Called as ``progress(model_id, done, total)`` before each model and once at
            the end with ``done == total``.
        models: Per-backend overrides (``Config.models``).

    Returns:
        The local path of every model, in order.

    Raises:
        ModelUnavailableError: When a model must be downloaded and downloads are impossible
            (``HF_HUB_OFFLINE``/``YOLO_OFFLINE`` set, or the hub unreachable).
        MissingExtraError: When a model needs an extra that is not installed.
        ConfigError: When ``profile`` is not a known profile.
    """
    targets = _targets(profile, model_ids, models)
    hub_missing = [t for t in targets if t.source == "hub" and not t.present]
    yolo_missing = [t for t in targets if t.source == "ultralytics" and not t.present]
    if hub_missing:
        import_or_extra("huggingface_hub", "hf", "downloading models")
        names = ", ".join(t.model_id for t in hub_missing)
        if hub_offline():
            raise ModelUnavailableError(
                f"cannot download {names}: HF_HUB_OFFLINE is set; unset it on a machine that "
                "can reach the Hugging Face hub and run the pull again"
            )
        if not hub_reachable():
            endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
            raise ModelUnavailableError(
                f"cannot download {names}: the Hugging Face hub ({endpoint}) is not reachable; "
                "run the pull where it is, or copy a saved model folder and pass its path"
            )
    if yolo_missing:
        import_or_extra("ultralytics", "yolo", "downloading YOLO weights")
        if not ultralytics_online():
            raise ModelUnavailableError(
                f"cannot download {', '.join(t.model_id for t in yolo_missing)}: ultralytics is "
                "offline (YOLO_OFFLINE is set or there is no network); put the .pt files in "
                "ultralytics' weights folder or pass their paths"
            )
    # Present hub models are re-synced when the hub is reachable (like any pull), else kept.
    hub_online = any(t.source == "hub" for t in targets) and hub_reachable()
    paths: list[str] = []
    total = len(targets)
    for i, status in enumerate(targets):
        if progress is not None:
            progress(status.model_id, i, total)
        if status.present and status.local_path and (status.source != "hub" or not hub_online):
            paths.append(status.local_path)
        elif status.source == "ultralytics":
            paths.append(_pull_ultralytics(status))
        else:
            log.info("downloading %s from the Hugging Face hub", status.model_id)
            paths.append(_pull_hub(status))
    if progress is not None:
        progress("", total, total)
    return paths
