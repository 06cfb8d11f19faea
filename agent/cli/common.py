"""What every command shares: the Typer app, the consoles, safe printing, and turning errors
into one sentence.

Every ``VadetectiveError`` (and a file-system error) becomes ``error: <sentence>`` on stderr with
exit code 2 and no traceback. Text that came from outside (file names, questions, manifest ids,
error messages, what a planner wrote) goes through ``safe`` before rich prints it: rich markup in
it is escaped (``clip[/]x.mp4`` would otherwise raise ``MarkupError`` and lose the run) and
terminal control sequences are shown, not obeyed. Log lines get the same treatment.
"""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

import vadetective
from vadetective.agent.core.errors import VadetectiveError
from vadetective.agent.core.text import printable

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Zero-shot video anomaly detective: whether, when, where and why.",
)
models_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="List and download the models of each profile."
)
app.add_typer(models_app, name="models")

out_console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def safe(text: object) -> str:
    """Untrusted text ready to go inside rich markup: markup escaped, control characters shown."""
    return escape(printable(text))


def fail(message: str) -> typer.Exit:
    """Print ``error: <message>`` (escaped) on stderr; return the exit (code 2) to raise."""
    err_console.print(f"[bold red]error:[/] {safe(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def os_error_sentence(exc: OSError) -> str:
    """One sentence for a file-system error: what failed, on which path, and why."""
    why = exc.strerror or str(exc) or type(exc).__name__
    where = exc.filename if exc.filename is not None else None
    hints = {
        errno.ENOSPC: "free some space or choose another --out",
        errno.EACCES: "check the permissions or choose another --out",
        errno.EROFS: "choose a writable --out",
        errno.ENAMETOOLONG: "use a shorter name",
    }
    hint = hints.get(exc.errno or -1)
    text = f"{why}: {where}" if where is not None else why
    return text[0].lower() + text[1:] + (f" ({hint})" if hint else "")


def friendly_errors(fn: F) -> F:
    """Turn expected errors into one sentence on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VadetectiveError as exc:
            raise fail(str(exc)) from None
        except FileNotFoundError as exc:
            raise fail(str(exc) if exc.filename is None else os_error_sentence(exc)) from None
        except OSError as exc:  # read-only or full disk, a name too long, a folder for a file…
            raise fail(os_error_sentence(exc)) from None
        except KeyboardInterrupt:
            err_console.print("interrupted: finished work is kept")
            raise typer.Exit(code=130) from None

    return wrapper  # type: ignore[return-value]


class _PrintableRecords(logging.Filter):
    """Log messages carry file names and model output: show their control characters."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = printable(record.getMessage()), None
        return True


def setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    handler = RichHandler(console=err_console, show_time=False, show_path=False, markup=False)
    handler.addFilter(_PrintableRecords())
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[handler],
        force=True,
    )


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vadetective {vadetective.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens inside."),
) -> None:
    """Ask a video whether, when, where and why something abnormal happens."""
    setup_logging(verbose)
