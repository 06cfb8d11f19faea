"""The restricted unpickler admits plain data only and never runs code from a file."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.datasets.safe_pickle import safe_load, safe_loads

PLAIN: Any = {
    "Arrest001_x264": [["Arrest/Arrest001_x264/00012.jpg", 1, 2.5, 30, 40]],
    "nested": {"t": (1, 2.0, "x"), "s": {1, 2}, "f": frozenset({"a"}), "n": None, "b": True},
    "empty": [],
}


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_data_round_trips_at_every_protocol(protocol: int) -> None:
    assert safe_loads(pickle.dumps(PLAIN, protocol=protocol)) == PLAIN


class _Shell:
    """Unpickling this would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


class _Plain:
    pass


def test_refuses_a_pickle_that_would_call_os_system(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"video": _Shell(marker)})
    path = tmp_path / "Test_annotation.pkl"
    path.write_bytes(payload)
    with pytest.raises(DatasetError, match=r"refused to load (posix|os|nt)\.system"):
        safe_load(path)
    assert not marker.exists()
    # The same bytes really are dangerous: the plain unpickler would have run the command.
    pickle.loads(payload)
    assert marker.exists()


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        (np.arange(3), r"numpy"),
        (np.float64(1.5), r"numpy"),
        ({"x": [np.int64(3)]}, r"numpy"),
        (b"raw bytes", r"bytes is not plain data"),
        (bytearray(b"x"), r"bytearray"),
        (_Plain(), r"refused to load"),
        (eval, r"builtins\.eval"),
        (range(3), r"builtins\.range"),
        (complex(1, 2), r"builtins\.complex"),
    ],
    ids=[
        "ndarray",
        "np-float",
        "np-int-nested",
        "bytes",
        "bytearray",
        "instance",
        "eval",
        "range",
        "complex",
    ],
)
def test_refuses_anything_but_plain_data(obj: Any, match: str) -> None:
    with pytest.raises(DatasetError, match=match):
        safe_loads(pickle.dumps(obj), source="f.pkl")


def test_refuses_handwritten_protocol0_global() -> None:
    # GLOBAL os.system, then call it with a tuple: the classic malicious pickle.
    payload = b"cos\nsystem\n(S'echo hi'\ntR."
    with pytest.raises(DatasetError, match=r"refused to load os\.system"):
        safe_loads(payload)


@pytest.mark.parametrize("payload", [b"", b"not a pickle", pickle.dumps(PLAIN)[:-5]])
def test_garbage_is_a_dataset_error(payload: bytes) -> None:
    with pytest.raises(DatasetError, match=r"f.pkl"):
        safe_loads(payload, source="f.pkl")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        safe_load(tmp_path / "nope.pkl")
