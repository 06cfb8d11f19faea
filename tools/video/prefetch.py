"""Decode ahead in a background thread while the caller works on the frames it already has.

FFmpeg's decoder and OpenCV's image functions release the GIL, so on two cores the one pass
decodes the next frames while perception processes the current one: the pass takes about as
long as the slower of the two, not their sum. The thread is the only one that touches the
source while the pass runs; the caller must not ``read`` from the same source until the
iterator is exhausted or closed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


def prefetch(items: Iterator[T], depth: int = 32) -> Iterator[T]:
    """Yield what ``items`` yields, produced by a background thread up to ``depth`` ahead.

    An exception raised by ``items`` is raised here, where the caller reads. Closing the
    returned generator early (``break``, an exception in the caller) stops the thread.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    out: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="vadetective-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = out.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()
