"""Read plain-data pickle files without running code from them.

``pickle.load`` executes whatever callable a file names, so a downloaded annotation file such as
UCF-Crime's ``Test_annotation.pkl`` could run ``os.system`` when read. ``safe_load`` uses an
unpickler that resolves no global at all except the built-in container types ``set`` and
``frozenset`` (older pickle protocols spell those as a global call), and then checks that the
result is built only from dicts, lists, tuples, sets, str, int, float, bool and None. Anything
else (numpy arrays and scalars, bytes, class instances, functions) is refused with a
``DatasetError``.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from vadetective.agent.core.errors import DatasetError

#: Globals a plain-data pickle may reference: only these container constructors.
_ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("__builtin__", "set"),  # Python 2 pickles
        ("__builtin__", "frozenset"),
    }
)

_SCALARS = (str, int, float, bool, type(None))
_CONTAINERS = (dict, list, tuple, set, frozenset)


class RefusedPickle(pickle.UnpicklingError):
    """The pickle asks for something that is not plain data."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global except ``set`` and ``frozenset``."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return set if name == "set" else frozenset
        raise RefusedPickle(
            f"refused to load {module}.{name}: only built-in containers, str, int and float "
            "are allowed in this file"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedPickle("refused a persistent id: not plain data")


#: Bounds on what a plain-data pickle may hold (UCF-Crime's box file: ~3,000 boxes, depth 4).
MAX_DEPTH = 200
MAX_OBJECTS = 20_000_000
MAX_BYTES = 512 << 20


def _check_plain(obj: Any) -> None:
    """Raise ``TypeError`` unless ``obj`` is built only from admitted types.

    Each container is checked once, however many times it is referenced: a 277-byte pickle
    that references one list twice at each of 40 levels describes 2**40 paths but only 40
    lists. Nesting is bounded by ``MAX_DEPTH``, the number of objects by ``MAX_OBJECTS``.
    """
    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(obj, 0)]
    count = 0
    while stack:
        item, depth = stack.pop()
        # Exact type checks: a subclass of dict or str could carry behaviour.
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind not in _CONTAINERS:
            raise TypeError(f"{kind.__module__}.{kind.__qualname__} is not plain data")
        if id(item) in seen:
            continue
        seen.add(id(item))
        if depth >= MAX_DEPTH:
            raise TypeError(f"nesting deeper than {MAX_DEPTH} levels")
        count += len(item)
        if count > MAX_OBJECTS:
            raise TypeError(f"more than {MAX_OBJECTS:,} objects")
        if kind is dict:
            for k, v in item.items():
                stack.append((k, depth + 1))
                stack.append((v, depth + 1))
        else:
            stack.extend((x, depth + 1) for x in item)


def safe_loads(data: bytes, *, source: str = "<bytes>", encoding: str = "utf-8") -> Any:
    """Unpickle plain data from ``data``.

    Args:
        data: the pickle's bytes.
        source: a name for error messages (the file it came from).
        encoding: how to decode Python 2 ``str`` objects.

    Returns:
        The object: nested dicts, lists, tuples, sets of str, int, float, bool and None.

    Raises:
        DatasetError: the pickle needs anything else (a class, a function, numpy, bytes) or is
            not a valid pickle.
    """
    try:
        obj = RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()
    except RefusedPickle as exc:
        raise DatasetError(f"{source}: {exc}") from exc
    except pickle.UnpicklingError as exc:
        raise DatasetError(f"{source}: not a valid pickle ({exc})") from exc
    except (
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        MemoryError,
        OverflowError,
        RecursionError,
    ) as exc:
        # Truncated or garbled pickles surface as any of these from the C unpickler.
        raise DatasetError(f"{source}: not a valid pickle ({type(exc).__name__}: {exc})") from exc
    try:
        _check_plain(obj)
    except TypeError as exc:
        raise DatasetError(
            f"{source}: refused: {exc}; only built-in containers, str, int and float are allowed"
        ) from exc
    return obj


def safe_load(path: str | Path, *, encoding: str = "utf-8") -> Any:
    """Unpickle plain data from a file (see ``safe_loads``)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise DatasetError(f"{path}: larger than {MAX_BYTES >> 20} MB, not an annotation file")
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise DatasetError(f"pickle file not found: {path}") from exc
    except IsADirectoryError:
        raise DatasetError(f"{path} is a folder, not a pickle file") from None
    return safe_loads(data, source=str(path), encoding=encoding)
