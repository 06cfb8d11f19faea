"""Every setting reachable without Python: a TOML file, ``VADETECTIVE_*`` variables and flags,
layered in that order; bad values named with where they came from; a dead server is exit 2
with one sentence; the server planner with the weight-free tools from the command line."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from vadetective.agent.core.config import ServerSettings
from vadetective.agent.core.errors import ConfigError
from vadetective.agent.profiles import layered_config

TOML = """\
profile = "server"
scorer = "motion"
grounder = "motion"
inspector = "measure"
max_planner_calls = 8
max_steps = 3

[server]
base_url = "http://127.0.0.1:9/v1"
text_only = true
timeout_s = 45

[models]
clip = "/models/my-clip"
"""


def _kit() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "tools" / "vlm" / "fake_openai_server.py"
    spec = importlib.util.spec_from_file_location("vadetective_tests_fake_openai", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


kit = _kit()


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VADETECTIVE_SERVER", "OPENAI_"))}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "vadetective", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**clean, "COLUMNS": "200", **env},
    )


@pytest.fixture
def toml_file(tmp_path: Path) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(TOML)
    return path


def test_file_then_environment_then_flags(toml_file: Path) -> None:
    env = {"VADETECTIVE_MAX_PLANNER_CALLS": "6", "VADETECTIVE_SERVER_TIMEOUT_S": "30"}
    config = layered_config(None, toml_file, env=env, max_planner_calls=5)
    assert config.profile == "server"
    assert (config.scorer, config.grounder, config.inspector) == ("motion", "motion", "measure")
    assert config.max_planner_calls == 5  # the flag beats the environment and the file
    assert config.max_steps == 3  # from the file
    assert config.server.timeout_s == 30  # the environment beats the file
    assert config.server.text_only is True
    assert config.server.base_url == "http://127.0.0.1:9/v1"
    assert config.models["clip"] == "/models/my-clip"


def test_the_file_can_come_from_the_environment(toml_file: Path) -> None:
    config = layered_config(None, None, env={"VADETECTIVE_CONFIG": str(toml_file)})
    assert config.profile == "server" and config.max_steps == 3


def test_every_server_setting_has_a_variable() -> None:
    env = {
        "VADETECTIVE_SERVER_URL": "http://127.0.0.1:8080/v1",
        "VADETECTIVE_SERVER_MODEL": "qwen",
        "VADETECTIVE_SERVER_API_KEY": "secret",
        "VADETECTIVE_SERVER_NATIVE_TOOLS": "true",
        "VADETECTIVE_SERVER_STRUCTURED_OUTPUT": "false",
        "VADETECTIVE_SERVER_TEXT_ONLY": "auto",
        "VADETECTIVE_SERVER_TIMEOUT_S": "20",
        "VADETECTIVE_SERVER_MAX_RETRIES": "1",
        "VADETECTIVE_SERVER_DEADLINE_S": "60",
        "VADETECTIVE_SERVER_MAX_TOKENS": "200",
        "VADETECTIVE_SERVER_TEMPERATURE": "0.2",
        "VADETECTIVE_SERVER_SEED": "7",
    }
    s = ServerSettings.from_env(env)
    assert (s.base_url, s.model, s.api_key) == ("http://127.0.0.1:8080/v1", "qwen", "secret")
    assert (s.native_tools, s.structured_output, s.text_only) == (True, False, None)
    assert (s.timeout_s, s.max_retries, s.deadline_s) == (20, 1, 60)
    assert (s.max_tokens, s.temperature, s.seed) == (200, 0.2, 7)
    assert "secret" not in s.model_dump_json() and "secret" not in repr(s)  # never recorded


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("env", "(from VADETECTIVE_SERVER_MAX_RETRIES)"),
        ("file", "settings.toml)"),
        ("flag", "(from a --server-* flag)"),
    ],
)
def test_a_bad_value_names_where_it_came_from(tmp_path: Path, where: str, expected: str) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('profile = "classical"\n' + ("[server]\nmax_retries = -1\n" if where == "file" else ""))  # fmt: skip
    env = {"VADETECTIVE_SERVER_MAX_RETRIES": "-1"} if where == "env" else {}
    flags: dict[str, Any] = {"server": {"max_retries": -1}} if where == "flag" else {}
    with pytest.raises(ConfigError) as info:
        layered_config(None, path, env=env, **flags)
    message = str(info.value)
    assert message.startswith("invalid setting server.max_retries: max_retries must be >= 0")
    assert message.endswith(expected)


def test_a_bad_file_is_one_sentence(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("max_stepz = 3\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) max_stepz"):
        layered_config(None, bad, env={})
    bad.write_text("max_steps = [\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        layered_config(None, bad, env={})
    with pytest.raises(ConfigError, match="does not exist"):
        layered_config(None, tmp_path / "none.toml", env={})


def test_a_dead_server_is_exit_2_with_one_sentence(small_clip: Path, tmp_path: Path) -> None:
    url = kit.closed_port_url()
    r = run_cli(
        "analyze", str(small_clip), "--profile", "server", "--scorer", "motion",
        "--grounder", "motion", "--inspector", "measure", "--server-url", url,
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith(f"error: profile 'server' cannot run: cannot reach the server at {url}")  # fmt: skip
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "out" / "verdict.json").exists()  # nothing ran


def test_a_bad_variable_is_exit_2(small_clip: Path, tmp_path: Path) -> None:
    r = run_cli(
        "analyze", str(small_clip), "--profile", "classical", "--out", str(tmp_path / "o"),
        VADETECTIVE_SERVER_TIMEOUT_S="soon",
    )  # fmt: skip
    assert r.returncode == 2
    assert "server.timeout_s" in r.stderr and "(from VADETECTIVE_SERVER_TIMEOUT_S)" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_the_server_planner_with_weight_free_tools_from_the_command_line(
    sprint_scene: Path, tmp_path: Path
) -> None:
    verdict = {
        "answer": "Yes, someone sprints.",
        "is_anomalous": True,
        "confidence": 0.7,
        "justification": "The timeline peaks while a person sprints (E1)",
        "spans": [{"start_s": 4.0, "end_s": 7.0}],
    }
    config = tmp_path / "server.toml"
    with kit.FakeOpenAIServer(models=("tiny-llm",), owned_by="llamacpp", modalities=("text",)) as server:  # fmt: skip
        config.write_text(TOML.replace("http://127.0.0.1:9/v1", server.base_url))
        server.push(kit.Reply.text(json.dumps({"thought": "", "tool": "submit_verdict", "args": verdict})))  # fmt: skip
        out = tmp_path / "out"
        r = run_cli(
            "analyze", str(sprint_scene), "--config", str(config), "--max-planner-calls", "2",
            "--server-max-tokens", "100", "--out", str(out), "--json",
        )  # fmt: skip
        requests = list(server.requests)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["forced"] is False
    (body,) = requests
    assert body["model"] == "tiny-llm" and body["max_tokens"] == 100  # the flag
    assert body["response_format"]["type"] == "json_schema"
    trace = json.loads((out / "trace.json").read_text())
    assert trace["planner"]["server"] == server.base_url
    assert trace["planner"]["protocol"] == "json_schema"
    assert trace["planner"]["text_only"] == "true"
    assert trace["models"]["scorer"].startswith("motion")


@pytest.mark.slow
def test_batch_takes_the_file_and_records_it(tmp_path: Path) -> None:
    from vadetective.agent.synth.scene import generate_suite

    generate_suite(tmp_path / "suite", kinds=("normal",), seeds=(0,), duration_s=6.0)
    config = tmp_path / "batch.toml"
    config.write_text('profile = "classical"\nmax_steps = 2\nanomaly_threshold = 0.6\n')
    run = tmp_path / "run"
    r = run_cli(
        "batch", "manifest", str(tmp_path / "suite"), "--out", str(run), "--config", str(config),
        "--max-planner-calls", "4",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    record = json.loads((run / "run.json").read_text())
    assert record["config_file"] == {"path": str(config), "text": config.read_text()}
    assert record["config"]["max_steps"] == 2 and record["config"]["anomaly_threshold"] == 0.6
    assert record["config"]["max_planner_calls"] == 4  # the flag on top of the file


def test_every_setting_is_a_flag_of_analyze_and_batch() -> None:
    import inspect

    from vadetective.agent.cli import options
    from vadetective.agent.cli.analyze import analyze
    from vadetective.agent.cli.runs import batch
    from vadetective.agent.core.config import Config

    assert set(options.SERVER_FLAGS.values()) == set(ServerSettings.model_fields)
    assert set(options.CONFIG_FLAGS) <= set(Config.model_fields)
    for command in (analyze, batch):
        params = set(inspect.signature(command).parameters)
        assert params >= options.SETTINGS_FLAGS, command.__name__
    r = run_cli("batch", "--help")
    for flag in ("--config", "--scorer", "--model", "--server-api-key", "--seed", "--text-only"):
        assert flag in r.stdout, flag
