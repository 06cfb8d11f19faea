"""XD-Violence: labels in file names, annotations.txt, its variants and malformed lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.datasets import load_dataset, load_xd_violence
from vadetective.agent.datasets.xd_violence import parse_label

FILES = (
    "A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A.mp4",
    "Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6.mp4",
    "v=wVey5JDRf_g__#1_label_B1-0-0.mp4",
)
ANNOTATIONS = (
    "Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6 12 95 400 560\n"
    "v=wVey5JDRf_g__#1_label_B1-0-0.mp4 0 48\n"
)


def make_root(tmp_path: Path, text: str = ANNOTATIONS, files: tuple[str, ...] = FILES) -> Path:
    root = tmp_path / "XD"
    (root / "videos").mkdir(parents=True)
    for f in files:
        (root / "videos" / f).write_bytes(b"x")
    (root / "readme.mp4").write_bytes(b"x")  # a video without a label: not part of the set
    (root / "annotations.txt").write_text(text)
    return root


@pytest.mark.parametrize(
    ("name", "classes"),
    [
        ("x__#1_label_A.mp4", ["Normal"]),
        ("x__#1_label_B1-0-0.mp4", ["Fighting"]),
        ("x__#1_label_B2-0-0", ["Shooting"]),
        ("x__#1_label_B4-B5-0.mp4", ["Riot", "Abuse"]),
        ("x__#1_label_G-B2-B6.mp4", ["Explosion", "Shooting", "Car accident"]),
        ("my_label_x__#1_label_B6-0-0.mp4", ["Car accident"]),
    ],
)
def test_parse_label(name: str, classes: list[str]) -> None:
    assert parse_label(name) == classes


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("x__#1.mp4", "no '_label_'"),
        ("x_label_B3-0-0.mp4", "unknown class code"),
        ("x_label_A-B1.mp4", "mixes the normal code"),
        ("x_label_0-0.mp4", "empty label"),
    ],
)
def test_parse_label_rejects(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_label(name)


def test_reads_names_and_annotations(tmp_path: Path) -> None:
    ds = load_xd_violence(make_root(tmp_path))
    assert len(ds) == 3
    normal = ds.get("A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A")
    multi = ds.get("Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6")
    fight = ds.get("v=wVey5JDRf_g__#1_label_B1-0-0")
    assert normal is not None and multi is not None and fight is not None
    assert normal.is_anomalous is False and normal.category == "Normal"
    assert (
        multi.categories == ["Explosion", "Shooting", "Car accident"]
        and multi.category == "Explosion"
    )
    assert [(s.start_frame, s.stop_frame) for s in multi.frame_spans] == [(12, 95), (400, 560)]
    assert fight.frame_spans[0].stop_frame == 48  # the '.mp4' variant of a line
    labels = multi.frame_labels(600)
    assert labels.sum() == (95 - 12) + (560 - 400)
    assert [round(s.start_s, 3) for s in multi.time_spans(24.0)] == [0.5, 16.667]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("v=wVey5JDRf_g__#1_label_B1-0-0", "pairs of frame indices"),
        ("v=wVey5JDRf_g__#1_label_B1-0-0 5 9 12", "pairs of frame indices"),
        ("v=wVey5JDRf_g__#1_label_B1-0-0 5 x", "must be an integer"),
        ("v=wVey5JDRf_g__#1_label_B1-0-0 9 5", "0 <= start < end"),
        ("v=wVey5JDRf_g__#1_label_B1-0-0 -3 5", "0 <= start < end"),
    ],
)
def test_malformed_annotation_lines(tmp_path: Path, line: str, message: str) -> None:
    text = "Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6 12 95\n\n" + line + "\n"
    with pytest.raises(DatasetError, match=re.escape("annotations.txt:3: ") + ".*" + message):
        load_xd_violence(make_root(tmp_path, text))


def test_inconsistencies_between_names_and_annotations(tmp_path: Path) -> None:
    dup = ANNOTATIONS + "Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6.mp4 1 2\n"
    with pytest.raises(
        DatasetError, match=r"annotations.txt:3: .*listed twice \(first on line 1\)"
    ):
        load_xd_violence(make_root(tmp_path / "a", dup))
    no_line = "Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6 12 95 400 560\n"
    with pytest.raises(
        DatasetError, match=r"label_B1-0-0.mp4 is labelled abnormal but has no line"
    ):
        load_xd_violence(make_root(tmp_path / "b", no_line))
    normal_line = ANNOTATIONS + "A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A 3 9\n"
    with pytest.raises(
        DatasetError, match=r"annotations.txt:3: .*labelled normal \(A\) but has spans"
    ):
        load_xd_violence(make_root(tmp_path / "c", normal_line))
    bad_name = (*FILES, "Clip__#2_label_B9-0-0.mp4")
    with pytest.raises(DatasetError, match=r"Clip__#2_label_B9-0-0.mp4: .*unknown class code"):
        load_xd_violence(make_root(tmp_path / "d", files=bad_name))


def test_missing_videos_and_explicit_annotation_path(tmp_path: Path) -> None:
    root = make_root(tmp_path, files=FILES[:2])
    with pytest.raises(DatasetError, match=r"1 videos named in .*annotations.txt were not found"):
        load_xd_violence(root)
    ann = tmp_path / "elsewhere.txt"
    ann.write_text(ANNOTATIONS)
    (root / "annotations.txt").unlink()
    with pytest.raises(DatasetError, match=r"no annotations.txt"):
        load_xd_violence(root)
    ds = load_dataset("XD_Violence", root, annotations=ann, allow_missing=True)
    assert ds.missing == ["v=wVey5JDRf_g__#1_label_B1-0-0"] and len(ds) == 2
    assert ds.annotations == str(ann)
