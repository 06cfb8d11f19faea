"""Small file helpers: atomic writes, content hashes, the cache folder."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from vadetective.agent.core.errors import OutputError

CACHE_ENV = "VADETECTIVE_CACHE_DIR"


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename, so readers never see
    a half-written file, even if the process is killed mid-write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def writable_folder(path: str | Path, what: str = "the output folder") -> Path:
    """Make sure ``path`` is a folder this process can write into, before any work is done.

    Creates it (and its parents) when missing, then writes and removes a probe file.

    Args:
        path: the folder.
        what: how the user named it, for the message (e.g. ``"--out"``).

    Returns:
        ``path`` as a ``Path``.

    Raises:
        OutputError: one sentence when ``path`` is a file, cannot be created, or is not
            writable (permissions, a read-only or full file system, a name too long).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {path} is a file, not a folder: choose a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-probe-")
        os.close(fd)
        os.unlink(probe)
    except FileExistsError:  # a parent is a file
        raise OutputError(f"{what} {path} cannot be created: part of it is a file") from None
    except NotADirectoryError:
        raise OutputError(f"{what} {path} cannot be created: part of it is a file") from None
    except OSError as exc:
        hint = {
            errno.ENOSPC: "free some space or choose another folder",
            errno.ENAMETOOLONG: "choose a shorter name",
        }.get(exc.errno or -1, "choose another folder")
        raise OutputError(
            f"{what} {path} is not writable ({exc.strerror or exc}): {hint}"
        ) from None
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_hash(path: str | Path, chunk_size: int = 64 * 1024, chunks: int = 8) -> str:
    """A cheap content hash of a file: its size plus ``chunks`` evenly spaced chunks.

    Reads at most ``chunk_size * chunks`` bytes however large the file is, which is what a
    cache key for multi-gigabyte videos can afford. Files that differ only between the sampled
    chunks collide; that is the trade-off of a cheap key.
    """
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.blake2b(digest_size=16)
    h.update(str(size).encode())
    with path.open("rb") as fh:
        if size <= chunk_size * chunks:
            h.update(fh.read())
        else:
            step = (size - chunk_size) // (chunks - 1)
            for i in range(chunks):
                fh.seek(i * step)
                h.update(fh.read(chunk_size))
    return h.hexdigest()


def loads_json(text: str) -> Any:
    """``json.loads``, with JSON nested deeper than Python can recurse (a hostile file of
    100,000 ``[``) reported as a ``json.JSONDecodeError`` like any other malformed JSON."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text[:1], 0) from None


def cache_root() -> Path:
    """The cache folder: ``$VADETECTIVE_CACHE_DIR`` if set, else the platform cache dir."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vadetective"))
