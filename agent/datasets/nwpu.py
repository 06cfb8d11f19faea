"""NWPU Campus (Cao et al., CVPR 2023), read from its released files.

Layout (``NWPUCampusDataset/``), as its users' code reads it::

    videos/Test/D001_03.avi ...            test videos (.avi; the stream gives the frame rate)
    groundtruth/NWPU_Campus_gt.npz         one 0/1 array of frame labels per video, by name

The archive is read with ``allow_pickle=False``; a video is anomalous when its array has a 1.
Arrays of videos that are not in the test folder (training videos are all normal) are ignored.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.datasets.base import Dataset, LabeledVideo, options_of, spans_from_labels
from vadetective.agent.datasets.files import find_file, is_video_file, walk_files

logger = logging.getLogger(__name__)

KIND = "nwpu-campus"
GT_NAME = "NWPU_Campus_gt.npz"


def read_gt(path: Path) -> dict[str, np.ndarray]:
    """Every array of the ground-truth archive as 0/1 uint8 labels.

    Raises:
        DatasetError: not an .npz archive, an object (pickled) array, or a non-0/1 array.
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError as exc:
        raise DatasetError(f"annotation file not found: {path}") from exc
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path} is not a NumPy .npz archive ({exc})") from exc
    if isinstance(archive, np.ndarray):
        raise DatasetError(
            f"{path}: expected an .npz archive of arrays by video name, got one array"
        )
    out: dict[str, np.ndarray] = {}
    with archive:
        for name in archive.files:
            try:
                arr = np.asarray(archive[name]).reshape(-1)
            except ValueError as exc:  # object arrays refuse to load without pickle
                raise DatasetError(f"{path}: array {name!r} is not plain numbers ({exc})") from exc
            if arr.dtype.kind not in "biuf" or (arr.size and not np.isin(arr, (0, 1)).all()):
                raise DatasetError(f"{path}: array {name!r} must hold 0/1 frame labels")
            out[name] = arr.astype(np.uint8)
    if not out:
        raise DatasetError(f"{path} holds no arrays")
    return out


def _test_videos(root: Path) -> list[Path]:
    folders = sorted(
        {
            p.parent
            for p in walk_files(root)
            if is_video_file(p) and p.parent.name.lower() == "test"
        },
        key=lambda d: len(d.parts),
    )
    if not folders:
        raise DatasetError(f"no videos/Test/ folder of test videos under {root}")
    return sorted(p for p in folders[0].iterdir() if is_video_file(p))


def load_nwpu_campus(
    root: str | Path,
    annotations: str | Path | None = None,
    *,
    allow_missing: bool = False,
) -> Dataset:
    """Load the NWPU Campus test set.

    Args:
        root: the dataset folder (``videos/Test/`` is found under it).
        annotations: ``NWPU_Campus_gt.npz``; default: found under ``root``.
        allow_missing: keep going when a test video has no labels in the archive.

    Returns:
        The dataset, sorted by video name.

    Raises:
        DatasetError: no test videos or archive, a malformed archive, unlabelled videos.
    """
    root = Path(root).expanduser()
    gt_path = (
        Path(annotations).expanduser() if annotations is not None else find_file(root, (GT_NAME,))
    )
    if gt_path is None:
        raise DatasetError(f"no {GT_NAME} under {root}: pass it explicitly")
    gt = read_gt(gt_path)
    videos: list[LabeledVideo] = []
    unlabelled: list[str] = []
    for path in _test_videos(root):
        labels = gt.get(path.stem)
        if labels is None:
            unlabelled.append(path.stem)
            continue
        spans = spans_from_labels(labels)
        videos.append(
            LabeledVideo(
                video_id=path.stem,
                path=str(path.resolve()),
                dataset=KIND,
                category=None if spans else "Normal",
                is_anomalous=bool(spans),
                frame_spans=spans,
            )
        )
    if unlabelled:
        shown = ", ".join(unlabelled[:5]) + (", ..." if len(unlabelled) > 5 else "")
        if not allow_missing:
            raise DatasetError(
                f"{len(unlabelled)} test videos have no labels in {gt_path} ({shown}); pass "
                "allow_missing=True to evaluate on the rest"
            )
        logger.warning(
            "%d NWPU test videos have no labels and are left out: %s", len(unlabelled), shown
        )
    logger.info("NWPU Campus: %d test videos, %d label arrays", len(videos), len(gt))
    return Dataset(
        kind=KIND,
        root=str(root),
        annotations=str(gt_path),
        options=options_of(allow_missing=allow_missing),
        split="test",
        videos=videos,
        missing=unlabelled,
    )
