"""HIVAU-70k (Zhang et al., Holmes-VAU, CVPR 2025): hierarchical anomaly annotations of the
UCF-Crime and XD-Violence videos, read from its raw annotation files.

Layout (``HIVAU-70k/``)::

    raw_annotations/ucf_database_test.json   (also _train, and xd_database_*.json)
    videos/ucf-crime/videos/test/Abuse028_x264.mp4

Each raw file maps a video name to an object; the fields read here are ``label`` (a list of
classes; ``Normal`` or empty for normal videos), ``events`` (anomalous events as
``[start_s, end_s]`` pairs, seconds), ``video_summary`` (the video-level description), and,
when present, event- and clip-level texts: ``clips`` (``[start_s, end_s]`` pairs) with
``clips_summary`` and ``events_summary`` (lists of strings aligned with ``clips`` / ``events``).
``n_frames`` and ``fps`` are not needed: the decoded video gives both. The video-level summary
becomes the video's reference description; event and clip texts become ``timed_descriptions``
at levels ``event`` and ``clip``, so each granularity is scored on its own.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.core.types import TimeSpan
from vadetective.agent.datasets.base import (
    Dataset,
    LabeledVideo,
    TimedText,
    options_of,
    resolve_missing,
)
from vadetective.agent.datasets.files import (
    find_videos,
    index_by_stem,
    one_video,
    read_json_object,
    walk_files,
)

logger = logging.getLogger(__name__)

KIND = "hivau"
_FILE = re.compile(r"^(ucf|xd)_database_(train|test)\.json$")
TEXT_KEYS = {"event": ("events", "events_summary"), "clip": ("clips", "clips_summary")}


def _pairs(value: Any, where: str, what: str) -> list[tuple[float, float]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise DatasetError(f"{where}: {what!r} must be a list of [start_s, end_s] pairs")
    out = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 2):
            raise DatasetError(f"{where}: {what!r} entries must be [start_s, end_s], got {item!r}")
        try:
            s, e = float(item[0]), float(item[1])
        except (TypeError, ValueError):
            raise DatasetError(f"{where}: {what!r} entry {item!r} is not two numbers") from None
        if not (0 <= s <= e):
            raise DatasetError(f"{where}: {what!r} entry {item!r} must have 0 <= start <= end")
        out.append((s, e))
    return out


def _texts(entry: dict[str, Any], level: str, where: str) -> list[TimedText]:
    span_key, text_key = TEXT_KEYS[level]
    texts = entry.get(text_key)
    if texts is None:
        return []
    spans = _pairs(entry.get(span_key), where, span_key)
    if not isinstance(texts, list) or len(texts) != len(spans):
        raise DatasetError(
            f"{where}: {text_key!r} must be a list of {len(spans)} texts, one per {span_key}"
        )
    return [
        TimedText(start_s=s, end_s=e, text=t.strip(), level=level)
        for (s, e), t in zip(spans, texts, strict=True)
        if isinstance(t, str) and t.strip()
    ]


def parse_database(path: Path) -> dict[str, dict[str, Any]]:
    """The raw annotation file as ``{video: {labels, spans, summary, timed}}`` (checked)."""
    data = read_json_object(path, "videos")
    out: dict[str, dict[str, Any]] = {}
    for name, entry in data.items():
        where = f"{path}: {name}"
        if not isinstance(entry, dict):
            raise DatasetError(f"{where}: expected an object")
        labels = entry.get("label", [])
        labels = [labels] if isinstance(labels, str) else labels
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise DatasetError(f"{where}: 'label' must be a list of class names")
        summary = entry.get("video_summary")
        if summary is not None and not isinstance(summary, str):
            raise DatasetError(f"{where}: 'video_summary' must be a string")
        events = [(s, e) for s, e in _pairs(entry.get("events"), where, "events") if e > s]
        out[name] = {
            "labels": [x for x in labels if x and x.lower() != "normal"],
            "spans": [TimeSpan(start_s=s, end_s=e) for s, e in events],
            "summary": (summary or "").strip(),
            "timed": _texts(entry, "event", where) + _texts(entry, "clip", where),
        }
    return out


def _find_database(root: Path) -> Path:
    found = sorted(
        (p for p in walk_files(root) if _FILE.match(p.name) and p.name.endswith("_test.json")),
        key=lambda p: p.name,
    )
    if len(found) == 1:
        return found[0]
    if not found:
        raise DatasetError(
            f"no ucf_database_test.json or xd_database_test.json under {root}: pass the file"
        )
    raise DatasetError(
        f"{root} holds {', '.join(p.name for p in found)}: pass the one to evaluate against"
    )


def load_hivau(
    root: str | Path,
    annotations: str | Path | None = None,
    *,
    allow_missing: bool = False,
) -> Dataset:
    """Load one HIVAU-70k raw annotation file with its videos.

    Args:
        root: the videos of that file (``videos/ucf-crime/videos/test``; searched recursively).
        annotations: ``ucf_database_test.json`` (or another ``*_database_*.json``); default:
            the one test file found under ``root``.
        allow_missing: keep going when annotated videos are not under ``root``.

    Returns:
        The dataset, sorted by video id, with events as spans and the texts of every level.

    Raises:
        DatasetError: missing, ambiguous or malformed files, missing videos.
    """
    root = Path(root).expanduser()
    ann = Path(annotations).expanduser() if annotations is not None else _find_database(root)
    entries = parse_database(ann)
    m = _FILE.match(ann.name)
    split = m.group(2) if m else None
    by_stem = index_by_stem(find_videos(root))
    videos: list[LabeledVideo] = []
    missing: list[str] = []
    for name in sorted(entries):
        e = entries[name]
        video = one_video(by_stem, name, root)
        if video is None:
            missing.append(name)
            continue
        anomalous = bool(e["labels"]) and bool(e["spans"])
        videos.append(
            LabeledVideo(
                video_id=name,
                path=str(video.resolve()),
                dataset=KIND,
                category=e["labels"][0] if anomalous else "Normal",
                categories=e["labels"] if anomalous else ["Normal"],
                is_anomalous=anomalous,
                spans=e["spans"] if anomalous else [],
                descriptions=[e["summary"]] if e["summary"] else [],
                timed_descriptions=e["timed"],
            )
        )
    missing = resolve_missing(missing, allow_missing, ann)
    logger.info("HIVAU-70k: %d videos from %s", len(videos), ann)
    return Dataset(
        kind=KIND,
        root=str(root),
        annotations=str(ann),
        options=options_of(allow_missing=allow_missing),
        split=split,
        videos=videos,
        missing=missing,
    )
