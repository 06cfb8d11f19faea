"""The OpenAI-compatible client shared by the server planner and inspector, against a scripted
server on 127.0.0.1: capabilities from ``/models``, refusals read from the server's error body,
retries only for transient failures, and the preflight check."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import pytest

from vadetective.agent.core.config import ServerSettings, config_for
from vadetective.agent.core.errors import ConfigError
from vadetective.tools.backends.vlm.server import (
    ServerCapabilities,
    ServerClient,
    ServerRequestError,
    ServerUnreachableError,
    diagnose_refusal,
    parse_capabilities,
    preflight_server,
)

HELLO = [{"role": "user", "content": "hello"}]


def client(url: str, **settings: Any) -> ServerClient:
    values: dict[str, Any] = {"base_url": url, "timeout_s": 10.0, **settings}
    return ServerClient(ServerSettings(**values))


def chat(c: ServerClient) -> Any:
    return c.chat(HELLO, max_tokens=32, temperature=0.0)


# (id, /models listing, configured model, expected capabilities)
LISTINGS: list[tuple[str, dict[str, Any], str | None, ServerCapabilities | None]] = [
    (
        "llama.cpp-text-only",
        {
            "object": "list",
            "data": [
                {
                    "id": "/models/qwen.gguf",
                    "object": "model",
                    "owned_by": "llamacpp",
                    "meta": {"n_ctx_train": 32768, "n_ctx": 8192},
                    "architecture": {"input_modalities": ["text"]},
                }
            ],
        },
        None,
        ServerCapabilities("/models/qwen.gguf", "llamacpp", vision=False, context_tokens=8192),
    ),
    (
        "llama.cpp-with-mmproj",
        {
            "data": [
                {
                    "id": "qwen-vl",
                    "owned_by": "llamacpp",
                    "architecture": {"input_modalities": ["text", "image"]},
                }
            ]
        },
        None,
        ServerCapabilities("qwen-vl", "llamacpp", vision=True),
    ),
    (
        "vllm-says-nothing-about-modalities",
        {"data": [{"id": "Qwen/Qwen2.5-VL-7B-Instruct", "owned_by": "vllm"}]},
        None,
        ServerCapabilities("Qwen/Qwen2.5-VL-7B-Instruct", "vllm", vision=None),
    ),
    (
        "the-configured-model-is-found-by-alias",
        {
            "data": [
                {"id": "a", "owned_by": "x"},
                {"id": "b.gguf", "aliases": ["b"], "architecture": {"input_modalities": ["text"]}},
            ]
        },
        "b",
        ServerCapabilities("b", "", vision=False),
    ),
    ("empty-listing", {"object": "list", "data": []}, None, None),
]


@pytest.mark.parametrize(
    ("listing", "wanted", "expected"), [x[1:] for x in LISTINGS], ids=[x[0] for x in LISTINGS]
)
def test_capabilities_come_from_the_model_listing(
    listing: dict[str, Any], wanted: str | None, expected: ServerCapabilities | None
) -> None:
    assert parse_capabilities(listing, wanted) == expected


# (what real servers answer, status, what was refused)
REFUSALS: list[tuple[str, int, str | None]] = [
    ("image input is not supported - hint: if this is unexpected, you may need to provide the mmproj", 500, "images"),
    ('"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set', 400, "tools"),
    ("tools param requires --jinja flag", 500, "tools"),
    ("response_format type json_schema is not supported", 400, "response_format"),
    ("Failed to parse grammar", 400, "response_format"),
    ("the request exceeds the available context size, try increasing it", 400, "context"),
    ("Loading model", 503, None),  # transient: retried, never a refusal
    ("something else went wrong", 500, None),
]  # fmt: skip


@pytest.mark.parametrize(("message", "status", "refused"), REFUSALS)
def test_refusals_are_read_from_the_error_body(
    message: str, status: int, refused: str | None
) -> None:
    assert diagnose_refusal(status, message) == refused


def test_a_server_still_loading_is_retried(fake_server: Any, vlm_kit: ModuleType) -> None:
    fake_server.push(vlm_kit.Reply.fail(503, "Loading model", retry_after="0"))
    fake_server.push(vlm_kit.Reply.text("hi"))
    reply = chat(client(fake_server.base_url, model="m"))
    assert reply.text == "hi" and reply.attempts == 2
    assert len(fake_server.requests) == 2


def test_rate_limits_honour_retry_after(
    fake_server: Any, vlm_kit: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    fake_server.push(vlm_kit.Reply.fail(429, "slow down", retry_after="1"))
    fake_server.push(vlm_kit.Reply.text("hi"))
    with caplog.at_level(logging.WARNING):
        reply = chat(client(fake_server.base_url, model="m"))
    assert reply.attempts == 2
    assert "attempt 2 of 4 in 1.0 s" in caplog.text  # the server's Retry-After, not 2**n


@pytest.mark.parametrize("status", [400, 404, 422, 500])
def test_deterministic_errors_are_not_retried(
    fake_server: Any, vlm_kit: ModuleType, status: int
) -> None:
    fake_server.push(vlm_kit.Reply.fail(status, "bad request body"))
    with pytest.raises(ServerRequestError) as info:
        chat(client(fake_server.base_url, model="m"))
    assert len(fake_server.requests) == 1
    assert info.value.status_code == status
    assert f"answered HTTP {status}: bad request body" in str(info.value)


def test_retries_stop_at_the_retry_limit(fake_server: Any, vlm_kit: ModuleType) -> None:
    fake_server.push(*[vlm_kit.Reply.fail(503, "Loading model", retry_after="0")] * 5)
    with pytest.raises(ServerRequestError, match=r"HTTP 503 after 3 attempts"):
        chat(client(fake_server.base_url, model="m", max_retries=2))
    assert len(fake_server.requests) == 3


def test_retries_stop_at_the_deadline(fake_server: Any, vlm_kit: ModuleType) -> None:
    # Each attempt takes 0.4 s; the deadline of 1 s allows two or three, never the ten retries.
    fake_server.push(*[vlm_kit.Reply(status=503, error="busy", delay_s=0.4)] * 10)
    with pytest.raises(ServerRequestError, match="HTTP 503"):
        chat(client(fake_server.base_url, model="m", max_retries=10, deadline_s=1.0))
    assert 2 <= len(fake_server.requests) <= 4


def test_a_timeout_is_not_retried(fake_server: Any, vlm_kit: ModuleType) -> None:
    fake_server.push(vlm_kit.Reply(content="late", delay_s=3.0), vlm_kit.Reply.text("x"))
    with pytest.raises(
        ServerUnreachableError, match=r"did not answer within 1 s.*--server-timeout"
    ):
        chat(client(fake_server.base_url, model="m", timeout_s=1.0))
    assert len(fake_server.requests) == 1


def test_a_refused_connection_is_one_sentence_without_retries(vlm_kit: ModuleType) -> None:
    url = vlm_kit.closed_port_url()
    with pytest.raises(ServerUnreachableError) as info:
        chat(client(url, model="m", max_retries=5))
    message = str(info.value)
    assert message.startswith(f"cannot reach the server at {url} (connection refused)")
    assert "VADETECTIVE_SERVER_URL" in message and ". " not in message


def test_token_counts_and_cached_prefix_are_read(fake_server: Any, vlm_kit: ModuleType) -> None:
    fake_server.push(vlm_kit.Reply(content="ok", usage=(900, 20, 850)))
    reply = chat(client(fake_server.base_url, model="m"))
    assert (reply.prompt_tokens, reply.completion_tokens, reply.cached_tokens) == (900, 20, 850)


def test_preflight_names_an_unreachable_server(vlm_kit: ModuleType) -> None:
    url = vlm_kit.closed_port_url()
    config = config_for("server", server=ServerSettings(base_url=url))
    (problem,) = preflight_server(config)
    assert problem.startswith(f"cannot reach the server at {url}")


def test_preflight_passes_a_live_server(fake_server: Any) -> None:
    config = config_for("server", server=ServerSettings(base_url=fake_server.base_url))
    assert preflight_server(config) == []
    assert fake_server.model_listings == 1 and fake_server.requests == []  # no chat request


def test_preflight_without_a_url_says_how_to_set_it() -> None:
    config = config_for("server", server=ServerSettings())
    (problem,) = preflight_server(config)
    assert "VADETECTIVE_SERVER_URL" in problem and "--server-url" in problem


def test_a_listing_without_models_needs_a_configured_name(vlm_kit: ModuleType) -> None:
    with vlm_kit.FakeOpenAIServer(models=()) as server:
        with pytest.raises(ConfigError, match="lists no models: set VADETECTIVE_SERVER_MODEL"):
            client(server.base_url).capabilities()
        assert client(server.base_url, model="mine").capabilities().model == "mine"


def test_planner_and_inspector_on_one_server_report_it_once(vlm_kit: ModuleType) -> None:
    from vadetective.agent.core.catalog import backend_spec

    url = vlm_kit.closed_port_url()
    config = config_for("server", server=ServerSettings(base_url=url))
    assert (config.planner, config.inspector) == ("server", "server")
    problems = [
        p
        for role in ("planner", "inspector")
        for p in preflight_server(config, backend_spec(role, "server"))
    ]
    assert len(problems) == 1 and url in problems[0]
