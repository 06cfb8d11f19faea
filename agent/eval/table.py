"""The metrics of a run as a rich table (for the CLI and notebooks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vadetective.agent.eval.evaluate import Metrics

if TYPE_CHECKING:
    from rich.table import Table


def _fmt(x: float | None, pct: bool = True) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.2f}" if pct else f"{x:.3f}"


def headline_rows(m: Metrics) -> list[tuple[str, float | None, str]]:
    """The headline metrics as (label, value in [0, 1] or None, what it is), in the order the
    CLI table and the run page show them."""
    p = m.protocol
    rows: list[tuple[str, float | None, str]] = [
        ("frame AUC", m.frame_auc, "ROC-AUC pooled over all frames of all videos (UCF-Crime)"),
        ("frame AP", m.frame_ap, "area under the PR curve (XD-Violence's official code)"),
        ("frame AP (sklearn)", m.frame_ap_sklearn, "average_precision_score"),
        ("macro AUC", m.macro_auc, f"mean per-video AUC ({p.macro_single_class} single-class)"),
        ("AUC abnormal only", m.auc_abnormal_only, "pooled over the anomalous videos"),
        ("FAR normal", m.far_normal, f"frames of normal videos scored > {p.far_threshold:g}"),
        ("video accuracy", m.video_accuracy, "is_anomalous right (undecided counts wrong)"),
        ("span mAP", m.span_map, "temporal detection, tIoU " + ", ".join(m.span_ap)),
    ]
    if m.box_annotated:
        rows += [
            ("box TIoU", m.box_tiou, f"{m.box_annotated} annotated boxes, confidence >= "
             f"{p.box_conf_threshold:g}"),
            ("box mean IoU", m.box_mean_iou, "best IoU per annotated box, any confidence"),
        ]  # fmt: skip
    return rows


def format_metrics_table(metrics: Metrics) -> Table:
    """A rich table of the metrics (percentages, ``-`` where undefined) with the protocol and
    counts as its caption."""
    from rich.table import Table

    m = metrics
    table = Table(title="vadetective evaluation", show_lines=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("about", style="dim")
    rows: list[tuple[str, str, str]] = [
        (label, _fmt(v), about) for label, v, about in headline_rows(m)
    ]
    rows += [(f"  AP@{t}", _fmt(ap), "") for t, ap in m.span_ap.items()]
    rows += [
        (f"  AUC {k}", _fmt(v), "class + all normal videos") for k, v in m.per_class_auc.items()
    ]
    if m.captions is not None:
        cs = m.captions
        rows += [
            (
                "BLEU-1/2/3/4",
                " / ".join(_fmt(x) for x in (cs.bleu1, cs.bleu2, cs.bleu3, cs.bleu4)),
                "justifications vs video-level descriptions",
            ),
            ("ROUGE-L", _fmt(cs.rouge_l), ""),
            ("METEOR", _fmt(cs.meteor), "" if cs.meteor_synonyms else "no WordNet: exact+stem"),
            ("CIDEr", _fmt(cs.cider, pct=False), "CIDEr-D (COCO)"),
        ]
    if m.explanation is not None:
        x = m.explanation
        for what, table_ in (("justification", x.justification), ("answer", x.answer)):
            for level, sc in table_.items():
                rows.append(
                    (
                        f"  {what} vs {level}",
                        f"{_fmt(sc.meteor)} / {_fmt(sc.bleu4)} / {_fmt(sc.cider, pct=False)}",
                        f"METEOR / BLEU-4 / CIDEr, {x.videos.get(level, 0)} videos",
                    )
                )
    for r in rows:
        table.add_row(*r)
    c = m.counts
    where = f"{m.dataset_kind}" + (f" ({m.dataset_split} split)" if m.dataset_split else "")
    table.caption = (
        (f"{where}: " if m.dataset_kind else "")
        + f"{c.videos} videos ({c.anomalous} anomalous, {c.normal} normal), {c.frames} frames; "
        f"expansion {m.protocol.expansion}, smoothing {m.smoothing}, headline AP {m.protocol.headline_ap}"
        + "".join(f"\n{n}" for n in m.notes)
    )
    return table
