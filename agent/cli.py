"""The ``vadetective`` command line. Library code logs; only this module prints."""

from __future__ import annotations

import typer

import vadetective

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Zero-shot video anomaly detective.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vadetective {vadetective.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Ask a video whether, when, where and why something abnormal happens."""


def main() -> None:
    app()
