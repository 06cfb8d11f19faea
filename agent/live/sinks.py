"""Where alerts go: a JSONL file, a callback (the CLI prints), a webhook.

Every sink takes ``Alert`` revisions in order through ``send`` and is closed once. A sink must
never block the analysis: the JSONL file is written and flushed per alert (a few hundred bytes,
fsync'ed so a crash or a kill keeps every alert written so far), and the webhook posts from its
own thread with retries and exponential backoff (tenacity), dropping the oldest alert with a
warning if its bounded queue fills while the endpoint is down.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

from vadetective.agent.core.types import Alert

log = logging.getLogger(__name__)


class AlertSink(Protocol):
    """Takes alert revisions in order."""

    def send(self, alert: Alert) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """One JSON object per line, appended, flushed and fsync'ed per alert."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] | None = self.path.open("a", encoding="utf-8")

    def send(self, alert: Alert) -> None:
        if self._fh is None:
            raise RuntimeError(f"{self.path} is closed")
        self._fh.write(alert.model_dump_json() + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class CallbackSink:
    """Hands each alert to a function (the CLI prints it; a notebook collects it)."""

    def __init__(self, fn: Callable[[Alert], None]) -> None:
        self.fn = fn

    def send(self, alert: Alert) -> None:
        self.fn(alert)

    def close(self) -> None:
        return None


class _Retryable(Exception):
    """A delivery failure worth retrying (connection refused, timeout, 429, 5xx)."""


class WebhookSink:
    """POSTs each alert as JSON to ``url`` from a background thread.

    Args:
        url: the endpoint (http or https).
        attempts: tries per alert before it is given up (logged).
        backoff_s: first wait between tries; doubles each time, at most ``max_backoff_s``.
        timeout_s: per-request timeout.
        queue_size: alerts waiting for delivery; beyond it the oldest is dropped (logged).
    """

    def __init__(
        self,
        url: str,
        attempts: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        timeout_s: float = 5.0,
        queue_size: int = 100,
    ) -> None:
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must start with http:// or https://, got {url!r}")
        self.url = url
        self.attempts, self.backoff_s, self.max_backoff_s = attempts, backoff_s, max_backoff_s
        self.timeout_s = timeout_s
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue[Alert | None] = queue.Queue(maxsize=queue_size)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vadetective-webhook", daemon=True)
        self._thread.start()

    def send(self, alert: Alert) -> None:
        """Queue the alert; never waits for the network."""
        while True:
            try:
                self._queue.put_nowait(alert)
                return
            except queue.Full:
                try:
                    old = self._queue.get_nowait()
                except queue.Empty:
                    continue
                self.dropped += 1
                if old is not None:
                    log.warning(
                        "webhook %s is behind: dropped alert %s r%d", self.url, old.id, old.revision
                    )

    def close(self, wait_s: float = 10.0) -> None:
        """Deliver what is queued (for at most ``wait_s``), then stop the thread."""
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=wait_s)
        self._thread.join(timeout=wait_s)
        self._stopping.set()
        self._thread.join(timeout=self.timeout_s + 1.0)

    def _post(self, body: bytes) -> None:
        req = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 429 or exc.code >= 500:
                raise _Retryable(f"HTTP {exc.code}") from exc
            raise
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise _Retryable(str(exc)) from exc

    def _deliver(self, alert: Alert) -> None:
        from tenacity import (
            Retrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_exponential,
        )

        body = json.dumps(alert.model_dump(mode="json")).encode("utf-8")
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=self.max_backoff_s),
            retry=retry_if_exception_type(_Retryable),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            retrying(self._post, body)
            self.delivered += 1
        except (_Retryable, urllib.error.HTTPError, ValueError, OSError) as exc:
            self.failed += 1
            log.warning(
                "webhook %s: alert %s r%d not delivered: %s",
                self.url,
                alert.id,
                alert.revision,
                exc,
            )

    def _sleep(self, seconds: float) -> None:
        if self._stopping.wait(seconds):
            raise _Retryable("stopping")

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._deliver(item)


__all__ = ["AlertSink", "CallbackSink", "JsonlSink", "WebhookSink"]
