"""UCF-Crime: the official temporal annotation file, its variants, boxes, and malformed lines."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.datasets import FrameSpan, load_dataset, load_ucf_crime

# Exactly as distributed: two spaces between fields, trailing two spaces on some lines.
OFFICIAL = (
    "Abuse028_x264.mp4  Abuse  165  240  -1  -1\n"
    "Arrest001_x264.mp4  Arrest  1185  1485  -1  -1\n"
    "Burglary005_x264.mp4  Burglary  4710  5040  5100  5400  \n"
    "Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1\n"
)
VIDEOS = (
    "Abuse/Abuse028_x264.mp4",
    "Arrest/Arrest001_x264.mp4",
    "Burglary/Burglary005_x264.mp4",
    "Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4",
)
ANN = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"


def make_root(tmp_path: Path, text: str = OFFICIAL, videos: tuple[str, ...] = VIDEOS) -> Path:
    root = tmp_path / "UCF_Crimes"
    for v in videos:
        p = root / "Videos" / v
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    (root / ANN).write_text(text)
    return root


def test_reads_the_official_file_and_finds_videos_recursively(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    ds = load_ucf_crime(root)
    assert [v.video_id for v in ds] == [
        "Abuse028_x264",
        "Arrest001_x264",
        "Burglary005_x264",
        "Normal_Videos_003_x264",
    ]
    abuse, _, burglary, normal = ds.videos
    assert abuse.is_anomalous and abuse.category == "Abuse"
    assert abuse.frame_spans == [FrameSpan(start_frame=165, stop_frame=240, label="Abuse")]
    assert [(s.start_frame, s.stop_frame) for s in burglary.frame_spans] == [
        (4710, 5040),
        (5100, 5400),
    ]
    assert normal.is_anomalous is False and normal.category == "Normal" and not normal.frame_spans
    assert Path(normal.path).parent.name == "Testing_Normal_Videos_Anomaly"
    assert Path(abuse.path).is_absolute()
    assert ds.annotations == str(root / ANN)
    # Spans convert to seconds only with the video's fps.
    spans = abuse.time_spans(fps=30.0)
    assert (spans[0].start_s, spans[0].end_s) == pytest.approx((5.5, 8.0))
    labels = abuse.frame_labels(300)
    assert labels.sum() == 75 and labels[165] == 1 and labels[164] == 0 and labels[240] == 0
    assert normal.frame_labels(10).tolist() == [0] * 10


def test_variants_without_mp4_single_spaces_and_tabs(tmp_path: Path) -> None:
    text = (
        "Abuse028_x264  Abuse  165  240  -1  -1\n"
        "Arrest001_x264.mp4 Arrest 1185 1485 -1 -1\n"
        "\n"
        "Burglary005_x264\tBurglary\t4710\t5040\t5100\t5400\r\n"
        "Normal_Videos_003_x264  Normal  -1  -1  -1  -1"
    )
    ds = load_dataset("ucf-crime", make_root(tmp_path, text))
    assert len(ds) == 4
    assert ds.get("Burglary005_x264") is not None
    assert ds.get("Burglary005_x264").frame_spans[1].stop_frame == 5400  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Abuse028_x264.mp4  Abuse  165  240  -1", "expected 6 fields"),
        ("Abuse028_x264.mp4  Abuse  165  240  -1  -1  7", "expected 6 fields"),
        ("Abuse028_x264.mp4  Abuse  165  2x0  -1  -1", "must be an integer"),
        ("Abuse028_x264.mp4  Abuse  165  -1  -1  -1", "-1 must mark both ends"),
        ("Abuse028_x264.mp4  Abuse  240  165  -1  -1", "end must be greater than start"),
        ("Abuse028_x264.mp4  Abuse  -1  -1  -1  -1", "has no anomaly span"),
        ("Normal_Videos_003_x264.mp4  Normal  1  5  -1  -1", "Normal but has anomaly spans"),
        ("Arrest001_x264.mp4  Arrest  1  5  -1  -1", "listed twice"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    text = OFFICIAL + line + "\n"
    root = make_root(tmp_path, text)
    with pytest.raises(DatasetError, match=re.escape(f"{ANN}:5: ") + ".*" + re.escape(message)):
        load_ucf_crime(root)


def test_missing_annotation_file_and_missing_videos(tmp_path: Path) -> None:
    root = make_root(tmp_path, videos=VIDEOS[:3])
    with pytest.raises(
        DatasetError, match=r"1 videos named in .* were not found .*Normal_Videos_003"
    ):
        load_ucf_crime(root)
    ds = load_dataset("ucf-crime", root, allow_missing=True)
    assert ds.missing == ["Normal_Videos_003_x264"] and len(ds) == 3
    assert ds.spec.options == {"allow_missing": True}
    (root / ANN).unlink()
    with pytest.raises(
        DatasetError, match=r"no Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
    ):
        load_ucf_crime(root)


def test_duplicate_copies_prefer_the_class_folder(tmp_path: Path) -> None:
    root = make_root(tmp_path, videos=(*VIDEOS, "Anomaly-Videos-Part-1/Abuse028_x264.mp4"))
    # The class folder "Abuse" wins over another copy.
    assert Path(load_ucf_crime(root).videos[0].path).parent.name == "Abuse"
    extra = root / "Videos" / "elsewhere" / "Arrest" / "Arrest001_x264.mp4"
    extra.parent.mkdir(parents=True)
    extra.write_bytes(b"x")
    with pytest.raises(DatasetError, match="found more than once"):
        load_ucf_crime(root)


def test_spatial_boxes_from_the_pickle(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    boxes = {
        "Abuse028_x264.mp4": [
            ["Abuse/Abuse028_x264/Abuse028_x264_000170.jpg", 10, 20, 110, 220],
            ["Abuse/Abuse028_x264/Abuse028_x264_000166.jpg", 12.5, 20, 100, 200],
        ],
        "Burglary005_x264": [[4800, 1, 2, 3, 4]],
    }
    (root / "Test_annotation.pkl").write_bytes(pickle.dumps(boxes, protocol=2))
    ds = load_ucf_crime(root)
    abuse = ds.get("Abuse028_x264")
    assert abuse is not None
    assert [(b.frame_idx, b.xyxy) for b in abuse.frame_boxes] == [
        (166, (12.5, 20.0, 100.0, 200.0)),
        (170, (10.0, 20.0, 110.0, 220.0)),
    ]
    t = abuse.time_boxes(fps=10.0)
    assert [b.t_s for b in t] == pytest.approx([16.6, 17.0])
    assert ds.get("Burglary005_x264").frame_boxes[0].frame_idx == 4800  # type: ignore[union-attr]
    assert not ds.get("Arrest001_x264").frame_boxes  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("boxes", "message"),
    [
        (
            {"Abuse028_x264": [["a_000001.jpg", 1, 2, 3]]},
            r"Abuse028_x264\[0\]: expected \[image_path",
        ),
        ({"Abuse028_x264": [["a_000001.jpg", 5, 2, 3, 4]]}, r"Abuse028_x264\[0\]: invalid box"),
        ({"Abuse028_x264": [["noframe.jpg", 1, 2, 3, 4]]}, "cannot read a frame index"),
        ({"Unknown001_x264": [["a_1.jpg", 1, 2, 3, 4]]}, "boxes for videos not in"),
        ({"Normal_Videos_003_x264": [["a_1.jpg", 1, 2, 3, 4]]}, "normal video but has boxes"),
        ([1, 2], "expected a dict"),
        ({"Abuse028_x264": np.zeros(2)}, "refused"),
    ],
)
def test_malformed_boxes(tmp_path: Path, boxes: object, message: str) -> None:
    root = make_root(tmp_path)
    pkl = tmp_path / "boxes.pkl"
    pkl.write_bytes(pickle.dumps(boxes))
    with pytest.raises(DatasetError, match=message):
        load_ucf_crime(root, boxes=pkl)
