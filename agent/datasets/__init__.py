"""Dataset adapters: the official files of UCF-Crime, XD-Violence, ShanghaiTech and UBnormal,
a generic manifest, and a plain folder, each read into a ``Dataset`` of ``LabeledVideo``.

>>> ds = load_dataset("ucf-crime", "/data/UCF_Crimes/Videos")  # doctest: +SKIP
>>> for video in ds: ...  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vadetective.agent.core.errors import DatasetError
from vadetective.agent.datasets.base import (
    DATASET_KINDS,
    VIDEO_EXTENSIONS,
    Dataset,
    DatasetSpec,
    FrameBox,
    FrameSpan,
    LabeledVideo,
    OptionValue,
)
from vadetective.agent.datasets.manifest import load_folder, load_manifest
from vadetective.agent.datasets.shanghaitech import load_shanghaitech
from vadetective.agent.datasets.ubnormal import load_ubnormal
from vadetective.agent.datasets.ucf_crime import load_ucf_crime
from vadetective.agent.datasets.xd_violence import load_xd_violence

__all__ = [
    "DATASET_KINDS",
    "VIDEO_EXTENSIONS",
    "Dataset",
    "DatasetSpec",
    "FrameBox",
    "FrameSpan",
    "LabeledVideo",
    "load_dataset",
    "load_folder",
    "load_manifest",
    "load_shanghaitech",
    "load_spec",
    "load_ubnormal",
    "load_ucf_crime",
    "load_xd_violence",
]

_LOADERS: dict[str, Callable[..., Dataset]] = {
    "ucf-crime": load_ucf_crime,
    "xd-violence": load_xd_violence,
    "shanghaitech": load_shanghaitech,
    "ubnormal": load_ubnormal,
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
        kind: one of ``ucf-crime``, ``xd-violence``, ``shanghaitech``, ``ubnormal``, ``manifest``,
            ``folder`` (``ucf_crime`` and upper case are accepted too).
        root: the dataset folder (for ``manifest``, the manifest file or its folder).
        annotations: the official annotation file; without it each adapter looks for it under
            ``root`` (UCF-Crime ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt``,
            XD-Violence ``annotations.txt``, ShanghaiTech ``test_frame_mask/``, UBnormal
            ``*_test_video_names.txt``, ``manifest.jsonl``/``manifest.csv``).
        **options: adapter options: ``allow_missing`` (all but folder), ``boxes``
            (ucf-crime: the ``Test_annotation.pkl`` path), ``split`` (ubnormal).

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


def load_spec(spec: DatasetSpec) -> Dataset:
    """Load the dataset a ``DatasetSpec`` (e.g. from ``run.json``) describes."""
    return load_dataset(spec.kind, spec.root, spec.annotations, **spec.options)
