"""Checkpoints of an analysis: in memory by default, a SQLite file to resume an interrupted one.

A checkpoint file comes from the user, so it is checked before LangGraph touches it: a folder,
a file that is not SQLite (garbage, text), a SQLite database of another program (another
schema), a folder that cannot be written, or a row that cannot be read back (another format,
a ``pickle``-typed row: refused, never unpickled) are each one ``CheckpointError`` sentence.
The serializer revives only our own frozen types (``SAFE_TYPES``) and LangChain's messages.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vadetective.agent.core.errors import CheckpointError, VadetectiveError
from vadetective.agent.core.io import writable_folder

__all__ = ["SAFE_TYPES", "CheckpointError", "checkpoint_serializer", "checkpointer", "read_state"]

# The only classes a checkpoint may revive: our own frozen types (plus LangChain messages,
# which the serializer admits itself).
SAFE_TYPES = [
    ("vadetective.agent.core.types", name)
    for name in (
        "VideoInfo",
        "TimeSpan",
        "Box",
        "ScoreCurve",
        "ImageRef",
        "Evidence",
        "Verdict",
        "TraceStep",
        "Cost",
    )
] + [
    ("vadetective.agent.core.vocabulary", name)
    for name in ("ToolName", "ScoreFamily", "Category", "MeasuredFacts", "TimelineFacts")
]

_SQLITE_MAGIC = b"SQLite format 3\x00"
#: The tables (and columns) LangGraph's SqliteSaver reads and writes.
_SCHEMA = {
    "checkpoints": {"thread_id", "checkpoint_ns", "checkpoint_id", "type", "checkpoint"},
    "writes": {"thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx", "channel"},
}
_HINT = "delete it or pass another --checkpoint file"


def checkpoint_serializer() -> Any:
    """The serializer of every checkpoint: it revives only our own types (``SAFE_TYPES``)."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer  # LangGraph: lazily

    return JsonPlusSerializer(allowed_msgpack_modules=SAFE_TYPES)


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder: pass a file name")
    writable_folder(path.parent, "the checkpoint's folder")
    if path.exists() and path.stat().st_size > 0:
        try:
            with path.open("rb") as fh:
                head = fh.read(len(_SQLITE_MAGIC))
        except OSError as exc:
            raise CheckpointError(f"checkpoint {path} cannot be read ({exc.strerror})") from None
        if head != _SQLITE_MAGIC:
            raise CheckpointError(f"checkpoint {path} is not a SQLite checkpoint file: {_HINT}")


def _check_schema(conn: sqlite3.Connection, path: Path) -> None:
    for table, needed in _SCHEMA.items():
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if not columns:
            continue  # a new file: SqliteSaver creates it
        if not needed <= columns:
            missing = ", ".join(sorted(needed - columns))
            raise CheckpointError(
                f"checkpoint {path} is a SQLite database of another program (its table "
                f"{table!r} has no {missing}): {_HINT}"
            )


@contextmanager
def checkpointer(path: str | Path | None) -> Iterator[Any]:
    """In-memory checkpoints when ``path`` is None; else a SQLite file (created if missing).

    Raises:
        CheckpointError: the file cannot serve as a checkpoint (see the module docstring),
            including a SQLite error while the analysis reads or writes it.
        OutputError: its folder cannot be written.
    """
    serde = checkpoint_serializer()
    if path is None:
        from langgraph.checkpoint.memory import InMemorySaver

        yield InMemorySaver(serde=serde)
        return
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = Path(path)
    _check_file(path)
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(str(path), check_same_thread=False)
        _check_schema(conn, path)
        saver = SqliteSaver(conn, serde=serde)
        saver.setup()
        yield saver
    except sqlite3.Error as exc:
        raise CheckpointError(f"checkpoint {path} cannot be used ({exc}): {_HINT}") from None
    finally:
        if conn is not None:
            conn.close()


def read_state(app: Any, run_config: dict[str, Any], path: str | Path | None) -> Any:
    """``app.get_state(run_config)``, with a checkpoint that cannot be read back as one
    ``CheckpointError`` (a row of another format, a ``pickle``-typed row, garbage bytes)."""
    try:
        return app.get_state(run_config)
    except (sqlite3.Error, VadetectiveError):
        raise
    except Exception as exc:  # noqa: BLE001 — whatever the deserializer raises on foreign data
        raise CheckpointError(
            f"checkpoint {path} holds a state this version cannot read "
            f"({type(exc).__name__}: {str(exc)[:120]}): {_HINT}"
        ) from None
