"""UCSD Anomaly Detection Dataset, Ped1 and Ped2 (Mahadevan et al., CVPR 2010), read from its
official files.

Layout (``UCSD_Anomaly_Dataset.v1p2/``)::

    UCSDped2/Test/UCSDped2.m          frame-level ground truth
    UCSDped2/Test/Test001/001.tif     frames (grayscale .tif), one folder per test video
    UCSDped2/Test/Test001_gt/001.bmp  pixel masks (every Ped2 video, 10 of the 36 of Ped1)

The ``.m`` file lists one entry per test video, in order, as MATLAB ranges of 1-based,
inclusive frame numbers::

    TestVideoFile{end+1}.gt_frame = [60:152];
    TestVideoFile{end+1}.gt_frame = [5:90, 140:200];

Entry ``k`` belongs to ``Test<k:03d>``; ``[a:b]`` becomes the half-open span ``[a - 1, b)``.
Each test video is a frame folder read at ``UCSD_FPS`` frames per second (the videos were
recorded at 10 fps; override with ``fps``), recorded in every result as the frame rate's source.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.datasets.base import (
    Dataset,
    FrameBox,
    FrameSpan,
    LabeledVideo,
    dataset_error,
    merge_frame_spans,
    options_of,
    resolve_missing,
)
from vadetective.agent.datasets.files import walk_files
from vadetective.agent.datasets.masks import mask_boxes, read_mask_image

logger = logging.getLogger(__name__)

SUBSETS = ("ped1", "ped2")
UCSD_FPS = 10.0
_ENTRY = re.compile(r"TestVideoFile\s*\{\s*end\s*\+\s*1\s*\}\s*\.\s*gt_frame\s*=\s*\[([^\]]*)\]")
_RANGE = re.compile(r"^(\d+)(?::(\d+))?$")
_VIDEO_DIR = re.compile(r"^Test(\d{3})$")


def parse_gt_m(path: Path) -> list[list[FrameSpan]]:
    """The anomaly spans of each test video, in the order of the ``.m`` file.

    Raises:
        DatasetError: no entry, or an entry that is not a list of ``a:b`` / ``n`` frame numbers
            (file and line named).
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError as exc:
        raise DatasetError(f"annotation file not found: {path}") from exc
    out: list[list[FrameSpan]] = []
    for line_no, raw in enumerate(text.splitlines(), 1):
        line = raw.split("%", 1)[0]  # MATLAB comments
        m = _ENTRY.search(line)
        if m is None:
            if "gt_frame" in line:
                raise dataset_error(
                    path, line_no, f"cannot read this gt_frame entry: {raw.strip()!r}"
                )
            continue
        spans: list[FrameSpan] = []
        for item in (t for t in re.split(r"[,\s]+", m.group(1).strip()) if t):
            r = _RANGE.match(item)
            if r is None:
                raise dataset_error(
                    path, line_no, f"{item!r} is not a frame number or an a:b range of them"
                )
            a = int(r.group(1))
            b = int(r.group(2) or a)
            if a < 1 or b < a:
                raise dataset_error(
                    path, line_no, f"range {item} must satisfy 1 <= start <= end (1-based frames)"
                )
            spans.append(FrameSpan(start_frame=a - 1, stop_frame=b))
        out.append(merge_frame_spans(spans))
    if not out:
        raise DatasetError(f"{path} has no TestVideoFile{{end+1}}.gt_frame entries")
    return out


def _find_m_files(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in walk_files(root):
        m = re.fullmatch(r"UCSDped([12])\.m", p.name, flags=re.IGNORECASE)
        if m:
            key = f"ped{m.group(1)}"
            if key not in found or len(p.parts) < len(found[key].parts):
                found[key] = p
    return found


def _pick_annotations(root: Path, annotations: str | Path | None, subset: str | None) -> Path:
    if annotations is not None:
        path = Path(annotations).expanduser()
        if path.is_dir():
            path = _pick_annotations(path, None, subset)
        return path
    found = _find_m_files(root) if root.is_dir() else {}
    if subset is not None:
        if subset not in found:
            raise DatasetError(
                f"no UCSD{subset}.m under {root}: pass the Test folder of UCSD{subset} or the .m"
            )
        return found[subset]
    if len(found) == 1:
        return next(iter(found.values()))
    if not found:
        raise DatasetError(f"no UCSDped1.m or UCSDped2.m under {root}: pass the .m file")
    raise DatasetError(
        f"{root} holds both Ped1 and Ped2: use kind ucsd-ped1 or ucsd-ped2 to choose one"
    )


def _gt_boxes(folder: Path) -> list[FrameBox]:
    """Region boxes of a ``TestNNN_gt`` folder (mask ``i`` in natural order is frame ``i``)."""
    from vadetective.tools.video.folder import frame_files

    boxes: list[FrameBox] = []
    for i, f in enumerate(frame_files(folder)):
        boxes.extend(mask_boxes(read_mask_image(f), i))
    return boxes


def load_ucsd(
    root: str | Path,
    annotations: str | Path | None = None,
    *,
    subset: str | None = None,
    fps: float = UCSD_FPS,
    allow_missing: bool = False,
) -> Dataset:
    """Load the test set of UCSD Ped1 or Ped2.

    Args:
        root: the dataset folder (``UCSD_Anomaly_Dataset.v1p2``, ``UCSDped2`` or its ``Test``).
        annotations: the ``UCSDped<N>.m`` file (or a folder holding it); default: found under
            ``root``; the test videos are the ``TestNNN`` folders beside it.
        subset: ``ped1`` or ``ped2``; default: inferred from the ``.m`` file's name.
        fps: frame rate of the frame folders (the recordings' 10 fps by default).
        allow_missing: keep going when an entry's ``TestNNN`` folder is absent.

    Returns:
        The dataset, ``Test001`` first; pixel masks become ``frame_boxes`` where present.

    Raises:
        DatasetError: no or ambiguous ``.m`` file, a malformed entry, missing or extra videos.
    """
    root = Path(root).expanduser()
    if subset is not None and subset not in SUBSETS:
        raise DatasetError(f"unknown UCSD subset {subset!r}; expected ped1 or ped2")
    m_path = _pick_annotations(root, annotations, subset)
    name = re.fullmatch(r"UCSDped([12])\.m", m_path.name, flags=re.IGNORECASE)
    kind_subset = subset or (f"ped{name.group(1)}" if name else None)
    if kind_subset is None:
        raise DatasetError(f"cannot tell Ped1 from Ped2 by {m_path.name}: use kind ucsd-ped1/2")
    entries = parse_gt_m(m_path)
    test_dir = m_path.parent
    folders = {
        int(mm.group(1)): p
        for p in sorted(test_dir.iterdir())
        if p.is_dir() and (mm := _VIDEO_DIR.match(p.name))
    }
    extra = sorted(k for k in folders if k > len(entries))
    if extra:
        raise DatasetError(
            f"{test_dir} has Test{extra[0]:03d} but {m_path.name} annotates only {len(entries)} "
            "videos: is this the .m file of another subset?"
        )
    kind = f"ucsd-{kind_subset}"
    videos: list[LabeledVideo] = []
    missing: list[str] = []
    for k, spans in enumerate(entries, 1):
        vid = f"Test{k:03d}"
        folder = folders.get(k)
        if folder is None:
            missing.append(vid)
            continue
        gt_dir = test_dir / f"{vid}_gt"
        videos.append(
            LabeledVideo(
                video_id=vid,
                path=str(folder.resolve()),
                dataset=kind,
                category=None if spans else "Normal",  # the dataset has no classes
                is_anomalous=bool(spans),
                frame_spans=spans,
                frame_boxes=_gt_boxes(gt_dir) if gt_dir.is_dir() else [],
                fps=fps,
                fps_source=f"UCSD convention ({fps:g} fps)",
            )
        )
    missing = resolve_missing(missing, allow_missing, m_path, "test folders")
    logger.info("UCSD %s: %d test videos from %s", kind_subset, len(videos), m_path)
    return Dataset(
        kind=kind,
        root=str(root),
        annotations=str(m_path),
        options=options_of(fps=fps if fps != UCSD_FPS else None, allow_missing=allow_missing),
        split="test",
        videos=videos,
        missing=missing,
    )


def load_ucsd_ped1(
    root: str | Path,
    annotations: str | Path | None = None,
    *,
    fps: float = UCSD_FPS,
    allow_missing: bool = False,
) -> Dataset:
    """UCSD Ped1 (see ``load_ucsd``)."""
    return load_ucsd(root, annotations, subset="ped1", fps=fps, allow_missing=allow_missing)


def load_ucsd_ped2(
    root: str | Path,
    annotations: str | Path | None = None,
    *,
    fps: float = UCSD_FPS,
    allow_missing: bool = False,
) -> Dataset:
    """UCSD Ped2 (see ``load_ucsd``)."""
    return load_ucsd(root, annotations, subset="ped2", fps=fps, allow_missing=allow_missing)
