"""``proactiv selftest``: plant known faults in tiny models built on the spot, sweep them and analyse the runs
through the real pipeline (sweep → store → analysis steps → stored results read back), and say, per view,
whether it found the fault planted for it.

Each case (a :class:`Plant`) is one planted run with faults known by construction and the views judged on it;
every module of this package registers its cases (:func:`register_plant`), so a new case is one module:

- :mod:`~proactiv.selftest.level` (``breakpoint``, ``group``): a level gate that flips each instance at its own
  gain, and a speaker it always gets wrong — breakpoints, instance breakpoints, error slices, the surrogate;
- :mod:`~proactiv.selftest.cue` (``patch``, ``band``): a class whose only cue is a small image patch or two
  mel bands — bias maps;
- :mod:`~proactiv.selftest.cka` (``twist``): layers that a gain only rotates and scales, then one it scrambles — CKA;
- :mod:`~proactiv.selftest.radius` (``linear_radius``, ``relu_radius``): radii known exactly (closed form, exact
  enumeration) — found and certified radius;
- :mod:`~proactiv.selftest.attribution` (``attr_<method>``): a patch that is the only evidence, and noise whose
  bright specks the model responds to — attributions and their shift, per method.
- :mod:`~proactiv.selftest.faithfulness` (``faith_handset``, ``faith_trained``): a patch that is the only evidence
  of a hand-set linear model and of a CNN trained here, and a planted noise "explanation" that ignores the model —
  faithfulness (deletion, model randomisation, infidelity and max-sensitivity).
- :mod:`~proactiv.selftest.anchor` (``anchor_threshold``): a gate that fails below its own gain per instance,
  whatever the noise beside it — anchors (a rule on gain alone, bracketing each planted threshold).

A view that raises is a view that missed: its finding names the error. Steps name the case that proves them
(``Step.selftest``), and the conformance suite checks that the case exists and judges that step.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from proactiv.analysis.pipeline import Analysis, analyze
from proactiv.plugins import import_package
from proactiv.store import Run


@dataclass
class Finding:
    """What one view reported about the fault planted for it: ``status`` is ``pass`` or ``fail``."""

    view: str
    run: str
    fault: str
    found: str
    status: str


@dataclass
class SelftestResult:
    """Every view's finding; ``passed`` when no view missed its fault."""

    findings: list[Finding]
    folder: Path | None
    seconds: float
    failed: list[Finding] = field(init=False)

    def __post_init__(self):
        self.failed = [f for f in self.findings if f.status == "fail"]

    @property
    def passed(self) -> bool:
        return not self.failed

    def status(self, view: str) -> str:
        """The status of ``view`` (``fail`` when any of its findings failed)."""
        mine = [f.status for f in self.findings if f.view == view]
        if not mine:
            raise KeyError(f"no finding for view {view!r}; views: {sorted({f.view for f in self.findings})}")
        return "fail" if "fail" in mine else "pass"


def _verdict(ok: bool) -> str:
    return "pass" if ok else "fail"


@dataclass(frozen=True)
class Check:
    """One view (an analysis step) judged on one planted run."""

    view: str
    fault: str
    judge: Callable[[Run, Analysis], tuple[str, bool]]


@dataclass(frozen=True)
class Plant:
    """One planted run: how it is swept, the views judged on it, the settings of their steps (step → settings, or
    a function of the planted run giving them, for settings that name its files, such as TracIn checkpoints)."""

    name: str
    sweep: Callable[[Path, str], Run]
    checks: tuple[Check, ...]
    settings: dict | Callable[[Run], dict] = field(default_factory=dict)


_PLANTS: dict[str, Plant] = {}


def register_plant(plant: Plant) -> Plant:
    """Add a planted case (refused when one of that name is registered); returns it."""
    if plant.name in _PLANTS:
        raise ValueError(f"a selftest case named {plant.name!r} is already registered")
    _PLANTS[plant.name] = plant
    return plant


def registered_plants() -> tuple[Plant, ...]:
    """Every planted case, in registration order."""
    return tuple(_PLANTS.values())


def proven_views() -> dict[str, list[str]]:
    """View (step name) → the cases that judge it."""
    out: dict[str, list[str]] = {}
    for plant in _PLANTS.values():
        for check in plant.checks:
            cases = out.setdefault(check.view, [])
            if plant.name not in cases:  # a case may judge one view twice (e.g. two faults)
                cases.append(plant.name)
    return out


def _check_plant(plant: Plant, folder: Path, device: str) -> list[Finding]:
    """Sweep one planted run (reusing a complete one in ``folder``), then recompute and judge each view on its
    own, so one view that raises leaves the others judged."""
    run = plant.sweep(folder / plant.name, device)
    findings = []
    for check in plant.checks:
        settings = plant.settings(run) if callable(plant.settings) else plant.settings
        settings = {k: v for k, v in settings.items() if k == check.view}
        try:
            analysis = analyze(run, steps=[check.view], force=True, settings=settings, device=device)
            found, ok = check.judge(run, analysis)
        except Exception as err:  # a view that raises missed its fault
            found, ok = f"raised {type(err).__name__}: {err}", False
        findings.append(Finding(check.view, plant.name, check.fault, found, _verdict(ok)))
    return findings


def run_selftest(
    folder: str | Path | None = None,
    device: str = "auto",
    plants: tuple[Plant, ...] | None = None,
    say: Callable[[str], None] | None = None,
) -> SelftestResult:
    """Plant every fault, sweep, analyse and judge each view.

    ``folder`` keeps the planted runs (a complete run already there is reused, its analyses recomputed); by
    default they go to a temporary directory removed afterwards. ``say`` is told which run is being planted."""
    started = time.perf_counter()
    place = (
        tempfile.TemporaryDirectory(prefix="proactiv-selftest-") if folder is None else nullcontext(folder)
    )
    with place as where:
        where = Path(where)
        where.mkdir(parents=True, exist_ok=True)
        findings = []
        for plant in registered_plants() if plants is None else plants:
            if say:
                say(f"planting {plant.name} …")
            findings += _check_plant(plant, where, device)
    return SelftestResult(
        findings, Path(folder) if folder is not None else None, time.perf_counter() - started
    )


def print_result(result: SelftestResult, console) -> None:
    """The table of view → planted fault → what it found → pass/fail, and a closing line."""
    from rich.table import Table

    table = Table(title="proactiv selftest: does each view find its planted fault?")
    for column in ("view", "run", "planted fault", "found", "result"):
        table.add_column(column, overflow="fold")
    colour = {"pass": "green", "fail": "bold red"}
    for f in result.findings:
        table.add_row(f.view, f.run, f.fault, f.found, f"[{colour[f.status]}]{f.status}[/]")
    console.print(table)
    n = len(result.findings)
    kept = f"; runs kept in {result.folder}" if result.folder is not None else ""
    if result.passed:
        console.print(f"selftest passed: {n} of {n} checks found their planted fault "
                      f"in {result.seconds:.0f} s{kept}", markup=False, highlight=False)  # fmt: skip
    else:
        missed = ", ".join(f"{f.view} ({f.run})" for f in result.failed)
        console.print(f"selftest FAILED: {len(result.failed)} of {n} checks missed their planted fault: "
                      f"{missed}{kept}", markup=False, highlight=False)  # fmt: skip


import_package(__name__, __path__)  # every module registers its cases: a new one needs no line here

#: the registered cases (the built-in ones at import)
PLANTS = registered_plants()


__all__ = [
    "PLANTS", "Check", "Finding", "Plant", "SelftestResult", "print_result", "proven_views", "register_plant",
    "registered_plants", "run_selftest",
]  # fmt: skip
