"""One look for every long step: a rich progress bar with a count or a percentage, elapsed time and ETA."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def _bar(name: TextColumn, done: tuple[ProgressColumn, ...], enabled: bool) -> Progress:
    """``name``, a bar, ``done`` (how far), the elapsed time and the ETA; ``enabled=False`` draws nothing."""
    columns = (name, BarColumn(), *done, TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    return Progress(*columns, disable=not enabled)


def progress_bar(unit: str, enabled: bool = True) -> Progress:
    """A progress bar counting ``unit`` (e.g. "projections", "clips"); ``enabled=False`` draws nothing."""
    return _bar(TextColumn("[bold]{task.description}"), (MofNCompleteColumn(), TextColumn(unit)), enabled)


@contextmanager
def step_progress(enabled: bool = True) -> Iterator[Callable[[str, float], None]]:
    """Yield ``report(step, fraction)`` for :func:`proactiv.analysis.analyze` that draws one bar per analysis
    step, with the percentage done."""
    with _bar(TextColumn("[bold]{task.description:<20}"), (TaskProgressColumn(),), enabled) as bar:
        tasks: dict[str, int] = {}

        def report(step: str, fraction: float) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=1.0)
            bar.update(tasks[step], completed=fraction)

        yield report
