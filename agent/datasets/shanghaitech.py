"""ShanghaiTech Campus test set (Luo et al., ICCV 2017), read from its official files.

- ``test_frame_mask/<video>.npy``: per-frame 0/1 labels of each test video (``01_0014.npy``),
  read with ``allow_pickle=False``. The adapter reads each mask once to know whether the video is
  anomalous and where (spans), and ``LabeledVideo.frame_labels`` reads it again when asked.
- the media: a folder of frames (``testing/frames/01_0014/000.jpg``, the official layout) or a
  video file named after the mask (``01_0014.avi``), anywhere under the root. The frame folder is
  preferred when both exist: the masks count its frames. Frame folders are read at
  ``SHANGHAITECH_FPS`` (24 fps, the rate of the dataset's .avi training videos, of which the test
  frames are extracted; scene 04 is 25 fps), recorded with every result.
- ``test_pixel_mask/<video>.npy`` (beside ``test_frame_mask/``, optional): per-pixel masks of the
  anomalous regions, ``(frames, height, width)``; each connected region of a frame becomes a
  ``frame_boxes`` entry. Some public copies store them ``(frames, width, height)``: the campus
  frames are wider than tall (856x480), so a mask taller than wide is read transposed. Read
  memory-mapped, one frame at a time.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.datasets.base import (
    Dataset,
    FrameBox,
    LabeledVideo,
    load_frame_mask,
    options_of,
    resolve_missing,
    spans_from_labels,
)
from vadetective.agent.datasets.files import find_folder, is_video_file
from vadetective.agent.datasets.masks import mask_boxes

logger = logging.getLogger(__name__)

KIND = "shanghaitech"
MASK_FOLDER = "test_frame_mask"
PIXEL_MASK_FOLDER = "test_pixel_mask"
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
SHANGHAITECH_FPS = 24.0


def _index_media(root: Path, skip: Path) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    """Video files by stem, and folders holding images by name, under ``root``."""
    videos: dict[str, list[Path]] = {}
    frame_dirs: dict[str, list[Path]] = {}
    skip = skip.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        d = Path(dirpath)
        dirnames[:] = sorted(
            n for n in dirnames if not n.startswith(".") and (d / n).resolve() != skip
        )
        if any(f.lower().endswith(_IMAGE_EXTENSIONS) for f in filenames):
            frame_dirs.setdefault(d.name, []).append(d)
        for f in sorted(filenames):
            p = d / f
            if is_video_file(p):
                videos.setdefault(p.stem, []).append(p)
    return videos, frame_dirs


def pixel_mask_boxes(path: Path, n_frames: int) -> list[FrameBox]:
    """Boxes of the anomalous regions in a ``test_pixel_mask/<video>.npy`` file.

    Args:
        path: the ``.npy`` file, ``(frames, height, width)`` (or ``(frames, width, height)``).
        n_frames: the number of frames its ``test_frame_mask`` labels (they must agree).

    Returns:
        One box per connected region per frame, frame indices as in the masks.

    Raises:
        DatasetError: not a plain 3-D numeric array, or another frame count than the labels.
    """
    try:
        masks = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a plain numeric .npy pixel mask ({exc})") from None
    if not isinstance(masks, np.ndarray) or masks.ndim != 3 or masks.dtype.kind not in "biuf":
        shape = getattr(masks, "shape", None)
        raise DatasetError(
            f"{path}: a pixel mask must be numeric (frames, height, width), got {shape}"
        )
    if masks.shape[0] != n_frames:
        raise DatasetError(
            f"{path}: {masks.shape[0]} frames of pixel masks, but its frame labels have {n_frames}"
        )
    transposed = masks.shape[1] > masks.shape[2]  # the campus frames are wider than tall
    boxes: list[FrameBox] = []
    for i in range(masks.shape[0]):
        frame = np.asarray(masks[i])
        if frame.any():
            boxes.extend(mask_boxes(frame.T if transposed else frame, i))
    return boxes


def load_shanghaitech(
    root: str | Path,
    annotations: str | Path | None = None,
    *,
    allow_missing: bool = False,
) -> Dataset:
    """Load the ShanghaiTech Campus test set.

    Args:
        root: folder holding the test videos or frame folders (searched recursively).
        annotations: the ``test_frame_mask`` folder; default: found under ``root``.
        allow_missing: keep going when a mask has no video or frame folder under ``root``
            (listed in ``Dataset.missing``); by default that is an error.

    Returns:
        The dataset, sorted by video id.

    Raises:
        DatasetError: no mask folder, a malformed mask (named), ambiguous or missing media.
    """
    root = Path(root).expanduser()
    if annotations is None:
        found = find_folder(root, MASK_FOLDER)
        if found is None:
            raise DatasetError(f"no {MASK_FOLDER}/ folder under {root}: pass it explicitly")
        mask_dir = found
    else:
        mask_dir = Path(annotations).expanduser()
    if not mask_dir.is_dir():
        raise DatasetError(f"{mask_dir} is not a folder of <video>.npy frame masks")
    masks = sorted(
        p for p in mask_dir.iterdir() if p.suffix == ".npy" and not p.name.startswith(".")
    )
    if not masks:
        raise DatasetError(f"{mask_dir} holds no .npy frame masks")
    pixel_dir = mask_dir.parent / PIXEL_MASK_FOLDER

    video_files, frame_dirs = _index_media(root, skip=mask_dir)
    videos: list[LabeledVideo] = []
    missing: list[str] = []
    for mask_path in masks:
        vid = mask_path.stem
        labels = load_frame_mask(mask_path)
        candidates = frame_dirs.get(vid) or video_files.get(vid) or []
        if len(candidates) > 1:
            shown = ", ".join(str(p) for p in candidates[:4])
            raise DatasetError(f"{vid} is found more than once under {root} ({shown}); keep one")
        if not candidates:
            missing.append(vid)
            continue
        anomalous = bool(labels.any())
        folder = candidates[0].is_dir()
        pixel_path = pixel_dir / mask_path.name
        boxes = pixel_mask_boxes(pixel_path, labels.size) if pixel_path.is_file() else []
        videos.append(
            LabeledVideo(
                video_id=vid,
                path=str(candidates[0].resolve()),
                dataset=KIND,
                category=None if anomalous else "Normal",  # the dataset has no classes
                is_anomalous=anomalous,
                frame_spans=spans_from_labels(labels),
                frame_labels_path=str(mask_path.resolve()),
                frame_boxes=boxes,
                fps=SHANGHAITECH_FPS if folder else None,
                fps_source=f"ShanghaiTech convention ({SHANGHAITECH_FPS:g} fps)"
                if folder
                else None,
            )
        )
    missing = resolve_missing(missing, allow_missing, mask_dir)
    logger.info("ShanghaiTech: %d videos, masks from %s", len(videos), mask_dir)
    return Dataset(
        kind=KIND,
        root=str(root),
        annotations=str(mask_dir),
        options=options_of(allow_missing=allow_missing),
        split="test",
        videos=videos,
        missing=missing,
    )
