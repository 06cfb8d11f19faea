"""`vadetective watch` (a live source, alerts as they happen) and `vadetective events` (search
the record a watch keeps)."""

from __future__ import annotations

import re
import signal
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import typer

from vadetective.agent.cli.common import (
    app,
    err_console,
    fail,
    friendly_errors,
    json_text,
    out_console,
    safe,
)

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")


def _print_alert(alert: Any) -> None:
    colour = {"open": "bold red", "updated": "red", "closed": "yellow"}[alert.status]
    where = ""
    if alert.boxes:
        b = alert.boxes[0]
        where = f" at [{', '.join(f'{v:.0f}' for v in b.xyxy)}]"
    out_console.print(
        f"[{colour}]{alert.status.upper():<7}[/] {safe(alert.id)} r{alert.revision} "
        f"[bold]{safe(alert.category or 'anomaly')}[/] {alert.start_s:.1f}-{alert.end_s:.1f} s"
        f"{safe(where)} conf {alert.confidence:.2f}",
        highlight=False,
    )
    if alert.status == "open":
        out_console.print(f"        [dim]{safe(alert.justification[:300])}[/]", highlight=False)


def _print_json(alert: Any) -> None:
    sys.stdout.write(json_text(alert) + "\n")
    sys.stdout.flush()


@app.command()
@friendly_errors
def watch(
    source: str = typer.Argument(
        ...,
        help="rtsp://, rtmp://, http(s):// (HLS), tcp://, udp:// URL, a camera (/dev/video0 or 0), or a file.",
    ),
    profile: str = typer.Option(
        "classical",
        "--profile",
        "-p",
        help="The detective's profile: classical (default), auto, local, server.",
    ),
    question: str | None = typer.Option(
        None, "--question", "-q", help="What to ask the detective about each suspicious window."
    ),
    alerts: Path | None = typer.Option(
        None, "--alerts", help="Append every alert to this JSONL file."
    ),
    webhook: str | None = typer.Option(
        None, "--webhook", help="POST every alert as JSON to this URL."
    ),
    out: Path = typer.Option(
        Path("vadetective-watch"),
        "--out",
        "-o",
        help="Folder of the record (events.sqlite, keyframes, events.html).",
    ),
    realtime: bool = typer.Option(
        False, "--realtime", help="Play a file at its own speed, as a camera would."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print alerts as JSON lines on stdout."),
    threshold: float | None = typer.Option(
        None, "--threshold", help="Score that opens an event (default 0.5)."
    ),
    cooldown: float = typer.Option(
        5.0, "--cooldown", help="Quiet seconds before an event is over."
    ),
    no_detective: bool = typer.Option(
        False,
        "--no-detective",
        help="Alert on the cheap score alone, without asking the detective.",
    ),
    connect_retries: int = typer.Option(
        3, "--connect-retries", help="Attempts at the first connection."
    ),
    reconnect_for: float = typer.Option(
        60.0, "--reconnect-for", help="Seconds to keep reconnecting after the stream drops."
    ),
    read_timeout: float = typer.Option(
        5.0, "--read-timeout", help="A stall this long counts as a drop."
    ),
    rtsp_transport: str = typer.Option("tcp", "--rtsp-transport", help="tcp or udp."),
) -> None:
    """Watch a live stream: alerts with when, where and why, and a searchable record."""
    from vadetective.agent.live.sinks import CallbackSink, JsonlSink, WebhookSink
    from vadetective.agent.live.watcher import LiveSettings, Watcher
    from vadetective.agent.profiles import profile_config

    if rtsp_transport not in ("tcp", "udp"):
        raise fail(f"--rtsp-transport must be tcp or udp, got {rtsp_transport!r}")
    if not 0.0 < cooldown <= 3600:
        raise fail(f"--cooldown must be between 0 and 3600 seconds, got {cooldown}")
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise fail(f"--threshold must be in (0, 1], got {threshold}")
    if connect_retries < 1:
        raise fail(f"--connect-retries must be at least 1, got {connect_retries}")
    if not 0.0 <= reconnect_for <= 86400:
        raise fail(f"--reconnect-for must be between 0 and 86400 seconds, got {reconnect_for}")
    if not 0.5 <= read_timeout <= 3600:
        raise fail(f"--read-timeout must be between 0.5 and 3600 seconds, got {read_timeout}")
    config = profile_config(profile)
    settings = LiveSettings(
        realtime=realtime,
        on_threshold=threshold,
        cooldown_s=cooldown,
        consult=not no_detective,
        connect_retries=connect_retries,
        reconnect_for_s=reconnect_for,
        read_timeout_s=read_timeout,
        rtsp_transport=rtsp_transport,
    )
    sinks: list[Any] = []
    if as_json:
        sinks.append(CallbackSink(_print_json))
    else:
        sinks.append(CallbackSink(_print_alert))
    if alerts is not None:
        sinks.append(JsonlSink(alerts))
    if webhook is not None:
        try:
            sinks.append(WebhookSink(webhook))
        except ValueError as exc:
            raise fail(str(exc)) from None
    watcher = Watcher(
        source, config=config, out=out, question=question, settings=settings, sinks=sinks
    )
    status = err_console if as_json else out_console

    def _on_term(signum: int, frame: FrameType | None) -> None:
        watcher.stop()

    previous = signal.signal(signal.SIGTERM, _on_term)
    interrupted = False
    try:
        status.print(
            f"[dim]watching {safe(source)} (profile {config.profile}); Ctrl-C stops[/]",
            highlight=False,
        )
        try:
            watcher.run()
        except KeyboardInterrupt:
            interrupted = True
        except sqlite3.Error as exc:  # a full or vanished disk in the middle of a watch
            raise fail(
                f"the event record in {out} could not be written ({exc}); "
                "the alerts sent so far are kept"
            ) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    summary = watcher.summary
    if summary is None:  # stopped before the stream opened
        return
    page = _write_page(out)
    reason = "interrupted" if interrupted else summary.end_reason
    status.print(
        f"[dim]{safe(reason)}: {summary.stream_s:.1f} s of stream, {summary.frames} frames "
        f"({summary.frames_dropped} dropped, {summary.bad_frames} bad), {summary.reconnects} reconnect(s), "
        f"{summary.alerts} alert(s), {summary.dismissed} dismissed; record in {safe(str(out))}/ "
        f"(events.sqlite, {safe(page.name)})[/]",
        highlight=False,
    )


def _write_page(
    folder: Path, alerts: list[Any] | None = None, out: Path | None = None, note: str = ""
) -> Path:
    from vadetective.agent.live.record import open_record
    from vadetective.agent.report.events_page import render_events_page

    with open_record(folder) as rec:
        shown = rec.search() if alerts is None else alerts
        sources = sorted({s.source for s in rec.sessions()})
        return render_events_page(
            shown, folder, out, gaps=rec.gaps(), note=note or ", ".join(sources)
        )


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since``: an ISO 8601 time (UTC unless it says otherwise) or an age like ``30m``,
    ``2h``, ``1d``, ``45s``.

    Raises:
        ValueError: neither form.
    """
    now = now or datetime.now(UTC)
    m = _RELATIVE.match(text)
    if m:
        n, unit = float(m.group(1)), m.group(2)
        return now - timedelta(seconds=n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit])
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since must be an ISO time (2026-01-31T08:00) or an age (45s, 30m, 2h, 1d), got {text!r}"
        ) from None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


@app.command()
@friendly_errors
def events(
    folder: Path = typer.Argument(..., help="The --out folder of a watch."),
    since: str | None = typer.Option(
        None, "--since", help="Only alerts emitted since: ISO time or 30m / 2h / 1d."
    ),
    category: str | None = typer.Option(
        None, "--category", help="Only this category (e.g. running, fall)."
    ),
    text: str | None = typer.Option(
        None, "--text", help="Only alerts whose text has every one of these words."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the alerts as JSON lines."),
    html_out: Path | None = typer.Option(
        None, "--html", help="Also write the matching alerts as an HTML page."
    ),
) -> None:
    """List and search the alerts a watch recorded."""
    from rich.table import Table

    from vadetective.agent.live.record import open_record

    try:
        since_t = parse_since(since) if since else None
    except ValueError as exc:
        raise fail(str(exc)) from None
    with open_record(folder) as rec:
        found = rec.search(since=since_t, category=category, text=text)
    if html_out is not None:
        filters = ", ".join(
            f"{k} {v}" for k, v in (("since", since), ("category", category), ("text", text)) if v
        )
        _write_page(folder, found, html_out, note=filters or "all alerts")
    if as_json:
        for a in found:
            sys.stdout.write(json_text(a) + "\n")
        return
    if not found:
        out_console.print("no alerts match")
        return
    table = Table(show_lines=False)
    for col in ("emitted (UTC)", "stream time", "category", "conf", "status", "id", "why"):
        table.add_column(col)
    for a in found:
        table.add_row(
            a.emitted_at.strftime("%Y-%m-%d %H:%M:%S"),
            f"{a.start_s:.1f}-{a.end_s:.1f} s",
            safe(a.category or ""),
            f"{a.confidence:.2f}",
            a.status,
            safe(a.id),
            safe(a.justification[:120]),
        )
    out_console.print(table)
    out_console.print(f"[dim]{len(found)} alert(s)[/]")
