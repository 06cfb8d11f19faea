"""The types every dataset adapter yields, and the small helpers the adapters share.

A dataset is a list of ``LabeledVideo``: one video with what its ground truth says (anomalous or
not, class, anomaly spans, optional per-frame labels and boxes). Official annotation files give
frame indices, and only the video knows its frame rate, so spans and boxes keep the unit the file
used (``FrameSpan``/``FrameBox`` in frames, ``TimeSpan``/``Box`` in seconds) and convert to
seconds on request with the fps of the decoded video (``LabeledVideo.time_spans(fps)``).

Conventions:
- frame indices count decoded frames from 0;
- a ``FrameSpan`` is half-open, ``[start_frame, stop_frame)``, like a Python slice: the frame
  labels of a video are ``labels[start_frame:stop_frame] = 1``, which is what the public
  UCF-Crime and XD-Violence evaluation code does with the annotated (start, end) pairs. Adapters
  for files that give inclusive ends (UBnormal tracks) add one to the end.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.core.types import Box, Frozen, TimeSpan

logger = logging.getLogger(__name__)

#: File name endings treated as videos when a dataset folder is searched.
VIDEO_EXTENSIONS: tuple[str, ...] = (
    ".mp4",
    ".avi",
    ".mkv",
    ".mov",
    ".webm",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".wmv",
    ".flv",
    ".ts",
)

#: Dataset kinds understood by ``load_dataset``.
DATASET_KINDS: tuple[str, ...] = (
    "ucf-crime",
    "xd-violence",
    "shanghaitech",
    "ubnormal",
    "ucsd-ped1",
    "ucsd-ped2",
    "avenue",
    "msad",
    "nwpu-campus",
    "uca",
    "hivau",
    "manifest",
    "folder",
)

OptionValue = str | int | float | bool | None


class FrameSpan(Frozen):
    """An annotated anomaly as a half-open range of frame indices ``[start_frame, stop_frame)``."""

    start_frame: int
    stop_frame: int = Field(description="first frame AFTER the span (exclusive), like a slice")
    label: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> FrameSpan:
        if self.start_frame < 0:
            raise ValueError(f"start_frame ({self.start_frame}) must be >= 0")
        if self.stop_frame <= self.start_frame:
            raise ValueError(
                f"stop_frame ({self.stop_frame}) must be greater than start_frame "
                f"({self.start_frame})"
            )
        return self

    @property
    def n_frames(self) -> int:
        return self.stop_frame - self.start_frame

    def to_timespan(self, fps: float) -> TimeSpan:
        """The span in seconds: frame ``i`` starts at ``i / fps``, so the span covers
        ``[start_frame / fps, stop_frame / fps]``."""
        _check_fps(fps)
        return TimeSpan(
            start_s=self.start_frame / fps, end_s=self.stop_frame / fps, label=self.label
        )


class FrameBox(Frozen):
    """An annotated box on one frame, in pixels of the original frame."""

    frame_idx: int
    xyxy: tuple[float, float, float, float]
    label: str = ""

    @model_validator(mode="after")
    def _valid(self) -> FrameBox:
        if self.frame_idx < 0:
            raise ValueError(f"frame_idx ({self.frame_idx}) must be >= 0")
        x1, y1, x2, y2 = self.xyxy
        if not all(np.isfinite(self.xyxy)) or x2 <= x1 or y2 <= y1:
            raise ValueError(
                f"xyxy must be finite (x1, y1, x2, y2) with x2 > x1 and y2 > y1, got {self.xyxy}"
            )
        return self

    def to_box(self, fps: float) -> Box:
        """The box at the time of its frame (``frame_idx / fps``), with score 1."""
        _check_fps(fps)
        return Box(t_s=self.frame_idx / fps, xyxy=self.xyxy, label=self.label, score=1.0)


class TimedText(Frozen):
    """A reference text about part of a video (a UCA sentence, a HIVAU event or clip caption),
    in seconds; ``level`` names its granularity (``sentence``, ``clip``, ``event``)."""

    start_s: float
    end_s: float
    text: str
    level: str = "sentence"

    @model_validator(mode="after")
    def _ordered(self) -> TimedText:
        if not (np.isfinite(self.start_s) and np.isfinite(self.end_s)) or self.start_s < 0:
            raise ValueError(f"start_s ({self.start_s}) must be a finite number >= 0")
        if self.end_s < self.start_s:
            raise ValueError(f"end_s ({self.end_s}) must not be before start_s ({self.start_s})")
        return self


def _check_fps(fps: float | None) -> float:
    if fps is None or not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number to convert frames to seconds, got {fps}")
    return float(fps)


_UNSAFE_ID = re.compile(r"[/\\\x00]")

#: Ids name files (``results/<id>.json``, ``.<id>.json.<random>.tmp``, ``locks/<id>.lock``), and
#: file systems allow 255 bytes per name, so an id is at most this many bytes of UTF-8.
MAX_VIDEO_ID_BYTES = 200


def bounded_id(name: str) -> str:
    """``name`` if it fits ``MAX_VIDEO_ID_BYTES``, else its start plus a hash of the whole, so
    that long file names still give distinct, stable ids."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= MAX_VIDEO_ID_BYTES:
        return name
    digest = hashlib.blake2b(raw, digest_size=6).hexdigest()
    head = raw[: MAX_VIDEO_ID_BYTES - len(digest) - 1].decode("utf-8", "ignore")
    return f"{head}-{digest}"


class LabeledVideo(Frozen):
    """One video of a dataset with its ground truth.

    ``is_anomalous`` is None when the dataset carries no labels (a plain folder). Temporal ground
    truth is in ``frame_spans`` (frame indices, from official files) and/or ``spans`` (seconds,
    from a manifest); ShanghaiTech gives per-frame labels in an .npy file, read lazily from
    ``frame_labels_path`` by ``frame_labels``.
    """

    video_id: str = Field(description="unique within its dataset; safe as a file name")
    path: str = Field(description="absolute path of the video file (or frames folder)")
    dataset: str = Field(description="the dataset kind this video came from")
    category: str | None = Field(default=None, description="main class, e.g. 'Abuse' or 'Normal'")
    categories: list[str] = Field(default_factory=list, description="every class (multi-label)")
    is_anomalous: bool | None = None
    frame_spans: list[FrameSpan] = Field(default_factory=list)
    spans: list[TimeSpan] = Field(default_factory=list, description="spans given in seconds")
    frame_boxes: list[FrameBox] = Field(default_factory=list)
    boxes: list[Box] = Field(default_factory=list, description="boxes given in seconds")
    frame_labels_path: str | None = Field(
        default=None, description="a .npy of per-frame 0/1 labels (ShanghaiTech test_frame_mask)"
    )
    descriptions: list[str] = Field(
        default_factory=list, description="reference texts of what happens, for caption metrics"
    )
    timed_descriptions: list[TimedText] = Field(
        default_factory=list,
        description="time-stamped reference texts (UCA sentences, HIVAU events and clips)",
    )
    fps: float | None = Field(
        default=None, description="frame rate of a frame folder, by the dataset's convention"
    )
    fps_source: str | None = Field(default=None, description="where ``fps`` comes from")

    @field_validator("video_id")
    @classmethod
    def _safe_id(cls, v: str) -> str:
        if not v or v in {".", ".."} or v.startswith(".") or _UNSAFE_ID.search(v):
            raise ValueError(
                f"video_id must be a non-empty file name without '/', '\\' or a leading '.', got {v!r}"
            )
        size = len(v.encode("utf-8", "surrogateescape"))
        if size > MAX_VIDEO_ID_BYTES:
            raise ValueError(
                f"video_id {v[:40]!r}… is {size} bytes long; ids name files, so at most "
                f"{MAX_VIDEO_ID_BYTES}"
            )
        return v

    @model_validator(mode="after")
    def _consistent(self) -> LabeledVideo:
        has_temporal = bool(self.frame_spans or self.spans)
        if self.is_anomalous is False and has_temporal:
            raise ValueError(f"{self.video_id}: a normal video cannot have anomaly spans")
        if self.is_anomalous is None and (has_temporal or self.frame_labels_path):
            raise ValueError(f"{self.video_id}: spans or frame labels need is_anomalous to be set")
        return self

    @property
    def has_temporal_labels(self) -> bool:
        """True when per-frame ground truth can be built for this video."""
        if self.is_anomalous is None:
            return False
        if self.is_anomalous is False:
            return True
        return bool(self.frame_spans or self.spans or self.frame_labels_path)

    def time_spans(self, fps: float | None = None) -> list[TimeSpan]:
        """Every anomaly span in seconds, ordered by start (frame spans need ``fps``)."""
        out = list(self.spans)
        if self.frame_spans:
            f = _check_fps(fps)
            out.extend(s.to_timespan(f) for s in self.frame_spans)
        if self.frame_labels_path and not self.frame_spans and not self.spans:
            f = _check_fps(fps)
            out.extend(s.to_timespan(f) for s in spans_from_labels(self.frame_labels()))
        return sorted(out, key=lambda s: (s.start_s, s.end_s))

    def time_boxes(self, fps: float | None = None) -> list[Box]:
        """Every annotated box with its time in seconds (frame boxes need ``fps``)."""
        out = list(self.boxes)
        if self.frame_boxes:
            f = _check_fps(fps)
            out.extend(b.to_box(f) for b in self.frame_boxes)
        return sorted(out, key=lambda b: b.t_s)

    def frame_labels(self, frame_count: int | None = None, fps: float | None = None) -> np.ndarray:
        """Per-frame 0/1 ground truth (uint8).

        Args:
            frame_count: how many frames to label; required unless the labels come from an .npy
                file, whose own length is used when this is None. An .npy of another length is
                cut or padded with zeros to ``frame_count`` (logged).
            fps: frame rate, needed only for spans given in seconds; frame ``i`` is anomalous
                when ``start_s <= i / fps < end_s``.

        Returns:
            An array of 0/1 of length ``frame_count`` (or the .npy's length).

        Raises:
            DatasetError: the video has no labels, is anomalous without temporal annotation, or
                its .npy file is not a 1-D 0/1 array.
        """
        if self.is_anomalous is None:
            raise DatasetError(f"{self.video_id} has no labels (dataset {self.dataset})")
        if self.frame_labels_path:
            mask = load_frame_mask(Path(self.frame_labels_path))
            if frame_count is None or frame_count == mask.size:
                return mask
            logger.warning(
                "%s: %s has %d labels but the video has %d frames; %s",
                self.video_id,
                self.frame_labels_path,
                mask.size,
                frame_count,
                "cutting" if mask.size > frame_count else "padding with zeros",
            )
            out = np.zeros(frame_count, dtype=np.uint8)
            n = min(frame_count, mask.size)
            out[:n] = mask[:n]
            return out
        if frame_count is None:
            raise ValueError(f"{self.video_id}: frame_count is needed to build frame labels")
        if frame_count < 0:
            raise ValueError(f"frame_count must be >= 0, got {frame_count}")
        labels = np.zeros(frame_count, dtype=np.uint8)
        if self.is_anomalous and not (self.frame_spans or self.spans):
            raise DatasetError(
                f"{self.video_id} is labelled anomalous but has no temporal annotation, so it "
                "has no frame labels"
            )
        for span in self.frame_spans:
            labels[span.start_frame : min(span.stop_frame, frame_count)] = 1
        if self.spans:
            f = _check_fps(fps)
            t = np.arange(frame_count) / f
            for ts in self.spans:
                labels[(t >= ts.start_s) & (t < ts.end_s)] = 1
        return labels


class DatasetSpec(BaseModel):
    """How to load a dataset again: what ``run.json`` stores under ``"dataset"``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: str
    root: str
    annotations: str | None = None
    options: dict[str, OptionValue] = Field(default_factory=dict)


class Dataset(Frozen):
    """The videos of a dataset, in a stable order; iterate it to get ``LabeledVideo`` items."""

    kind: str
    root: str
    annotations: str | None = Field(default=None, description="the annotation file that was read")
    options: dict[str, OptionValue] = Field(default_factory=dict)
    split: str | None = Field(
        default=None, description="the official split these videos are (test, validation, ...)"
    )
    videos: list[LabeledVideo]
    missing: list[str] = Field(
        default_factory=list,
        description="videos named by the annotations but not found (only with allow_missing)",
    )

    @model_validator(mode="after")
    def _unique(self) -> Dataset:
        seen: set[str] = set()
        for v in self.videos:
            if v.video_id in seen:
                raise ValueError(f"video_id {v.video_id!r} appears twice in the dataset")
            seen.add(v.video_id)
        return self

    # Iterating a Dataset yields its videos (what a batch runner wants); pydantic's own
    # field iteration stays available through ``model_dump``.
    def __iter__(self) -> Iterator[LabeledVideo]:  # type: ignore[override]
        return iter(self.videos)

    def __len__(self) -> int:
        return len(self.videos)

    def get(self, video_id: str) -> LabeledVideo | None:
        """The video with this id, or None."""
        # A linear scan: a cached index would be private state that pydantic's equality compares.
        return next((v for v in self.videos if v.video_id == video_id), None)

    @property
    def spec(self) -> DatasetSpec:
        """What to store (e.g. in ``run.json``) to load this dataset again."""
        return DatasetSpec(
            kind=self.kind, root=self.root, annotations=self.annotations, options=self.options
        )

    def summary(self) -> str:
        """One line: how many videos, how many anomalous/normal/unlabelled."""
        n_abn = sum(1 for v in self.videos if v.is_anomalous)
        n_norm = sum(1 for v in self.videos if v.is_anomalous is False)
        n_unl = len(self.videos) - n_abn - n_norm
        extra = f", {len(self.missing)} missing" if self.missing else ""
        return (
            f"{self.kind}: {len(self.videos)} videos ({n_abn} anomalous, {n_norm} normal, "
            f"{n_unl} unlabelled{extra})"
        )


# ---------------------------------------------------------------------------------------------
# Helpers shared by the adapters


def dataset_error(path: Path | str, line_no: int | None, message: str) -> DatasetError:
    """A ``DatasetError`` that names the file (and line) at fault."""
    where = f"{path}:{line_no}" if line_no is not None else f"{path}"
    return DatasetError(f"{where}: {message}")


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines of a text file with their 1-based line numbers (whitespace stripped)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise DatasetError(f"annotation file not found: {path}") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not a UTF-8 text file ({exc.reason})") from exc
    return [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def parse_int(token: str, path: Path, line_no: int | None, what: str) -> int:
    """An integer token; integral floats such as ``"12.0"`` (numpy's savetxt) are accepted."""
    try:
        return int(token)
    except ValueError:
        pass
    try:
        value = float(token)
    except ValueError:
        raise dataset_error(path, line_no, f"{what} must be an integer, got {token!r}") from None
    if not value.is_integer():
        raise dataset_error(path, line_no, f"{what} must be an integer, got {token!r}")
    return int(value)


def resolve_missing(
    missing: list[str], allow_missing: bool, source: Path, what: str = "videos"
) -> list[str]:
    """Raise a ``DatasetError`` listing videos named by ``source`` but absent on disk, unless
    ``allow_missing`` (then log a warning and return them)."""
    if not missing:
        return []
    shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
    if not allow_missing:
        raise DatasetError(
            f"{len(missing)} {what} named in {source} were not found under the dataset root "
            f"({shown}); to go on with the rest, pass --allow-missing (allow_missing=True "
            "in Python)"
        )
    logger.warning("%d %s named in %s were not found: %s", len(missing), what, source, shown)
    return list(missing)


def load_frame_mask(path: Path) -> np.ndarray:
    """A 1-D 0/1 label array from an .npy file, read with ``allow_pickle=False``."""
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError as exc:
        raise DatasetError(f"frame label file not found: {path}") from exc
    except ValueError as exc:
        # numpy raises ValueError both for object arrays (pickles) and for garbage files.
        raise DatasetError(f"{path}: not a plain numeric .npy array ({exc})") from exc
    if not isinstance(arr, np.ndarray):  # an .npz archive
        raise DatasetError(f"{path}: expected one .npy array, got an archive")
    if arr.ndim != 1:
        raise DatasetError(f"{path}: frame labels must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise DatasetError(f"{path}: frame labels must be numeric, got dtype {arr.dtype}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        bad = arr[~np.isin(arr, (0, 1))][0]
        raise DatasetError(f"{path}: frame labels must be 0 or 1, found {bad.item()!r}")
    return arr.astype(np.uint8)


def spans_from_labels(labels: np.ndarray, label: str | None = None) -> list[FrameSpan]:
    """Runs of 1s in a 0/1 array as half-open frame spans."""
    x = np.concatenate([[0], np.asarray(labels, dtype=np.int8) != 0, [0]]).astype(np.int8)
    d = np.diff(x)
    starts = np.flatnonzero(d == 1)
    stops = np.flatnonzero(d == -1)
    return [
        FrameSpan(start_frame=int(a), stop_frame=int(b), label=label)
        for a, b in zip(starts, stops, strict=True)
    ]


def merge_frame_spans(spans: Iterable[FrameSpan]) -> list[FrameSpan]:
    """Overlapping or touching spans merged into one (labels dropped where spans merge)."""
    out: list[FrameSpan] = []
    for s in sorted(spans, key=lambda s: (s.start_frame, s.stop_frame)):
        if out and s.start_frame <= out[-1].stop_frame:
            last = out[-1]
            if s.stop_frame > last.stop_frame:
                out[-1] = FrameSpan(start_frame=last.start_frame, stop_frame=s.stop_frame)
        else:
            out.append(s)
    return out


def options_of(**kw: Any) -> dict[str, OptionValue]:
    """The adapter options worth recording in a ``DatasetSpec`` (non-default, JSON scalars)."""
    out: dict[str, OptionValue] = {}
    for k, v in kw.items():
        if v is None or v is False:
            continue
        out[k] = str(v) if isinstance(v, Path) else v
    return out
