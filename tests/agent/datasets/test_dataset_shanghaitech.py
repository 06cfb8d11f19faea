"""ShanghaiTech Campus: test_frame_mask/*.npy, frame folders or videos, malformed masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.datasets import load_dataset, load_shanghaitech

MASKS: dict[str, np.ndarray] = {
    "01_0014": np.array([0, 0, 1, 1, 1, 0, 0, 1, 0, 0], dtype=np.int64),
    "01_0015": np.zeros(8, dtype=np.float64),
    "12_0174": np.array([1, 1, 0, 0], dtype=np.uint8),
}


def make_root(tmp_path: Path, masks: dict[str, np.ndarray] = MASKS) -> Path:
    root = tmp_path / "shanghaitech"
    mask_dir = root / "testing" / "test_frame_mask"
    mask_dir.mkdir(parents=True)
    for name, m in masks.items():
        np.save(mask_dir / f"{name}.npy", m)
    # Official layout: one folder of frames per test video ...
    for name in ("01_0014", "01_0015"):
        d = root / "testing" / "frames" / name
        d.mkdir(parents=True)
        for i in range(3):
            (d / f"{i:03d}.jpg").write_bytes(b"\xff\xd8")
    # ... and a user who converted one video to a file.
    (root / "videos").mkdir()
    (root / "videos" / "12_0174.avi").write_bytes(b"RIFF")
    return root


def test_masks_frames_folders_and_videos(tmp_path: Path) -> None:
    ds = load_shanghaitech(make_root(tmp_path))
    assert [v.video_id for v in ds] == ["01_0014", "01_0015", "12_0174"]
    a, n, c = ds.videos
    assert a.is_anomalous and n.is_anomalous is False and c.is_anomalous
    assert Path(a.path).is_dir() and Path(a.path).name == "01_0014"
    assert Path(c.path).name == "12_0174.avi"
    assert [(s.start_frame, s.stop_frame) for s in a.frame_spans] == [(2, 5), (7, 8)]
    assert [(s.start_frame, s.stop_frame) for s in c.frame_spans] == [(0, 2)]
    assert a.frame_labels().tolist() == MASKS["01_0014"].tolist()
    assert n.frame_labels().dtype == np.uint8 and n.frame_labels().sum() == 0
    # The mask is the truth; another frame count cuts or pads it.
    assert a.frame_labels(5).tolist() == [0, 0, 1, 1, 1]
    assert a.frame_labels(12).tolist() == [*MASKS["01_0014"].tolist(), 0, 0]
    assert [(s.start_s, s.end_s) for s in a.time_spans(fps=2.0)] == [(1.0, 2.5), (3.5, 4.0)]
    assert ds.annotations is not None and ds.annotations.endswith("test_frame_mask")


def test_mask_is_read_lazily_from_disk(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    video = load_dataset("shanghaitech", root).get("01_0014")
    assert video is not None and video.frame_labels_path is not None
    np.save(video.frame_labels_path, np.ones(10, dtype=np.uint8))
    assert video.frame_labels().sum() == 10


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (np.array([{"a": 1}, 2], dtype=object), "not a plain numeric .npy"),
        (np.zeros((2, 5)), "must be 1-D"),
        (np.array([0, 2, 1]), "must be 0 or 1, found 2"),
        (np.array(["0", "1"]), "must be numeric"),
    ],
    ids=["pickled-object", "2d", "values", "strings"],
)
def test_malformed_masks_are_refused(tmp_path: Path, mask: np.ndarray, message: str) -> None:
    root = make_root(tmp_path)
    np.save(root / "testing" / "test_frame_mask" / "01_0015.npy", mask, allow_pickle=True)
    with pytest.raises(DatasetError, match=r"01_0015.npy: .*" + message):
        load_shanghaitech(root)


def test_missing_media_and_mask_folder(tmp_path: Path) -> None:
    root = make_root(tmp_path, {**MASKS, "99_0001": np.zeros(3)})
    with pytest.raises(DatasetError, match="99_0001"):
        load_shanghaitech(root)
    ds = load_shanghaitech(root, allow_missing=True)
    assert ds.missing == ["99_0001"] and len(ds) == 3
    # An explicit mask folder; a root without one is an error.
    other = tmp_path / "elsewhere"
    other.mkdir()
    with pytest.raises(DatasetError, match="no test_frame_mask/"):
        load_shanghaitech(other)
    ds2 = load_shanghaitech(
        root, annotations=root / "testing" / "test_frame_mask", allow_missing=True
    )
    assert len(ds2) == 3


def _pixel_masks(labels: np.ndarray, h: int = 48, w: int = 86) -> np.ndarray:
    """Pixel masks with one region (rows 10-19, columns 30-49) on each anomalous frame."""
    m = np.zeros((labels.size, h, w), dtype=np.uint8)
    m[labels.astype(bool), 10:20, 30:50] = 1
    return m


@pytest.mark.parametrize("transposed", [False, True], ids=["as documented", "width first"])
def test_pixel_masks_become_boxes_on_the_anomalous_frames(tmp_path: Path, transposed: bool) -> None:
    root = make_root(tmp_path)
    pixel_dir = root / "testing" / "test_pixel_mask"
    pixel_dir.mkdir()
    m = _pixel_masks(MASKS["01_0014"])
    np.save(pixel_dir / "01_0014.npy", m.transpose(0, 2, 1) if transposed else m)
    ds = load_shanghaitech(root)
    v = {x.video_id: x for x in ds}
    boxes = v["01_0014"].frame_boxes
    assert [b.frame_idx for b in boxes] == np.flatnonzero(MASKS["01_0014"]).tolist()
    # the region, in (x1, y1, x2, y2) of the displayed frame whichever way the file stores it
    assert {b.xyxy for b in boxes} == {(30.0, 10.0, 50.0, 20.0)}
    assert v["01_0015"].frame_boxes == []  # no pixel mask: spans only


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((4, 48, 86), dtype=np.uint8), "but its frame labels have 10"),
        (np.zeros((10, 48), dtype=np.uint8), "must be numeric (frames, height, width)"),
        (np.array(["a"] * 10), "must be numeric"),
    ],
    ids=["another frame count", "2-D", "strings"],
)
def test_a_bad_pixel_mask_is_one_sentence(tmp_path: Path, array: np.ndarray, message: str) -> None:
    root = make_root(tmp_path)
    (root / "testing" / "test_pixel_mask").mkdir()
    np.save(root / "testing" / "test_pixel_mask" / "01_0014.npy", array)
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_shanghaitech(root)
