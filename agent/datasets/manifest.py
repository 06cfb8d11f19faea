"""Generic datasets: a manifest file (JSONL or CSV) and a plain folder of videos.

JSONL (what ``vadetective.agent.synth.scene.generate_suite`` writes as ``manifest.jsonl``), one object
per line::

    {"path": "videos/a.mp4", "label": "sprint", "spans": [[2.0, 4.5]]}

CSV with a header row, ``path,label,spans`` where spans read ``1.0-3.5;7-9``::

    path,label,spans
    videos/a.mp4,sprint,2.0-4.5
    videos/b.mp4,normal,

``path`` is relative to the manifest's folder (or absolute). ``label`` and ``spans`` are
optional: a label other than ``normal`` (or ``none``) marks the video anomalous, spans are anomaly intervals in
seconds; with neither the video is unlabelled. Optional keys: ``id`` (the video id; default the
file name without suffix), ``description`` (reference text, a string or a list of strings, for
caption metrics), ``fps`` (the frame rate of a ``path`` that is a folder of frames, whose images
carry no timestamps; recorded as the frame rate's source) and, in JSONL only, ``boxes`` as
``[[t_s, x1, y1, x2, y2], ...]``. Other keys are ignored, so a manifest can carry extra
bookkeeping.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.core.io import loads_json
from vadetective.agent.core.types import Box, TimeSpan
from vadetective.agent.datasets.base import (
    Dataset,
    LabeledVideo,
    dataset_error,
    options_of,
    resolve_missing,
)
from vadetective.agent.datasets.files import find_frame_folders, find_videos, ids_from_paths

logger = logging.getLogger(__name__)

MANIFEST_NAMES = ("manifest.jsonl", "manifest.csv")
NORMAL_LABELS = frozenset({"normal", "none"})
_NUM = r"(\d+(?:\.\d*)?|\.\d+)(?:[eE][+]?\d+)?"
_SPAN = re.compile(rf"^\s*({_NUM})\s*-\s*({_NUM})\s*$")


class _Row:
    __slots__ = ("boxes", "descriptions", "fps", "label", "line_no", "path", "spans", "video_id")

    def __init__(self, line_no: int, path: str) -> None:
        self.line_no = line_no
        self.path = path
        self.label: str | None = None
        self.spans: list[TimeSpan] | None = None
        self.video_id: str | None = None
        self.descriptions: list[str] = []
        self.boxes: list[Box] = []
        self.fps: float | None = None


def parse_span_text(text: str, source: Path, line_no: int) -> list[TimeSpan]:
    """``'1.0-3.5;7-9'`` -> two spans in seconds; an empty string -> no span."""
    spans: list[TimeSpan] = []
    for part in (p for p in text.split(";") if p.strip()):
        m = _SPAN.match(part)
        if not m:
            raise dataset_error(
                source,
                line_no,
                f"span {part.strip()!r} must read 'start-end' in seconds, e.g. 1.0-3.5",
            )
        spans.append(_span(float(m.group(1)), float(m.group(3)), source, line_no))
    return spans


def _span(start: float, end: float, source: Path, line_no: int) -> TimeSpan:
    try:
        return TimeSpan(start_s=start, end_s=end)
    except ValidationError as exc:
        raise dataset_error(
            source, line_no, f"bad span ({start}, {end}): {_first_error(exc)}"
        ) from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return str(err.get("msg", exc)).removeprefix("Value error, ")


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _row_from_json(obj: Any, source: Path, line_no: int) -> _Row:
    if not isinstance(obj, dict):
        raise dataset_error(source, line_no, f"expected a JSON object, got {type(obj).__name__}")
    path = obj.get("path")
    if not isinstance(path, str) or not path:
        raise dataset_error(source, line_no, "missing 'path' (a string)")
    row = _Row(line_no, path)
    label = obj.get("label")
    if label is not None and not isinstance(label, str):
        raise dataset_error(source, line_no, f"'label' must be a string, got {label!r}")
    row.label = label or None
    if "spans" in obj and obj["spans"] is not None:
        raw = obj["spans"]
        if not isinstance(raw, list):
            raise dataset_error(
                source, line_no, f"'spans' must be a list of [start_s, end_s], got {raw!r}"
            )
        row.spans = []
        for s in raw:
            if not (isinstance(s, list) and len(s) == 2 and all(_number(v) for v in s)):
                raise dataset_error(
                    source, line_no, f"span {s!r} must be [start_s, end_s] in seconds"
                )
            row.spans.append(_span(float(s[0]), float(s[1]), source, line_no))
    vid = obj.get("id", obj.get("video_id"))
    if vid is not None:
        if not isinstance(vid, str):
            raise dataset_error(source, line_no, f"'id' must be a string, got {vid!r}")
        row.video_id = vid
    desc = obj.get("description")
    if desc is not None:
        if isinstance(desc, str):
            row.descriptions = [desc]
        elif isinstance(desc, list) and all(isinstance(d, str) for d in desc):
            row.descriptions = list(desc)
        else:
            raise dataset_error(
                source, line_no, "'description' must be a string or a list of strings"
            )
    fps = obj.get("fps")
    if fps is not None:
        if not _number(fps):
            raise dataset_error(source, line_no, f"'fps' must be a number, got {fps!r}")
        row.fps = float(fps)
    for b in obj.get("boxes") or []:
        if not (isinstance(b, list) and len(b) == 5 and all(_number(v) for v in b)):
            raise dataset_error(source, line_no, f"box {b!r} must be [t_s, x1, y1, x2, y2]")
        try:
            row.boxes.append(Box(t_s=float(b[0]), xyxy=(b[1], b[2], b[3], b[4]), label="anomaly"))
        except ValidationError as exc:
            raise dataset_error(source, line_no, f"bad box {b!r}: {_first_error(exc)}") from exc
    return row


def _read_jsonl(path: Path, text: str) -> list[_Row]:
    rows: list[_Row] = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = loads_json(line)
        except json.JSONDecodeError as exc:
            raise dataset_error(
                path, line_no, f"invalid JSON ({exc.msg} at column {exc.colno})"
            ) from exc
        rows.append(_row_from_json(obj, path, line_no))
    return rows


def _read_csv(path: Path, text: str) -> list[_Row]:
    reader = csv.DictReader(io.StringIO(text))
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise dataset_error(path, 1, f"unreadable CSV header ({exc})") from None
    header = [h.strip() for h in fieldnames or []]
    if "path" not in header:
        raise dataset_error(path, 1, f"the header must name a 'path' column, got {header}")
    reader.fieldnames = header
    rows: list[_Row] = []
    records = iter(reader)
    while True:
        try:
            rec = next(records)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field over csv's 128 KiB limit, a NUL byte
            raise dataset_error(path, reader.line_num, f"unreadable CSV ({exc})") from None
        line_no = reader.line_num
        if None in rec:  # more cells than header columns
            raise dataset_error(path, line_no, f"more cells than the {len(header)} header columns")
        values = {k: (v or "").strip() for k, v in rec.items()}
        if not any(values.values()):
            continue
        if not values.get("path"):
            raise dataset_error(path, line_no, "empty 'path'")
        row = _Row(line_no, values["path"])
        row.label = values.get("label") or None
        if "spans" in values:
            row.spans = parse_span_text(values["spans"], path, line_no)
        row.video_id = values.get("id") or None
        if values.get("description"):
            row.descriptions = [values["description"]]
        if values.get("fps"):
            try:
                row.fps = float(values["fps"])
            except ValueError:
                raise dataset_error(
                    path, line_no, f"'fps' must be a number, got {values['fps']!r}"
                ) from None
        rows.append(row)
    return rows


def _find_manifest(root: Path) -> Path:
    if root.is_file():
        return root
    for name in MANIFEST_NAMES:
        if (root / name).is_file():
            return root / name
    raise DatasetError(f"no {' or '.join(MANIFEST_NAMES)} in {root}: pass the manifest file")


def _to_video(row: _Row, video_id: str, path: Path, source: Path) -> LabeledVideo:
    spans = row.spans or []
    if row.label is not None:
        anomalous: bool | None = row.label.lower() not in NORMAL_LABELS
    elif row.spans is not None:
        anomalous = bool(spans)
    else:
        anomalous = None
    if anomalous is False and spans:
        raise dataset_error(
            source, row.line_no, f"label {row.label!r} is normal but spans are given"
        )
    if anomalous is None and row.boxes:
        raise dataset_error(source, row.line_no, "boxes need a label or spans")
    if row.fps is not None and not (math.isfinite(row.fps) and row.fps > 0):
        raise dataset_error(
            source,
            row.line_no,
            f"'fps' must be a positive number of frames per second, got {row.fps:g}",
        )
    try:
        return LabeledVideo(
            video_id=video_id,
            path=str(path),
            dataset="manifest",
            category=row.label,
            categories=[row.label] if row.label else [],
            is_anomalous=anomalous,
            spans=sorted(spans, key=lambda s: s.start_s),
            boxes=row.boxes,
            descriptions=row.descriptions,
            fps=row.fps,
            fps_source=f"manifest ({row.fps:g} fps)" if row.fps is not None else None,
        )
    except ValidationError as exc:
        raise dataset_error(source, row.line_no, _first_error(exc)) from exc


def load_manifest(
    root: str | Path,
    annotations: str | Path | None = None,
    *,
    allow_missing: bool = False,
) -> Dataset:
    """Load a JSONL or CSV manifest.

    Args:
        root: the manifest file, or a folder holding ``manifest.jsonl`` or ``manifest.csv``.
        annotations: the manifest file, when it is not ``root`` or inside it.
        allow_missing: keep going when listed files do not exist (listed in
            ``Dataset.missing``); by default that is an error.

    Returns:
        The dataset in manifest order.

    Raises:
        DatasetError: a malformed line (file and line named), a duplicate id, missing files.
    """
    root = Path(root).expanduser()
    source = Path(annotations).expanduser() if annotations is not None else _find_manifest(root)
    try:
        text = source.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise DatasetError(f"manifest not found: {source}") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{source} is not a UTF-8 text file ({exc.reason})") from exc
    rows = _read_csv(source, text) if source.suffix.lower() == ".csv" else _read_jsonl(source, text)
    if not rows:
        raise DatasetError(f"{source} lists no videos")

    base = source.parent
    paths = [(base / r.path).expanduser().resolve() for r in rows]
    derived = ids_from_paths(paths, base)
    videos: list[LabeledVideo] = []
    missing: list[str] = []
    seen: dict[str, int] = {}
    seen_paths: dict[Path, int] = {}
    for row, path, auto_id in zip(rows, paths, derived, strict=True):
        if path in seen_paths:
            raise dataset_error(
                source,
                row.line_no,
                f"{row.path} is listed twice (first on line {seen_paths[path]})",
            )
        seen_paths[path] = row.line_no
        vid = row.video_id or auto_id
        if vid in seen:
            raise dataset_error(source, row.line_no, f"video id {vid!r} repeats line {seen[vid]}")
        seen[vid] = row.line_no
        if not path.exists():
            missing.append(row.path)
            continue
        videos.append(_to_video(row, vid, path, source))
    missing = resolve_missing(missing, allow_missing, source, what="files")
    return Dataset(
        kind="manifest",
        root=str(root),
        annotations=str(source) if annotations is not None else None,
        options=options_of(allow_missing=allow_missing),
        videos=videos,
        missing=missing,
    )


def load_folder(root: str | Path, annotations: str | Path | None = None) -> Dataset:
    """Every video file under ``root`` (recursively), and every folder of frames (images and
    no video file, read as one video), with no labels.

    Args:
        root: the folder.
        annotations: must be None (a folder has none).

    Returns:
        The dataset sorted by path; ids are file (or frame-folder) names without suffix
        (relative paths where two share a name).

    Raises:
        DatasetError: ``root`` is not a folder or holds no video.
    """
    root = Path(root).expanduser()
    if annotations is not None:
        raise DatasetError("a plain folder dataset takes no annotations; use kind 'manifest'")
    paths = sorted(find_videos(root) + find_frame_folders(root))
    if not paths:
        raise DatasetError(f"no video files or folders of frames under {root}")
    ids = ids_from_paths(paths, root)
    videos = [
        LabeledVideo(video_id=i, path=str(p.resolve()), dataset="folder")
        for i, p in zip(ids, paths, strict=True)
    ]
    return Dataset(kind="folder", root=str(root), videos=videos)
