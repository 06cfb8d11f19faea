"""What every command shares: the Typer app, the consoles, and turning errors into one sentence.

Every ``VadetectiveError`` (and a missing or unreadable file) becomes ``error: <sentence>`` on
stderr with exit code 2 and no traceback.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

import vadetective
from vadetective.agent.core.errors import VadetectiveError

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


def fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def friendly_errors(fn: F) -> F:
    """Turn expected errors into one sentence on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VadetectiveError as exc:
            raise fail(str(exc)) from None
        except FileNotFoundError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            err_console.print("interrupted: finished work is kept")
            raise typer.Exit(code=130) from None

    return wrapper  # type: ignore[return-value]


def setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_time=False, show_path=False)],
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


def clip(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters, cut at a word boundary with "…"."""
    flat = " ".join(str(text).split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"
