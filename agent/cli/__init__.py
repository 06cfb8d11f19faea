"""The ``vadetective`` command line. Library code logs; only this package prints.

Each module registers its commands on the one Typer app in ``common``.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from vadetective.agent.cli import analyze, models, runs, watch
from vadetective.agent.cli.common import app, err_console, safe

__all__ = ["analyze", "app", "main", "models", "runs", "watch"]


def _click_exceptions() -> list[ModuleType]:
    """Where the usage errors come from: typer >= 0.2x carries its own copy of click."""
    found = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            continue
    return found


def _classes(name: str) -> tuple[type[BaseException], ...]:
    return tuple(getattr(m, name) for m in _click_exceptions() if hasattr(m, name))


def main() -> None:
    """Run the command line. A mistyped command, option or value is one ``error: …`` sentence
    and exit code 2, like every other bad input (not click's usage box)."""
    try:
        result = app(standalone_mode=False)
    except _classes("NoArgsIsHelpError") as exc:  # a bare command: its help, as before
        exc.show()  # type: ignore[attr-defined]
        sys.exit(exc.exit_code)  # type: ignore[attr-defined]
    except _classes("ClickException") as exc:
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        message = exc.format_message()  # type: ignore[attr-defined]
        err_console.print(
            f"[bold red]error:[/] {safe(message)}{safe(hint)}", highlight=False, soft_wrap=True
        )
        sys.exit(2)
    except _classes("Abort"):  # Ctrl-C while the command line was still being read
        err_console.print("interrupted")
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)
