"""`models list|pull` functions against a hub cache laid out on disk the way huggingface_hub
writes it, with the network forbidden (or faked when a test plays "online")."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from vadetective.agent.core.config import DEFAULT_MODELS
from vadetective.agent.core.errors import ConfigError, ModelUnavailableError
from vadetective.tools import models as models_mod
from vadetective.tools.models import (
    ModelStatus,
    hf_from_pretrained,
    is_cached,
    list_models,
    profile_backends,
    pull_models,
    require_available,
)

LOCAL = {"clip", "grounding-dino", "vlm"}


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache that the hub client will read."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"unexpected network connection {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def snapshot(
    cache: Path, repo: str, files: tuple[str, ...] = ("config.json", "model.safetensors")
) -> Path:
    """Write ``repo`` into ``cache`` as huggingface_hub does: refs/main -> snapshots/<commit>/."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    folder = root / "snapshots" / commit
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_text("{}")
    return folder


def test_profiles_name_their_model_backends() -> None:
    assert set(profile_backends("local")) == LOCAL
    assert profile_backends("auto") == profile_backends("local")
    assert set(profile_backends("server")) == {"clip", "grounding-dino"}
    assert profile_backends("classical") == ()
    with pytest.raises(ConfigError, match="unknown profile 'gpu'"):
        profile_backends("gpu")


def test_list_models_reports_every_backend_and_its_profiles(
    hub_cache: Path, no_network: None
) -> None:
    statuses = {m.backend: m for m in list_models()}
    assert set(statuses) == set(DEFAULT_MODELS)
    assert statuses["clip"].profiles == ("local", "server")
    assert statuses["vlm"].profiles == ("local",)
    assert statuses["siglip"].profiles == ()
    assert statuses["clip"].model_id == DEFAULT_MODELS["clip"]
    hub = [m for m in statuses.values() if m.source == "hub"]
    assert hub and not any(m.present for m in hub)  # an empty cache
    for name in ("yolo", "yolo-world"):
        m = statuses[name]
        assert m.source == "ultralytics"
        assert m.present or "first use" in m.note
    assert list_models("classical") == []
    assert {m.backend for m in list_models("local")} == LOCAL


def test_a_cached_snapshot_is_present_and_a_partial_one_is_not(
    hub_cache: Path, no_network: None
) -> None:
    folder = snapshot(hub_cache, DEFAULT_MODELS["clip"])
    snapshot(hub_cache, DEFAULT_MODELS["vlm"], files=("config.json",))  # weights never arrived
    got = {m.backend: m for m in list_models("local")}
    assert got["clip"].present and got["clip"].local_path == str(folder)
    assert not got["vlm"].present and got["vlm"].local_path is None
    assert is_cached(DEFAULT_MODELS["clip"]) and not is_cached(DEFAULT_MODELS["vlm"])
    assert require_available(DEFAULT_MODELS["clip"]) is True  # load from the cache only


def test_local_folder_overrides_are_present(hub_cache: Path, tmp_path: Path) -> None:
    (tmp_path / "my-clip").mkdir()
    m = next(
        m
        for m in list_models("local", models={"clip": str(tmp_path / "my-clip")})
        if m.backend == "clip"
    )
    assert (m.source, m.present, m.local_path) == (
        "path",
        True,
        str((tmp_path / "my-clip").resolve()),
    )


def test_pull_offline_fails_at_once_in_one_sentence(hub_cache: Path, no_network: None) -> None:
    with pytest.raises(ModelUnavailableError, match="HF_HUB_OFFLINE") as info:
        pull_models("local")
    message = str(info.value)
    assert DEFAULT_MODELS["clip"] in message and DEFAULT_MODELS["vlm"] in message
    assert message.count(". ") == 0


def test_pull_offline_returns_what_is_already_there(hub_cache: Path, no_network: None) -> None:
    folders = [snapshot(hub_cache, DEFAULT_MODELS[b]) for b in ("clip", "grounding-dino", "vlm")]
    seen: list[tuple[str, int, int]] = []
    paths = pull_models("local", progress=lambda *a: seen.append(a))
    assert sorted(paths) == sorted(str(f) for f in folders)
    assert seen[-1] == ("", 3, 3) and [s[1] for s in seen] == [0, 1, 2, 3]


class FakeHub:
    """Stands in for huggingface_hub's downloader when a test plays "online"."""

    def __init__(self, cache: Path, files: dict[str, list[str]]) -> None:
        self.cache, self.files = cache, files
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def snapshot_download(self, repo_id: str, **kwargs: Any) -> str:
        if kwargs.get("local_files_only"):
            raise OSError("not cached")  # what LocalEntryNotFoundError is
        self.calls.append((repo_id, kwargs))
        return str(self.cache / repo_id)


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch, hub_cache: Path) -> FakeHub:
    import huggingface_hub

    fake = FakeHub(
        hub_cache,
        {DEFAULT_MODELS["clip"]: ["config.json", "model.safetensors", "pytorch_model.bin"]},
    )
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(models_mod, "_HUB_REACHABLE", True)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake.snapshot_download)
    monkeypatch.setattr(
        models_mod, "_hub_files", lambda repo: fake.files.get(repo, ["config.json", "model.bin"])
    )
    return fake


def test_pull_downloads_without_duplicate_weight_formats(online: FakeHub) -> None:
    seen: list[tuple[str, int, int]] = []
    paths = pull_models(
        model_ids=[DEFAULT_MODELS["clip"], "someone/custom-model"],
        progress=lambda *a: seen.append(a),
    )
    assert paths == [
        str(online.cache / DEFAULT_MODELS["clip"]),
        str(online.cache / "someone/custom-model"),
    ]
    (clip_id, clip_kw), (custom_id, custom_kw) = online.calls
    assert custom_id == "someone/custom-model"
    assert clip_id == DEFAULT_MODELS["clip"]
    assert "*.bin" in clip_kw["ignore_patterns"] and "*.onnx" in clip_kw["ignore_patterns"]
    assert "*.bin" not in custom_kw["ignore_patterns"]  # its only weights are a .bin
    assert seen == [(DEFAULT_MODELS["clip"], 0, 2), ("someone/custom-model", 1, 2), ("", 2, 2)]


def test_pull_fetches_only_the_needed_files_of_multi_model_repos(online: FakeHub) -> None:
    pull_models(model_ids=[DEFAULT_MODELS["groundingdino-py"]])
    ((repo, kwargs),) = online.calls
    assert repo == DEFAULT_MODELS["groundingdino-py"]
    assert "groundingdino_swint_ogc.pth" in kwargs["allow_patterns"]


def test_pull_yolo_weights_offline_fails_fast(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(models_mod, "_ultralytics_weights", lambda model_id: None)
    status = models_mod.model_status("yolo", "yolo11n.pt")
    assert isinstance(status, ModelStatus) and not status.present
    with pytest.raises(ModelUnavailableError, match="YOLO_OFFLINE"):
        pull_models(model_ids=["yolo11n.pt"])


def test_loader_errors_become_one_actionable_sentence(tmp_path: Path) -> None:
    def broken_loader(path: str, **kwargs: Any) -> None:
        assert kwargs["trust_remote_code"] is False and kwargs["local_files_only"] is True
        raise OSError("no file named config.json\nlong traceback text")

    with pytest.raises(ModelUnavailableError, match="vadetective models pull") as info:
        hf_from_pretrained(broken_loader, str(tmp_path))
    assert "\n" not in str(info.value)
