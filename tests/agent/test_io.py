"""File helpers: atomic writes and the cheap content hash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vadetective.agent.core.io import atomic_write_text, cache_root, content_hash


def test_atomic_write_leaves_no_temp_file_and_normal_permissions(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "result.json"
    atomic_write_text(target, "{}")
    assert target.read_text() == "{}"
    assert [p.name for p in target.parent.iterdir()] == ["result.json"]
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_content_hash_reads_chunks_and_sees_changes(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    data = bytearray(os.urandom(2_000_000))
    big.write_bytes(bytes(data))
    h1 = content_hash(big)
    assert h1 == content_hash(big)
    data[0] ^= 0xFF  # the first chunk is always read
    big.write_bytes(bytes(data))
    assert content_hash(big) != h1
    small = tmp_path / "small.bin"
    small.write_bytes(b"abc")
    assert content_hash(small) != content_hash(big)


def test_cache_root_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VADETECTIVE_CACHE_DIR", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv("VADETECTIVE_CACHE_DIR")
    assert "vadetective" in str(cache_root())
