"""Live watch benchmark: alert latency, sustained frame rate, CPU share and RSS over a long stream.

A generated scene (labelled as such in every output) with a staged anomaly, 25 fps, is looped
for ``--minutes`` (at each loop joint the walkers jump back to their start), sent
by ``ffmpeg -re`` as MPEG-TS over TCP on 127.0.0.1 (copied, not re-encoded: the sender costs
almost nothing), and watched in this process with the classical profile, the detective consulted
on every event. Every loop holds one known event; alerts at a loop joint are counted apart.

Measured:
- alert latency: ``emitted_at`` of an event's first alert minus the wall time of the event's end
  on the stream clock (short events, ``--scene sprint``) or of its start (long events,
  ``--scene fall``); negative when the alert came before the event ended;
- events found / missed, and alerts matching no staged event (false alerts);
- sustained fps (frames handed to the analysis per wall second) and frames dropped;
- CPU share of this process (cores; the watcher, its reader and the detective), sampled RSS
  (start, end, max, and the slope of a line fitted after the first minute).

    python -m bench.live --size 640x360 --minutes 30 --out live-640.json
    python -m bench.live --quick
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import base_parser, emit, format_table, machine_info, rounded
from vadetective.agent.core.types import Alert

log = logging.getLogger("bench.live")


def build_stream(
    folder: Path, scene: str, size_wh: tuple[int, int], seed: int, clip_s: float
) -> tuple[Path, list[tuple[float, float]], float]:
    """The clip to loop and its events (seconds within one loop)."""
    from vadetective.agent.live.serve import prepare_clip
    from vadetective.agent.synth.scene import generate_scene

    truth = generate_scene(
        folder, kind=scene, seed=seed, duration_s=clip_s, fps=25.0, resolution_wh=size_wh
    )
    unit = prepare_clip(truth.video_path, folder / f"{scene}_{size_wh[0]}x{size_wh[1]}.mkv")
    import av

    with av.open(str(unit)) as c:
        frames = c.streams.video[0].frames or 0
    unit_s = frames / 25.0 if frames else clip_s
    return unit, [(s.start_s, s.end_s) for s in truth.spans], unit_s


def run(args: Any) -> dict[str, Any]:
    import psutil

    from vadetective.agent.core.config import config_for
    from vadetective.agent.live.serve import FFmpegSender, free_port
    from vadetective.agent.live.sinks import CallbackSink
    from vadetective.agent.live.watcher import LiveSettings, Watcher

    w, h = (int(v) for v in args.size.lower().split("x"))
    minutes = 1.0 if args.quick else args.minutes
    work = Path(tempfile.mkdtemp(prefix="vadetective-bench-live-"))
    unit, unit_events, unit_s = build_stream(work, args.scene, (w, h), args.seed, args.clip_s)
    loops = max(1, round(minutes * 60 / unit_s))
    port = free_port()
    url = f"tcp://127.0.0.1:{port}?listen=1"
    alerts: list[Alert] = []
    settings = LiveSettings(reconnect_for_s=3.0, connect_retries=20, open_timeout_s=5.0)
    watcher = Watcher(
        f"tcp://127.0.0.1:{port}",
        config=config_for("classical"),
        out=work / "record",
        settings=settings,
        sinks=[CallbackSink(alerts.append)],
    )
    me = psutil.Process()
    samples: list[tuple[float, float, float]] = []  # (wall s, rss MB, cpu s)
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(args.sample_s):
            t = me.cpu_times()
            samples.append((time.monotonic(), me.memory_info().rss / 2**20, t.user + t.system))

    with FFmpegSender(unit, url, loops=loops - 1):
        time.sleep(0.5)
        sampler = threading.Thread(target=sample, daemon=True)
        t = me.cpu_times()
        wall0, cpu0 = time.monotonic(), t.user + t.system
        samples.append((wall0, me.memory_info().rss / 2**20, cpu0))
        sampler.start()
        summary = watcher.run()
        stop.set()
        wall1 = time.monotonic()
        t = me.cpu_times()
        cpu1 = t.user + t.system
    origin = watcher.reader.started_at
    assert origin is not None
    stream_s = summary.stream_s
    events = [(k * unit_s + a, k * unit_s + b) for k in range(loops) for a, b in unit_events]
    events = [e for e in events if e[1] <= stream_s]
    first: dict[str, Alert] = {}
    for a in alerts:
        first.setdefault(a.id, a)
    found: list[float] = []
    matched: set[str] = set()
    long_event = args.scene != "sprint"
    for a0, b0 in events:
        hits = [a for a in first.values() if a.start_s <= b0 + 2.0 and a.end_s >= a0 - 2.0]
        if not hits:
            continue
        alert = min(hits, key=lambda a: a.emitted_at)
        matched.update(x.id for x in hits)
        ref = a0 if long_event else b0
        found.append((alert.emitted_at - origin).total_seconds() - ref)
    # where the loop restarts (every walker jumps back): an artefact of looping generated
    # footage, counted apart from false alerts
    joints = [k * unit_s for k in range(1, loops + 1)]
    at_joint = {
        a.id for a in first.values()
        if a.id not in matched and any(a.start_s - 2.5 <= j <= a.end_s + 2.5 for j in joints)
    }  # fmt: skip
    false_alerts = [a for a in first.values() if a.id not in matched and a.id not in at_joint]
    s = np.asarray(samples)
    after = s[s[:, 0] - s[0, 0] >= 60.0] if len(s) > 6 else s
    slope = (
        float(np.polyfit((after[:, 0] - after[0, 0]) / 60.0, after[:, 1], 1)[0])
        if len(after) >= 3
        else None
    )
    lat = np.asarray(found) if found else np.asarray([np.nan])
    return {
        "benchmark": "live",
        "quick": bool(args.quick),
        "footage": f"generated scene ({args.scene}, seed {args.seed}), looped",
        "transport": "MPEG-TS over TCP from ffmpeg -re on 127.0.0.1",
        "profile": "classical",
        "size_wh": [w, h],
        "fps": 25,
        "minutes_planned": minutes,
        "stream_s": rounded(stream_s, 1),
        "wall_s": rounded(wall1 - wall0, 1),
        "frames": summary.frames,
        "frames_dropped": summary.frames_dropped,
        "sustained_fps": rounded(summary.frames / (wall1 - wall0), 2),
        "cpu_cores_used": rounded((cpu1 - cpu0) / (wall1 - wall0), 3),
        "rss_mb": {
            "start": rounded(float(s[0, 1]), 1),
            "end": rounded(float(s[-1, 1]), 1),
            "max": rounded(float(s[:, 1].max()), 1),
            "slope_mb_per_min_after_1min": rounded(slope, 3),
        },
        "events_staged": len(events),
        "events_alerted": len(found),
        "false_alerts": len(false_alerts),
        "alerts_at_loop_joints": len(at_joint),
        "dismissed_by_detective": summary.dismissed,
        "latency_reference": "event start" if long_event else "event end",
        "latency_s": {
            "median": rounded(float(np.nanmedian(lat)), 2),
            "p90": rounded(float(np.nanpercentile(lat, 90)), 2),
            "max": rounded(float(np.nanmax(lat)), 2),
        },
        "events": [[round(a, 2), round(b, 2)] for a, b in events[:200]],
        "alerts": [
            {
                "start_s": a.start_s,
                "end_s": a.end_s,
                "category": a.category,
                "first_emitted_s": round((a.emitted_at - origin).total_seconds(), 2),
                "matched": a.id in matched,
                "at_joint": a.id in at_joint,
            }
            for a in list(first.values())[:200]
        ],
        "end_reason": summary.end_reason,
        "machine": machine_info(),
    }


def main() -> None:
    parser = base_parser("python -m bench.live", __doc__)
    parser.add_argument("--size", default="640x360", help="stream size WxH (640x360, 1280x720)")
    parser.add_argument("--minutes", type=float, default=30.0, help="stream length")
    parser.add_argument(
        "--scene", default="sprint", help="staged anomaly: sprint (short) or fall (long)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clip-s", type=float, default=30.0, help="length of the generated clip")
    parser.add_argument("--sample-s", type=float, default=10.0, help="RSS/CPU sampling period")
    args = parser.parse_args()
    if args.quick:
        args.sample_s = min(args.sample_s, 2.0)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    report = run(args)
    rows = [[report["size_wh"], report["stream_s"], report["sustained_fps"], report["cpu_cores_used"],
             report["rss_mb"]["start"], report["rss_mb"]["end"], report["events_alerted"],
             report["events_staged"], report["false_alerts"], report["latency_s"]["median"],
             report["latency_s"]["max"]]]  # fmt: skip
    table = format_table(
        [
            "size",
            "stream s",
            "fps",
            "cores",
            "rss0 MB",
            "rss1 MB",
            "alerted",
            "staged",
            "false",
            "lat med",
            "lat max",
        ],
        rows,
    )
    emit(report, args.out, table)


if __name__ == "__main__":
    main()
