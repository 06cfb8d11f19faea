"""The searchable record of a watch: SQLite under ``--out`` (``events.sqlite``).

Tables: ``sessions`` (one per watch: source, when its stream clock started, how it ended),
``alerts`` (the latest revision of every alert, its full JSON beside the searchable columns),
``verdicts`` (every detective consultation, confirmed or dismissed) and ``gaps`` (stretches of
the stream clock with no frames). Writes come from the watcher's own thread, one transaction
each, so an interrupted watch keeps everything written before it stopped. ``search`` is what
``vadetective events`` runs.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from vadetective.agent.core.errors import OutputError
from vadetective.agent.core.types import Alert, StreamGap, Verdict, utcnow

RECORD_NAME = "events.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, started_at TEXT NOT NULL,
    clock_origin TEXT, ended_at TEXT, end_reason TEXT, settings TEXT
);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, session_id TEXT NOT NULL, revision INTEGER NOT NULL,
    status TEXT NOT NULL, start_s REAL NOT NULL, end_s REAL NOT NULL, emitted_at TEXT NOT NULL,
    category TEXT, confidence REAL NOT NULL, justification TEXT, keyframe TEXT,
    json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_emitted ON alerts (emitted_at);
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, event_id TEXT NOT NULL,
    window_start_s REAL NOT NULL, window_end_s REAL NOT NULL, decided_at TEXT NOT NULL,
    is_anomalous INTEGER, category TEXT, confidence REAL, answer TEXT, justification TEXT,
    seconds REAL, json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS gaps (
    session_id TEXT NOT NULL, start_s REAL NOT NULL, end_s REAL NOT NULL, reason TEXT,
    noted_at TEXT NOT NULL
);
"""
_COLUMNS = {
    name: {
        col.strip().split()[0]
        for col in body.split(",")
        if col.strip() and col.strip().split()[0].isidentifier()
    }
    for name, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\);", _SCHEMA, re.S)
}


@dataclass(frozen=True)
class Session:
    """One watch as the record holds it."""

    id: str
    source: str
    started_at: str
    clock_origin: str | None
    ended_at: str | None
    end_reason: str | None


class Record:
    """The SQLite record in ``folder`` (created if needed)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / RECORD_NAME
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        except sqlite3.Error as exc:
            raise OutputError(f"{self.path} cannot be opened as an event record ({exc})") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            self._db.commit()
            self._check_columns()
        except sqlite3.Error as exc:
            self._db.close()
            raise OutputError(
                f"{self.path} is not a usable event record ({exc}): "
                "choose another folder or move that file away"
            ) from None

    def _check_columns(self) -> None:
        """An ``events.sqlite`` of another program (same table names, other columns) is refused
        here, not by the first write in the middle of a watch."""
        for table, wanted in _COLUMNS.items():
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if not wanted <= have:
                missing = ", ".join(sorted(wanted - have))
                raise sqlite3.DatabaseError(f"its table {table} lacks {missing}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Record:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writes
    def start_session(self, session_id: str, source: str, settings: dict[str, Any]) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO sessions (id, source, started_at, settings) VALUES (?,?,?,?)",
                (session_id, source, utcnow().isoformat(), json.dumps(settings, default=str)),
            )

    def set_clock_origin(self, session_id: str, origin: datetime) -> None:
        with self._db:
            self._db.execute(
                "UPDATE sessions SET clock_origin=? WHERE id=?", (origin.isoformat(), session_id)
            )

    def end_session(self, session_id: str, reason: str) -> None:
        with self._db:
            self._db.execute(
                "UPDATE sessions SET ended_at=?, end_reason=? WHERE id=?",
                (utcnow().isoformat(), reason, session_id),
            )

    def put_alert(self, session_id: str, alert: Alert) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO alerts (id, session_id, revision, status, start_s, end_s,"
                " emitted_at, category, confidence, justification, keyframe, json)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    alert.id, session_id, alert.revision, alert.status, alert.start_s, alert.end_s,
                    alert.emitted_at.isoformat(), alert.category, alert.confidence,
                    alert.justification, alert.keyframe, alert.model_dump_json(),
                ),
            )  # fmt: skip

    def put_verdict(
        self,
        session_id: str,
        event_id: str,
        window_s: tuple[float, float],
        verdict: Verdict,
        seconds: float,
    ) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO verdicts (session_id, event_id, window_start_s, window_end_s,"
                " decided_at, is_anomalous, category, confidence, answer, justification, seconds,"
                " json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    session_id, event_id, window_s[0], window_s[1], utcnow().isoformat(),
                    None if verdict.is_anomalous is None else int(verdict.is_anomalous),
                    verdict.category, verdict.confidence, verdict.answer, verdict.justification,
                    seconds, verdict.model_dump_json(exclude={"frame_scores"}),
                ),
            )  # fmt: skip

    def put_gap(self, session_id: str, gap: StreamGap) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO gaps (session_id, start_s, end_s, reason, noted_at) VALUES (?,?,?,?,?)",
                (session_id, gap.start_s, gap.end_s, gap.reason, gap.noted_at.isoformat()),
            )

    # ------------------------------------------------------------------ reads
    def search(
        self,
        since: datetime | None = None,
        category: str | None = None,
        text: str | None = None,
        session_id: str | None = None,
    ) -> list[Alert]:
        """Alerts (latest revision each), oldest first, filtered by wall time (``emitted_at`` at
        or after ``since``), category (exact, case-insensitive) and words (every word must occur
        in the category, justification, answer or evidence, case-insensitive)."""
        where: list[str] = []
        args: list[str] = []
        if since is not None:
            where.append("emitted_at >= ?")
            args.append(since.isoformat())
        if category:
            where.append("lower(category) = lower(?)")
            args.append(category)
        if session_id:
            where.append("session_id = ?")
            args.append(session_id)
        for word in (text or "").split():
            where.append("lower(json) LIKE ? ESCAPE '\\'")
            esc = word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            args.append(f"%{esc}%")
        sql = "SELECT json FROM alerts" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._db.execute(sql + " ORDER BY emitted_at, id", args).fetchall()
        return [Alert.model_validate_json(r[0]) for r in rows]

    def sessions(self) -> list[Session]:
        rows = self._db.execute(
            "SELECT id, source, started_at, clock_origin, ended_at, end_reason FROM sessions"
            " ORDER BY started_at"
        ).fetchall()
        return [Session(*r) for r in rows]

    def gaps(self, session_id: str | None = None) -> list[StreamGap]:
        sql, args = "SELECT start_s, end_s, reason, noted_at FROM gaps", []
        if session_id:
            sql, args = sql + " WHERE session_id = ?", [session_id]
        rows = self._db.execute(sql + " ORDER BY noted_at", args).fetchall()
        return [
            StreamGap(start_s=a, end_s=b, reason=r or "", noted_at=datetime.fromisoformat(n))
            for a, b, r, n in rows
        ]

    def verdict_count(self, dismissed: bool | None = None) -> int:
        sql = "SELECT count(*) FROM verdicts"
        if dismissed is True:
            sql += " WHERE is_anomalous = 0"
        elif dismissed is False:
            sql += " WHERE is_anomalous = 1"
        return int(self._db.execute(sql).fetchone()[0])


def open_record(folder: str | Path) -> Record:
    """Open an existing record folder for reading.

    Raises:
        FileNotFoundError: ``folder`` holds no ``events.sqlite`` (one sentence for the CLI).
    """
    path = Path(folder) / RECORD_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"no event record in {folder}: pass the --out folder of a `vadetective watch`"
        )
    return Record(folder)


__all__ = ["RECORD_NAME", "Record", "Session", "open_record"]
