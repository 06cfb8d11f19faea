"""`vadetective models list|pull`: the models of each profile."""

from __future__ import annotations

import typer
from rich.table import Table

from vadetective.agent.cli.common import (
    friendly_errors,
    models_app,
    out_console,
    safe,
)


@models_app.command("list")
@friendly_errors
def models_list(
    profile: str | None = typer.Option(None, "--profile", "-p", help="Only this profile's models."),
) -> None:
    """Show each profile's models and whether they are in the local cache."""
    from vadetective.tools.models import list_models

    table = Table("backend", "model", "profiles", "cached", "where / note")
    for m in list_models(profile):
        table.add_row(
            m.backend,
            safe(m.model_id),
            ", ".join(m.profiles),
            "[green]yes[/]" if m.present else "[red]no[/]",
            safe(m.local_path or m.note),
        )
    out_console.print(table)
    out_console.print(
        "[dim]classical needs no models. Download the rest with `vadetective models pull --profile local`.[/]"
    )


@models_app.command("pull")
@friendly_errors
def models_pull(
    profile: str | None = typer.Option(
        "local", "--profile", "-p", help="Download every model of this profile."
    ),
    model: list[str] | None = typer.Option(
        None, "--model", "-m", help="Download this model id (repeatable)."
    ),
) -> None:
    """Download models into the local cache (needs the Hugging Face hub)."""
    from rich.progress import Progress

    from vadetective.tools.models import pull_models

    with Progress(console=out_console) as progress:
        task = progress.add_task("downloading", total=None)

        def report(name: str, done: int, total: int) -> None:
            progress.update(
                task, completed=done, total=total, description=f"downloading {safe(name)}"
            )

        pulled = pull_models(
            profile=None if model else profile, model_ids=model or None, progress=report
        )
    for p in pulled:
        out_console.print(f"cached {safe(p)}", highlight=False)
