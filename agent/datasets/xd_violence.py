"""XD-Violence test set (Wu et al., ECCV 2020), read from its official files.

- labels are in the video file names, after ``_label_``: ``..._label_A`` is normal;
  ``..._label_B1-0-0`` or ``..._label_G-B2-B6`` are abnormal with up to three class codes
  (``0`` pads). Codes: A normal, B1 fighting, B2 shooting, B4 riot, B5 abuse, B6 car accident,
  G explosion.
- ``annotations.txt``: one line per abnormal test video, ``name start1 end1 [start2 end2 ...]``
  (frame indices; some lines carry a ``.mp4`` suffix). Spans become ``[start, end)`` frame ranges.
"""

from __future__ import annotations

import logging
from pathlib import Path

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.datasets.base import (
    Dataset,
    FrameSpan,
    LabeledVideo,
    dataset_error,
    options_of,
    parse_int,
    read_lines,
    resolve_missing,
)
from vadetective.agent.datasets.files import find_file, find_videos, strip_video_suffix

logger = logging.getLogger(__name__)

KIND = "xd-violence"
ANNOTATION_FILE = "annotations.txt"
NORMAL_CLASS = "Normal"
LABEL_MARK = "_label_"

#: Class codes of the file names.
XD_CLASSES: dict[str, str] = {
    "A": NORMAL_CLASS,
    "B1": "Fighting",
    "B2": "Shooting",
    "B4": "Riot",
    "B5": "Abuse",
    "B6": "Car accident",
    "G": "Explosion",
}


def parse_label(name: str) -> list[str]:
    """Class names from a file name: ``'x_label_G-B2-B6'`` -> ``['Explosion', 'Shooting',
    'Car accident']``; ``'x_label_A'`` -> ``['Normal']``.

    Raises:
        ValueError: no ``_label_`` part, an unknown code, or ``A`` mixed with other codes.
    """
    stem = strip_video_suffix(name)
    if LABEL_MARK not in stem:
        raise ValueError(f"{name!r} has no '{LABEL_MARK}' part")
    codes = [c for c in stem.rsplit(LABEL_MARK, 1)[1].split("-") if c != "0"]
    if not codes:
        raise ValueError(f"{name!r} has an empty label")
    unknown = [c for c in codes if c not in XD_CLASSES]
    if unknown:
        raise ValueError(
            f"{name!r} has unknown class code(s) {unknown}; known: {sorted(XD_CLASSES)}"
        )
    if "A" in codes and len(codes) > 1:
        raise ValueError(f"{name!r} mixes the normal code A with abnormal codes")
    return [XD_CLASSES[c] for c in codes]


def parse_annotations(path: Path) -> dict[str, tuple[list[FrameSpan], int]]:
    """Parse ``annotations.txt`` into video name -> (spans, line number).

    Raises:
        DatasetError: naming the file and line, for a missing or odd number of frame indices,
            a non-integer, an end not after its start, or a video listed twice.
    """
    out: dict[str, tuple[list[FrameSpan], int]] = {}
    for line_no, line in read_lines(path):
        fields = line.split()
        name = strip_video_suffix(fields[0])
        nums = [parse_int(tok, path, line_no, "a frame index") for tok in fields[1:]]
        if not nums or len(nums) % 2:
            raise dataset_error(
                path,
                line_no,
                f"expected 'name start1 end1 [start2 end2 ...]' (pairs of frame indices), got {line!r}",
            )
        spans: list[FrameSpan] = []
        for start, end in zip(nums[::2], nums[1::2], strict=True):
            if start < 0 or end <= start:
                raise dataset_error(
                    path, line_no, f"span ({start}, {end}) must have 0 <= start < end"
                )
            spans.append(FrameSpan(start_frame=start, stop_frame=end))
        if name in out:
            raise dataset_error(
                path, line_no, f"{name} is listed twice (first on line {out[name][1]})"
            )
        out[name] = (spans, line_no)
    return out


def load_xd_violence(
    root: str | Path,
    annotations: str | Path | None = None,
    *,
    allow_missing: bool = False,
) -> Dataset:
    """Load the XD-Violence test set.

    Args:
        root: folder holding the test videos (searched recursively; only files whose names carry
            ``_label_`` are taken).
        annotations: ``annotations.txt``; default: found under ``root``.
        allow_missing: keep going when videos named in ``annotations.txt`` are not under ``root``
            (listed in ``Dataset.missing``); by default that is an error.

    Returns:
        The dataset, sorted by video name.

    Raises:
        DatasetError: a missing or malformed file, a file name with a bad label, an abnormal video
            without temporal annotation, a normal one with, or missing videos.
    """
    root = Path(root).expanduser()
    if annotations is None:
        found = find_file(root, (ANNOTATION_FILE,))
        if found is None:
            raise DatasetError(
                f"no {ANNOTATION_FILE} under {root}: pass the annotation file explicitly"
            )
        ann = found
    else:
        ann = Path(annotations).expanduser()
    spans_by_name = parse_annotations(ann)

    files = [p for p in find_videos(root) if LABEL_MARK in p.stem]
    if not files:
        raise DatasetError(f"no XD-Violence videos (names with '{LABEL_MARK}') under {root}")
    videos: list[LabeledVideo] = []
    seen: dict[str, Path] = {}
    for p in files:
        name = p.stem
        if name in seen:
            raise DatasetError(f"{name} is found twice under the root ({seen[name]}, {p})")
        seen[name] = p
        try:
            classes = parse_label(p.name)
        except ValueError as exc:
            raise DatasetError(f"{p}: {exc}") from exc
        normal = classes == [NORMAL_CLASS]
        spans, line_no = spans_by_name.get(name, ([], 0))
        if normal and spans:
            raise dataset_error(ann, line_no, f"{name} is labelled normal (A) but has spans")
        if not normal and not spans:
            raise DatasetError(
                f"{p.name} is labelled abnormal but has no line in {ann}; the annotation file "
                "does not match these videos"
            )
        videos.append(
            LabeledVideo(
                video_id=name,
                path=str(p.resolve()),
                dataset=KIND,
                category=classes[0],
                categories=classes,
                is_anomalous=not normal,
                frame_spans=[s.model_copy(update={"label": classes[0]}) for s in spans],
            )
        )
    missing = resolve_missing(sorted(set(spans_by_name) - set(seen)), allow_missing, ann)
    logger.info("XD-Violence: %d videos under %s", len(videos), root)
    return Dataset(
        kind=KIND,
        root=str(root),
        annotations=str(ann),
        options=options_of(allow_missing=allow_missing),
        videos=sorted(videos, key=lambda v: v.video_id),
        missing=missing,
        split="test",
    )
