"""Quality of the classical profile on a fixed, seeded suite of generated scenes, for the
detective graph and the chain graph: frame AUC, span tIoU, box IoU and false alarms, per
anomaly kind and overall.

The suite is every kind in ``ANOMALY_KINDS`` plus ``normal``, seeds 0, 1 and 2, 20 s 480x270
15 fps scenes (``agent.synth.generate_scene``); its ``manifest.jsonl`` carries the truth spans and
boxes. Each graph runs over it with ``run_dataset`` (classical profile: motion scorer, motion
grounder, measuring inspector, rule planner; the default question), and is scored by
``agent.evaluate.evaluate_run`` (the field's protocols: pooled frame AUC, AP, span mAP, box
TIoU...) plus these per-video measures:

- ``detected``: anomalous scenes the verdict calls anomalous;
- ``span_tiou``: tIoU of the union of the verdict's spans with the truth span (0 when the
  verdict is "not anomalous" or has no span), averaged over anomalous scenes;
- ``box_iou``: IoU of the verdict's first box with the truth box at the nearest time (0 when
  there is no box), averaged over anomalous scenes; ``box_dt_s`` is that time gap (median);
- ``frame_auc`` per kind: pooled over that kind's scenes and every normal scene
  (``per_class_auc``); overall: pooled over every scene;
- ``false_alarms``: normal scenes called anomalous; ``far_normal``: share of their frames
  scored above 0.5.

    python -m bench.quality                   # the full suite (24 scenes, both graphs)
    python -m bench.quality --quick           # sprint, fall, normal; seed 0; 8 s scenes
    python -m bench.quality --suite-dir /tmp/suite --workers 2 --out quality.json

The JSON goes to stdout (and to ``--out``); a short table goes to stderr.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import (
    QUICK_KINDS,
    Stopwatch,
    base_parser,
    emit,
    format_table,
    fresh_cache,
    machine_info,
    make_suite,
    mean_or_none,
    rounded,
    union_tiou,
)
from vadetective.agent.core.types import Box, Verdict
from vadetective.agent.synth.truth import ANOMALY_KINDS, SceneTruth

log = logging.getLogger(__name__)

GRAPHS = ("detective", "chain")


def box_vs_truth(verdict: Verdict, truth: SceneTruth) -> tuple[float, float | None]:
    """(IoU, |dt| s) of the verdict's first box against the truth box nearest in time;
    (0, None) when either side has no box."""
    if not verdict.boxes or not truth.boxes:
        return 0.0, None
    pred = verdict.boxes[0]
    nearest: Box = min(truth.boxes, key=lambda b: abs(b.t_s - pred.t_s))
    return pred.iou(nearest), abs(nearest.t_s - pred.t_s)


def per_video(verdict: Verdict, truth: SceneTruth) -> dict[str, Any]:
    flagged = verdict.is_anomalous is True
    row: dict[str, Any] = {
        "video": Path(truth.video_path).stem,
        "kind": truth.kind,
        "is_anomalous": verdict.is_anomalous,
        "category": verdict.category,
        "forced": verdict.forced,
        "spans": [[round(s.start_s, 3), round(s.end_s, 3)] for s in verdict.spans],
    }
    if truth.kind != "normal":
        iou, dt = box_vs_truth(verdict, truth) if flagged else (0.0, None)
        row.update(
            truth_span=[[round(s.start_s, 3), round(s.end_s, 3)] for s in truth.spans],
            span_tiou=round(union_tiou(verdict.spans if flagged else [], truth.spans), 4),
            box_iou=round(iou, 4),
            box_dt_s=None if dt is None else round(dt, 3),
        )
    return row


def summarize_kind(rows: Sequence[dict[str, Any]], auc: float | None) -> dict[str, Any]:
    anomalous = [r for r in rows if r["kind"] != "normal"]
    normal = [r for r in rows if r["kind"] == "normal"]
    out: dict[str, Any] = {"videos": len(rows), "frame_auc": rounded(auc)}
    if anomalous:
        dts = [r["box_dt_s"] for r in anomalous if r["box_dt_s"] is not None]
        out.update(
            detected=f"{sum(1 for r in anomalous if r['is_anomalous'])}/{len(anomalous)}",
            span_tiou=rounded(mean_or_none([r["span_tiou"] for r in anomalous])),
            box_iou=rounded(mean_or_none([r["box_iou"] for r in anomalous])),
            box_dt_s_median=rounded(float(np.median(dts)) if dts else None, 3),
        )
    if normal:
        out["false_alarms"] = f"{sum(1 for r in normal if r['is_anomalous'])}/{len(normal)}"
    return out


def run_graph(
    graph: str, manifest: Path, out: Path, truths: dict[str, SceneTruth], workers: int
) -> dict[str, Any]:
    """Run one graph over the suite and score it."""
    from vadetective.agent.batch.runner import run_dataset
    from vadetective.agent.eval.evaluate import evaluate_run, read_results

    with Stopwatch() as sw:
        summary = run_dataset(manifest, out, profile="classical", graph=graph, workers=workers)
    metrics = evaluate_run(out)
    results = {r.video_id: r for r in read_results(out)}
    rows = [
        per_video(results[vid].verdict, truths[vid]) for vid in sorted(truths) if vid in results
    ]
    by_kind: dict[str, Any] = {}
    for kind in [*ANOMALY_KINDS, "normal"]:
        group = [r for r in rows if r["kind"] == kind]
        if group:
            auc = metrics.per_class_auc.get(kind) if kind != "normal" else None
            by_kind[kind] = summarize_kind(group, auc)
    overall = summarize_kind(rows, metrics.frame_auc)
    overall.update(
        frame_ap=rounded(metrics.frame_ap),
        far_normal=rounded(metrics.far_normal),
        video_accuracy=rounded(metrics.video_accuracy),
        span_map=rounded(metrics.span_map),
        box_mean_iou_protocol=rounded(metrics.box_mean_iou),
        box_tiou_protocol=rounded(metrics.box_tiou),
        box_annotated=metrics.box_annotated,
    )
    planner_calls = [results[v].cost.planner_calls for v in results]
    return {
        "graph": graph,
        "done": summary.done,
        "failed": summary.failed,
        "seconds": rounded(sw.seconds, 2),
        "mean_planner_calls": rounded(mean_or_none(planner_calls), 2),
        "overall": overall,
        "per_kind": by_kind,
        "protocol": {
            "smoothing": metrics.smoothing,
            "expansion": metrics.protocol.expansion,
            "notes": metrics.notes,
        },
        "videos": rows,
    }


def run(
    kinds: Sequence[str],
    seeds: Sequence[int],
    duration_s: float,
    suite_dir: Path,
    work: Path,
    workers: int,
) -> dict[str, Any]:
    with Stopwatch() as sw_gen:
        truth_list = make_suite(suite_dir, kinds, seeds, duration_s)
    truths = {Path(t.video_path).stem: t for t in truth_list}
    with fresh_cache():  # a shared cache for both graphs, never one left by an earlier run
        graphs = [
            run_graph(g, suite_dir / "manifest.jsonl", work / g, truths, workers) for g in GRAPHS
        ]
    return {
        "benchmark": "quality",
        "machine": machine_info(),
        "measured": "classical profile (motion scorer, motion grounder, measuring inspector, rule planner), default question",
        "suite": {
            "kinds": list(kinds),
            "seeds": list(seeds),
            "duration_s": duration_s,
            "resolution_wh": [480, 270],
            "fps": 15.0,
            "videos": len(truth_list),
            "generate_s": rounded(sw_gen.seconds, 2),
        },
        "workers": workers,
        "definitions": {
            "span_tiou": "tIoU of the union of the verdict's spans with the truth span; 0 when not flagged",
            "box_iou": "IoU of the verdict's first box with the truth box nearest in time; 0 when none",
            "frame_auc_per_kind": "pooled over the kind's scenes plus every normal scene",
            "box_tiou_protocol": "agent.metrics.box_scores over every annotated truth box (UCF-style TIoU, 0.5 s tolerance)",
        },
        "graphs": graphs,
    }


def table(report: dict[str, Any]) -> str:
    cols = ["graph", "kind", "detected", "frame AUC", "span tIoU", "box IoU", "false alarms"]
    rows: list[list[Any]] = []
    for g in report["graphs"]:
        for kind, m in [*g["per_kind"].items(), ("OVERALL", g["overall"])]:
            rows.append(
                [
                    g["graph"],
                    kind,
                    m.get("detected"),
                    m.get("frame_auc"),
                    m.get("span_tiou"),
                    m.get("box_iou"),
                    m.get("false_alarms"),
                ]
            )
    s = report["suite"]
    head = f"{s['videos']} scenes ({s['duration_s']:g} s, seeds {s['seeds']})"
    return head + "\n" + format_table(cols, rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser("python -m bench.quality", __doc__)
    parser.add_argument(
        "--seeds", default=None, help="comma-separated scene seeds (default 0,1,2; --quick 0)"
    )
    parser.add_argument(
        "--duration", type=float, default=None, help="scene length in seconds (default 20)"
    )
    parser.add_argument("--workers", type=int, default=1, help="run_dataset worker processes")
    parser.add_argument(
        "--suite-dir", type=Path, default=None, help="keep (and reuse) the generated scenes here"
    )
    args = parser.parse_args(argv)
    kinds = list(QUICK_KINDS) if args.quick else [*ANOMALY_KINDS, "normal"]
    seeds = [int(x) for x in (args.seeds or ("0" if args.quick else "0,1,2")).split(",")]
    duration = args.duration or (8.0 if args.quick else 20.0)
    with tempfile.TemporaryDirectory(prefix="vadetective-bench-quality-") as tmp:
        suite_dir = args.suite_dir or Path(tmp) / "suite"
        report = run(kinds, seeds, duration, suite_dir, Path(tmp) / "runs", args.workers)
    report["quick"] = args.quick
    emit(report, args.out, table(report))
    return 0 if all(g["failed"] == 0 for g in report["graphs"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
