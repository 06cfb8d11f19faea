"""UCA, UCF-Crime Annotation (Yuan et al., CVPR 2024): time-stamped sentences for UCF-Crime.

Official files (``UCF Annotation/``), one per split (``UCFCrime_Test``, ``_Val``, ``_Train``):

- ``json/UCFCrime_Test.json``: ``{"Abuse037_x264": {"duration": 59.88, "timestamps":
  [[1.2, 8.2], ...], "sentences": ["A white car ...", ...]}, ...}`` (seconds);
- ``txt/UCFCrime_Test.txt``: ``Abuse037_x264 00:01.2 00:08.2 ##A white car ...`` per line.

UCA describes everything that happens, normal or not (its authors: "we only provide overall
content and time annotations"), so its sentences are references for the explanation, not
anomaly spans. The videos are UCF-Crime's (``Abuse037_x264.mp4``, searched under ``root``); a
name with ``Normal`` is a normal video, the class is the name's prefix. When UCF-Crime's
``Temporal_Anomaly_Annotation_for_Testing_Videos.txt`` is under ``root`` (or given as
``temporal``), its spans are added, so frame-level metrics come with the caption metrics.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.datasets.base import (
    Dataset,
    FrameSpan,
    LabeledVideo,
    TimedText,
    dataset_error,
    options_of,
    read_lines,
    resolve_missing,
)
from vadetective.agent.datasets.files import (
    find_file,
    find_videos,
    index_by_stem,
    one_video,
    read_json_object,
    strip_video_suffix,
)
from vadetective.agent.datasets.ucf_crime import ANNOTATION_ALIASES, parse_temporal_annotations

logger = logging.getLogger(__name__)

KIND = "uca"
SPLITS = {"test": "Test", "validation": "Val", "training": "Train"}
_CLASS = re.compile(r"^([A-Za-z]+?)(?:_Videos)?_?\d+_x264$")
_TXT_LINE = re.compile(r"^(\S+)\s+(\d[\d:.]*)\s+(\d[\d:.]*)\s*##(.*)$")


def _seconds(token: str, path: Path, line_no: int) -> float:
    """``"01:16.1"`` or ``"1:02:03.5"`` (or plain seconds) as seconds."""
    try:
        total = 0.0
        for part in token.split(":"):
            total = total * 60 + float(part)
        return total
    except ValueError:
        raise dataset_error(path, line_no, f"{token!r} is not a time (mm:ss.s)") from None


def _sentence(start: Any, end: Any, text: Any, where: str) -> TimedText:
    if not isinstance(text, str) or not text.strip():
        raise DatasetError(f"{where}: sentences must be non-empty strings")
    try:
        s, e = float(start), float(end)
    except (TypeError, ValueError):
        raise DatasetError(
            f"{where}: a timestamp must be two numbers, got {[start, end]!r}"
        ) from None
    s, e = min(s, e), max(s, e)  # a few UCA rows are written end-first
    return TimedText(start_s=max(0.0, s), end_s=max(0.0, e), text=text.strip(), level="sentence")


def parse_uca_json(path: Path) -> dict[str, list[TimedText]]:
    """Sentences per video of a UCA JSON file, in time order.

    Raises:
        DatasetError: invalid JSON, or an entry whose timestamps and sentences do not pair up.
    """
    data = read_json_object(path, "videos, each with timestamps and sentences")
    out: dict[str, list[TimedText]] = {}
    for name, entry in data.items():
        where = f"{path}: {name}"
        if not isinstance(entry, dict):
            raise DatasetError(f"{where}: expected an object with timestamps and sentences")
        stamps, sentences = entry.get("timestamps"), entry.get("sentences")
        if not isinstance(stamps, list) or not isinstance(sentences, list):
            raise DatasetError(f"{where}: 'timestamps' and 'sentences' must be lists")
        if len(stamps) != len(sentences):
            raise DatasetError(
                f"{where}: {len(stamps)} timestamps but {len(sentences)} sentences; they pair up"
            )
        items = []
        for ts, text in zip(stamps, sentences, strict=True):
            if not isinstance(ts, list) or len(ts) != 2:
                raise DatasetError(f"{where}: a timestamp must be [start_s, end_s], got {ts!r}")
            items.append(_sentence(ts[0], ts[1], text, where))
        out[strip_video_suffix(name)] = sorted(items, key=lambda t: (t.start_s, t.end_s))
    return out


def parse_uca_txt(path: Path) -> dict[str, list[TimedText]]:
    """Sentences per video of a UCA text file (``name start end ##sentence`` lines)."""
    out: dict[str, list[TimedText]] = {}
    for line_no, line in read_lines(path):
        m = _TXT_LINE.match(line)
        if m is None:
            raise dataset_error(
                path, line_no, f"expected 'name mm:ss.s mm:ss.s ##sentence', got {line[:80]!r}"
            )
        s, e = _seconds(m.group(2), path, line_no), _seconds(m.group(3), path, line_no)
        out.setdefault(strip_video_suffix(m.group(1)), []).append(
            _sentence(s, e, m.group(4), f"{path}:{line_no}")
        )
    if not out:
        raise DatasetError(f"{path} lists no sentences")
    return {k: sorted(v, key=lambda t: (t.start_s, t.end_s)) for k, v in out.items()}


def category_of(name: str) -> str:
    """``Abuse037_x264`` -> ``Abuse``; ``Normal_Videos_003_x264`` -> ``Normal``."""
    if "normal" in name.lower():
        return "Normal"
    m = _CLASS.match(name)
    return m.group(1) if m else name


def _split_of(path: Path) -> str | None:
    for split, tag in SPLITS.items():
        if f"_{tag.lower()}." in path.name.lower():
            return split
    return None


def load_uca(
    root: str | Path,
    annotations: str | Path | None = None,
    *,
    split: str = "test",
    temporal: str | Path | None = None,
    allow_missing: bool = False,
) -> Dataset:
    """Load UCA's sentences for the UCF-Crime videos under ``root``.

    Args:
        root: the UCF-Crime videos (searched recursively).
        annotations: a UCA ``.json`` or ``.txt`` file, or a folder holding them; default: the
            ``split``'s file found under ``root``.
        split: ``test``, ``validation`` or ``training``; when ``annotations`` is a file, its
            name decides.
        temporal: UCF-Crime's temporal annotation file for frame-level labels; default: used
            when found under ``root``.
        allow_missing: keep going when annotated videos are not under ``root``.

    Returns:
        The dataset, sorted by video id; each video's sentences in ``timed_descriptions``.

    Raises:
        DatasetError: missing or malformed files, missing videos.
    """
    if split not in SPLITS:
        raise DatasetError(f"unknown UCA split {split!r}; expected one of {', '.join(SPLITS)}")
    root = Path(root).expanduser()
    where = Path(annotations).expanduser() if annotations is not None else root
    if where.is_file():
        ann = where
        split = _split_of(ann) or split
    else:
        tag = SPLITS[split]
        found = find_file(where, (f"UCFCrime_{tag}.json", f"UCFCrime_{tag}.txt"))
        if found is None:
            raise DatasetError(f"no UCFCrime_{tag}.json (or .txt) of UCA under {where}")
        ann = found
    sentences = parse_uca_json(ann) if ann.suffix.lower() == ".json" else parse_uca_txt(ann)
    temporal_path = (
        Path(temporal).expanduser() if temporal is not None else find_file(root, ANNOTATION_ALIASES)
    )
    spans: dict[str, list[FrameSpan]] = {}
    if temporal_path is not None:
        spans = {e.name: e.spans for e in parse_temporal_annotations(temporal_path)}
    by_stem = index_by_stem(find_videos(root))
    videos: list[LabeledVideo] = []
    missing: list[str] = []
    for name in sorted(sentences):
        video = one_video(by_stem, name, root)
        if video is None:
            missing.append(name)
            continue
        category = category_of(name)
        normal = category == "Normal"
        videos.append(
            LabeledVideo(
                video_id=name,
                path=str(video.resolve()),
                dataset=KIND,
                category=category,
                categories=[category],
                is_anomalous=not normal,
                frame_spans=[] if normal else spans.get(name, []),
                timed_descriptions=sentences[name],
            )
        )
    missing = resolve_missing(missing, allow_missing, ann)
    logger.info("UCA (%s): %d videos, sentences from %s", split, len(videos), ann)
    return Dataset(
        kind=KIND,
        root=str(root),
        annotations=str(ann),
        options=options_of(
            split=split if annotations is None or not where.is_file() else None,
            temporal=temporal,
            allow_missing=allow_missing,
        ),
        split=split,
        videos=videos,
        missing=missing,
    )
