"""Untrusted text made safe for a terminal.

File names, questions, manifest ids, error messages and everything a planner wrote can hold
terminal control sequences (``ESC [2J`` clears the screen, ``ESC ]0;…`` retitles the window,
``\\r`` overwrites a line, bidi overrides reorder what is shown). ``printable`` shows every such
character as a visible escape (``\\x1b``) instead of sending it to the terminal; tabs and
newlines stay. Rich markup is a separate concern, handled where rich prints (``agent.cli``).
"""

from __future__ import annotations

import re
from typing import Any

# C0 controls except tab and newline, DEL, C1 controls (U+009B is a one-byte CSI), and the
# invisible direction marks and overrides.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``str(text)`` with every terminal control character shown as a visible escape."""
    return _UNPRINTABLE.sub(_escape, str(text))


def printable_data(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with ``printable`` applied to every string."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_data(k): printable_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable_data(v) for v in value]
    return value
