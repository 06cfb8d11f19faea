"""The ``vadetective`` command line. Library code logs; only this package prints.

Each module registers its commands on the one Typer app in ``common``.
"""

from __future__ import annotations

from vadetective.agent.cli import analyze, models, runs, watch
from vadetective.agent.cli.common import app

__all__ = ["analyze", "app", "main", "models", "runs", "watch"]


def main() -> None:
    app()
