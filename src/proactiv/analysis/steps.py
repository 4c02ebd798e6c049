"""The step protocol and registry: every analysis of a run is a :class:`Step` registered here.

A step declares its name, its settings (defaults; a change makes its stored result stale), what it needs
(``records``, ``arrays``, ``model``), the steps whose results it reads (``after``), the files it writes, and
how to compute, save and load its result. It may add a report section and a dashboard panel. The pipeline
(:mod:`proactiv.analysis.pipeline`), the CLI, the manifest, the report and the dashboard are derived from
this registry, so a new analysis is one module (its step registered at import) and its test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from proactiv.analysis.runview import AnalysisError, RunView, open_view
from proactiv.store import Run, RunError, write_parquet

#: what a step may need besides earlier steps' results: ``records`` (``ctx.view``; every run has them),
#: ``arrays`` (kept xT and x̂T: the step is skipped in runs that kept none), ``model`` (``ctx.model()``)
NEEDS = frozenset({"records", "arrays", "model"})


class StepContext:
    """What a step may use: the run, its records in DuckDB (``view``, opened on first use), the results of
    the steps named in its ``after`` (``results[name]``, None when that step was skipped), ``model()`` and
    ``task()`` (the model and the raw inputs, rebuilt); in a report section also ``figure(fig, caption, alt)``,
    which places a plotly figure in the page and returns its HTML."""

    def __init__(
        self,
        run: Run,
        view: RunView | None = None,
        results: dict[str, Any] | None = None,
        device: str = "auto",
        figure: Callable[..., str] | None = None,
    ):
        self.run = run
        self.results: dict[str, Any] = dict(results or {})
        self.device = device
        self.figure = figure
        self._view = view
        self._model = None
        self._task = None

    def task(self):
        """The run's model and raw inputs rebuilt (:meth:`proactiv.store.Run.task`), once per context, with the
        model on ``device``; a run that cannot rebuild them makes the step that asked a skipped step."""
        if self._task is None:
            try:
                self._task = self.run.task()
            except (RunError, ValueError) as err:
                raise AnalysisError(f"cannot rebuild the task of run {self.run.path}: {err}") from err
            from proactiv.device import resolve_device

            self._task.model = self._task.model.to(resolve_device(self.device)).eval()
        return self._task

    @property
    def view(self) -> RunView:
        if self._view is None:
            self._view = open_view(self.run)
        return self._view

    def model(self):
        """The run's model rebuilt on ``device`` (once per context); a run that cannot rebuild it makes the
        step that asked a skipped step, with the reason as its note."""
        if self._model is None:
            try:
                self._model = self.run.model(device=self.device)
            except (RunError, ValueError) as err:
                raise AnalysisError(f"cannot rebuild the model of run {self.run.path}: {err}") from err
        return self._model


class Step:
    """One analysis behind the step protocol (subclass it, set the class attributes, implement
    ``compute``, ``save`` and ``load``; ``note``, ``report_section`` and ``panel`` are optional)."""

    #: identifier used in the manifest, the CLI (``--step``, ``--set NAME.KEY=VALUE``) and ``Analysis[name]``
    name: str
    #: what people call it (report headings, dashboard tabs, ``proactiv analyze --list``)
    title: str
    #: settings and their defaults; a change of any makes the stored result stale
    settings: dict[str, Any] = {}
    #: subset of :data:`NEEDS`
    needs: frozenset[str] = frozenset({"records"})
    #: names of earlier steps whose results ``compute`` reads from ``ctx.results``
    after: tuple[str, ...] = ()
    #: names of earlier steps whose results it uses when they have one (``ctx.results[name]`` may be None);
    #: a new result of theirs makes this step stale, but asking for this step does not compute them
    uses: tuple[str, ...] = ()
    #: the files ``save`` writes into ``RUN/analysis/``
    files: tuple[str, ...] = ()
    #: bump when what the step computes changes, so results stored by an older version count as stale
    version: int = 1
    #: a ``proactiv`` sub-command that computes just this step (e.g. ``proactiv cka RUN``); None: none
    command: str | None = None

    def compute(self, ctx: StepContext, settings: dict[str, Any], progress: Callable[[float], None]) -> Any:
        """The step's result; raise :class:`AnalysisError` to skip it for this run (the message says why)."""
        raise NotImplementedError

    def save(self, result: Any, folder: Path) -> None:
        raise NotImplementedError

    def load(self, folder: Path) -> Any:
        raise NotImplementedError

    def note(self, result: Any) -> str:
        """What people should know about this result (what was sampled, which rule was used …)."""
        return ""

    def instance_columns(self, result: Any) -> pd.DataFrame | None:
        """Per-instance columns (``instance`` + named columns) that error slices and the dashboard's filters can
        use like record columns (None: none)."""
        return None

    def report_section(self, result: Any, ctx: StepContext) -> str | None:
        """An HTML fragment for the report (None: no section)."""
        return None

    def panel(self, result: Any, ctx: StepContext):
        """A Dash component for a dashboard tab (None: no tab)."""
        return None

    def callbacks(self, app, run_of: Callable[[Any], Any]) -> None:
        """Register the Dash callbacks that make this step's tab interactive (called once when its tab is in
        the page; ``run_of(index)`` is the dashboard's data of the chosen run, the stores ``filter`` and
        ``run`` are there to listen to). Default: none."""


class TableStep(Step):
    """A step whose result is one table, stored as the Parquet file ``files[0]``."""

    def save(self, result: pd.DataFrame, folder: Path) -> None:
        write_parquet(folder / self.files[0], result)

    def load(self, folder: Path) -> pd.DataFrame:
        return pd.read_parquet(folder / self.files[0])


_REGISTRY: dict[str, Step] = {}


def register(step: Step) -> Step:
    """Add ``step`` to the registry (after the steps it reads); returns it."""
    if not step.name.isidentifier():
        raise ValueError(f"step name {step.name!r} must be an identifier (it is used as NAME.KEY in --set)")
    if step.name in _REGISTRY:
        raise ValueError(f"an analysis step named {step.name!r} is already registered")
    unknown = sorted(set(step.needs) - NEEDS)
    if unknown:
        raise ValueError(f"step {step.name}: unknown needs {unknown}; a step may need {sorted(NEEDS)}")
    missing = [a for a in (*step.after, *step.uses) if a not in _REGISTRY]
    if missing:
        raise ValueError(f"step {step.name} reads {missing}: register those steps first")
    if not step.files:
        raise ValueError(f"step {step.name} names no files; staleness and loading go by its files")
    _REGISTRY[step.name] = step
    return step


def unregister(name: str) -> None:
    """Remove a step (e.g. one a test registered); refused while another step reads its results."""
    readers = [s.name for s in _REGISTRY.values() if name in (*s.after, *s.uses)]
    if readers:
        raise ValueError(f"steps {readers} read {name!r}; unregister them first")
    get(name)
    del _REGISTRY[name]


def get(name: str) -> Step:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no analysis step {name!r}; registered steps: {', '.join(_REGISTRY)}") from None


def registered() -> list[Step]:
    """The registered steps in registration order (every step comes after the steps it reads)."""
    return list(_REGISTRY.values())
