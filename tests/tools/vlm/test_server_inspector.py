"""inspect_crop through an OpenAI-compatible endpoint: a scripted server on 127.0.0.1, the real
openai client, assertions on the request it received."""

from __future__ import annotations

import base64
import io
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from vadetective.agent.core.config import ServerSettings, config_for
from vadetective.agent.core.errors import ConfigError
from vadetective.agent.core.types import Box
from vadetective.tools.backends.vlm.server import ServerInspector, ServerUnreachableError
from vadetective.tools.base import Inspection, Inspector
from vadetective.tools.registry import build_inspector

PERSON = Box(t_s=1.0, xyxy=(100, 60, 140, 180), label="person")


def decode_data_uri(url: str) -> np.ndarray:
    from PIL import Image

    assert url.startswith("data:image/jpeg;base64,")
    data = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_server_inspector_sends_the_zoomed_crop(
    fake_server: Any, scene_source: Any, vlm_kit: ModuleType
) -> None:
    fake_server.push(vlm_kit.Reply.text("  Yes, the person is lying on the ground.  "))
    settings = ServerSettings(base_url=fake_server.base_url, model="fake-vlm", timeout_s=10)
    config = config_for("server", server=settings)
    inspector = build_inspector(config)  # through the registry, as the toolbox builds it
    assert isinstance(inspector, ServerInspector) and isinstance(inspector, Inspector)
    result = inspector.inspect(scene_source, 1.0, PERSON, "Is this person lying on the ground?")
    assert isinstance(result, Inspection)
    assert result.answer == "Yes, the person is lying on the ground."
    assert result.facts["model"] == "fake-vlm" and result.facts["backend"] == "server"
    assert (result.facts["crop_x1"], result.facts["crop_x2"]) == (80.0, 160.0)
    assert result.crop is not None
    (body,) = fake_server.requests
    assert body["model"] == "fake-vlm" and "tools" not in body
    (message,) = body["messages"]
    text = next(p["text"] for p in message["content"] if p["type"] == "text")
    assert "Is this person lying on the ground?" in text and "red rectangle" in text
    url = next(p["image_url"]["url"] for p in message["content"] if p["type"] == "image_url")
    sent = decode_data_uri(url)
    assert sent.shape == result.crop.shape
    assert min(sent.shape[:2]) >= 336  # upscaled before sending
    h, w = sent.shape[:2]
    assert np.abs(sent[h // 2, w // 2].astype(int) - (40, 200, 40)).max() < 30  # the person


def test_model_comes_from_the_server_listing(
    fake_server: Any, scene_source: Any, vlm_kit: ModuleType
) -> None:
    fake_server.push(vlm_kit.Reply.text("a bag"))
    inspector = ServerInspector(ServerSettings(base_url=fake_server.base_url, max_retries=0))
    assert inspector.model_id == ""
    inspector.inspect(scene_source, 0.0, PERSON, "what is it?")
    assert inspector.model_id == "fake-vlm"
    assert fake_server.requests[0]["model"] == "fake-vlm"


def test_unreachable_server(scene_source: Any, vlm_kit: ModuleType) -> None:
    url = vlm_kit.closed_port_url()
    inspector = ServerInspector(ServerSettings(base_url=url, model="m", timeout_s=5, max_retries=0))
    with pytest.raises(ServerUnreachableError, match=f"cannot reach the server at {url}"):
        inspector.inspect(scene_source, 1.0, PERSON, "what?")


def test_bad_input_fails_before_any_request(fake_server: Any, scene_source: Any) -> None:
    inspector = ServerInspector(ServerSettings(base_url=fake_server.base_url, model="m"))
    with pytest.raises(ValueError, match="outside the 320x240 frame"):
        inspector.inspect(scene_source, 1.0, Box(t_s=1.0, xyxy=(500, 10, 600, 50)), "what?")
    with pytest.raises(ValueError, match="must lie within the video"):
        inspector.inspect(scene_source, -3.0, PERSON, "what?")
    assert fake_server.requests == []


def test_needs_a_url() -> None:
    with pytest.raises(ConfigError, match="VADETECTIVE_SERVER_URL"):
        ServerInspector(ServerSettings())
