"""Watch a live source: incremental perception, the detective on suspicious windows, alerts.

    from vadetective import watch
    for alert in watch("rtsp://cam.local/stream", profile="classical", out="cam-record"):
        print(alert.id, alert.status, alert.category, alert.start_s, alert.end_s)

Data flow: ``StreamReader`` (frames on the stream clock) → ``OnlinePerception.update`` (each
frame once, state carried forward) → ``EventTracker`` (open / extend / close with a cooldown) →
on an opened event, the detective graph (planner, grounding, inspection, with the profile's
budget) is asked about the window from ``pre_roll_s`` before the event to now, in a worker
thread so reading never waits for it → a confirmed event becomes an ``Alert`` (one id per event;
revisions while it lasts and when it closes) written to every sink and to the SQLite record.
A dismissed event is recorded as a verdict and raises no alert; an event that goes on for
``recheck_after_s`` is asked about again, up to ``consultations_per_event`` times.

The watcher takes a ``Config`` (the detective's profile, budgets and, later, the user's rules)
and ``LiveSettings`` (everything about the stream and the alert lifecycle).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vadetective.agent.core.config import Config
from vadetective.agent.core.types import Alert, Box, StreamGap, Trace, Verdict, utcnow
from vadetective.agent.core.vocabulary import FAMILY_CATEGORY, ScoreFamily
from vadetective.agent.live.events import Event, EventTracker, FrameRing
from vadetective.agent.live.perception import MotionOnline, OnlinePerception
from vadetective.agent.live.record import Record
from vadetective.agent.live.sinks import AlertSink
from vadetective.agent.live.stream import StreamEnd, StreamFrame, StreamReader

log = logging.getLogger(__name__)

DEFAULT_LIVE_QUESTION = "Is anything unusual or abnormal happening in this clip?"


class LiveSettings(BaseModel):
    """How a stream is read and how its events become alerts (times in seconds)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_side: int = Field(default=640, description="working resolution (longer side)")
    realtime: bool = Field(default=False, description="pace a local file at its own frame rate")
    on_threshold: float | None = Field(
        default=None, description="score that opens an event (None: the config's anomaly_threshold)"
    )
    off_threshold: float = Field(default=0.35, description="score under which an event may close")
    min_event_s: float = Field(
        default=0.5, description="the score must hold this long to open an event"
    )
    cooldown_s: float = Field(default=5.0, description="quiet time before an event counts as over")
    warmup_s: float = Field(default=8.0, description="stream time spent learning the scene first")
    pre_roll_s: float = Field(
        default=10.0, description="stream time before an event shown to the detective"
    )
    max_window_s: float = Field(default=30.0, description="longest window the detective is shown")
    consult: bool = Field(default=True, description="ask the detective before alerting")
    consultations_per_event: int = Field(default=2, ge=1, description="detective budget per event")
    recheck_after_s: float = Field(
        default=10.0, description="ask again when a dismissed event lasts"
    )
    update_every_s: float = Field(
        default=2.0, description="minimum stream time between alert updates"
    )
    connect_retries: int = Field(default=3, ge=1)
    reconnect_for_s: float = Field(default=60.0, ge=0)
    open_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=5.0, gt=0)
    rtsp_transport: str = "tcp"


@dataclass
class WatchSummary:
    """How a watch went."""

    source: str
    session_id: str
    end_reason: str
    stream_s: float
    frames: int
    frames_dropped: int
    bad_frames: int
    reconnects: int
    alerts: int
    dismissed: int
    gaps: list[StreamGap] = field(default_factory=list)


@dataclass
class _Case:
    """What the watcher knows about one event."""

    event: Event
    alert: Alert | None = None
    consultations: int = 0
    pending: Future[tuple[Verdict, Trace | None, float, float, Path]] | None = None
    dismissed: bool = False
    verdict: Verdict | None = None
    evidence: list[str] = field(default_factory=list)


class Watcher:
    """Watches one source (see the module docstring).

    Args:
        source: URL, camera device or file.
        config: the detective's configuration (profile, budgets); classical if None.
        out: folder of the record (``events.sqlite``, keyframes, verdicts, ``events.html``).
        question: what to ask the detective about each suspicious window.
        settings: stream and alert settings.
        sinks: where alerts go besides the record.
        perception: an ``OnlinePerception``; the weight-free motion adapter if None.
        planner: a planner object for the detective (tests), else the config's.
    """

    def __init__(
        self,
        source: str,
        config: Config | None = None,
        out: str | Path = "vadetective-watch",
        question: str | None = None,
        settings: LiveSettings | None = None,
        sinks: Sequence[AlertSink] = (),
        perception: OnlinePerception | None = None,
        planner: Any | None = None,
    ) -> None:
        from vadetective.agent.core.config import config_for

        self.config = config if config is not None else config_for("classical")
        # windows are scored in memory only: nothing of a live window goes to the disk cache
        self._window_config = self.config.model_copy(update={"cache_dir": None})
        self.settings = settings or LiveSettings()
        self.out = Path(out)
        self.question = question or DEFAULT_LIVE_QUESTION
        self.sinks = list(sinks)
        self.perception = perception or MotionOnline(warmup_s=self.settings.warmup_s)
        self._planner = planner
        s = self.settings
        self.reader = StreamReader(
            source,
            max_side=s.max_side,
            realtime=s.realtime,
            connect_retries=s.connect_retries,
            reconnect_for_s=s.reconnect_for_s,
            open_timeout_s=s.open_timeout_s,
            read_timeout_s=s.read_timeout_s,
            rtsp_transport=s.rtsp_transport,
        )
        self.source = source
        self.session_id = f"{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        on = s.on_threshold if s.on_threshold is not None else self.config.anomaly_threshold
        self.tracker = EventTracker(
            on_threshold=on,
            off_threshold=min(s.off_threshold, on),
            min_on_s=s.min_event_s,
            cooldown_s=s.cooldown_s,
            id_prefix=self.session_id,
        )
        self.ring = FrameRing(seconds=s.pre_roll_s + s.max_window_s + 2.0)
        self._cases: dict[str, _Case] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._backends: Any = None
        self._stop = threading.Event()
        self._record: Record | None = None
        self.alerts_emitted = 0
        self.dismissed = 0
        self._now_s = 0.0
        self._gaps: list[StreamGap] = []
        self.summary: WatchSummary | None = None

    # ------------------------------------------------------------------ public
    def stop(self) -> None:
        """Stop watching (from another thread or a signal handler); ``run`` then returns."""
        self._stop.set()
        self.reader.stop()

    def run(self) -> WatchSummary:
        """Watch until the stream ends or ``stop()``; return the summary."""
        for _ in self.alerts():
            pass
        assert self.summary is not None
        return self.summary

    def alerts(self) -> Iterator[Alert]:
        """Watch, yielding each alert revision as it is written.

        Raises:
            StreamError: the source could not be opened (after bounded retries).
        """
        self.reader.open()  # bounded retries; StreamError before anything is written
        self._record = Record(self.out)
        self._record.start_session(self.session_id, self.source, self.settings.model_dump())
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="vadetective-detective"
        )
        if self.settings.consult:
            self._executor.submit(self._warm_up)  # imports and backends, before any event
        end_reason = "stopped"
        pending_out: list[Alert] = []
        self._emitted = pending_out
        try:
            origin_saved = False
            for item in self.reader.items():
                if isinstance(item, StreamFrame):
                    if not origin_saved and self.reader.started_at is not None:
                        self._record.set_clock_origin(self.session_id, self.reader.started_at)
                        origin_saved = True
                    self._on_frame(item)
                elif isinstance(item, StreamGap):
                    self._on_gap(item)
                elif isinstance(item, StreamEnd):
                    end_reason = item.reason
                self._poll()
                while pending_out:
                    yield pending_out.pop(0)
                if self._stop.is_set():
                    end_reason = "stopped"
                    break
            self._finish(wait=not self._stop.is_set())
            while pending_out:
                yield pending_out.pop(0)
        finally:
            self._close(end_reason)

    # ------------------------------------------------------------------ frames and events
    def _on_frame(self, item: StreamFrame) -> None:
        self._now_s = item.t_s
        self.ring.add(item.frame)
        obs = self.perception.update(item.frame)
        if obs is None or not obs.ready:
            return
        for what, ev in self.tracker.update(obs.t_s, obs.score, obs.family, obs.boxes):
            case = self._cases.get(ev.id)
            if what == "opened":
                log.info(
                    "event %s opened at %.1f s (%s %.2f)", ev.id, ev.start_s, ev.family, obs.score
                )
                case = self._cases[ev.id] = _Case(ev)
                self._decide(case)
            elif case is None:
                continue
            elif what == "extended":
                self._on_extended(case)
            else:
                self._on_closed(case)

    def _on_gap(self, gap: StreamGap) -> None:
        assert self._record is not None
        log.warning(
            "no frames from %.1f s to %.1f s on the stream clock (%s)",
            gap.start_s,
            gap.end_s,
            gap.reason,
        )
        self._record.put_gap(self.session_id, gap)
        self._gaps.append(gap)
        if self.tracker.event is not None and gap.end_s - gap.start_s >= self.settings.cooldown_s:
            self._on_closed(self._cases[self.tracker.close().id])

    def _decide(self, case: _Case) -> None:
        """An event opened: ask the detective (or alert on the score alone)."""
        if self.settings.consult:
            self._consult(case)
        else:
            self._emit(case, confirmed_by="score")

    def _on_extended(self, case: _Case) -> None:
        ev = case.event
        if case.alert is not None:
            if ev.end_s - case.alert.end_s >= self.settings.update_every_s:
                self._emit(case, status="updated")
        elif (
            case.dismissed
            and case.pending is None
            and case.consultations < self.settings.consultations_per_event
            and ev.end_s - ev.start_s >= self.settings.recheck_after_s * case.consultations
        ):
            self._consult(case)

    def _on_closed(self, case: _Case) -> None:
        log.info("event %s closed at %.1f s", case.event.id, case.event.end_s)
        if case.alert is not None:
            self._emit(case, status="closed")
        if case.pending is None:
            self._cases.pop(case.event.id, None)

    # ------------------------------------------------------------------ the detective
    def _consult(self, case: _Case) -> None:
        ev = case.event
        s = self.settings
        end = self._now_s
        start = max(ev.start_s - s.pre_roll_s, end - s.max_window_s)
        span = self.ring.span_s
        if span is not None:
            start = max(start, span[0])
        case.consultations += 1
        name = f"{ev.id}-{case.consultations}"
        try:
            window = self.ring.window(start, end, name)
        except ValueError as exc:
            log.warning("event %s: %s; alerting on the score alone", ev.id, exc)
            self._emit(case, confirmed_by="score")
            return
        assert self._executor is not None
        case.pending = self._executor.submit(self._ask, window, self.out / "verdicts" / name)

    def _warm_up(self) -> None:
        from vadetective.agent.session import Detective  # noqa: F401 - imports the graph stack
        from vadetective.graphs.builders import build_graph  # noqa: F401
        from vadetective.tools.toolbox import Backends

        if self._backends is None:
            self._backends = Backends(self._window_config)

    def _ask(self, window: Any, out: Path) -> tuple[Verdict, Trace | None, float, float, Path]:
        """Run the detective graph on one window (worker thread)."""
        from vadetective.agent.session import Detective
        from vadetective.tools.toolbox import Backends

        if self._backends is None:
            self._backends = Backends(self._window_config)
        t0 = time.perf_counter()
        with Detective(
            window,
            config=self._window_config,
            out=out,
            backends=self._backends,
            planner=self._planner,
        ) as d:
            verdict = d.ask(self.question)
            trace = d.last_trace
        return verdict, trace, window.offset_s, time.perf_counter() - t0, out

    def _poll(self, wait: bool = False) -> None:
        for case in list(self._cases.values()):
            fut = case.pending
            if fut is None or not (wait or fut.done()):
                continue
            case.pending = None
            try:
                verdict, trace, offset, seconds, out = fut.result()
            except Exception as exc:  # noqa: BLE001 - a failed consultation must not end the watch
                log.warning(
                    "event %s: the detective failed (%s); alerting on the score alone",
                    case.event.id,
                    exc,
                )
                case.evidence = [f"the detective could not be consulted: {exc}"]
                self._emit_or_close(case, confirmed_by="score")
                continue
            self._on_verdict(case, verdict, trace, offset, seconds, out)

    def _on_verdict(
        self,
        case: _Case,
        verdict: Verdict,
        trace: Trace | None,
        offset: float,
        seconds: float,
        out: Path,
    ) -> None:
        assert self._record is not None
        ev = case.event
        window = (offset, offset + (trace.video.duration_s if trace and trace.video else 0.0))
        shifted = _shift_verdict(verdict, offset)
        self._record.put_verdict(self.session_id, ev.id, window, shifted, seconds)
        log.info(
            "event %s: detective says %s (%s, %.2f) in %.1f s",
            ev.id, verdict.is_anomalous, verdict.category, verdict.confidence, seconds,
        )  # fmt: skip
        if verdict.is_anomalous:
            note = (
                f"Seen in the window {window[0]:.1f}-{window[1]:.1f} s of the stream (times in "
                "this text count from the window's start): "
            )
            case.verdict = shifted.model_copy(
                update={"justification": note + verdict.justification}
            )
            case.dismissed = False
            lines = [f"{e.id} {e.tool}: {e.summary}" for e in (trace.evidence if trace else [])]
            case.evidence = [*lines, f"trace: {(out / 'trace.json').as_posix()}"]
            if case.alert is None:
                self._emit_or_close(case)
            else:
                self._emit(case, status="closed" if ev.closed else "updated")
        else:
            case.dismissed = True
            self.dismissed += 1
            if ev.closed:
                self._cases.pop(ev.id, None)

    def _emit_or_close(self, case: _Case, confirmed_by: str = "detective") -> None:
        self._emit(
            case, status="closed" if case.event.closed else "open", confirmed_by=confirmed_by
        )
        if case.event.closed:
            self._cases.pop(case.event.id, None)

    # ------------------------------------------------------------------ alerts
    def _emit(self, case: _Case, status: str = "open", confirmed_by: str | None = None) -> None:
        assert self._record is not None
        ev, v, prev = case.event, case.verdict, case.alert
        if confirmed_by is None:
            confirmed_by = prev.confirmed_by if prev is not None else "detective"
        category = v.category if v is not None and v.category else _family_category(ev.family)
        boxes = list(v.boxes) if v is not None and v.boxes else list(ev.boxes)
        if v is not None:
            justification = v.justification
        else:
            justification = (
                f"the {ev.family or 'motion'} score reached {ev.peak_score:.2f} at {ev.peak_t_s:.1f} s"
                " (not confirmed by the detective)"
            )
        start = (
            min(ev.start_s, *(s.start_s for s in v.spans))
            if v is not None and v.spans
            else ev.start_s
        )
        end = max(ev.end_s, start)
        keyframe = prev.keyframe if prev is not None else self._keyframe(ev, boxes)
        alert = Alert(
            id=ev.id,
            revision=(prev.revision + 1) if prev is not None else 1,
            status="open" if prev is None and status != "closed" else status,  # type: ignore[arg-type]
            source=self.source,
            start_s=round(start, 3),
            end_s=round(end, 3),
            emitted_at=utcnow(),
            category=category,
            confidence=v.confidence if v is not None else min(1.0, ev.peak_score),
            peak_score=round(ev.peak_score, 4),
            boxes=boxes[:20],
            justification=justification,
            answer=v.answer if v is not None else "",
            evidence=case.evidence,
            keyframe=keyframe,
            confirmed_by=confirmed_by,  # type: ignore[arg-type]
        )
        case.alert = alert
        if prev is None:
            self.alerts_emitted += 1
        self._record.put_alert(self.session_id, alert)
        for sink in self.sinks:
            try:
                sink.send(alert)
            except OSError as exc:
                log.warning("an alert sink failed: %s", exc)
        self._emitted.append(alert)

    def _keyframe(self, ev: Event, boxes: list[Box]) -> str | None:
        """Write the frame of the event's first box (or its peak) with its boxes drawn."""
        import cv2

        from vadetective.agent.report.images import draw_boxes

        t = boxes[0].t_s if boxes else ev.peak_t_s
        img = self.ring.nearest(t)
        if img is None:
            return None
        wh = self.reader.resolution_wh
        near = [b for b in boxes if abs(b.t_s - t) <= 0.5]
        bgr = draw_boxes(cv2.cvtColor(img, cv2.COLOR_RGB2BGR), near, wh)
        path = self.out / "keyframes" / f"{ev.id}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 88])
        if not ok:
            return None
        from vadetective.agent.core.io import atomic_write_bytes

        atomic_write_bytes(path, buf.tobytes())
        return path.relative_to(self.out).as_posix()

    # ------------------------------------------------------------------ ending
    def _finish(self, wait: bool) -> None:
        """The stream ended: close the open event, wait for the detective's last answers."""
        if self.tracker.event is not None:
            ev = self.tracker.close()
            case = self._cases.get(ev.id)
            if case is not None:
                self._on_closed(case)
        if wait:
            self._poll(wait=True)

    def _close(self, end_reason: str) -> None:
        # an interrupted watch: close what was alerted, so every alert ends with "closed"
        for case in list(self._cases.values()):
            if (
                case.alert is not None
                and case.alert.status != "closed"
                and self._record is not None
            ):
                case.event.closed = True
                self._emit(case, status="closed")
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self.reader.close()
        for sink in self.sinks:
            sink.close()
        r = self.reader
        self.summary = WatchSummary(
            source=self.source,
            session_id=self.session_id,
            end_reason=end_reason,
            stream_s=round(self._now_s, 3),
            frames=r.frames_read,
            frames_dropped=r.frames_dropped,
            bad_frames=r.bad_frames,
            reconnects=r.reconnects,
            alerts=self.alerts_emitted,
            dismissed=self.dismissed,
            gaps=list(self._gaps),
        )
        if self._record is not None:
            self._record.end_session(self.session_id, end_reason)
            self._record.close()
            self._record = None


def _family_category(family: str | None) -> str | None:
    try:
        return str(FAMILY_CATEGORY[ScoreFamily(family or "")])
    except (KeyError, ValueError):
        return family


def _shift_verdict(v: Verdict, offset_s: float) -> Verdict:
    """A window's verdict with its times moved onto the stream clock."""
    return v.model_copy(
        update={
            "spans": [
                s.model_copy(update={"start_s": s.start_s + offset_s, "end_s": s.end_s + offset_s})
                for s in v.spans
            ],
            "boxes": [b.model_copy(update={"t_s": b.t_s + offset_s}) for b in v.boxes],
            "frame_scores": None,
        }
    )


def watch(
    source: str,
    profile: str = "classical",
    out: str | Path = "vadetective-watch",
    question: str | None = None,
    sinks: Sequence[AlertSink] = (),
    config: Config | None = None,
    **settings: Any,
) -> Iterator[Alert]:
    """Watch ``source`` and yield each alert revision as it is written.

    Args:
        source: an RTSP/RTMP/HTTP(S)/HLS/TCP/UDP URL, a camera device, or a file.
        profile: the detective's profile (``classical`` by default: it keeps up on a CPU).
        out: folder of the record.
        question: what to ask about each suspicious window.
        sinks: extra alert sinks (``JsonlSink``, ``WebhookSink``, ``CallbackSink``).
        config: a full configuration instead of ``profile``.
        **settings: ``LiveSettings`` fields, e.g. ``realtime=True`` or ``cooldown_s=8``.
    """
    if config is None:
        from vadetective.agent.profiles import profile_config

        config = profile_config(profile)
    watcher = Watcher(
        source,
        config=config,
        out=out,
        question=question,
        settings=LiveSettings(**settings),
        sinks=sinks,
    )
    yield from watcher.alerts()


__all__ = ["DEFAULT_LIVE_QUESTION", "LiveSettings", "WatchSummary", "Watcher", "watch"]
