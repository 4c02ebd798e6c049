"""A terminal progress display for analysis steps (one bar per step, with elapsed time and ETA)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextmanager
def step_progress(enabled: bool = True) -> Iterator[Callable[[str, float], None]]:
    """Yield ``report(step, fraction)`` for :func:`proactiv.analysis.analyze` that draws one bar per step."""
    columns = (
        TextColumn("[bold]{task.description:<20}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not enabled) as bar:
        tasks: dict[str, int] = {}

        def report(step: str, fraction: float) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=1.0)
            bar.update(tasks[step], completed=fraction)

        yield report
