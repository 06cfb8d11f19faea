"""Dataset adapters: the official files of UCF-Crime, XD-Violence, ShanghaiTech, UBnormal,
UCSD Ped1/Ped2, CUHK Avenue, MSAD, NWPU Campus, the UCA and HIVAU-70k text annotations, a
generic manifest, and a plain folder, each read into a ``Dataset`` of ``LabeledVideo``.

>>> ds = load_dataset("ucf-crime", "/data/UCF_Crimes/Videos")  # doctest: +SKIP
>>> for video in ds: ...  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.datasets.avenue import load_avenue
from vadetective.agent.datasets.base import (
    DATASET_KINDS,
    VIDEO_EXTENSIONS,
    Dataset,
    DatasetSpec,
    FrameBox,
    FrameSpan,
    LabeledVideo,
    OptionValue,
    TimedText,
)
from vadetective.agent.datasets.hivau import load_hivau
from vadetective.agent.datasets.manifest import load_folder, load_manifest
from vadetective.agent.datasets.msad import load_msad
from vadetective.agent.datasets.nwpu import load_nwpu_campus
from vadetective.agent.datasets.shanghaitech import load_shanghaitech
from vadetective.agent.datasets.ubnormal import load_ubnormal
from vadetective.agent.datasets.uca import load_uca
from vadetective.agent.datasets.ucf_crime import load_ucf_crime
from vadetective.agent.datasets.ucsd import load_ucsd, load_ucsd_ped1, load_ucsd_ped2
from vadetective.agent.datasets.xd_violence import load_xd_violence

__all__ = [
    "DATASET_KINDS",
    "VIDEO_EXTENSIONS",
    "Dataset",
    "DatasetSpec",
    "FrameBox",
    "FrameSpan",
    "LabeledVideo",
    "TimedText",
    "load_avenue",
    "load_dataset",
    "load_folder",
    "load_hivau",
    "load_manifest",
    "load_msad",
    "load_nwpu_campus",
    "load_shanghaitech",
    "load_spec",
    "load_ubnormal",
    "load_uca",
    "load_ucf_crime",
    "load_ucsd",
    "load_xd_violence",
    "with_frame_rate",
]

_LOADERS: dict[str, Callable[..., Dataset]] = {
    "ucf-crime": load_ucf_crime,
    "xd-violence": load_xd_violence,
    "shanghaitech": load_shanghaitech,
    "ubnormal": load_ubnormal,
    "ucsd-ped1": load_ucsd_ped1,
    "ucsd-ped2": load_ucsd_ped2,
    "avenue": load_avenue,
    "msad": load_msad,
    "nwpu-campus": load_nwpu_campus,
    "uca": load_uca,
    "hivau": load_hivau,
    "manifest": load_manifest,
    "folder": load_folder,
}


def load_dataset(
    kind: str,
    root: str | Path,
    annotations: str | Path | None = None,
    **options: OptionValue,
) -> Dataset:
    """Load a dataset by kind.

    Args:
        kind: one of ``DATASET_KINDS`` (``ucf-crime``, ``xd-violence``, ``shanghaitech``,
            ``ubnormal``, ``ucsd-ped1``, ``ucsd-ped2``, ``avenue``, ``msad``, ``nwpu-campus``,
            ``uca``, ``hivau``, ``manifest``, ``folder``; ``ucf_crime`` and upper case too).
        root: the dataset folder (for ``manifest``, the manifest file or its folder).
        annotations: the official annotation file; without it each adapter looks for it under
            ``root`` (UCF-Crime ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt``,
            XD-Violence ``annotations.txt``, ShanghaiTech ``test_frame_mask/``, UBnormal
            ``*_test_video_names.txt``, UCSD ``UCSDped<N>.m``, Avenue ``testing_label_mask/``,
            MSAD ``msad-i3d-test.list``, NWPU ``NWPU_Campus_gt.npz``, UCA
            ``UCFCrime_Test.json``, HIVAU ``*_database_test.json``,
            ``manifest.jsonl``/``manifest.csv``).
        **options: adapter options: ``allow_missing`` (all but folder), ``boxes``
            (ucf-crime: the ``Test_annotation.pkl`` path), ``split`` (ubnormal, uca), ``fps``
            (ucsd-*), ``gt`` (msad), ``temporal`` (uca).

    Returns:
        The dataset.

    Raises:
        DatasetError: an unknown kind or option, or a missing/malformed dataset.
    """
    key = kind.strip().lower().replace("_", "-")
    loader = _LOADERS.get(key)
    if loader is None:
        raise DatasetError(
            f"unknown dataset kind {kind!r}; expected one of {', '.join(DATASET_KINDS)}"
        )
    accepted = {
        name
        for name, p in inspect.signature(loader).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise DatasetError(
            f"dataset kind {key!r} takes no option {', '.join(unknown)}"
            + (f"; it takes {', '.join(sorted(accepted))}" if accepted else "")
        )
    kwargs: dict[str, Any] = dict(options)
    return loader(root, annotations, **kwargs)


def with_frame_rate(dataset: Dataset, fps: float, source: str = "--fps flag") -> Dataset:
    """The dataset with every video's frame-folder frame rate set to ``fps`` (video files
    keep their stream's rate: the frame source ignores it for them)."""
    if not fps > 0:
        raise DatasetError(f"fps must be a positive number of frames per second, got {fps}")
    videos = [v.model_copy(update={"fps": float(fps), "fps_source": source}) for v in dataset]
    return dataset.model_copy(update={"videos": videos})


def load_spec(spec: DatasetSpec) -> Dataset:
    """Load the dataset a ``DatasetSpec`` (e.g. from ``run.json``) describes."""
    return load_dataset(spec.kind, spec.root, spec.annotations, **spec.options)
