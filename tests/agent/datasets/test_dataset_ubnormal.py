"""UBnormal: split lists, Scene folders, <video>_tracks.txt (inclusive frames), malformed rows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.datasets import load_dataset, load_ubnormal

# np.savetxt(..., delimiter=",") writes floats; hand-made files write integers.
TRACKS = {
    "abnormal_scene_1_scenario_1": "1.0,110.0,260.0\n2.000000000000000000e+00,200,300\n",
    "abnormal_scene_8_scenario_2_fog": "0,0,0\n",
}


def make_root(tmp_path: Path, tracks: dict[str, str] = TRACKS) -> Path:
    root = tmp_path / "UBnormal"
    lists = root / "scripts"
    lists.mkdir(parents=True)
    (lists / "abnormal_test_video_names.txt").write_text(
        "abnormal_scene_1_scenario_1\nabnormal_scene_8_scenario_2_fog\n"
    )
    (lists / "normal_test_video_names.txt").write_text("normal_scene_2_scenario_3\n")
    (lists / "abnormal_validation_video_names.txt").write_text("abnormal_scene_8_scenario_2_fog\n")
    for name, scene in [
        ("abnormal_scene_1_scenario_1", 1),
        ("abnormal_scene_8_scenario_2_fog", 8),
        ("normal_scene_2_scenario_3", 2),
    ]:
        d = root / f"Scene{scene}"
        d.mkdir(exist_ok=True)
        (d / f"{name}.mp4").write_bytes(b"x")
        if name in tracks:
            ann = d / f"{name}_annotations"
            ann.mkdir()
            (ann / f"{name}_tracks.txt").write_text(tracks[name])
    return root


def test_test_split(tmp_path: Path) -> None:
    ds = load_ubnormal(make_root(tmp_path))
    assert [v.video_id for v in ds] == [
        "abnormal_scene_1_scenario_1",
        "abnormal_scene_8_scenario_2_fog",
        "normal_scene_2_scenario_3",
    ]
    a, fog, normal = ds.videos
    # Inclusive ends: track 1 covers frames 110..260, track 2 frames 200..300.
    assert [(s.start_frame, s.stop_frame, s.label) for s in a.frame_spans] == [
        (110, 261, "track 1"),
        (200, 301, "track 2"),
    ]
    labels = a.frame_labels(400)
    assert labels.sum() == 301 - 110 and labels[109] == 0 and labels[300] == 1 and labels[301] == 0
    assert fog.frame_spans[0].n_frames == 1
    assert normal.is_anomalous is False and normal.category == "Normal"


def test_validation_split_and_explicit_list(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    ds = load_dataset("ubnormal", root, split="validation")
    assert [v.video_id for v in ds] == ["abnormal_scene_8_scenario_2_fog"]
    assert ds.spec.options == {"split": "validation"}
    one = load_ubnormal(root, annotations=root / "scripts" / "normal_test_video_names.txt")
    assert [v.video_id for v in one] == ["normal_scene_2_scenario_3"]
    with pytest.raises(DatasetError, match="unknown UBnormal split"):
        load_ubnormal(root, split="train")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("1,110", "expected 'track_id,start_frame,end_frame'"),
        ("1,110,260,4", "expected 'track_id,start_frame,end_frame'"),
        ("1,110.5,260", "start_frame must be an integer"),
        ("1,a,260", "start_frame must be an integer"),
        ("1,260,110", "0 <= start_frame <= end_frame"),
    ],
)
def test_malformed_track_rows(tmp_path: Path, row: str, message: str) -> None:
    root = make_root(tmp_path, {**TRACKS, "abnormal_scene_1_scenario_1": "1,1,2\n" + row + "\n"})
    with pytest.raises(
        DatasetError, match=re.escape("abnormal_scene_1_scenario_1_tracks.txt:2: ") + ".*" + message
    ):
        load_ubnormal(root)


def test_missing_tracks_bad_list_and_missing_videos(tmp_path: Path) -> None:
    root = make_root(
        tmp_path, {"abnormal_scene_1_scenario_1": TRACKS["abnormal_scene_1_scenario_1"]}
    )
    with pytest.raises(DatasetError, match="abnormal_scene_8_scenario_2_fog is abnormal but"):
        load_ubnormal(root)
    root2 = make_root(tmp_path / "b", {**TRACKS, "abnormal_scene_1_scenario_1": "\n"})
    with pytest.raises(DatasetError, match="has no track rows"):
        load_ubnormal(root2)
    lst = root2 / "scripts" / "normal_test_video_names.txt"
    lst.write_text("normal_scene_2_scenario_3\nscene_4_scenario_1\n")
    with pytest.raises(
        DatasetError, match=r"normal_test_video_names.txt:2: 'scene_4_scenario_1' is not"
    ):
        load_ubnormal(root2, annotations=lst)
    lst.write_text("normal_scene_2_scenario_3\nnormal_scene_9_scenario_9\n")
    with pytest.raises(DatasetError, match="normal_scene_9_scenario_9"):
        load_ubnormal(root2, annotations=lst)
    assert load_ubnormal(root2, annotations=lst, allow_missing=True).missing == [
        "normal_scene_9_scenario_9"
    ]
    with pytest.raises(DatasetError, match="no UBnormal split lists"):
        load_ubnormal(tmp_path / "b" / "UBnormal" / "Scene1")
