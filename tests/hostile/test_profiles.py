"""Issue 11 item 15: a profile that cannot run is exit 2 at once, naming what is missing and how
to get it (it used to exit 0 with an "undecided" verdict after 13 s).

The check is a preflight of the profile's backends before any work (``agent.preflight``); a
backend can add its own check through ``BackendSpec.preflight`` (the server helper hooks the
planner server's reachability into it).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from hostile_kit import assert_no_traceback, assert_refused, cli

from vadetective.agent import preflight as preflight_mod
from vadetective.agent.core.catalog import DEFAULT_MODELS, BackendSpec, Role, backend_spec
from vadetective.agent.core.config import Config, config_for
from vadetective.agent.core.errors import ProfileUnavailableError
from vadetective.agent.session import Detective

LOCAL_MODELS = (DEFAULT_MODELS["clip"], DEFAULT_MODELS["grounding-dino"], DEFAULT_MODELS["vlm"])
OFFLINE = {"HF_HUB_OFFLINE": "1"}


@pytest.mark.parametrize(
    ("command", "profile", "models"),
    [
        ("analyze", "local", LOCAL_MODELS),
        ("analyze", "server", LOCAL_MODELS[:2]),
        ("batch", "local", LOCAL_MODELS),
    ],
    ids=["analyze --profile local", "analyze --profile server", "batch --profile local"],
)
def test_a_profile_without_its_models_is_refused_at_once(
    command: str, profile: str, models: tuple[str, ...], tmp_path: Path, clip: Path
) -> None:
    args = (
        ["analyze", str(clip), "--out", str(tmp_path / "o")]
        if command == "analyze"
        else ["batch", "folder", str(clip.parent), "--out", str(tmp_path / "r")]
    )
    started = time.perf_counter()
    r = cli(*args, "--profile", profile, env=OFFLINE)
    elapsed = time.perf_counter() - started
    line = assert_refused(r, f"profile '{profile}' cannot run", *models)
    assert "vadetective models pull" in line and "--profile classical" in line
    assert "HF_HUB_OFFLINE" in line
    assert "verdict" not in r.stdout and ": 6.0 s" not in r.stdout  # the video was never opened
    assert elapsed < 60, f"took {elapsed:.0f} s"
    assert not (tmp_path / "r" / "results").exists() or not list(
        (tmp_path / "r" / "results").iterdir()
    )


def test_an_unreachable_hub_is_named(tmp_path: Path, clip: Path) -> None:
    # The user's own endpoint (HF_ENDPOINT), on a port nothing listens on: refused at once.
    env = {"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}
    r = cli("analyze", str(clip), "--out", str(tmp_path / "o"), "--profile", "local", env=env)
    assert_refused(r, "cannot run", "hub is not reachable")


def test_the_python_api_raises_a_typed_error_listing_the_problems(clip: Path) -> None:
    with pytest.raises(ProfileUnavailableError) as info:
        Detective(clip, profile="local")
    assert info.value.profile == "local" and len(info.value.problems) == 1
    assert all(m in info.value.problems[0] for m in LOCAL_MODELS)


def test_local_model_folders_pass_the_preflight(tmp_path: Path) -> None:
    folders = {}
    for key in ("clip", "grounding-dino", "vlm"):
        (tmp_path / key).mkdir()
        folders[key] = str(tmp_path / key)
    assert preflight_mod.preflight_problems(config_for("local", models=folders)) == []


def test_yolo_weights_missing_offline_are_named() -> None:
    problems = preflight_mod.preflight_problems(config_for("classical", grounder="yolo"))
    assert len(problems) == 1 and DEFAULT_MODELS["yolo"] in problems[0]
    assert "ultralytics is offline" in problems[0]


def test_prebuilt_backends_and_planners_are_not_checked() -> None:
    config = config_for("local")
    skipped: tuple[Role, ...] = ("scorer", "grounder", "inspector", "planner")
    assert preflight_mod.preflight_problems(config, skip_roles=skipped) == []


def _hook(config: Config, spec: BackendSpec) -> list[str]:
    return [f"the {spec.name} planner's server at {config.server.base_url} is unreachable"]


def test_a_backend_can_hook_its_own_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def spec_with_hook(role: str, name: str) -> BackendSpec:
        spec = backend_spec(role, name)  # type: ignore[arg-type]
        if role == "planner":
            return dataclasses.replace(spec, preflight=f"{__name__}:_hook")
        return spec

    monkeypatch.setattr(preflight_mod, "backend_spec", spec_with_hook)
    with pytest.raises(ProfileUnavailableError, match="rules planner's server at None"):
        preflight_mod.preflight(config_for("classical"))


def test_auto_still_falls_back_to_classical(tmp_path: Path, clip: Path) -> None:
    r = cli("analyze", str(clip), "--out", str(tmp_path / "o"), "--json", env=OFFLINE)
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert "profile auto -> classical" in r.stderr
