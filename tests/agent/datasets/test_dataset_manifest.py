"""Generic manifest (JSONL and CSV), plain folder, load_dataset dispatch, LabeledVideo/Dataset."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.core.types import TimeSpan
from vadetective.agent.datasets import (
    Dataset,
    DatasetSpec,
    FrameBox,
    FrameSpan,
    LabeledVideo,
    load_dataset,
    load_folder,
    load_manifest,
    load_spec,
)


def write_suite(root: Path, lines: list[str], name: str = "manifest.jsonl") -> Path:
    (root / "videos").mkdir(parents=True, exist_ok=True)
    for n in ("sprint_0", "fall_0", "normal_0"):
        (root / "videos" / f"{n}.mp4").write_bytes(b"x")
    path = root / name
    path.write_text("\n".join(lines) + "\n")
    return path


# Exactly what the synthetic-suite generator writes.
SYNTH = [
    json.dumps({"path": "videos/sprint_0.mp4", "label": "sprint", "spans": [[4.0, 7.5]]}),
    json.dumps({"path": "videos/fall_0.mp4", "label": "fall", "spans": [[2.0, 3.0], [10.0, 20.0]]}),
    json.dumps({"path": "videos/normal_0.mp4", "label": "normal", "spans": []}),
]


def test_jsonl_as_the_synthetic_suite_writes_it(tmp_path: Path) -> None:
    write_suite(tmp_path, SYNTH)
    ds = load_dataset("manifest", tmp_path)
    assert [v.video_id for v in ds] == ["sprint_0", "fall_0", "normal_0"]
    sprint, fall, normal = ds.videos
    assert sprint.is_anomalous and sprint.category == "sprint"
    assert sprint.spans == [TimeSpan(start_s=4.0, end_s=7.5)]
    assert Path(sprint.path) == (tmp_path / "videos" / "sprint_0.mp4").resolve()
    assert normal.is_anomalous is False and normal.spans == []
    # Seconds need the fps to become frame labels: frame i is in when start <= i/fps < end.
    labels = fall.frame_labels(frame_count=25, fps=1.0)
    assert np.flatnonzero(labels).tolist() == [2, *range(10, 20)]
    assert fall.time_spans() == fall.spans  # no fps needed for spans already in seconds


def test_jsonl_optional_keys(tmp_path: Path) -> None:
    lines = [
        json.dumps(
            {
                "path": "videos/sprint_0.mp4",
                "id": "clip-7",
                "label": "sprint",
                "spans": [[1, 2]],
                "description": ["A man sprints.", "Someone runs fast."],
                "boxes": [[1.5, 10, 20, 30, 40]],
                "seed": 3,
            }
        ),
        json.dumps({"path": "videos/fall_0.mp4"}),
        json.dumps({"path": "videos/normal_0.mp4", "spans": []}),
    ]
    ds = load_manifest(write_suite(tmp_path, lines))
    clip, unlabelled, no_spans = ds.videos
    assert clip.video_id == "clip-7" and clip.descriptions == [
        "A man sprints.",
        "Someone runs fast.",
    ]
    assert clip.boxes[0].t_s == 1.5 and clip.boxes[0].xyxy == (10, 20, 30, 40)
    assert unlabelled.is_anomalous is None and not unlabelled.has_temporal_labels
    assert no_spans.is_anomalous is False


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"label": "fall"}', "missing 'path'"),
        ('{"path": "videos/fall_0.mp4", "label": 3}', "'label' must be a string"),
        (
            '{"path": "videos/fall_0.mp4", "spans": [[3, 1]]}',
            "end_s \\(1.0\\) must be greater than start_s",
        ),
        ('{"path": "videos/fall_0.mp4", "spans": [[1, 2, 3]]}', "must be \\[start_s, end_s\\]"),
        ('{"path": "videos/fall_0.mp4", "spans": [["1", 2]]}', "must be \\[start_s, end_s\\]"),
        ('{"path": "videos/fall_0.mp4", "spans": "1-2"}', "'spans' must be a list"),
        (
            '{"path": "videos/fall_0.mp4", "label": "normal", "spans": [[1, 2]]}',
            "is normal but spans",
        ),
        ('{"path": "videos/fall_0.mp4", "label": "x", "boxes": [[1, 5, 5, 2, 2]]}', "bad box"),
        ('{"path": "videos/fall_0.mp4", "description": 5}', "'description' must be"),
        (
            '{"path": "videos/sprint_0.mp4"}',
            "videos/sprint_0.mp4 is listed twice \\(first on line 1\\)",
        ),
        ('{"path": "videos/fall_0.mp4", "id": "sprint_0"}', "video id 'sprint_0' repeats line 1"),
        ('{"path": "videos/fall_0.mp4", "id": "a/b", "label": "fall"}', "video_id must be"),
    ],
)
def test_malformed_jsonl_lines(tmp_path: Path, line: str, message: str) -> None:
    path = write_suite(tmp_path, [SYNTH[0], "", line])
    with pytest.raises(DatasetError, match=re.escape("manifest.jsonl:3: ") + ".*" + message):
        load_manifest(path)


CSV = """path,label,spans
videos/sprint_0.mp4,sprint,4.0-7.5
videos/fall_0.mp4,fall, 2-3 ; 10.5-20
videos/normal_0.mp4,normal,
"""


def test_csv_manifest(tmp_path: Path) -> None:
    path = write_suite(tmp_path, CSV.strip().splitlines(), name="manifest.csv")
    ds = load_dataset("manifest", tmp_path)
    assert ds.get("fall_0").spans == [  # type: ignore[union-attr]
        TimeSpan(start_s=2.0, end_s=3.0),
        TimeSpan(start_s=10.5, end_s=20.0),
    ]
    assert ds.get("normal_0").is_anomalous is False  # type: ignore[union-attr]
    # Only a path column: an unlabelled list of videos.
    path.write_text("path\nvideos/fall_0.mp4\n")
    assert load_manifest(path).videos[0].is_anomalous is None


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("videos/fall_0.mp4,fall,2to3", "must read 'start-end'"),
        ("videos/fall_0.mp4,fall,3-2", "end_s \\(2.0\\) must be greater"),
        ("videos/fall_0.mp4,fall,-1-2", "must read 'start-end'"),
        (",fall,1-2", "empty 'path'"),
        ("videos/fall_0.mp4,fall,1-2,extra", "more cells than the 3 header columns"),
        ("videos/fall_0.mp4,normal,1-2", "is normal but spans"),
    ],
)
def test_malformed_csv_rows(tmp_path: Path, row: str, message: str) -> None:
    path = write_suite(
        tmp_path, ["path,label,spans", "videos/sprint_0.mp4,sprint,1-2", row], "m.csv"
    )
    with pytest.raises(DatasetError, match=re.escape("m.csv:3: ") + ".*" + message):
        load_manifest(tmp_path, annotations=path)


def test_csv_header_must_name_path(tmp_path: Path) -> None:
    path = write_suite(tmp_path, ["file,label", "videos/a.mp4,x"], "m.csv")
    with pytest.raises(DatasetError, match=r"m.csv:1: the header must name a 'path' column"):
        load_manifest(path)


def test_missing_files_and_no_manifest(tmp_path: Path) -> None:
    path = write_suite(tmp_path, [*SYNTH, json.dumps({"path": "videos/gone.mp4", "label": "fall"})])
    with pytest.raises(
        DatasetError, match=r"1 files named in .*manifest.jsonl were not found .*gone.mp4"
    ):
        load_manifest(path)
    assert load_manifest(path, allow_missing=True).missing == ["videos/gone.mp4"]
    with pytest.raises(DatasetError, match=r"no manifest.jsonl or manifest.csv"):
        load_manifest(tmp_path / "videos")


def test_folder_dataset_with_colliding_names(tmp_path: Path) -> None:
    for rel in ("cam1/clip.mp4", "cam2/clip.MP4", "other.avi", "notes.txt", ".hidden/x.mp4"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    ds = load_folder(tmp_path)
    assert [v.video_id for v in ds] == ["cam1__clip", "cam2__clip", "other"]
    assert all(v.is_anomalous is None and v.dataset == "folder" for v in ds)
    with pytest.raises(DatasetError, match="takes no annotations"):
        load_folder(tmp_path, annotations="x.txt")
    with pytest.raises(DatasetError, match="dataset root is not a folder"):
        load_folder(tmp_path / "cam1" / "no-such-folder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no video files"):
        load_folder(tmp_path / "empty")


def test_load_dataset_dispatch_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown dataset kind 'kinetics'"):
        load_dataset("kinetics", tmp_path)
    with pytest.raises(DatasetError, match="takes no option split; it takes allow_missing, boxes"):
        load_dataset("ucf-crime", tmp_path, split="test")
    with pytest.raises(DatasetError, match=r"'folder' takes no option allow_missing$"):
        load_dataset("folder", tmp_path, allow_missing=True)


def test_spec_round_trip(tmp_path: Path) -> None:
    write_suite(tmp_path, SYNTH)
    ds = load_dataset("manifest", tmp_path)
    spec = DatasetSpec.model_validate(json.loads(ds.spec.model_dump_json()))
    assert load_spec(spec) == ds


def test_labeled_video_and_dataset_types() -> None:
    with pytest.raises(
        ValidationError, match="stop_frame \\(3\\) must be greater than start_frame"
    ):
        FrameSpan(start_frame=3, stop_frame=3)
    with pytest.raises(ValidationError, match="x2 > x1"):
        FrameBox(frame_idx=0, xyxy=(5, 0, 1, 1))
    span = FrameSpan(start_frame=30, stop_frame=60)
    assert (span.to_timespan(30.0).start_s, span.to_timespan(30.0).end_s) == (1.0, 2.0)
    v = LabeledVideo(
        video_id="v", path="/v.mp4", dataset="x", is_anomalous=True, frame_spans=[span]
    )
    with pytest.raises(ValueError, match="fps must be a positive number"):
        v.time_spans()
    with pytest.raises(ValidationError, match="a normal video cannot have anomaly spans"):
        LabeledVideo(
            video_id="n", path="/n.mp4", dataset="x", is_anomalous=False, frame_spans=[span]
        )
    bare = LabeledVideo(video_id="b", path="/b.mp4", dataset="x", is_anomalous=True)
    assert not bare.has_temporal_labels
    with pytest.raises(DatasetError, match="no temporal annotation"):
        bare.frame_labels(10)
    with pytest.raises(ValidationError, match="appears twice"):
        Dataset(kind="x", root="/", videos=[v, v])
    ds = Dataset(kind="x", root="/", videos=[v, bare])
    assert [x.video_id for x in ds] == ["v", "b"] and len(ds) == 2 and ds.get("zz") is None
    assert ds.summary() == "x: 2 videos (2 anomalous, 0 normal, 0 unlabelled)"
