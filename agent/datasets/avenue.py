"""CUHK Avenue (Lu et al., ICCV 2013), read from its official files.

Layout (``Avenue Dataset/``)::

    testing_videos/01.avi ... 21.avi
    ground_truth_demo/testing_label_mask/1_label.mat ... 21_label.mat

Each ``<n>_label.mat`` holds ``volLabel``, a 1xN MATLAB cell array with one pixel mask per
frame of video ``<n>`` (the official ``ground_truth_show.m`` overlays ``volLabel{ii}`` on frame
``ii``). A frame is anomalous when its mask has any pixel set; each masked region becomes a box.
The videos are .avi files, so their frame rate comes from the stream. The .mat files are read
with scipy (MATLAB v5; no pickle), one at a time.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.datasets.base import (
    Dataset,
    FrameBox,
    LabeledVideo,
    options_of,
    resolve_missing,
    spans_from_labels,
)
from vadetective.agent.datasets.files import find_folder, is_video_file
from vadetective.agent.datasets.masks import cells, load_mat, masks_to_truth

logger = logging.getLogger(__name__)

KIND = "avenue"
MASK_FOLDER = "testing_label_mask"
VIDEO_FOLDER = "testing_videos"
_MASK_NAME = re.compile(r"^(\d+)_label\.mat$", flags=re.IGNORECASE)


def read_label_mat(path: Path) -> tuple[np.ndarray, list[FrameBox]]:
    """Frame labels and region boxes of one ``<n>_label.mat``."""
    masks = cells(load_mat(path, "volLabel"), path, "volLabel")
    if not masks:
        raise DatasetError(f"{path}: volLabel holds no masks")
    labels, boxes = masks_to_truth(masks)
    return labels, boxes


def load_avenue(
    root: str | Path,
    annotations: str | Path | None = None,
    *,
    allow_missing: bool = False,
) -> Dataset:
    """Load the CUHK Avenue test set.

    Args:
        root: the dataset folder (holding ``testing_videos/``, searched recursively).
        annotations: the ``testing_label_mask`` folder; default: found under ``root``.
        allow_missing: keep going when a mask file has no video (listed in ``missing``).

    Returns:
        The dataset, video ``01`` first, with frame spans and mask boxes.

    Raises:
        DatasetError: no masks, a malformed .mat file (named), missing videos.
    """
    root = Path(root).expanduser()
    mask_dir = (
        Path(annotations).expanduser()
        if annotations is not None
        else find_folder(root, MASK_FOLDER)
    )
    if mask_dir is None or not mask_dir.is_dir():
        raise DatasetError(
            f"no {MASK_FOLDER}/ folder under {root}: pass ground_truth_demo/{MASK_FOLDER}"
        )
    masks = sorted(
        ((int(m.group(1)), p) for p in mask_dir.iterdir() if (m := _MASK_NAME.match(p.name))),
    )
    if not masks:
        raise DatasetError(f"{mask_dir} holds no <n>_label.mat files")
    video_dir = find_folder(root, VIDEO_FOLDER)
    by_number: dict[int, Path] = {}
    if video_dir is not None:
        for p in sorted(video_dir.iterdir()):
            if is_video_file(p) and p.stem.isdigit():
                by_number.setdefault(int(p.stem), p)
    videos: list[LabeledVideo] = []
    missing: list[str] = []
    for n, mat in masks:
        vid = f"{n:02d}"
        path = by_number.get(n)
        if path is None:
            missing.append(vid)
            continue
        labels, boxes = read_label_mat(mat)
        spans = spans_from_labels(labels)
        videos.append(
            LabeledVideo(
                video_id=vid,
                path=str(path.resolve()),
                dataset=KIND,
                category=None if spans else "Normal",
                is_anomalous=bool(spans),
                frame_spans=spans,
                frame_boxes=boxes,
            )
        )
    missing = resolve_missing(missing, allow_missing, mask_dir)
    logger.info("Avenue: %d test videos, masks from %s", len(videos), mask_dir)
    return Dataset(
        kind=KIND,
        root=str(root),
        annotations=str(mask_dir),
        options=options_of(allow_missing=allow_missing),
        split="test",
        videos=videos,
        missing=missing,
    )
