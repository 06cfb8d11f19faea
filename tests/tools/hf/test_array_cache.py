"""ArrayCache: stable keys, exact round trips, corrupt and unsafe entries as misses."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from vadetective.tools.cache import ArrayCache


def test_key_is_stable_and_ignores_argument_order() -> None:
    k1 = ArrayCache.key(video="abc", model="m", idx=[1, 2, 3], max_side=640)
    k2 = ArrayCache.key(max_side=640, idx=(1, 2, 3), model="m", video="abc")
    assert k1 == k2
    assert re.fullmatch(r"[0-9a-f]{40}", k1)
    assert ArrayCache.key(video="abc", model="m", idx=[1, 2, 4], max_side=640) != k1
    assert ArrayCache.key(video="abc", model="m", idx=[1, 2, 3], max_side=320) != k1


@pytest.mark.parametrize("bad", [object(), np.float32(1.0), np.arange(3), float("nan")])
def test_key_rejects_parts_that_are_not_plain_json(bad: object) -> None:
    with pytest.raises(TypeError, match="JSON-able"):
        ArrayCache.key(part=bad)


@pytest.mark.parametrize(
    "arrays",
    [
        {"emb": np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)},
        {"frame_idx": np.array([0, 4, 9], dtype=np.int64), "mask": np.array([True, False, True])},
        {"text": np.array(["a photo of a fire.", "ünïcode"], dtype=str), "x": np.zeros(0)},
    ],
)
def test_put_then_get_round_trips_exactly(tmp_path: Path, arrays: dict[str, np.ndarray]) -> None:
    cache = ArrayCache(tmp_path)
    key = ArrayCache.key(case=sorted(arrays))
    assert cache.get(key) is None
    assert key not in cache
    cache.put(key, arrays)
    assert key in cache
    got = cache.get(key)
    assert got is not None and set(got) == set(arrays)
    for name, value in arrays.items():
        assert got[name].dtype == value.dtype
        np.testing.assert_array_equal(got[name], value)
    # one file, nothing left behind by the atomic write
    assert [p.name for p in cache.path(key).parent.iterdir()] == [f"{key}.npz"]


def test_put_replaces_an_entry(tmp_path: Path) -> None:
    cache = ArrayCache(tmp_path)
    key = ArrayCache.key(k=1)
    cache.put(key, {"a": np.ones(3)})
    cache.put(key, {"b": np.zeros(2)})
    got = cache.get(key)
    assert got is not None and list(got) == ["b"]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_entry_is_a_logged_miss(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    cache = ArrayCache(tmp_path)
    key = ArrayCache.key(k="corrupt")
    cache.put(key, {"emb": np.arange(1000, dtype=np.float32)})
    path = cache.path(key)
    data = path.read_bytes()
    path.write_bytes(b"not a zip file" if damage == "garbage" else data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="vadetective.tools.cache"):
        assert cache.get(key) is None
    assert "corrupt cache entry" in caplog.text
    cache.put(key, {"emb": np.ones(2)})  # recomputed and overwritten
    got = cache.get(key)
    assert got is not None
    np.testing.assert_array_equal(got["emb"], np.ones(2))


def test_pickled_entries_are_never_loaded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = ArrayCache(tmp_path)
    key = ArrayCache.key(k="pickle")
    with pytest.raises(TypeError, match="dtype object"):
        cache.put(key, {"obj": np.array([{"a": 1}], dtype=object)})
    # an npz with an object array written by someone else: read without pickle -> a miss
    buf = io.BytesIO()
    np.savez(buf, obj=np.array([{"a": 1}], dtype=object))
    cache.path(key).parent.mkdir(parents=True, exist_ok=True)
    cache.path(key).write_bytes(buf.getvalue())
    with caplog.at_level(logging.WARNING):
        assert cache.get(key) is None
    assert "corrupt cache entry" in caplog.text


def test_put_rejects_non_arrays_and_bad_keys(tmp_path: Path) -> None:
    cache = ArrayCache(tmp_path)
    with pytest.raises(TypeError, match="numpy array"):
        cache.put(ArrayCache.key(k=1), {"a": [1, 2, 3]})  # type: ignore[dict-item]
    for bad in ["", "../../etc/passwd", "ABC"]:
        with pytest.raises(ValueError, match="hex"):
            cache.path(bad)


def test_default_root_is_under_the_cache_dir(_isolated_cache: Path) -> None:
    assert ArrayCache().root == _isolated_cache / "arrays"
