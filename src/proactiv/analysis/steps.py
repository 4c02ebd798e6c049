"""The step protocol and registry: every analysis of a run is a :class:`Step` registered here.

A step declares its name, its settings (defaults; a change makes its stored result stale), what it needs
(``records``, ``arrays``, ``model``), the steps whose results it reads (``after``, ``uses``), the kinds of run it
supports, the files it writes, and how to compute, save and load its result — nothing about drawing: its report
section and dashboard panel register against its name one floor up (:mod:`proactiv.views.sections`,
:mod:`proactiv.dashboard.panels.registry`). The pipeline, the CLI, the manifest, the report and the dashboard are
derived from this registry, ordered by the declared dependencies; steps of other installed packages register
through the entry-point group ``proactiv.steps``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from proactiv.analysis.runview import AnalysisError, RunView, open_view
from proactiv.model_copy import load_copy, missing_class
from proactiv.plugins import load_entry_points
from proactiv.schema import INPUT_KINDS, TARGETS
from proactiv.store import MODEL_FILE, Run, RunError, write_parquet

#: what a step may need besides earlier steps' results: ``records`` (``ctx.view``; every run has them),
#: ``arrays`` (kept xT and x̂T: the step is skipped in runs that kept none), ``model`` (``ctx.model()``)
NEEDS = frozenset({"records", "arrays", "model"})


class StepContext:
    """What a step may use: the run, its records in DuckDB (``view``, opened on first use), the results of
    the steps named in its ``after`` (``results[name]``, None when that step was skipped), ``model()`` and
    ``task()`` (the model and the raw inputs, rebuilt)."""

    def __init__(
        self,
        run: Run,
        view: RunView | None = None,
        results: dict[str, Any] | None = None,
        device: str = "auto",
    ):
        self.run = run
        self.results: dict[str, Any] = dict(results or {})
        self.device = device
        self._view = view
        self._model = None
        self._task = None

    def task(self):
        """The run's model and raw inputs rebuilt (:meth:`proactiv.store.Run.task`), once per context, with the
        model on ``device``; a run that cannot rebuild them makes the step that asked a skipped step."""
        if self._task is None:
            self._task = self._rebuild("task", self.run.task)
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
            self._model = self._rebuild("model", lambda: self.run.model(device=self.device))
        return self._model

    def _rebuild(self, what: str, rebuild: Callable[[], Any]) -> Any:
        """``rebuild()``, a run that cannot rebuild its ``what`` (e.g. its model's class cannot be imported here)
        raised as :class:`AnalysisError`."""
        try:
            return load_copy(self.run, rebuild)
        except (RunError, ValueError) as err:
            raise AnalysisError(f"cannot rebuild the {what} of run {self.run.path}: {err}") from err


class Step:
    """One analysis behind the step protocol (subclass it, set the class attributes, implement
    ``compute``, ``save`` and ``load``; ``note`` and ``instance_columns`` are optional)."""

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
    #: the input kinds (:data:`proactiv.schema.INPUT_KINDS`) and targets (:data:`proactiv.schema.TARGETS`) of the
    #: runs it computes on; on other runs ``compute`` raises :class:`AnalysisError` saying why (a skipped step)
    inputs: frozenset[str] = frozenset(INPUT_KINDS)
    targets: frozenset[str] = frozenset(TARGETS)
    #: result columns that measure the machine, not the run (e.g. seconds spent): left out when results are
    #: compared for determinism
    volatile: tuple[str, ...] = ()

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


class TableStep(Step):
    """A step whose result is one table, stored as the Parquet file ``files[0]``."""

    def save(self, result: pd.DataFrame, folder: Path) -> None:
        write_parquet(folder / self.files[0], result)

    def load(self, folder: Path) -> pd.DataFrame:
        return pd.read_parquet(folder / self.files[0])


_REGISTRY: dict[str, Step] = {}
#: the entry-point group through which other installed packages register steps (loaded on first use)
ENTRY_POINTS = "proactiv.steps"


def register(step: Step) -> Step:
    """Add ``step`` to the registry; returns it. The steps it reads may be registered later: the order is
    derived from the dependencies when the registry is read (:func:`registered`)."""
    if not step.name.isidentifier():
        raise ValueError(f"step name {step.name!r} must be an identifier (it is used as NAME.KEY in --set)")
    if step.name in _REGISTRY:
        raise ValueError(f"an analysis step named {step.name!r} is already registered")
    unknown = sorted(set(step.needs) - NEEDS)
    if unknown:
        raise ValueError(f"step {step.name}: unknown needs {unknown}; a step may need {sorted(NEEDS)}")
    kinds = sorted(set(step.inputs) - set(INPUT_KINDS)) + sorted(set(step.targets) - set(TARGETS))
    if kinds:
        raise ValueError(
            f"step {step.name}: unknown run kinds {kinds}; inputs are {list(INPUT_KINDS)}, targets {list(TARGETS)}"
        )
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
    load_entry_points(ENTRY_POINTS)
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(s.name for s in registered(plugins=False))
        raise KeyError(f"no analysis step {name!r}; registered steps: {known}") from None


#: how much a need costs, for ordering: steps on records alone run first, then steps reading arrays, then the model's
COST = {"records": 0, "arrays": 1, "model": 2}


def dependency_order(steps: list[Step]) -> list[Step]:
    """``steps`` with every step after the steps it reads (``after`` and ``uses``) — a topological sort whose
    ties go to the cheapest step (by its costliest need: records, arrays, model), then to the given order, so
    the quick results come first. A dependency missing from ``steps`` or a cycle is refused, naming the steps."""
    names = {s.name for s in steps}
    for step in steps:
        for dep in (*step.after, *step.uses):
            if dep not in names:
                raise ValueError(f"step {step.name} reads step {dep!r}, which is not registered")
    rank = {s.name: (max(COST[n] for n in s.needs | {"records"}), k) for k, s in enumerate(steps)}
    done: list[Step] = []
    placed: set[str] = set()
    waiting = list(steps)
    while waiting:
        ready = [s for s in waiting if placed.issuperset((*s.after, *s.uses))]
        if not ready:
            cycle = "; ".join(
                f"{s.name} reads {[d for d in (*s.after, *s.uses) if d not in placed]}" for s in waiting
            )
            raise ValueError(f"analysis steps read each other in a cycle: {cycle}")
        first = min(ready, key=lambda s: rank[s.name])
        done.append(first)
        placed.add(first.name)
        waiting.remove(first)
    return done


#: the one line that gives a sweep a model it can rebuild when the model itself cannot be kept with the run
MODEL_SPEC_LINE = (
    "pv.sweep(model, pv.TaskData(inputs, labels, model_spec={'source': 'spec', 'model': "
    "{'factory': 'my_package.models:build', 'weights': 'weights.pt'}}), grid, out)"
)


def missing_without_model(run: Run) -> str | None:
    """What a run that cannot rebuild its model goes without, in a sentence for the report's summary and the
    dashboard's overview: the steps that need the model, why it was not kept (or why the copy it kept cannot be
    loaded in this process), and the line that enables them; None when the run can rebuild its model."""
    if run.schema.model is None:
        why = f"it ({run.header.get('model_note') or 'the sweep kept no way to rebuild it'})"
        enable = (
            f"sweep again with a model the run can rebuild, e.g. from a factory: {MODEL_SPEC_LINE} (or a "
            "TorchScript file: model_spec={'source': 'spec', 'model': {'torchscript': 'model.ts'}}, or a "
            "config's model: section)"
        )
    else:
        missing = missing_class(run.path / MODEL_FILE) if run.schema.model.get("source") == "run" else None
        if missing is None:
            return None
        why, enable = f"it here (the copy it kept cannot be loaded: {missing.why})", missing.remedy
    titles = [s.title for s in registered() if "model" in s.needs]
    return (
        f"Missing analyses: {', '.join(titles)}. They need the model, and this run cannot rebuild {why}. "
        f"To enable them, {enable}."
    )


def registered(plugins: bool = True) -> list[Step]:
    """The registered steps, every step after the steps it reads (registration order breaks ties); with
    ``plugins``, after loading the steps of installed packages (entry-point group ``proactiv.steps``)."""
    if plugins:
        load_entry_points(ENTRY_POINTS)
    return dependency_order(list(_REGISTRY.values()))
