"""The benchmark adapters on files written in each dataset's official format: UCSD Ped1/Ped2,
CUHK Avenue, MSAD, NWPU Campus, UCA, HIVAU-70k, ShanghaiTech frame folders and UBnormal's
two official splits, a plain folder and a manifest of frame folders, with the malformed files
each must refuse by name."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.datasets import DATASET_KINDS, load_dataset
from vadetective.agent.datasets.masks import mask_boxes
from vadetective.agent.datasets.ucsd import parse_gt_m

Build = Callable[..., Any]


def _load(layout: Any, **extra: Any) -> Any:
    return load_dataset(layout.kind, layout.root, layout.annotations, **{**layout.options, **extra})


def test_every_kind_is_loadable_by_name() -> None:
    from vadetective.agent.datasets import _LOADERS

    assert set(DATASET_KINDS) == set(_LOADERS)


# ------------------------------------------------------------------------------------ UCSD


def test_ucsd_m_file_ranges_are_one_based_and_inclusive(tmp_path: Path) -> None:
    m = tmp_path / "UCSDped1.m"
    m.write_text(
        "TestVideoFile = {};\n"
        "TestVideoFile{end+1}.gt_frame = [60:152];\n"
        "% TestVideoFile{end+1}.gt_frame = [1:2];   a commented-out entry\n"
        "TestVideoFile{end+1}.gt_frame = [5:90, 140:200];\n"
        "TestVideoFile{end+1}.gt_frame = [7];\n"
    )
    spans = parse_gt_m(m)
    assert [[(s.start_frame, s.stop_frame) for s in v] for v in spans] == [
        [(59, 152)],
        [(4, 90), (139, 200)],
        [(6, 7)],
    ]


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("TestVideoFile{end+1}.gt_frame = [a:b];", "'a:b' is not a frame number"),
        ("TestVideoFile{end+1}.gt_frame = [9:3];", "1 <= start <= end"),
        ("TestVideoFile{end+1}.gt_frame = 5;", "cannot read this gt_frame entry"),
    ],
)
def test_ucsd_bad_entries_are_named(tmp_path: Path, line: str, says: str) -> None:
    m = tmp_path / "UCSDped2.m"
    m.write_text("TestVideoFile = {};\nTestVideoFile{end+1}.gt_frame = [1:3];\n" + line + "\n")
    with pytest.raises(DatasetError, match=rf"UCSDped2.m:3: .*{says}"):
        parse_gt_m(m)


@pytest.mark.parametrize("kind", ["ucsd-ped1", "ucsd-ped2"])
def test_ucsd_frame_folders_labels_masks_and_frame_rate(build: Build, kind: str) -> None:
    layout = build(kind)
    ds = _load(layout)
    assert [v.video_id for v in ds] == ["Test001", "Test002"] and ds.split == "test"
    first = ds.videos[0]
    assert Path(first.path).is_dir() and first.fps == 10.0
    assert first.fps_source == "UCSD convention (10 fps)"
    assert first.frame_spans and first.frame_boxes  # pixel masks became boxes
    x1, y1, x2, y2 = first.frame_boxes[0].xyxy
    assert x2 > x1 and y2 > y1
    # Ped1 ships masks for some videos only; Ped2 for all.
    assert bool(ds.videos[1].frame_boxes) == (kind == "ucsd-ped2")
    # The .m file of the other subset, or an ambiguous root, is refused.
    other = "ped1" if kind == "ucsd-ped2" else "ped2"
    with pytest.raises(DatasetError, match=f"no UCSD{other}.m"):
        load_dataset(f"ucsd-{other}", layout.root)


def test_ucsd_missing_test_folder(build: Build) -> None:
    layout = build("ucsd-ped2")
    test = next(layout.root.rglob("Test002"))
    for f in test.iterdir():
        f.unlink()
    test.rmdir()
    with pytest.raises(DatasetError, match="Test002"):
        _load(layout)
    assert _load(layout, allow_missing=True).missing == ["Test002"]


def test_mask_regions_become_boxes() -> None:
    mask = np.zeros((40, 60), np.uint8)
    mask[5:15, 10:30] = 255
    mask[30:38, 50:58] = 1
    mask[0, 0] = 1  # a speck below the minimum region size
    boxes = mask_boxes(mask, 7)
    assert [(b.frame_idx, b.xyxy) for b in boxes] == [
        (7, (10.0, 5.0, 30.0, 15.0)),
        (7, (50.0, 30.0, 58.0, 38.0)),
    ]


# ---------------------------------------------------------------------------------- Avenue


def test_avenue_volLabel_masks(build: Build) -> None:
    ds = _load(build("avenue"))
    a, n = ds.videos
    assert (a.video_id, n.video_id) == ("01", "02") and Path(a.path).suffix == ".avi"
    assert a.is_anomalous and a.frame_spans and a.frame_boxes and n.is_anomalous is False
    assert a.fps is None  # the .avi stream has its own rate


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ({"other": np.zeros(3)}, "holds no variable 'volLabel'"),
        ({"volLabel": np.zeros(3)}, "must be a cell array of masks"),
        (None, "is not a MATLAB .mat file"),
    ],
)
def test_avenue_bad_mat_files(build: Build, content: dict | None, says: str) -> None:
    from scipy.io import savemat

    layout = build("avenue")
    mat = next(layout.root.rglob("2_label.mat"))
    if content is None:
        mat.write_bytes(b"garbage" * 40)
    else:
        savemat(mat, content)
    with pytest.raises(DatasetError, match=rf"2_label.mat.*{says}"):
        _load(layout)


# ------------------------------------------------------------------------------------ MSAD


def test_msad_list_classes_and_concatenated_labels(build: Build) -> None:
    layout = build("msad")
    ds = _load(layout)
    fight, normal = ds.videos
    assert (fight.video_id, fight.category, normal.category) == ("Fighting_3", "Fighting", "Normal")
    gt = np.load(layout.root / "gt-MSAD-WS.npy")
    n = len(gt) // 2
    assert fight.frame_labels(n).tolist() == gt[:n].astype(int).tolist()
    assert normal.is_anomalous is False and not normal.frame_spans


def test_msad_labels_that_do_not_add_up_and_missing_features(build: Build) -> None:
    layout = build("msad")
    np.save(layout.root / "gt-MSAD-WS.npy", np.zeros(17, np.float32))
    with pytest.raises(DatasetError, match="holds 17 frame labels but"):
        _load(layout)
    for f in (layout.root / "features").iterdir():
        f.unlink()
    ds = _load(layout)  # no features: video-level labels only
    assert ds.videos[0].is_anomalous and not ds.videos[0].has_temporal_labels


# ------------------------------------------------------------------------------------ NWPU


def test_nwpu_npz_labels_for_test_videos_only(build: Build) -> None:
    ds = _load(build("nwpu-campus"))
    assert [v.video_id for v in ds] == ["D001_03", "D002_01"]  # D001_01 is a training key
    assert ds.videos[0].is_anomalous and ds.videos[1].is_anomalous is False


def test_nwpu_refuses_pickled_arrays_and_unlabelled_videos(build: Build) -> None:
    layout = build("nwpu-campus")
    gt = next(layout.root.rglob("NWPU_Campus_gt.npz"))
    np.savez(gt, D001_03=np.array([{"x": 1}], dtype=object), D002_01=np.zeros(3))
    with pytest.raises(DatasetError, match="D001_03"):
        _load(layout)
    np.savez(gt, D001_03=np.zeros(3))
    with pytest.raises(DatasetError, match="1 test videos have no labels"):
        _load(layout)
    assert _load(layout, allow_missing=True).missing == ["D002_01"]


# -------------------------------------------------------------------------------- UBnormal


def test_ubnormal_validation_and_test_are_told_apart(build: Build) -> None:
    layout = build("ubnormal")
    test = load_dataset("ubnormal", layout.root, split="test")
    val = load_dataset("ubnormal", layout.root, split="validation")
    assert (test.split, val.split) == ("test", "validation")
    assert not {v.video_id for v in test} & {v.video_id for v in val}
    # A list file passed explicitly decides the split by its name, whatever the default says.
    by_file = load_dataset(
        "ubnormal", layout.root, layout.root / "scripts" / "abnormal_validation_video_names.txt"
    )
    assert by_file.split == "validation" and by_file.options.get("split") == "validation"


def test_ubnormal_warns_when_a_split_is_not_the_official_size(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    layout = build("ubnormal")
    with caplog.at_level("WARNING"):
        load_dataset("ubnormal", layout.root, split="validation")
    assert "official validation split has 64 videos but these lists name 2" in caplog.text


# -------------------------------------------------------------------------------- ShanghaiTech


def test_shanghaitech_frame_folders_at_its_convention(build: Build) -> None:
    ds = _load(build("shanghaitech"))
    v = ds.videos[0]
    assert Path(v.path).is_dir() and v.fps == 24.0 and "ShanghaiTech" in (v.fps_source or "")


# ------------------------------------------------------------------------------ UCA, HIVAU


def test_uca_sentences_and_temporal_labels(build: Build) -> None:
    layout = build("uca")
    ds = _load(layout)
    abuse, normal = ds.videos
    assert (
        abuse.category == "Abuse" and normal.category == "Normal" and normal.is_anomalous is False
    )
    assert [t.level for t in abuse.timed_descriptions] == ["sentence", "sentence"]
    assert abuse.timed_descriptions[0].start_s == 0.0 and abuse.frame_spans  # from UCF-Crime
    txt = layout.root / "UCF Annotation" / "txt" / "UCFCrime_Test.txt"
    txt.parent.mkdir()
    txt.write_text(
        "Abuse037_x264 00:00.0 00:02.0 ##People walk.\n"
        "Abuse037_x264 01:02.5 01:04.0 ##A man falls.\n"
        "Normal_Videos_003_x264 00:00.0 00:05.0 ##Cars pass.\n"
    )
    from_txt = load_dataset("uca", layout.root, txt)
    assert [(t.start_s, t.text) for t in from_txt.videos[0].timed_descriptions] == [
        (0.0, "People walk."),
        (62.5, "A man falls."),
    ]


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"timestamps": [[0, 1]], "sentences": ["a", "b"]}, "1 timestamps but 2 sentences"),
        ({"timestamps": [[0, "x"]], "sentences": ["a"]}, "must be two numbers"),
        ({"timestamps": [[0, 1]], "sentences": [""]}, "non-empty strings"),
    ],
)
def test_uca_bad_json(build: Build, entry: dict, says: str) -> None:
    layout = build("uca")
    ann = next(layout.root.rglob("UCFCrime_Test.json"))
    ann.write_text(json.dumps({"Abuse037_x264": entry}))
    with pytest.raises(DatasetError, match=f"Abuse037_x264.*{says}"):
        _load(layout)


def test_hivau_levels_of_text(build: Build) -> None:
    layout = build("hivau")
    ds = _load(layout)
    arrest, normal = ds.videos
    assert arrest.category == "Arrest" and arrest.spans and arrest.descriptions
    assert sorted({t.level for t in arrest.timed_descriptions}) == ["clip", "event"]
    assert normal.is_anomalous is False and normal.descriptions and ds.split == "test"


def test_hivau_bad_events(build: Build) -> None:
    layout = build("hivau")
    data = json.loads(layout.annotations.read_text())
    data["Arrest001_x264"]["events"] = [[5.0, 2.0]]
    layout.annotations.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"Arrest001_x264: 'events' entry .* 0 <= start <= end"):
        _load(layout)


# ------------------------------------------------------------- a user's own frame folders


def test_a_plain_folder_reads_frame_folders_as_videos(build: Build) -> None:
    layout = build("folder")
    (layout.root / "stills").mkdir()
    (layout.root / "stills" / "cover.jpg").write_bytes(b"x")  # one image is not a video
    (layout.root / "square.jpg").write_bytes(b"x")  # beside a video file: not a frame
    ds = _load(layout)
    assert [(v.video_id, Path(v.path).is_dir()) for v in ds] == [("gate", True), ("square", False)]
    assert all(v.is_anomalous is None for v in ds)


def test_folder_ids_keep_dotted_names_and_tell_twins_apart(tmp_path: Path) -> None:
    for d in ("a/cam.v2", "b/cam.v2"):
        (tmp_path / d).mkdir(parents=True)
        for i in range(2):
            (tmp_path / d / f"{i}.png").write_bytes(b"x")
    (tmp_path / "solo.v1").mkdir()
    for i in range(3):
        (tmp_path / "solo.v1" / f"{i}.png").write_bytes(b"x")
    ids = [v.video_id for v in load_dataset("folder", tmp_path)]
    assert ids == ["a__cam.v2", "b__cam.v2", "solo.v1"]


def test_a_manifest_gives_a_frame_folder_its_frame_rate(build: Build) -> None:
    ds = _load(build("manifest"))
    gate, square = ds.videos
    assert Path(gate.path).is_dir() and gate.fps == 15.0 and gate.fps_source == "manifest (15 fps)"
    assert square.fps is None and square.fps_source is None
    assert gate.is_anomalous and gate.spans and gate.descriptions


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"path": "v.mp4", "fps": "fast"}\n', "'fps' must be a number"),
        ('{"path": "v.mp4", "fps": 0}\n', "'fps' must be a positive number"),
        ('{"path": "v.mp4", "fps": -5}\n', "'fps' must be a positive number"),
    ],
)
def test_manifest_frame_rates_that_are_not_one(tmp_path: Path, text: str, says: str) -> None:
    (tmp_path / "v.mp4").write_bytes(b"x")
    (tmp_path / "manifest.jsonl").write_text(text)
    with pytest.raises(DatasetError, match=says) as err:
        load_dataset("manifest", tmp_path)
    assert "manifest.jsonl:1:" in str(err.value)
    (tmp_path / "manifest.jsonl").unlink()
    (tmp_path / "manifest.csv").write_text("path,fps\nv.mp4,x12\n")
    with pytest.raises(DatasetError, match="'fps' must be a number"):
        load_dataset("manifest", tmp_path)
