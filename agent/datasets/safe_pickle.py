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


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global except ``set`` and ``frozenset``."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return set if name == "set" else frozenset
        raise pickle.UnpicklingError(
            f"refused to load {module}.{name}: only built-in containers, str, int and float "
            "are allowed in this file"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refused a persistent id: not plain data")


def _check_plain(obj: Any, depth: int = 0) -> None:
    """Raise ``TypeError`` unless ``obj`` is built only from admitted types."""
    if depth > 200:
        raise TypeError("nesting deeper than 200 levels")
    # Exact type checks: a subclass of dict or str could carry behaviour.
    if type(obj) in _SCALARS:
        return
    if type(obj) in _CONTAINERS:
        items = obj.items() if type(obj) is dict else ((x, None) for x in obj)
        for k, v in items:
            _check_plain(k, depth + 1)
            if v is not None:
                _check_plain(v, depth + 1)
        return
    raise TypeError(f"{type(obj).__module__}.{type(obj).__qualname__} is not plain data")


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
    except pickle.UnpicklingError as exc:
        raise DatasetError(f"{source}: {exc}") from exc
    except (EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
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
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise DatasetError(f"pickle file not found: {path}") from exc
    return safe_loads(data, source=str(path), encoding=encoding)
