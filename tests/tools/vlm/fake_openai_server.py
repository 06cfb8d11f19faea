"""A scripted OpenAI-compatible HTTP server on 127.0.0.1 for tests: real HTTP, real clients.

``POST /v1/chat/completions`` records the request body and answers with the next scripted
reply (a completion, or an HTTP error with the server's error body and headers such as
``Retry-After``, possibly after a delay); ``GET /v1/models`` lists the served models, with their
input modalities when given (as llama.cpp does). An exhausted script answers HTTP 500, so a
test that makes more calls than it scripted fails instead of hanging. Not a test module: the
conftests of tests/tools/vlm and tests/graphs/planners load it by path.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a chat completion, or an HTTP error when ``status`` is not 200."""

    content: str | None = None
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    status: int = 200
    error: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    usage: tuple[int, int, int] = (11, 7, 0)  # prompt, completion, cached prompt tokens

    @classmethod
    def text(cls, content: str) -> Reply:
        return cls(content=content)

    @classmethod
    def calls(cls, *calls: tuple[str, dict[str, Any]], content: str = "") -> Reply:
        return cls(content=content, tool_calls=list(calls))

    @classmethod
    def fail(cls, status: int, error: str, **headers: str) -> Reply:
        """An HTTP error; ``retry_after="2"`` becomes the ``Retry-After`` header."""
        named = {k.replace("_", "-").title(): v for k, v in headers.items()}
        return cls(status=status, error=error, headers=named)

    def body(self, model: str, n: int) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{n}_{i}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
                for i, (name, args) in enumerate(self.tool_calls)
            ]
        return {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if self.tool_calls else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": self.usage[0],
                "completion_tokens": self.usage[1],
                "total_tokens": self.usage[0] + self.usage[1],
                "prompt_tokens_details": {"cached_tokens": self.usage[2]},
            },
        }


Script = Reply | Callable[[dict[str, Any]], Reply]


class FakeOpenAIServer:
    """Serve scripted replies on an ephemeral loopback port; use as a context manager."""

    def __init__(
        self,
        models: tuple[str, ...] = ("fake-vlm",),
        owned_by: str = "test",
        modalities: tuple[str, ...] | None = None,
    ) -> None:
        self.models = models
        self.owned_by = owned_by
        self.modalities = modalities  # None: the listing does not say (like vLLM)
        self.requests: list[dict[str, Any]] = []
        self.model_listings = 0
        self._script: deque[Script] = deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "start the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def push(self, *replies: Script) -> None:
        """Queue replies (or callables of the request body that return one)."""
        with self._lock:
            self._script.extend(replies)

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            item = self._script.popleft() if self._script else None
        if item is None:
            return Reply.fail(500, "the test script is exhausted")
        return item(body) if callable(item) else item

    def start(self) -> FakeOpenAIServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                return

            def _send(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    server.model_listings += 1
                    data: list[dict[str, Any]] = [
                        {"id": m, "object": "model", "owned_by": server.owned_by}
                        for m in server.models
                    ]
                    if server.modalities is not None:
                        for entry in data:
                            entry["architecture"] = {"input_modalities": list(server.modalities)}
                    self._send(200, {"object": "list", "data": data})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                reply = server._next(body)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.status != 200:
                    err = {"message": reply.error, "type": "BadRequestError", "code": reply.status}
                    self._send(reply.status, {"error": err, "object": "error"}, reply.headers)
                    return
                self._send(200, reply.body(str(body.get("model")), len(server.requests)))

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def closed_port_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
