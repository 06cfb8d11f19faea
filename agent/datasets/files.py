"""Finding a dataset's files: videos, folders of frames, annotation files, and the ids they get.

Folders are walked in sorted order with hidden entries skipped; symlinked folders are followed
once each (a loop is harmless) and a file reached twice is listed once.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.core.io import loads_json
from vadetective.agent.datasets.base import VIDEO_EXTENSIONS, bounded_id


def is_video_file(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".")


def strip_video_suffix(name: str) -> str:
    """``'Abuse028_x264.mp4'`` -> ``'Abuse028_x264'``; names without a video suffix unchanged."""
    p = Path(name)
    return p.stem if p.suffix.lower() in VIDEO_EXTENSIONS else p.name


def walk_files(root: Path) -> Iterator[Path]:
    """Every file under ``root`` (recursively, hidden folders skipped), in sorted order.

    Symlinked folders are followed, but each real folder is entered once, so a link that points
    back up the tree (a loop) is harmless.
    """
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            yield Path(dirpath) / name


def find_videos(root: Path) -> list[Path]:
    """Video files under ``root``, recursively, sorted by path; a file reached twice (through a
    symlink) is listed once, under its first path."""
    if not root.is_dir():
        raise DatasetError(f"dataset root is not a folder: {root}")
    out: list[Path] = []
    seen: set[Path] = set()
    for p in sorted(p for p in walk_files(root) if is_video_file(p)):
        real = p.resolve()
        if real not in seen and real.is_file():
            seen.add(real)
            out.append(p)
    return out


#: A folder needs at least this many images (and no video file) to be read as a video.
MIN_FOLDER_FRAMES = 2


def find_frame_folders(root: Path) -> list[Path]:
    """Folders under ``root`` (itself included) that hold frames: ``MIN_FOLDER_FRAMES`` or more
    images and no video file, sorted by path."""
    from vadetective.tools.video.folder import IMAGE_EXTENSIONS

    images: dict[Path, int] = {}
    with_videos: set[Path] = set()
    for p in walk_files(root):
        if is_video_file(p):
            with_videos.add(p.parent)
        elif p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."):
            images[p.parent] = images.get(p.parent, 0) + 1
    return sorted(d for d, n in images.items() if n >= MIN_FOLDER_FRAMES and d not in with_videos)


def index_by_stem(paths: Iterable[Path]) -> dict[str, list[Path]]:
    """Group files by name without suffix."""
    out: dict[str, list[Path]] = {}
    for p in paths:
        out.setdefault(p.stem, []).append(p)
    return out


def find_file(root: Path, names: Sequence[str]) -> Path | None:
    """The first file under ``root`` (itself, then recursively) whose name is one of ``names``
    (case-insensitive), preferring shallower paths."""
    wanted = {n.lower() for n in names}
    if root.is_file():
        return root if root.name.lower() in wanted else None
    best: Path | None = None
    for p in walk_files(root):
        if p.name.lower() in wanted and (best is None or len(p.parts) < len(best.parts)):
            best = p
    return best


def find_folder(root: Path, name: str) -> Path | None:
    """The shallowest folder called ``name`` under ``root`` (``root`` itself first), hidden
    folders skipped."""
    if root.name == name and root.is_dir():
        return root
    best: Path | None = None
    for dirpath, dirnames, _ in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if name in dirnames:
            cand = Path(dirpath) / name
            if best is None or len(cand.parts) < len(best.parts):
                best = cand
    return best


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON file holding a non-empty object (``what`` says of what, for the error).

    Raises:
        DatasetError: a missing file, invalid JSON, or anything but a non-empty object.
    """
    try:
        data = loads_json(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as exc:
        raise DatasetError(f"annotation file not found: {path}") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not a UTF-8 text file ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict) or not data:
        raise DatasetError(f"{path}: expected an object of {what}")
    return data


def one_video(by_stem: dict[str, list[Path]], name: str, root: Path) -> Path | None:
    """The one video called ``name`` (None when absent).

    Raises:
        DatasetError: the name is found more than once under ``root``.
    """
    paths = by_stem.get(name, [])
    if len(paths) > 1:
        raise DatasetError(f"{name} is found more than once under {root}; keep one")
    return paths[0] if paths else None


def ids_from_paths(paths: Sequence[Path], root: Path) -> list[str]:
    """A unique, file-name-safe id per path: the name without suffix; where two paths share it,
    the path relative to ``root`` without suffix with ``/`` replaced by ``__``; where that still
    collides (``sub/a.mp4`` beside ``sub__a.mp4``), the relative path plus a short hash of it.
    Ids longer than ``MAX_VIDEO_ID_BYTES`` are cut and hashed (``bounded_id``). A folder of
    frames keeps its whole name (no suffix is cut)."""

    def relative(p: Path) -> str:
        try:
            rel = p.absolute().relative_to(root.absolute())
        except ValueError:
            rel = Path(*p.parts[-3:])
        rel = rel if p.is_dir() else rel.with_suffix("")
        return "__".join(rel.parts).lstrip(".") or _name(p)

    def counts(ids: Iterable[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in ids:
            out[i] = out.get(i, 0) + 1
        return out

    ids = [bounded_id(_name(p).lstrip(".") or "video") for p in paths]
    n = counts(ids)
    ids = [i if n[i] == 1 else bounded_id(relative(p)) for i, p in zip(ids, paths, strict=True)]
    n = counts(ids)
    ids = [
        i if n[i] == 1 else bounded_id(f"{relative(p)}-{_short_hash(str(p.absolute()))}")
        for i, p in zip(ids, paths, strict=True)
    ]
    return ids


def _name(p: Path) -> str:
    """A path's name without suffix; a folder (of frames) keeps its whole name."""
    return p.name if p.is_dir() else p.stem


def _short_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=4).hexdigest()
