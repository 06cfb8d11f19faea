"""A batch run folder as data: its record, its results, one row per video, and the checks that
say whether its numbers can be trusted (mixed configurations, mixed package versions).

Result file contract (written by the batch runner)::

    {"video_id": str, "path": str, "verdict": <Verdict>, "video": <VideoInfo>,
     "timing_s": float, "cost": <Cost>, "models": {...}, "provenance": {"config_sha": ...}}

The run page (``agent.report.run_page``) and the comparison of two runs (``agent.eval.compare``)
are built from these.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vadetective.agent.core.errors import VadetectiveError
from vadetective.agent.core.io import loads_json
from vadetective.agent.core.types import Cost, Frozen, Verdict, VideoInfo
from vadetective.agent.core.vocabulary import RunFolder
from vadetective.agent.datasets import Dataset, DatasetSpec, load_spec

logger = logging.getLogger(__name__)


class RunFormatError(VadetectiveError):
    """A run folder's ``run.json`` or a result file is missing or malformed."""


class RunResult(BaseModel):
    """One ``results/<video_id>.json`` file of a batch run."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    video_id: str
    path: str
    verdict: Verdict
    video: VideoInfo
    timing_s: float = 0.0
    cost: Cost = Field(default_factory=Cost)
    models: dict[str, str] = Field(default_factory=dict)
    provenance: dict[str, str] = Field(
        default_factory=dict, description="config_sha and packages_sha of the run that wrote it"
    )


def read_results(run_dir: str | Path) -> list[RunResult]:
    """Every ``results/<video_id>.json`` of a run folder, sorted by video id.

    Raises:
        RunFormatError: no results folder, or a file that is not a valid result (named).
    """
    folder = Path(run_dir) / RunFolder.RESULTS
    if not folder.is_dir():
        raise RunFormatError(f"no results/ folder in {run_dir}: is it a batch run folder?")
    out: list[RunResult] = []
    for p in sorted(folder.glob("*.json")):
        try:
            r = RunResult.model_validate_json(p.read_text(encoding="utf-8"))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            raise RunFormatError(f"{p} is not a valid result file: {loc}: {err['msg']}") from exc
        if r.video_id != p.stem:
            raise RunFormatError(f"{p} holds video_id {r.video_id!r}, not {p.stem!r}")
        out.append(r)
    return out


def dataset_from_run(run_dir: Path) -> Dataset:
    path = run_dir / RunFolder.RUN
    try:
        data = loads_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RunFormatError(
            f"no run.json in {run_dir}: pass the dataset to evaluate against"
        ) from exc
    except json.JSONDecodeError as exc:
        raise RunFormatError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    spec = data.get("dataset") if isinstance(data, dict) else None
    if not spec:
        raise RunFormatError(f"{path} names no dataset: pass the dataset to evaluate against")
    try:
        return load_spec(DatasetSpec.model_validate(spec))
    except ValidationError as exc:
        raise RunFormatError(
            f"{path}: 'dataset' must hold kind and root ({exc.errors()[0]['msg']})"
        ) from exc


Outcome = Literal["miss", "false alarm", "hit", "correct rejection", "undecided", "unlabelled"]


def read_record(run_dir: str | Path) -> dict[str, Any]:
    """``run.json`` as a dict; ``{}`` when it is missing or unreadable (logged)."""
    path = Path(run_dir) / RunFolder.RUN
    try:
        data = loads_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        logger.warning("cannot read %s: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def mixed_configurations(record: dict[str, Any], results: list[RunResult]) -> list[str]:
    """Sentences that say how the results of one run folder disagree about what made them.

    Results carry the fingerprint of their configuration (``provenance.config_sha``) and of
    their package versions; results written before fingerprints existed are compared by the
    models their traces name.
    """
    out: list[str] = []
    shas = Counter(r.provenance.get("config_sha") for r in results if r.provenance)
    if len(shas) > 1:
        parts = ", ".join(f"{sha}: {n} videos" for sha, n in shas.most_common())
        out.append(f"results in this run folder mix {len(shas)} configurations ({parts})")
    run_sha = (record.get("provenance") or {}).get("config_sha")
    if run_sha and len(shas) == 1 and run_sha not in shas:
        out.append(
            f"every result was written by another configuration ({next(iter(shas))}) than "
            f"run.json records ({run_sha})"
        )
    packages = Counter(r.provenance.get("packages_sha") for r in results if r.provenance)
    if len(packages) > 1:
        out.append(
            f"results were written with {len(packages)} different sets of package versions "
            "(the run was resumed after an upgrade?)"
        )
    legacy = [r for r in results if not r.provenance]
    if legacy and len(shas) + len(legacy) > 1:
        models = Counter(json.dumps(r.models, sort_keys=True) for r in results)
        if len(models) > 1:
            out.append(f"results name {len(models)} different sets of models")
        if shas:
            out.append(f"{len(legacy)} results carry no configuration fingerprint")
    return out


#: Keys whose values never reach a page or a comparison (they may hold credentials).
SECRET_KEYS = frozenset({"api_key", "token", "password", "secret", "authorization"})


def redact(value: Any) -> Any:
    """``value`` with every secret-looking key's value replaced by ``"***"``."""
    if isinstance(value, dict):
        return {
            k: ("***" if str(k).lower() in SECRET_KEYS and v else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def video_score(verdict: Verdict) -> float:
    """One anomaly score per video: the peak of its frame scores, else its confidence."""
    if verdict.frame_scores is not None and len(verdict.frame_scores) > 0:
        return float(max(verdict.frame_scores.score))
    if verdict.is_anomalous is None:
        return 0.5
    return verdict.confidence if verdict.is_anomalous else 1.0 - verdict.confidence


class VideoRow(Frozen):
    """One video of a run, as the run page and comparisons show it."""

    video_id: str
    truth: bool | None = Field(description="ground truth: anomalous, normal, or unknown")
    category: str | None = None
    predicted: bool | None = None
    predicted_category: str | None = None
    score: float = Field(description="peak frame score (or confidence) in [0, 1]")
    outcome: Outcome
    spans: list[tuple[float, float]] = Field(default_factory=list)
    truth_spans: list[tuple[float, float]] = Field(default_factory=list)
    peak_t_s: float | None = None
    justification: str = ""
    seconds: float = 0.0
    frames_decoded: int = 0
    duration_s: float = 0.0
    fps: float = 0.0
    fps_source: str | None = None
    forced: bool = False

    @property
    def badness(self) -> float:
        """How wrong the video's score is: high for a confident miss or false alarm."""
        if self.truth is None:
            return 0.0
        return 1.0 - self.score if self.truth else self.score


def _outcome(truth: bool | None, predicted: bool | None) -> Outcome:
    if truth is None:
        return "unlabelled"
    if predicted is None:
        return "undecided"
    if truth:
        return "hit" if predicted else "miss"
    return "false alarm" if predicted else "correct rejection"


def _peak(verdict: Verdict) -> float | None:
    curve = verdict.frame_scores
    if curve is None or len(curve) == 0:
        return verdict.spans[0].start_s if verdict.spans else None
    i = max(range(len(curve.score)), key=curve.score.__getitem__)
    return float(curve.t_s[i])


def video_rows(results: list[RunResult], dataset: Dataset | None) -> list[VideoRow]:
    """One row per result, with its ground truth when the dataset knows the video."""
    rows: list[VideoRow] = []
    for r in results:
        gt = dataset.get(r.video_id) if dataset is not None else None
        v = r.verdict
        truth = gt.is_anomalous if gt is not None else None
        truth_spans: list[tuple[float, float]] = []
        if gt is not None and gt.is_anomalous:
            try:
                truth_spans = [(s.start_s, s.end_s) for s in gt.time_spans(r.video.fps)]
            except ValueError:  # labels that need a frame count (a mask) without spans
                truth_spans = []
        rows.append(
            VideoRow(
                video_id=r.video_id,
                truth=truth,
                category=gt.category if gt is not None else None,
                predicted=v.is_anomalous,
                predicted_category=v.category,
                score=video_score(v),
                outcome=_outcome(truth, v.is_anomalous),
                spans=[(s.start_s, s.end_s) for s in v.spans],
                truth_spans=truth_spans,
                peak_t_s=_peak(v),
                justification=v.justification or v.answer,
                seconds=r.timing_s,
                frames_decoded=r.cost.frames_decoded,
                duration_s=r.video.duration_s,
                fps=r.video.fps,
                fps_source=r.video.fps_source,
                forced=v.forced,
            )
        )
    return rows


def worst(rows: list[VideoRow], outcome: Outcome, n: int = 10) -> list[VideoRow]:
    """The ``n`` most confident misses or false alarms, worst first."""
    return sorted((r for r in rows if r.outcome == outcome), key=lambda r: -r.badness)[:n]
