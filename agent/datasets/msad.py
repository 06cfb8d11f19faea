"""MSAD, the Multi-Scenario Anomaly Detection dataset (Zhu et al., NeurIPS 2024 D&B), from the
files its benchmark code publishes.

What is public (the authors' benchmark repository, "protocol ii"):

- the test list, one feature file per line in test order: ``.../Assault_2_i3d.npy``,
  ``.../MSAD_normal_testing_1_i3d.npy`` (``msad-i3d-test.list``; ``msad-swin-test.list`` with
  ``_swin``). The name before the feature suffix is the video; anomalous videos are named
  ``<Class>_<n>`` (classes such as ``Object_falling``), normal ones ``MSAD_normal_testing_<n>``.
- ``gt-MSAD-WS.npy``: frame-level 0/1 labels of every test video, concatenated in list order,
  ``16 x snippets`` frames per video (the evaluation repeats each 16-frame snippet score 16
  times against it).

So splitting the concatenated labels needs each video's snippet count, which is the length of
its feature file: when the feature files named by the list are present (looked up by name under
``root`` or beside the list), each ``.npy`` header gives it (read without loading or unpickling).
Without them the videos get video-level labels only (anomalous by name), and a log line says so.
The per-video temporal annotation that comes with the videos on request is not documented
publicly, so it is not read here.
"""

from __future__ import annotations

import itertools
import logging
import re
from pathlib import Path

import numpy as np

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.datasets.base import (
    Dataset,
    FrameSpan,
    LabeledVideo,
    dataset_error,
    load_frame_mask,
    options_of,
    read_lines,
    resolve_missing,
    spans_from_labels,
)
from vadetective.agent.datasets.files import (
    find_file,
    find_videos,
    index_by_stem,
    one_video,
    walk_files,
)

logger = logging.getLogger(__name__)

KIND = "msad"
SNIPPET = 16
LIST_NAMES = ("msad-i3d-test.list", "msad-swin-test.list")
GT_NAME = "gt-MSAD-WS.npy"
_FEATURE = re.compile(r"^(?P<name>.+?)_(?:i3d|swin)(?:__\d+)?\.npy$", flags=re.IGNORECASE)
_NORMAL = re.compile(r"^MSAD_normal_testing_\d+$", flags=re.IGNORECASE)
_CLASS = re.compile(r"^(?P<cls>[A-Za-z][A-Za-z_]*?)_\d+$")


def parse_test_list(path: Path) -> list[tuple[str, str]]:
    """(video name, feature file name) per line of a test list.

    Raises:
        DatasetError: a line that does not name an ``<video>_i3d.npy``/``_swin.npy`` file.
    """
    out: list[tuple[str, str]] = []
    for line_no, line in read_lines(path):
        base = line.replace("\\", "/").rsplit("/", 1)[-1]
        m = _FEATURE.match(base)
        if m is None:
            raise dataset_error(
                path, line_no, f"{base!r} is not an MSAD feature file (<video>_i3d.npy)"
            )
        out.append((m.group("name"), base))
    if not out:
        raise DatasetError(f"{path} lists no videos")
    return out


def category_of(name: str) -> str:
    """``Object_falling_3`` -> ``Object_falling``; ``MSAD_normal_testing_1`` -> ``Normal``."""
    if _NORMAL.match(name):
        return "Normal"
    m = _CLASS.match(name)
    return m.group("cls") if m else name


def _snippets(path: Path) -> int:
    """The first dimension of an .npy file, from its header only."""
    with path.open("rb") as fh:
        try:
            version = np.lib.format.read_magic(fh)
            shape, _, _ = (
                np.lib.format.read_array_header_1_0(fh)
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0(fh)
            )
        except ValueError as exc:
            raise DatasetError(f"{path}: not an .npy feature file ({exc})") from exc
    if not shape:
        raise DatasetError(f"{path}: a feature file must have a time axis, got a scalar")
    return int(shape[0])


def _feature_lengths(names: list[str], places: list[Path]) -> list[int] | None:
    found: dict[str, Path] = {}
    wanted = set(names)
    for place in places:
        if place.is_dir():
            for p in walk_files(place):
                if p.name in wanted and p.name not in found:
                    found[p.name] = p
    if len(found) < len(wanted):
        return None
    return [_snippets(found[n]) for n in names]


def load_msad(
    root: str | Path,
    annotations: str | Path | None = None,
    *,
    gt: str | Path | None = None,
    allow_missing: bool = False,
) -> Dataset:
    """Load the MSAD test set (protocol ii).

    Args:
        root: the folder with the videos (``<video>.mp4``, searched recursively) and,
            optionally, the feature files named by the list.
        annotations: the test list (``msad-i3d-test.list`` or ``msad-swin-test.list``) or a
            folder holding it; default: found under ``root``.
        gt: ``gt-MSAD-WS.npy``; default: found beside the list or under ``root``.
        allow_missing: keep going when listed videos are not under ``root``.

    Returns:
        The dataset in list order; frame spans when the labels could be split per video.

    Raises:
        DatasetError: no or malformed list, labels that do not add up, missing videos.
    """
    root = Path(root).expanduser()
    where = Path(annotations).expanduser() if annotations is not None else root
    lst = where if where.is_file() else find_file(where, LIST_NAMES)
    if lst is None:
        raise DatasetError(f"no MSAD test list ({' or '.join(LIST_NAMES)}) under {where}")
    entries = parse_test_list(lst)
    gt_path = Path(gt).expanduser() if gt is not None else find_file(lst.parent, (GT_NAME,))
    if gt_path is None and root.is_dir():
        gt_path = find_file(root, (GT_NAME,))
    per_video: list[np.ndarray] | None = None
    if gt_path is not None:
        labels = load_frame_mask(gt_path)
        lengths = _feature_lengths([f for _, f in entries], [lst.parent, root])
        if lengths is None:
            logger.warning(
                "MSAD: the feature files named in %s are not under %s, so %s cannot be split "
                "per video; video-level labels only",
                lst.name,
                root,
                gt_path.name,
            )
        else:
            frames = [n * SNIPPET for n in lengths]
            if sum(frames) != labels.size:
                raise DatasetError(
                    f"{gt_path} holds {labels.size} frame labels but the {len(entries)} feature "
                    f"files of {lst.name} add up to {sum(frames)} (16 per snippet): they do not "
                    "belong together"
                )
            cuts = np.cumsum([0, *frames])
            per_video = [labels[a:b] for a, b in itertools.pairwise(cuts)]
    by_stem = index_by_stem(find_videos(root))
    videos: list[LabeledVideo] = []
    missing: list[str] = []
    for i, (name, _) in enumerate(entries):
        video = one_video(by_stem, name, root)
        if video is None:
            missing.append(name)
            continue
        category = category_of(name)
        spans: list[FrameSpan] = []
        if per_video is not None:
            spans = spans_from_labels(per_video[i])
        anomalous = category != "Normal"
        if per_video is not None and anomalous != bool(spans):
            logger.warning("MSAD: %s is %s by name but its labels say otherwise", name, category)
        videos.append(
            LabeledVideo(
                video_id=name,
                path=str(video.resolve()),
                dataset=KIND,
                category=category,
                is_anomalous=anomalous,
                frame_spans=spans if anomalous else [],
            )
        )
    missing = resolve_missing(missing, allow_missing, lst)
    return Dataset(
        kind=KIND,
        root=str(root),
        annotations=str(lst),
        options=options_of(gt=gt, allow_missing=allow_missing),
        split="test",
        videos=videos,
        missing=missing,
    )
