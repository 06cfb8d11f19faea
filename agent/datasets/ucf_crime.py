"""UCF-Crime test set (Sultani et al., CVPR 2018), read from its official files.

- ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt``: one line per test video,
  ``Abuse028_x264.mp4  Abuse  165  240  -1  -1`` (name, class, start1, end1, start2, end2 as frame
  indices; ``-1`` means no such span; normal videos read ``Normal  -1  -1  -1  -1``). The official
  copy separates fields with two spaces; any whitespace is accepted, and some copies omit
  ``.mp4``. Spans become ``[start, end)`` frame ranges (``labels[start:end] = 1``), the
  convention of the public evaluation code.
- videos are found recursively under the root: class folders (``Abuse/Abuse028_x264.mp4``) and
  ``Testing_Normal_Videos_Anomaly/``.
- optional spatial boxes, ``Test_annotation.pkl``: a dict from video name to a list of
  ``[image_path, x1, y1, x2, y2]``, the frame index being the last number in the image file
  name. It is read with a restricted unpickler (``safe_pickle``), never ``pickle.load``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.datasets.base import (
    Dataset,
    FrameBox,
    FrameSpan,
    LabeledVideo,
    dataset_error,
    options_of,
    parse_int,
    read_lines,
    resolve_missing,
)
from vadetective.agent.datasets.files import (
    find_file,
    find_videos,
    index_by_stem,
    strip_video_suffix,
)
from vadetective.agent.datasets.safe_pickle import safe_load

logger = logging.getLogger(__name__)

ANNOTATION_FILE = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
#: Other names the same file is distributed under.
ANNOTATION_ALIASES = (ANNOTATION_FILE, "Temporal_Anomaly_Annotation.txt")
BOXES_FILE = "Test_annotation.pkl"
NORMAL_CLASS = "Normal"
NORMAL_FOLDER = "Testing_Normal_Videos_Anomaly"
KIND = "ucf-crime"


class UcfEntry:
    """One parsed line of the temporal annotation file."""

    __slots__ = ("category", "line_no", "name", "spans")

    def __init__(self, name: str, category: str, spans: list[FrameSpan], line_no: int) -> None:
        self.name = name
        self.category = category
        self.spans = spans
        self.line_no = line_no


def parse_temporal_annotations(path: Path) -> list[UcfEntry]:
    """Parse ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt``.

    Raises:
        DatasetError: naming the file and line, for a wrong field count, a non-integer frame,
            an unpaired ``-1``, an end before its start, a normal video with spans, an anomalous
            one without, or a video listed twice.
    """
    entries: list[UcfEntry] = []
    seen: dict[str, int] = {}
    for line_no, line in read_lines(path):
        fields = line.split()
        if len(fields) != 6:
            raise dataset_error(
                path,
                line_no,
                f"expected 6 fields 'name class start1 end1 start2 end2', got {len(fields)}: {line!r}",
            )
        name = strip_video_suffix(fields[0])
        category = fields[1]
        nums = [parse_int(tok, path, line_no, "a frame index") for tok in fields[2:]]
        spans: list[FrameSpan] = []
        for start, end in ((nums[0], nums[1]), (nums[2], nums[3])):
            if start == -1 and end == -1:
                continue
            if start < 0 or end < 0:
                raise dataset_error(
                    path, line_no, f"span ({start}, {end}): -1 must mark both ends or neither"
                )
            if end <= start:
                raise dataset_error(
                    path, line_no, f"span ({start}, {end}): end must be greater than start"
                )
            spans.append(FrameSpan(start_frame=start, stop_frame=end, label=category))
        is_normal = category.lower() == NORMAL_CLASS.lower()
        if is_normal and spans:
            raise dataset_error(path, line_no, f"{name} is Normal but has anomaly spans")
        if not is_normal and not spans:
            raise dataset_error(path, line_no, f"{name} is {category} but has no anomaly span")
        if name in seen:
            raise dataset_error(
                path, line_no, f"{name} is listed twice (first on line {seen[name]})"
            )
        seen[name] = line_no
        entries.append(UcfEntry(name, NORMAL_CLASS if is_normal else category, spans, line_no))
    if not entries:
        raise DatasetError(f"{path} lists no videos")
    return entries


_DIGITS = re.compile(r"\d+")


def _frame_index(image: Any, source: Path, where: str) -> int:
    if isinstance(image, int) and not isinstance(image, bool):
        return image
    if isinstance(image, str):
        found = _DIGITS.findall(Path(image.replace("\\", "/")).stem)
        if found:
            return int(found[-1])
    raise dataset_error(
        source, None, f"{where}: cannot read a frame index from {image!r} (expected an image path)"
    )


def parse_boxes(path: Path) -> dict[str, list[FrameBox]]:
    """Read ``Test_annotation.pkl`` (video -> ``[[image_path, x1, y1, x2, y2], ...]``) safely.

    Raises:
        DatasetError: the file is not plain data (see ``safe_pickle``) or an entry is malformed;
            the message names the video and the entry's index.
    """
    data = safe_load(path)
    if not isinstance(data, dict):
        raise dataset_error(
            path, None, f"expected a dict of video -> boxes, got {type(data).__name__}"
        )
    out: dict[str, list[FrameBox]] = {}
    for key, rows in data.items():
        if not isinstance(key, str):
            raise dataset_error(path, None, f"video key {key!r} is not a string")
        video = strip_video_suffix(Path(key.replace("\\", "/")).name)
        if not isinstance(rows, list | tuple):
            raise dataset_error(
                path, None, f"{key}: expected a list of boxes, got {type(rows).__name__}"
            )
        boxes: list[FrameBox] = []
        for i, row in enumerate(rows):
            where = f"{key}[{i}]"
            if not isinstance(row, list | tuple) or len(row) != 5:
                raise dataset_error(
                    path, None, f"{where}: expected [image_path, x1, y1, x2, y2], got {row!r}"
                )
            frame_idx = _frame_index(row[0], path, where)
            try:
                xyxy = tuple(float(v) for v in row[1:])
                boxes.append(FrameBox(frame_idx=frame_idx, xyxy=xyxy, label="anomaly"))  # type: ignore[arg-type]
            except (TypeError, ValueError) as exc:
                raise dataset_error(
                    path, None, f"{where}: invalid box {row[1:]!r} ({exc})"
                ) from exc
        out.setdefault(video, []).extend(boxes)
    return out


def _pick(candidates: list[Path], entry: UcfEntry) -> Path | None:
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    folder = NORMAL_FOLDER if entry.category == NORMAL_CLASS else entry.category
    preferred = [p for p in candidates if p.parent.name.lower() == folder.lower()]
    if len(preferred) == 1:
        return preferred[0]
    shown = ", ".join(str(p) for p in candidates[:4])
    raise DatasetError(f"{entry.name} is found more than once under the root ({shown}); keep one")


def load_ucf_crime(
    root: str | Path,
    annotations: str | Path | None = None,
    *,
    boxes: str | Path | None = None,
    allow_missing: bool = False,
) -> Dataset:
    """Load the UCF-Crime test set.

    Args:
        root: folder holding the test videos (searched recursively).
        annotations: the temporal annotation file; default: found under ``root`` by its
            official name.
        boxes: ``Test_annotation.pkl`` with spatial boxes; default: used when found under
            ``root`` or beside the annotation file.
        allow_missing: keep going when videos of the annotation file are not under ``root``
            (they are listed in ``Dataset.missing``); by default that is an error.

    Returns:
        The dataset, in the order of the annotation file.

    Raises:
        DatasetError: a file is missing or malformed, or videos are missing.
    """
    root = Path(root).expanduser()
    if annotations is None:
        found = find_file(root, ANNOTATION_ALIASES)
        if found is None:
            raise DatasetError(
                f"no {ANNOTATION_FILE} under {root}: pass the annotation file explicitly"
            )
        ann = found
    else:
        ann = Path(annotations).expanduser()
    entries = parse_temporal_annotations(ann)

    box_path: Path | None = Path(boxes).expanduser() if boxes is not None else None
    if box_path is None:
        box_path = find_file(ann.parent, (BOXES_FILE,)) or find_file(root, (BOXES_FILE,))
    box_map = parse_boxes(box_path) if box_path is not None else {}
    unknown = sorted(set(box_map) - {e.name for e in entries})
    if unknown:
        raise DatasetError(
            f"{box_path}: boxes for videos not in {ann.name}: {', '.join(unknown[:5])}"
        )

    by_stem = index_by_stem(find_videos(root))
    videos: list[LabeledVideo] = []
    missing: list[str] = []
    for e in entries:
        path = _pick(by_stem.get(e.name, []), e)
        if path is None:
            missing.append(e.name)
            continue
        normal = e.category == NORMAL_CLASS
        fboxes = box_map.get(e.name, [])
        if normal and fboxes:
            raise DatasetError(f"{box_path}: {e.name} is a normal video but has boxes")
        videos.append(
            LabeledVideo(
                video_id=e.name,
                path=str(path.resolve()),
                dataset=KIND,
                category=e.category,
                categories=[e.category],
                is_anomalous=not normal,
                frame_spans=e.spans,
                frame_boxes=sorted(fboxes, key=lambda b: b.frame_idx),
            )
        )
    missing = resolve_missing(missing, allow_missing, ann)
    logger.info("UCF-Crime: %d videos from %s (%d with boxes)", len(videos), ann, len(box_map))
    return Dataset(
        kind=KIND,
        root=str(root),
        annotations=str(ann),
        options=options_of(
            boxes=box_path if boxes is not None else None, allow_missing=allow_missing
        ),
        videos=videos,
        missing=missing,
        split="test",
    )
