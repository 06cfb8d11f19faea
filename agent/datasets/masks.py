"""Pixel-level ground truth (UCSD ``TestNNN_gt/*.bmp``, Avenue ``volLabel`` masks) as frame
labels and boxes, and the MATLAB/NumPy readers the adapters share.

A mask frame is anomalous when any pixel is set; each connected region of at least
``MIN_REGION_PX`` pixels becomes one ``FrameBox`` (its bounding box, in pixels of the frame), so
box metrics (TIoU, mean IoU) can be computed on datasets that only ship masks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.datasets.base import FrameBox

logger = logging.getLogger(__name__)

#: Regions smaller than this many pixels are annotation specks, not objects.
MIN_REGION_PX = 16


def mask_boxes(mask: np.ndarray, frame_idx: int, label: str = "anomaly") -> list[FrameBox]:
    """One box per connected region (8-connectivity) of a 2-D mask.

    Args:
        mask: (H, W) array; any non-zero pixel is foreground.
        frame_idx: the frame the mask belongs to.
        label: the label of every box.

    Returns:
        Boxes ``(x1, y1, x2, y2)`` with exclusive right/bottom edges, largest region first.
    """
    import cv2

    fg = (np.asarray(mask) != 0).astype(np.uint8)
    if fg.ndim != 2:
        raise ValueError(f"a mask must be 2-D (H, W), got shape {fg.shape}")
    if not fg.any():
        return []
    n, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    regions = sorted(
        (stats[i] for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= MIN_REGION_PX),
        key=lambda st: -int(st[cv2.CC_STAT_AREA]),
    )
    return [
        FrameBox(
            frame_idx=frame_idx,
            xyxy=(float(x), float(y), float(x + w), float(y + h)),
            label=label,
        )
        for x, y, w, h, _ in (tuple(int(v) for v in st) for st in regions)
    ]


def masks_to_truth(
    masks: Iterable[np.ndarray], label: str = "anomaly"
) -> tuple[np.ndarray, list[FrameBox]]:
    """Frame labels (0/1 per mask) and region boxes of a sequence of masks."""
    labels: list[int] = []
    boxes: list[FrameBox] = []
    for i, m in enumerate(masks):
        arr = np.asarray(m)
        labels.append(int(arr.any()))
        boxes.extend(mask_boxes(arr, i, label))
    return np.asarray(labels, dtype=np.uint8), boxes


def read_mask_image(path: Path) -> np.ndarray:
    """One mask image (bmp/png/tif) as a 2-D array."""
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if img is None:
        raise DatasetError(f"{path}: not a readable mask image")
    return img


def load_mat(path: Path, variable: str) -> Any:
    """One variable of a MATLAB v5 .mat file (scipy; never pickle).

    Raises:
        DatasetError: the file is missing, not a v5 MAT file (v7.3 files are HDF5), or lacks
            the variable.
    """
    from scipy.io import loadmat

    try:
        data = loadmat(str(path), variable_names=[variable])
    except FileNotFoundError as exc:
        raise DatasetError(f"annotation file not found: {path}") from exc
    except NotImplementedError as exc:  # scipy's message for v7.3 (HDF5) files
        raise DatasetError(
            f"{path} is a MATLAB v7.3 (HDF5) file; re-save it in v5 format "
            "(MATLAB: save(name, '-v7')) to read it"
        ) from exc
    except (ValueError, OSError, TypeError) as exc:
        raise DatasetError(f"{path} is not a MATLAB .mat file scipy can read ({exc})") from exc
    if variable not in data:
        found = sorted(k for k in data if not k.startswith("__"))
        raise DatasetError(
            f"{path} holds no variable {variable!r}"
            + (f" (it holds {', '.join(found)})" if found else "")
        )
    return data[variable]


def cells(value: Any, path: Path, what: str) -> list[np.ndarray]:
    """The cells of a MATLAB cell array (a 1xN or Nx1 object array) as 2-D arrays."""
    arr = np.asarray(value)
    if arr.dtype != object:
        if arr.ndim == 3:  # a plain (H, W, N) volume
            return [arr[:, :, i] for i in range(arr.shape[2])]
        raise DatasetError(f"{path}: {what} must be a cell array of masks, got shape {arr.shape}")
    out = []
    for i, cell in enumerate(arr.reshape(-1)):
        m = np.asarray(cell)
        if m.ndim != 2 or m.dtype.kind not in "biuf":
            raise DatasetError(f"{path}: {what} cell {i + 1} is not a 2-D numeric mask")
        out.append(m)
    return out
