"""Two runs side by side: their metrics, what changed per video, and the configuration and
prompt differences that may explain it.

Each run's metrics come from its ``metrics.json``, else they are computed from its results
and recorded dataset (nothing is written). Videos are matched by id; a video whose outcome
flips (a miss becomes a hit, a false alarm appears) is listed before mere score changes.
Secrets (API keys) and machine-local paths never enter a comparison.
"""

from __future__ import annotations

import difflib
import json
import logging
from pathlib import Path
from typing import Any

from pydantic import Field

from vadetective.agent.core.errors import VadetectiveError
from vadetective.agent.core.types import Frozen
from vadetective.agent.core.vocabulary import RunFolder
from vadetective.agent.datasets import Dataset
from vadetective.agent.eval.evaluate import Metrics, evaluate_run
from vadetective.agent.eval.runs import (
    VideoRow,
    dataset_from_run,
    read_record,
    read_results,
    redact,
    video_rows,
)

logger = logging.getLogger(__name__)

#: (field of Metrics, label, lower is better)
METRICS: tuple[tuple[str, str, bool], ...] = (
    ("frame_auc", "frame AUC", False),
    ("frame_ap", "frame AP", False),
    ("frame_ap_sklearn", "frame AP (sklearn)", False),
    ("macro_auc", "macro AUC", False),
    ("auc_abnormal_only", "AUC abnormal only", False),
    ("far_normal", "FAR normal", True),
    ("video_accuracy", "video accuracy", False),
    ("span_map", "span mAP", False),
    ("box_tiou", "box TIoU", False),
    ("box_mean_iou", "box mean IoU", False),
)
#: Record entries that differ between any two runs and explain nothing.
_IGNORED = ("started_at", "config.cache_dir", "config.server.api_key")


class MetricDiff(Frozen):
    """One metric in both runs (fractions in [0, 1]; None where undefined)."""

    key: str
    label: str
    a: float | None
    b: float | None
    lower_is_better: bool = False

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def better(self) -> bool | None:
        """True when run B is better, False when worse, None when equal or undefined."""
        d = self.delta
        if d is None or abs(d) < 1e-12:
            return None
        return (d < 0) if self.lower_is_better else (d > 0)


class VideoDiff(Frozen):
    """One video in both runs."""

    video_id: str
    a: VideoRow | None
    b: VideoRow | None

    @property
    def score_delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b.score - self.a.score

    @property
    def flipped(self) -> bool:
        return self.a is not None and self.b is not None and self.a.outcome != self.b.outcome


class ConfigDiff(Frozen):
    """One setting that differs (values as JSON text; ``-`` when absent)."""

    key: str
    a: str
    b: str


class Comparison(Frozen):
    """Everything ``vadetective compare`` shows."""

    name_a: str
    name_b: str
    metrics: list[MetricDiff]
    videos: list[VideoDiff]
    config: list[ConfigDiff]
    prompts: dict[str, str] = Field(default_factory=dict, description="unified diff per prompt")
    cost: dict[str, tuple[float, float]] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)


def _metrics(run_dir: Path, dataset: Dataset | None) -> Metrics | None:
    path = run_dir / RunFolder.METRICS
    if path.is_file():
        return Metrics.load(path)
    if dataset is None:
        return None
    try:
        return evaluate_run(run_dir, dataset, write=False)
    except VadetectiveError as exc:
        logger.warning("no metrics for %s: %s", run_dir, exc)
        return None


def _dataset(run_dir: Path) -> Dataset | None:
    try:
        return dataset_from_run(run_dir)
    except VadetectiveError as exc:
        logger.warning("no ground truth for %s: %s", run_dir, exc)
        return None


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``{"a.b.c": leaf}`` (lists stay leaves)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): value}


def _settings(record: dict[str, Any]) -> dict[str, Any]:
    prov = record.get("provenance") or {}
    keep = {
        "profile": record.get("profile"),
        "graph": record.get("graph"),
        "question": record.get("question"),
        "dataset": record.get("dataset"),
        "config": record.get("config"),
        "models": record.get("models"),
        "model_revisions": prov.get("model_revisions"),
        "packages": prov.get("packages") or record.get("versions"),
    }
    flat = flatten(redact(keep))
    return {k: v for k, v in flat.items() if not any(k.startswith(i) for i in _IGNORED)}


def config_diff(rec_a: dict[str, Any], rec_b: dict[str, Any]) -> list[ConfigDiff]:
    """Every setting, model revision and package version that differs."""
    a, b = _settings(rec_a), _settings(rec_b)
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if va != vb:
            out.append(
                ConfigDiff(
                    key=key,
                    a="-" if key not in a else json.dumps(va, ensure_ascii=False),
                    b="-" if key not in b else json.dumps(vb, ensure_ascii=False),
                )
            )
    return out


def prompt_diff(
    rec_a: dict[str, Any], rec_b: dict[str, Any], names: tuple[str, str]
) -> dict[str, str]:
    """A unified diff per prompt that differs (the prompt bank as indented JSON)."""
    pa, pb = rec_a.get("prompts") or {}, rec_b.get("prompts") or {}

    def text(v: Any) -> list[str]:
        s = v if isinstance(v, str) else json.dumps(v, indent=1, ensure_ascii=False, sort_keys=True)
        return s.splitlines()

    out = {}
    for key in sorted(set(pa) | set(pb)):
        la, lb = text(pa.get(key, "")), text(pb.get(key, ""))
        if la != lb:
            diff = difflib.unified_diff(la, lb, names[0], names[1], n=2, lineterm="")
            out[key] = "\n".join(diff)
    return out


def _mean(rows: list[VideoRow], attr: str) -> float:
    return sum(float(getattr(r, attr)) for r in rows) / len(rows) if rows else 0.0


def compare_runs(run_a: str | Path, run_b: str | Path) -> Comparison:
    """Compare two batch run folders (see the module docstring).

    Raises:
        RunFormatError: a folder is not a run folder (no ``results/``) or holds a bad result.
    """
    a_dir, b_dir = Path(run_a), Path(run_b)
    name_a, name_b = a_dir.name or str(a_dir), b_dir.name or str(b_dir)
    if name_a == name_b:
        name_a, name_b = str(a_dir), str(b_dir)
    res_a, res_b = read_results(a_dir), read_results(b_dir)
    rec_a, rec_b = read_record(a_dir), read_record(b_dir)
    ds_a, ds_b = _dataset(a_dir), _dataset(b_dir)
    m_a, m_b = _metrics(a_dir, ds_a), _metrics(b_dir, ds_b)
    rows_a = {r.video_id: r for r in video_rows(res_a, ds_a)}
    rows_b = {r.video_id: r for r in video_rows(res_b, ds_b)}
    warnings = []
    kinds = ((rec_a.get("dataset") or {}).get("kind"), (rec_b.get("dataset") or {}).get("kind"))
    if kinds[0] != kinds[1]:
        warnings.append(f"the runs are over different datasets ({kinds[0]} and {kinds[1]})")
    splits = (m_a.dataset_split if m_a else None, m_b.dataset_split if m_b else None)
    if splits[0] != splits[1]:
        warnings.append(f"the runs are over different splits ({splits[0]} and {splits[1]})")
    only = set(rows_a) ^ set(rows_b)
    if only:
        warnings.append(f"{len(only)} videos have a result in only one of the runs")
    for name, m in ((name_a, m_a), (name_b, m_b)):
        warnings += [f"{name}: {w}" for w in (m.warnings if m else [])]
    videos = [
        VideoDiff(video_id=v, a=rows_a.get(v), b=rows_b.get(v)) for v in set(rows_a) | set(rows_b)
    ]
    videos.sort(key=lambda d: (not d.flipped, -abs(d.score_delta or 0.0), d.video_id))
    common_a = [rows_a[v] for v in rows_a if v in rows_b]
    common_b = [rows_b[v] for v in rows_b if v in rows_a]
    return Comparison(
        name_a=name_a,
        name_b=name_b,
        metrics=[
            MetricDiff(
                key=key,
                label=label,
                a=getattr(m_a, key) if m_a else None,
                b=getattr(m_b, key) if m_b else None,
                lower_is_better=lower,
            )
            for key, label, lower in METRICS
        ],
        videos=videos,
        config=config_diff(rec_a, rec_b),
        prompts=prompt_diff(rec_a, rec_b, (name_a, name_b)),
        cost={
            "seconds per video": (_mean(common_a, "seconds"), _mean(common_b, "seconds")),
            "frames decoded per video": (
                _mean(common_a, "frames_decoded"),
                _mean(common_b, "frames_decoded"),
            ),
        },
        warnings=warnings,
    )
