"""The ``proactiv`` command: sweep, info, transforms."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Where a model breaks under input transformations."
)
console = Console()
err_console = Console(stderr=True)


def _fail(err: Exception) -> None:
    err_console.print(f"[bold red]error:[/] {err}", highlight=False, markup=True)
    raise typer.Exit(2)


@app.command()
def sweep(
    config: Annotated[Path, typer.Argument(help="YAML sweep config")],
    out: Annotated[Path, typer.Option("--out", "-o", help="run directory to write")],
    device: Annotated[str, typer.Option(help="auto | cpu | cuda[:N]")] = "auto",
    resume: Annotated[bool, typer.Option("--resume", help="continue an interrupted run")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Project every instance at every grid point of CONFIG and store the records in OUT."""
    from proactiv.config import load_config
    from proactiv.store import RunError
    from proactiv.sweep import sweep_config

    try:
        cfg = load_config(config)
        run = sweep_config(cfg, out, device=device, resume=resume, progress=progress)
    except (ValueError, TypeError, RunError) as err:
        _fail(err)
    console.print(f"run written to [bold]{run.path}[/] ({len(run.records)} records)")


@app.command()
def info(run: Annotated[Path, typer.Argument(help="run directory")]) -> None:
    """Summarise a run: counts, accuracy per transform value, converged fraction."""
    from proactiv.store import RunError, open_run
    from proactiv.summary import format_table, summarize

    try:
        r = open_run(run)
        s = summarize(r)
    except (ValueError, RunError) as err:
        _fail(err)
    typer.echo(f"{r.path}  status: {s['status']}")
    typer.echo(
        f"records: {s['records']} of {s['expected_records']}  ({s['instances']} instances x {s['points']} points)"
    )
    typer.echo("grid: " + ", ".join(f"{t.column} in {t.values}" for t in r.grid.transforms))
    typer.echo(format_table(s["overall"]))
    for col, table in s["per_transform"].items():
        typer.echo(f"\n{col}")
        typer.echo(format_table(table))


@app.command()
def transforms() -> None:
    """List the registered transforms with their parameter, unit, range and identity value."""
    import proactiv.transforms as T

    for name in T.names():
        cls = T.base._REGISTRY[name]
        p = cls.param
        typer.echo(
            f"{name:14s} {p.name} in [{p.low}, {p.high}] {p.unit}, identity {p.identity}  ({cls.domain})"
        )


def main() -> None:
    app(prog_name="proactiv")


if __name__ == "__main__":
    sys.exit(main())
