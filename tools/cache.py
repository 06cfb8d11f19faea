"""A content-addressed cache of numpy arrays on disk (frame embeddings, score curves, what the
classical perception computed for a video).

One ``.npz`` file per key, written atomically and read without pickle, so a cache folder shared
by several worker processes never yields half-written or executable data. A corrupt entry is a
miss (logged), never a crash: the caller recomputes and overwrites it. A *record* is arrays plus
a JSON document (``put_record`` / ``get_record``): the JSON is stored inside the same ``.npz`` as
a string array, so one atomic file holds both. Readers check what they load (``check``): an
entry that holds NaN where numbers must be finite, or that does not fit the video, is a miss too.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Callable
from hashlib import blake2b
from pathlib import Path
from typing import Any

import numpy as np

from vadetective.agent.core.io import atomic_write_bytes, cache_root

log = logging.getLogger(__name__)

#: Bump when the layout of cached arrays changes, so old entries become misses, not errors.
CACHE_FORMAT_VERSION = 1
_META = "__meta_json__"  # the array holding a record's JSON document

#: A reader's plausibility check of a loaded entry: a sentence saying what is wrong, or None.
Check = Callable[[dict[str, np.ndarray]], str | None]


class ArrayCache:
    """Named groups of numpy arrays stored as ``<root>/<key[:2]>/<key>.npz``.

    Args:
        root: The cache folder; defaults to ``cache_root() / "arrays"`` (which honours
            ``$VADETECTIVE_CACHE_DIR``), resolved when the cache is created, not at import.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else cache_root() / "arrays"

    def __repr__(self) -> str:
        return f"ArrayCache(root={str(self.root)!r})"

    @staticmethod
    def key(**parts: Any) -> str:
        """A stable hash of JSON-able ``parts`` (order of the keyword arguments does not matter).

        Tuples and lists hash alike; numpy scalars and arrays are not accepted (convert them with
        ``.tolist()``), so a key never depends on a dtype's repr.

        Raises:
            TypeError: When a part cannot be written as JSON.
        """
        try:
            text = json.dumps(
                {"v": CACHE_FORMAT_VERSION, **parts},
                sort_keys=True,
                separators=(",", ":"),
                ensure_ascii=False,
                allow_nan=False,
            )
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"cache key parts must be JSON-able (str, numbers, bools, None, lists, dicts): {exc}"
            ) from exc
        return blake2b(text.encode("utf-8"), digest_size=20).hexdigest()

    def path(self, key: str) -> Path:
        """Where the entry for ``key`` lives (whether or not it exists)."""
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(
                f"cache keys are lowercase hex strings from ArrayCache.key(), got {key!r}"
            )
        return self.root / key[:2] / f"{key}.npz"

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str, check: Check | None = None) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key``, or None when absent, unreadable or implausible.

        Args:
            key: From ``ArrayCache.key``.
            check: Called with the loaded arrays; a returned sentence makes the entry a miss
                (logged, then recomputed and overwritten by the caller).
        """
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: np.asarray(npz[name]) for name in npz.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            log.warning(
                "ignoring corrupt cache entry %s (%s: %s); it will be recomputed",
                path,
                exc.__class__.__name__,
                exc,
            )
            return None
        problem = check(arrays) if check is not None else None
        if problem:
            log.warning("ignoring cache entry %s (%s); it will be recomputed", path, problem)
            return None
        return arrays

    def get_record(
        self, key: str, check: Check | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """The arrays and the JSON document stored by ``put_record``, or None (a miss) when
        absent, unreadable, without a valid document, or rejected by ``check``."""
        arrays = self.get(key, check)
        if arrays is None:
            return None
        raw = arrays.pop(_META, None)
        try:
            meta = json.loads(str(raw)) if raw is not None and raw.ndim == 0 else None
        except (ValueError, RecursionError) as exc:
            log.warning("ignoring cache entry %s (its JSON is corrupt: %s)", self.path(key), exc)
            return None
        if not isinstance(meta, dict):
            log.warning("ignoring cache entry %s (no JSON document)", self.path(key))
            return None
        return arrays, meta

    def put_record(self, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Store ``arrays`` and the JSON-able ``meta`` under ``key`` in one atomic file.

        Raises:
            TypeError: When ``meta`` is not JSON (NaN and infinities included) or an array
                cannot be stored (see ``put``).
        """
        try:
            text = json.dumps(meta, sort_keys=True, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"cache record metadata must be JSON: {exc}") from exc
        if _META in arrays:
            raise TypeError(f"{_META!r} is reserved for the record's JSON document")
        self.put(key, {**arrays, _META: np.asarray(text)})

    def put(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        """Store ``arrays`` under ``key``, replacing any previous entry atomically.

        Raises:
            TypeError: When a value is not a numpy array or has an object dtype (object arrays
                would need pickle to load).
        """
        for name, value in arrays.items():
            if not isinstance(value, np.ndarray):
                raise TypeError(
                    f"cache value {name!r} must be a numpy array, got {type(value).__name__}"
                )
            if value.dtype.hasobject:
                raise TypeError(
                    f"cache value {name!r} has dtype object; store numbers or fixed-width strings"
                )
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        atomic_write_bytes(self.path(key), buf.getvalue())
        log.debug("cached %s (%d arrays) at %s", key, len(arrays), self.path(key))


def all_finite(arrays: dict[str, np.ndarray]) -> str | None:
    """A ``Check``: every floating-point array must hold only finite numbers."""
    for name, value in arrays.items():
        if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
            return f"{name!r} holds NaN or infinite values"
    return None
