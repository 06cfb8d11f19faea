"""UBnormal (Acsintoae et al., CVPR 2022), read from its official files.

- split lists, one video name per line: ``abnormal_test_video_names.txt`` and
  ``normal_test_video_names.txt`` (also ``_training_`` and ``_validation_``), as in the
  dataset's ``scripts/`` folder. The name says whether a video is abnormal (``abnormal_...``) or
  normal (``normal_...``).
- videos: ``Scene<k>/<name>.mp4`` under the root (searched recursively).
- ``Scene<k>/<name>_annotations/<name>_tracks.txt`` for abnormal videos: rows
  ``track_id,start_frame,end_frame`` with INCLUSIVE frame indices (the official ground-truth
  script sets ``gt[start:end + 1] = 1``); numbers may be written as floats (``12.0``).
  Each track becomes a ``[start, end + 1)`` frame span labelled ``track <id>``.
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
from vadetective.agent.datasets.files import (
    find_file,
    find_videos,
    index_by_stem,
    strip_video_suffix,
)

logger = logging.getLogger(__name__)

KIND = "ubnormal"
SPLITS = ("test", "validation", "training")
#: Videos in each official split list pair (abnormal + normal): mixing the 64 validation
#: videos into the 211 test videos is a known source of wrong numbers.
OFFICIAL_SIZES = {"test": 211, "validation": 64}


def split_files(split: str) -> tuple[str, str]:
    """The official list names of a split: (abnormal list, normal list)."""
    if split not in SPLITS:
        raise DatasetError(f"unknown UBnormal split {split!r}; expected one of {SPLITS}")
    return f"abnormal_{split}_video_names.txt", f"normal_{split}_video_names.txt"


def split_of_list(path: Path) -> str | None:
    """The split an official list file belongs to, from its name, else None."""
    for split in SPLITS:
        if f"_{split}_video_names" in path.name:
            return split
    return None


def parse_split_list(path: Path) -> list[tuple[str, bool, int]]:
    """Video names of a split list as (name, is_abnormal, line number).

    Raises:
        DatasetError: a line with more than one field or a name that starts with neither
            ``abnormal_`` nor ``normal_`` (file and line named).
    """
    out: list[tuple[str, bool, int]] = []
    for line_no, line in read_lines(path):
        fields = line.split()
        if len(fields) != 1:
            raise dataset_error(path, line_no, f"expected one video name per line, got {line!r}")
        name = strip_video_suffix(fields[0])
        if name.startswith("abnormal_"):
            out.append((name, True, line_no))
        elif name.startswith("normal_"):
            out.append((name, False, line_no))
        else:
            raise dataset_error(
                path, line_no, f"{name!r} is not a UBnormal video name (abnormal_... or normal_...)"
            )
    return out


def parse_tracks(path: Path) -> list[FrameSpan]:
    """Rows ``track_id,start_frame,end_frame`` (inclusive) as half-open frame spans.

    Raises:
        DatasetError: a row without exactly three comma-separated integers, an end before its
            start, or a file with no row (file and line named).
    """
    spans: list[FrameSpan] = []
    for line_no, line in read_lines(path):
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 3:
            raise dataset_error(
                path, line_no, f"expected 'track_id,start_frame,end_frame', got {line!r}"
            )
        track = parse_int(fields[0], path, line_no, "track_id")
        start = parse_int(fields[1], path, line_no, "start_frame")
        end = parse_int(fields[2], path, line_no, "end_frame")
        if start < 0 or end < start:
            raise dataset_error(
                path, line_no, f"frames ({start}, {end}) must have 0 <= start_frame <= end_frame"
            )
        spans.append(FrameSpan(start_frame=start, stop_frame=end + 1, label=f"track {track}"))
    if not spans:
        raise DatasetError(f"{path} has no track rows")
    return spans


def _find_tracks(video: Path, name: str, root: Path) -> Path | None:
    official = video.parent / f"{name}_annotations" / f"{name}_tracks.txt"
    if official.is_file():
        return official
    return find_file(root, (f"{name}_tracks.txt",))


def load_ubnormal(
    root: str | Path,
    annotations: str | Path | None = None,
    *,
    split: str = "test",
    allow_missing: bool = False,
) -> Dataset:
    """Load one split of UBnormal.

    Args:
        root: the dataset folder (``Scene1/``, ``Scene2/``, ...).
        annotations: a split list file, or a folder holding the official lists; default: the
            lists of ``split`` found under ``root``.
        split: ``test``, ``validation`` or ``training``, used when ``annotations`` is a folder or
            None; a list file's own name (``..._validation_video_names.txt``) decides otherwise,
            so a validation list is never scored as the test split.
        allow_missing: keep going when listed videos are not under ``root`` (listed in
            ``Dataset.missing``); by default that is an error.

    Returns:
        The dataset in the order of the lists (abnormal list first).

    Raises:
        DatasetError: missing or malformed lists or tracks files, missing videos.
    """
    root = Path(root).expanduser()
    where = Path(annotations).expanduser() if annotations is not None else root
    if where.is_file():
        lists = [where]
        named = split_of_list(where)
        if named is not None and named != split:
            logger.info("UBnormal: %s is a %s list; loading the %s split", where.name, named, named)
        split = named or split
    else:
        lists = [p for n in split_files(split) if (p := find_file(where, (n,))) is not None]
        if not lists:
            raise DatasetError(
                f"no UBnormal split lists ({' or '.join(split_files(split))}) under {where}: "
                "pass a list file explicitly"
            )
    names: list[tuple[str, bool, int, Path]] = []
    seen: dict[str, tuple[Path, int]] = {}
    for lst in lists:
        for name, abnormal, line_no in parse_split_list(lst):
            if name in seen:
                first = seen[name]
                raise dataset_error(
                    lst, line_no, f"{name} is listed twice (first at {first[0]}:{first[1]})"
                )
            seen[name] = (lst, line_no)
            names.append((name, abnormal, line_no, lst))

    by_stem = index_by_stem(find_videos(root))
    videos: list[LabeledVideo] = []
    missing: list[str] = []
    for name, abnormal, _, _ in names:
        paths = by_stem.get(name, [])
        if len(paths) > 1:
            raise DatasetError(f"{name} is found more than once under {root}; keep one")
        if not paths:
            missing.append(name)
            continue
        spans: list[FrameSpan] = []
        if abnormal:
            tracks = _find_tracks(paths[0], name, root)
            if tracks is None:
                raise DatasetError(
                    f"{name} is abnormal but {name}_annotations/{name}_tracks.txt is not under {root}"
                )
            spans = parse_tracks(tracks)
        videos.append(
            LabeledVideo(
                video_id=name,
                path=str(paths[0].resolve()),
                dataset=KIND,
                category=None if abnormal else "Normal",
                is_anomalous=abnormal,
                frame_spans=spans,
            )
        )
    missing = resolve_missing(missing, allow_missing, lists[0])
    official = OFFICIAL_SIZES.get(split)
    if official is not None and len(lists) == 2 and len(names) != official:
        logger.warning(
            "UBnormal: the official %s split has %d videos but these lists name %d; numbers "
            "will not compare with published ones",
            split,
            official,
            len(names),
        )
    logger.info("UBnormal (%s): %d videos", split, len(videos))
    return Dataset(
        kind=KIND,
        root=str(root),
        annotations=str(annotations) if annotations is not None else None,
        options=options_of(split=split if split != "test" else None, allow_missing=allow_missing),
        split=split,
        videos=videos,
        missing=missing,
    )
