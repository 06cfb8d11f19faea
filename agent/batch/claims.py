"""Claims on the videos of a run folder, so that batches sharing one ``--out`` cooperate.

A batch claims a video (an exclusive lock on ``locks/<video_id>.lock``) before analyzing it and
releases the claim when its result or failure is written. A second batch started on the same
folder skips what is finished, leaves claimed videos to their owner (and takes them over if the
owner dies: the operating system drops the locks of a killed process, ``kill -9`` included), and
analyzes the rest, so two batches split the work instead of both doing all of it.
The setup of a run (comparing and writing ``run.json``, removing temp files a killed run left)
happens under ``locks/run.lock``.

Locks are ``flock``-style (``filelock``). On a file system without such locks, batches are not
coordinated and a warning says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from vadetective.agent.core.vocabulary import RunFolder
from vadetective.agent.datasets import LabeledVideo

log = logging.getLogger(__name__)

_RUN_LOCK = "run.lock"


class Claims:
    """The claims this process holds on the videos of one run folder."""

    def __init__(self, out: Path) -> None:
        self.folder = out / RunFolder.LOCKS
        self.folder.mkdir(parents=True, exist_ok=True)
        self._held: dict[str, FileLock] = {}
        self._coordinated = True

    def _lock(self, name: str) -> FileLock:
        # No soft-lock fallback: a lock file left by a killed process would block forever.
        return FileLock(self.folder / name, timeout=0, fallback_to_soft=False, thread_local=False)

    def _acquire(self, lock: FileLock, timeout: float = 0) -> bool:
        if not self._coordinated:
            return True
        try:
            lock.acquire(timeout=timeout)
            return True
        except Timeout:
            return False
        except (OSError, NotImplementedError) as exc:
            self._coordinated = False
            log.warning(
                "cannot lock files in %s (%s): batches sharing this folder are not coordinated",
                self.folder,
                exc,
            )
            return True

    def try_claim(self, video_id: str) -> bool:
        """Claim ``video_id`` for this process; False when another process holds it."""
        if video_id in self._held:
            return True
        lock = self._lock(f"{video_id}.lock")
        if not self._acquire(lock):
            return False
        self._held[video_id] = lock
        return True

    def is_free(self, video_id: str) -> bool:
        """True when nobody (this process included) holds ``video_id``."""
        if video_id in self._held:
            return False
        if self.try_claim(video_id):
            self.release(video_id)
            return True
        return False

    def release(self, video_id: str) -> None:
        lock = self._held.pop(video_id, None)
        if lock is not None and lock.is_locked:
            lock.release()

    def release_all(self) -> None:
        for video_id in list(self._held):
            self.release(video_id)

    @contextmanager
    def setup(self, timeout_s: float = 60.0) -> Iterator[None]:
        """Hold the run folder's setup lock (another batch's setup takes a moment at most)."""
        lock = self._lock(_RUN_LOCK)
        if not self._acquire(lock, timeout=timeout_s):
            raise TimeoutError(f"{self.folder / _RUN_LOCK} stayed locked for {timeout_s:.0f} s")
        try:
            yield
        finally:
            if lock.is_locked:
                lock.release()


class WorkQueue:
    """Videos to analyze, handed out only once this process holds their claim.

    ``settled(item)`` says whether a video no longer needs work (its result exists, or another
    batch recorded its failure while this one ran); such videos are reported through ``skip``.
    Videos claimed by another batch wait in ``busy`` and are asked about again later.
    """

    def __init__(
        self,
        items: Iterable[LabeledVideo],
        claims: Claims,
        settled: Callable[[LabeledVideo], str | None],
        skip: Callable[[LabeledVideo, str], None],
    ) -> None:
        self.fresh = list(items)
        self.fresh.reverse()  # pop() from the end keeps the given order
        self.busy: list[LabeledVideo] = []
        self.claims = claims
        self.settled = settled
        self.skip = skip

    def __bool__(self) -> bool:
        return bool(self.fresh or self.busy)

    @property
    def only_busy(self) -> bool:
        """True when everything left is claimed by another batch (poll again later)."""
        return not self.fresh and bool(self.busy)

    def _ready(self, item: LabeledVideo) -> bool | None:
        """True: claimed, go; None: settled (reported); False: busy elsewhere."""
        if not self.claims.try_claim(item.video_id):
            return False
        why = self.settled(item)  # checked under the claim: the owner may just have finished
        if why is not None:
            self.claims.release(item.video_id)
            self.skip(item, why)
            return None
        return True

    def take(self) -> LabeledVideo | None:
        """The next claimed video, or None when only videos busy elsewhere are left."""
        while self.fresh:
            item = self.fresh.pop()
            ready = self._ready(item)
            if ready:
                return item
            if ready is False:
                self.busy.append(item)
        for item in list(self.busy):
            ready = self._ready(item)
            if ready is not False:
                self.busy.remove(item)
            if ready:
                return item
        return None

    def done(self, item: LabeledVideo) -> None:
        self.claims.release(item.video_id)
