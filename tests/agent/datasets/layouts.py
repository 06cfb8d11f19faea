"""Builders of every supported benchmark in its official on-disk layout, from generated scenes.

Each builder writes the files the way the dataset ships them (frame folders of .jpg or
grayscale .tif, .avi videos, MATLAB .m and v5 .mat ground truth, .npy/.npz labels, split
lists, UCA and HIVAU-70k JSON) from two short generated scenes (one with a staged anomaly, one
normal), and returns a ``Layout`` saying how to load it and what to expect. Not a test module:
``conftest.py`` loads it by path.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class Clip:
    """A generated scene: its frames (RGB), frame labels, truth boxes and description."""

    mp4: Path
    frames: np.ndarray
    fps: float
    labels: np.ndarray
    boxes: list[tuple[int, tuple[float, float, float, float]]]
    description: str

    def masks(self) -> list[np.ndarray]:
        """One pixel mask per frame: the truth boxes filled."""
        h, w = self.frames.shape[1:3]
        out = [np.zeros((h, w), dtype=np.uint8) for _ in range(len(self.frames))]
        for i, (x1, y1, x2, y2) in self.boxes:
            if 0 <= i < len(out):
                out[i][int(y1) : int(y2), int(x1) : int(x2)] = 1
        return out

    def spans(self) -> list[tuple[int, int]]:
        """Runs of anomalous frames as inclusive (first, last) indices."""
        x = np.concatenate([[0], self.labels, [0]]).astype(np.int8)
        d = np.diff(x)
        return [
            (int(a), int(b) - 1)
            for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True)
        ]


def make_clip(folder: Path, kind: str, seed: int) -> Clip:
    from vadetective.agent.synth.scene import generate_scene
    from vadetective.tools.video.sources import open_video

    truth = generate_scene(folder, kind=kind, seed=seed, duration_s=6.0)
    with open_video(truth.video_path) as src:
        frames = src.read(range(src.info.frame_count)).frames
    fps = truth.fps
    t = np.arange(len(frames)) / fps
    labels = np.zeros(len(frames), dtype=np.uint8)
    for s in truth.spans:
        labels[(t >= s.start_s) & (t < s.end_s)] = 1
    boxes = [
        (round(b.t_s * fps), b.xyxy)
        for b in truth.boxes
        if labels[min(len(labels) - 1, round(b.t_s * fps))]
    ]
    return Clip(Path(truth.video_path), frames, fps, labels, boxes, truth.description)


@dataclass(frozen=True)
class Layout:
    """How to load a built dataset and what it holds."""

    kind: str
    root: Path
    annotations: Path | None = None
    options: dict[str, object] = field(default_factory=dict)
    videos: int = 2
    folder_fps: str | None = None  # expected fps_source of frame-folder videos
    boxes: bool = False
    texts: tuple[str, ...] = ()  # reference levels expected in the explanation scores
    folders: int | None = None  # how many videos are frame folders (default: all, with folder_fps)
    labelled: bool = True  # False: a plain folder, nothing to score against
    fps: float | None = None  # a --fps flag the batch is run with

    @property
    def frame_folders(self) -> int:
        if self.folders is not None:
            return self.folders
        return self.videos if self.folder_fps else 0


def _frames(folder: Path, frames: np.ndarray, pattern: str, gray: bool = False,
            size: tuple[int, int] | None = None) -> None:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        img = cv2.cvtColor(f, cv2.COLOR_RGB2GRAY if gray else cv2.COLOR_RGB2BGR)
        if size is not None:
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / pattern.format(i)), img)


def _avi(path: Path, clip: Clip) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = clip.frames.shape[1:3]
    fourcc = cv2.VideoWriter.fourcc(*"MJPG")
    writer = cv2.VideoWriter(str(path), fourcc, clip.fps, (w, h))
    for f in clip.frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def _reversed(clip: Clip) -> Clip:
    n = len(clip.frames)
    return Clip(clip.mp4, clip.frames[::-1].copy(), clip.fps, clip.labels[::-1].copy(),
                [(n - 1 - i, b) for i, b in clip.boxes], clip.description)  # fmt: skip


# ------------------------------------------------------------------------------ builders


def shanghaitech(root: Path, a: Clip, n: Clip) -> Layout:
    for vid, clip in (("01_0014", a), ("01_0015", n)):
        _frames(root / "testing" / "frames" / vid, clip.frames, "{:03d}.jpg")
        (root / "testing" / "test_frame_mask").mkdir(parents=True, exist_ok=True)
        np.save(root / "testing" / "test_frame_mask" / f"{vid}.npy", clip.labels.astype(np.int64))
    return Layout("shanghaitech", root, folder_fps="ShanghaiTech convention (24 fps)")


def _ucsd(root: Path, a: Clip, subset: str, size: tuple[int, int], gt_all: bool) -> Layout:
    test = root / "UCSD_Anomaly_Dataset.v1p2" / f"UCSD{subset}" / "Test"
    entries = []
    for k, clip in enumerate((a, _reversed(a)), 1):
        _frames(test / f"Test{k:03d}", clip.frames, "{:03d}.tif", gray=True, size=size)
        if k == 1 or gt_all:
            masks = clip.masks()
            gt = test / f"Test{k:03d}_gt"
            gt.mkdir(parents=True, exist_ok=True)
            for i, m in enumerate(masks):
                m = cv2.resize(m * 255, size, interpolation=cv2.INTER_NEAREST)
                cv2.imwrite(str(gt / f"{i + 1:03d}.bmp"), m)
        ranges = ", ".join(f"{s + 1}:{e + 1}" for s, e in clip.spans())
        entries.append(f"TestVideoFile{{end+1}}.gt_frame = [{ranges}];")
    (test / f"UCSD{subset}.m").write_text(
        "% ground truth of the test videos (frame numbers start at 1)\nTestVideoFile = {};\n"
        + "\n".join(entries)
        + "\n",
        encoding="utf-8",
    )
    return Layout(f"ucsd-{subset}", root, folder_fps="UCSD convention (10 fps)", boxes=True)


def ucsd_ped1(root: Path, a: Clip, n: Clip) -> Layout:
    return _ucsd(root, a, "ped1", (238, 158), gt_all=False)


def ucsd_ped2(root: Path, a: Clip, n: Clip) -> Layout:
    return _ucsd(root, a, "ped2", (360, 240), gt_all=True)


def avenue(root: Path, a: Clip, n: Clip) -> Layout:
    from scipy.io import savemat

    base = root / "Avenue Dataset"
    masks_dir = base / "ground_truth_demo" / "testing_label_mask"
    masks_dir.mkdir(parents=True)
    for k, clip in enumerate((a, n), 1):
        _avi(base / "testing_videos" / f"{k:02d}.avi", clip)
        cells = np.empty((1, len(clip.frames)), dtype=object)
        for i, m in enumerate(clip.masks()):
            cells[0, i] = m
        savemat(masks_dir / f"{k}_label.mat", {"volLabel": cells})
    return Layout("avenue", root, boxes=True)


def msad(root: Path, a: Clip, n: Clip) -> Layout:
    names = [("Fighting_3", "abnormal", a), ("MSAD_normal_testing_1", "normal", n)]
    lines, gt = [], []
    for name, part, clip in names:
        if part == "abnormal":
            _copy(clip.mp4, root / "MSAD_anomaly_blurred" / "Fighting" / f"{name}.mp4")
        else:
            _copy(clip.mp4, root / "MSAD_normal" / "testing" / f"{name}.mp4")
        snippets = len(clip.frames) // 16
        (root / "features").mkdir(exist_ok=True)
        np.save(root / "features" / f"{name}_i3d.npy", np.zeros((snippets, 8), dtype=np.float32))
        lines.append(f"/scratch/kf09/MSAD-I3D-WS/MSAD-I3D-{part}-testing/{name}_i3d.npy")
        gt.append(clip.labels[: snippets * 16])
    (root / "msad-i3d-test.list").write_text("\n".join(lines) + "\n", encoding="utf-8")
    np.save(root / "gt-MSAD-WS.npy", np.concatenate(gt).astype(np.float32))
    return Layout("msad", root)


def nwpu(root: Path, a: Clip, n: Clip) -> Layout:
    base = root / "NWPUCampusDataset"
    _avi(base / "videos" / "Test" / "D001_03.avi", a)
    _avi(base / "videos" / "Test" / "D002_01.avi", n)
    (base / "groundtruth").mkdir(parents=True)
    np.savez(
        base / "groundtruth" / "NWPU_Campus_gt.npz",
        D001_03=a.labels,
        D002_01=n.labels,
        D001_01=np.zeros(40, dtype=np.uint8),  # a training video's labels: not a test video
    )
    return Layout("nwpu-campus", root)


def ubnormal(root: Path, a: Clip, n: Clip, split: str = "test") -> Layout:
    """Both official splits on disk; ``split`` says which one the layout loads."""
    lists = root / "scripts"
    lists.mkdir(parents=True)
    names = {
        "test": ("abnormal_scene_1_scenario_1", "normal_scene_1_scenario_2"),
        "validation": ("abnormal_scene_2_scenario_5", "normal_scene_2_scenario_3"),
    }
    for which, (abn, nor) in names.items():
        scene = root / ("Scene1" if which == "test" else "Scene2")
        _copy(a.mp4, scene / f"{abn}.mp4")
        _copy(n.mp4, scene / f"{nor}.mp4")
        tracks = scene / f"{abn}_annotations" / f"{abn}_tracks.txt"
        tracks.parent.mkdir(parents=True)
        tracks.write_text(
            "".join(f"{k},{s}.0,{e}.0\n" for k, (s, e) in enumerate(a.spans())), encoding="utf-8"
        )
        (lists / f"abnormal_{which}_video_names.txt").write_text(abn + "\n", encoding="utf-8")
        (lists / f"normal_{which}_video_names.txt").write_text(nor + "\n", encoding="utf-8")
    return Layout("ubnormal", root, options={"split": split})


def uca(root: Path, a: Clip, n: Clip) -> Layout:
    videos = root / "UCF_Crimes" / "Videos"
    _copy(a.mp4, videos / "Abuse" / "Abuse037_x264.mp4")
    _copy(n.mp4, videos / "Testing_Normal_Videos_Anomaly" / "Normal_Videos_003_x264.mp4")
    dur = len(a.frames) / a.fps
    data = {
        "Abuse037_x264": {
            "duration": dur,
            "timestamps": [[0.0, 2.0], [2.0, dur]],
            "sentences": ["People walk along the street.", a.description],
        },
        "Normal_Videos_003_x264": {
            "duration": dur,
            "timestamps": [[0.0, dur]],
            "sentences": [n.description],
        },
    }
    ann = root / "UCF Annotation" / "json" / "UCFCrime_Test.json"
    ann.parent.mkdir(parents=True)
    ann.write_text(json.dumps(data, indent=4), encoding="utf-8")
    (s, e), *_ = a.spans()
    (root / "UCF_Crimes" / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").write_text(
        f"Abuse037_x264.mp4  Abuse  {s}  {e + 1}  -1  -1\n"
        "Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1\n",
        encoding="utf-8",
    )
    return Layout("uca", root, texts=("sentence",))


def hivau(root: Path, a: Clip, n: Clip) -> Layout:
    base = root / "HIVAU-70k"
    videos = base / "videos" / "ucf-crime" / "videos" / "test"
    _copy(a.mp4, videos / "Arrest001_x264.mp4")
    _copy(n.mp4, videos / "Normal_Videos_010_x264.mp4")
    (s, e), *_ = a.spans()
    data = {
        "Arrest001_x264": {
            "n_frames": len(a.frames),
            "fps": a.fps,
            "label": ["Arrest"],
            "events": [[s / a.fps, (e + 1) / a.fps]],
            "events_summary": [a.description],
            "clips": [[s / a.fps, (e + 1) / a.fps]],
            "clips_summary": ["A person moves fast."],
            "video_summary": f"People walk in a square. {a.description}",
        },
        "Normal_Videos_010_x264": {
            "n_frames": len(n.frames),
            "fps": n.fps,
            "label": ["Normal"],
            "events": [],
            "video_summary": n.description,
        },
    }
    ann = base / "raw_annotations" / "ucf_database_test.json"
    ann.parent.mkdir(parents=True)
    ann.write_text(json.dumps(data), encoding="utf-8")
    return Layout("hivau", videos, annotations=ann, texts=("clip", "event", "video"))


def ucf_crime(root: Path, a: Clip, n: Clip) -> Layout:
    import pickle

    base = root / "UCF_Crimes"
    _copy(a.mp4, base / "Videos" / "Abuse" / "Abuse028_x264.mp4")
    _copy(n.mp4, base / "Videos" / "Testing_Normal_Videos_Anomaly" / "Normal_Videos_003_x264.mp4")
    (s, e), *_ = a.spans()
    (base / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").write_text(
        f"Abuse028_x264.mp4  Abuse  {s}  {e + 1}  -1  -1\n"
        "Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1\n",
        encoding="utf-8",
    )
    boxes = {
        "Abuse028_x264.mp4": [
            [f"Abuse/Abuse028_x264/Abuse028_x264_{i:06d}.jpg", *xyxy] for i, xyxy in a.boxes
        ]
    }
    (base / "Test_annotation.pkl").write_bytes(pickle.dumps(boxes, protocol=2))
    return Layout("ucf-crime", base, boxes=True)


def xd_violence(root: Path, a: Clip, n: Clip) -> Layout:
    abnormal = "Bad.Boys.1995__#01-11-55_01-12-40_label_B1-0-0"
    _copy(a.mp4, root / "videos" / f"{abnormal}.mp4")
    _copy(n.mp4, root / "videos" / "A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A.mp4")
    (s, e), *_ = a.spans()
    (root / "annotations.txt").write_text(f"{abnormal} {s} {e + 1}\n", encoding="utf-8")
    return Layout("xd-violence", root)


def manifest(root: Path, a: Clip, n: Clip) -> Layout:
    """A user's own set: a frame folder (its frame rate in the manifest) and a video file."""
    _frames(root / "cams" / "gate", a.frames, "frame{}.png")
    _copy(n.mp4, root / "clips" / "square.mp4")
    (s, e), *_ = a.spans()
    rows = [
        {"path": "cams/gate", "fps": a.fps, "label": "sprint",
         "spans": [[s / a.fps, (e + 1) / a.fps]], "description": a.description},
        {"path": "clips/square.mp4", "label": "normal", "description": n.description},
    ]  # fmt: skip
    (root / "manifest.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
    )
    return Layout(
        "manifest", root, folder_fps=f"manifest ({a.fps:g} fps)", folders=1, texts=("video",)
    )


def folder(root: Path, a: Clip, n: Clip) -> Layout:
    """A plain folder: a frame folder and a video file, no labels; ``--fps`` for the frames."""
    _frames(root / "gate", a.frames, "{:05d}.jpg")
    _copy(n.mp4, root / "square.mp4")
    return Layout("folder", root, folder_fps="--fps flag", folders=1, labelled=False, fps=a.fps)


BUILDERS: dict[str, Callable[[Path, Clip, Clip], Layout]] = {
    "ucf-crime": ucf_crime,
    "xd-violence": xd_violence,
    "manifest": manifest,
    "folder": folder,
    "shanghaitech": shanghaitech,
    "ucsd-ped1": ucsd_ped1,
    "ucsd-ped2": ucsd_ped2,
    "avenue": avenue,
    "msad": msad,
    "nwpu-campus": nwpu,
    "ubnormal": ubnormal,
    "uca": uca,
    "hivau": hivau,
}
