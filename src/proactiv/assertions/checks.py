"""CHECKS.yaml: a list of contracts a model must honour, the sweep config they are checked on, and running them.

A checks file names a sweep config (a path relative to the checks file) and a list of checks, each a contract
of :mod:`proactiv.assertions.contracts` by ``kind`` with that contract's arguments::

    config: kws_demo.yaml
    checks:
      - {kind: accuracy_at, point: {snr_db: .inf, speed: 1, pitch: 0}, at_least: 0.9, name: clean accuracy}
      - {kind: breakpoint_beyond, transform: snr_db, value: 20}
      - {kind: moves_at_most, d_x: 3}            # soft: listed for review, never a failure

The run the checks read is a given one (refused when it swept another model) or a sweep of the config with
the model under test, resumed when it exists, so checking the same model twice sweeps nothing the second time.
A given run is read on its own grid: the config is then not read (a checks file meant only for given runs may
leave it out), except to build the model under test when one is given too, to compare it with the run's.

A checks file needs at least one hard check (a contract); soft checks list records for review and never fail,
so a file of soft checks alone could never fail and is refused. Each contract holds, is violated or was not
checked (:class:`~proactiv.assertions.contracts.ContractResult`); ``proactiv check`` fails on a violation and,
unless ``--allow-unchecked``, on a hard check that was not checked.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from proactiv.analysis.breakpoints import DEFAULT_THRESHOLD
from proactiv.config import ConfigError, ModelSpec, SweepConfig, _format, load_config

#: where ``proactiv check`` sweeps when no run is given: a folder per (model fingerprint, config)
CHECK_RUNS = Path("runs") / "checks"


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: what the table, the JUnit test case and the pytest item call this check (default: kind and arguments)
    name: str | None = None


class AccuracyAt(_Check):
    kind: Literal["accuracy_at"]
    point: dict[str, float] = Field(min_length=1)
    at_least: float = Field(ge=0, le=1)
    scope: str = "all"


class Monotonic(_Check):
    kind: Literal["monotonic"]
    transform: str
    scope: str = "all"
    tolerance: float = Field(0.0, ge=0)


class BreakpointBeyond(_Check):
    kind: Literal["breakpoint_beyond"]
    transform: str
    value: float
    scope: str = "all"
    threshold: float = Field(DEFAULT_THRESHOLD, gt=0, lt=1)


class NoWorseThan(_Check):
    kind: Literal["no_worse_than"]
    #: the baseline run (relative to the checks file); ``--baseline`` overrides it
    baseline: Path | None = None
    tolerance: float = Field(0.02, ge=0)
    scope: str = "all"


class Invariant(_Check):
    kind: Literal["invariant"]
    #: a transform spec like a grid entry, ``{type: gain, gain_db: [-6, 6]}``
    transform: dict
    max_flip_rate: float = Field(0.05, ge=0, le=1)
    #: check on the first this many of the run's instances (default all)
    instances: int | None = Field(None, ge=1)

    @field_validator("transform")
    @classmethod
    def _builds(cls, v):
        from proactiv.assertions.contracts import _build

        _build(v, None)  # a ValueError names the transform or its option
        return v


class Soft(_Check):
    kind: Literal["soft"]
    where: str
    rank_by: str | None = None
    top: int = Field(10, ge=1)


class MovesAtMost(_Check):
    kind: Literal["moves_at_most"]
    d_x: float = Field(ge=0)
    top: int = Field(10, ge=1)


class KeepsCleanPrediction(_Check):
    kind: Literal["keeps_clean_prediction"]
    top: int = Field(10, ge=1)


Check = Annotated[
    AccuracyAt
    | Monotonic
    | BreakpointBeyond
    | NoWorseThan
    | Invariant
    | Soft
    | MovesAtMost
    | KeepsCleanPrediction,
    Field(discriminator="kind"),
]
SOFT_KINDS = ("soft", "moves_at_most", "keeps_clean_prediction")


class ChecksFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: the sweep config the checks run on (relative to the checks file); not needed to check a given run
    config: Path | None = None
    checks: list[Check] = Field(min_length=1)


def _show(value) -> str:
    """An argument of a check for its default name: ``-20``, ``{type: gain, gain_db: [-20, 20]}``."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_name(check: _Check) -> str:
    """The check's ``name``, or its kind and arguments: ``breakpoint_beyond transform=snr_db value=20``."""
    if check.name:
        return check.name
    args = check.model_dump(exclude={"kind", "name"}, exclude_defaults=True)
    args = {k: v for k, v in args.items() if not isinstance(v, Path)}  # a baseline's path: in the message
    return " ".join([check.kind, *(f"{k}={_show(v)}" for k, v in args.items())])


def load_checks(path: str | os.PathLike) -> ChecksFile:
    """Read and validate a checks file; paths inside are made relative to it. Errors name the file, the check
    (``checks[2].at_least``) and the bad value."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: checks file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with 'config' and 'checks', got {type(data).__name__}")
    try:
        checks = ChecksFile.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format(err, str(path)).replace("invalid config", "invalid checks", 1)) from None
    if all(c.kind in SOFT_KINDS for c in checks.checks):
        kinds = ", ".join(sorted({c.kind for c in checks.checks}))
        raise ConfigError(
            f"{path}: no hard check, only soft ones ({kinds}), which list records for review and never fail, so "
            "the file could never fail; add a contract (accuracy_at, monotonic, breakpoint_beyond, "
            "no_worse_than, invariant)"
        )
    base = path.resolve().parent
    if checks.config is not None:
        checks.config = Path(os.path.normpath(base / checks.config))
    for check in checks.checks:
        if isinstance(check, NoWorseThan) and check.baseline is not None:
            check.baseline = Path(os.path.normpath(base / check.baseline))
    return checks


# ------------------------------------------------------------------------------------- model and run
def model_spec(model: str | os.PathLike) -> ModelSpec:
    """The config's ``model`` for a model given on the command line: a ``.onnx`` file (``onnx``), a TorchScript
    file (``torchscript``), else a directory or file saved by a task's training (``path``, e.g. ``proactiv kws
    train``)."""
    from proactiv.models import is_torchscript

    model = Path(model)
    if not model.exists():
        raise ConfigError(f"--model {model}: no such file or directory")
    if model.suffix.lower() == ".onnx":
        return ModelSpec(onnx=model)
    if model.is_file() and is_torchscript(model):
        return ModelSpec(torchscript=model)
    return ModelSpec(path=model)


def _fingerprint(cfg: SweepConfig) -> str:
    """The weights fingerprint of the model a config sweeps (as the sweep computes it)."""
    from proactiv.fingerprint import model_hash
    from proactiv.tasks import load_task

    return model_hash(load_task(cfg).model)


def prepare_run(
    checks: ChecksFile,
    model: str | os.PathLike | None = None,
    run: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    device: str = "auto",
    progress: bool = True,
):
    """The run the checks read: ``run`` (refused when ``model`` is given and is not the model it swept), or
    the config swept with ``model`` into ``out`` (default ``runs/checks/<model fingerprint>-<config hash>``),
    resuming what is there. The config is read only to sweep or to build ``model`` as it sweeps it."""
    from proactiv.store import RunError, open_run
    from proactiv.sweep import sweep_config

    if run is not None and model is None:
        return open_run(run)
    if checks.config is None:
        why = "to build --model as the sweep does" if run is not None else "to sweep"
        raise ConfigError(
            f"the checks file names no sweep config (config: in the checks file), needed {why}; give --run RUN "
            + ("alone" if run is not None else "to check a run")
        )
    cfg = load_config(checks.config)
    if model is not None:
        cfg.model = model_spec(model)
    if run is not None:
        opened = open_run(run)
        if model is not None:
            have, want = opened.fingerprints.get("model"), _fingerprint(cfg)
            if have != want:
                raise RunError(
                    f"run {opened.path} swept another model (weights fingerprint {have}) than {model} ({want}); "
                    "give that model's run, or leave out --run to sweep this model"
                )
        return opened
    if out is None:
        digest = hashlib.sha256(cfg.model_dump_json(exclude={"model"}).encode()).hexdigest()[:8]
        out = CHECK_RUNS / f"{_fingerprint(cfg)}-{checks.config.stem}-{digest}"
    return sweep_config(cfg, out, device=device, resume=True, progress=progress)


# ---------------------------------------------------------------------------------------- running
@dataclass
class Outcome:
    """One check's result, its name and how long it took (seconds)."""

    name: str
    kind: str
    result: object  # ContractResult or SoftResult
    seconds: float

    @property
    def soft(self) -> bool:
        return self.kind in SOFT_KINDS

    @property
    def status(self) -> str:
        """``"holds"``, ``"violated"``, ``"not checked"``, or ``"soft"`` (listed for review, never a failure)."""
        return "soft" if self.soft else self.result.status

    @property
    def failed(self) -> bool:
        """The contract is violated (a check that was not checked is :attr:`unchecked`, not failed)."""
        return self.status == "violated"

    @property
    def unchecked(self) -> bool:
        return self.status == "not checked"


class Checker:
    """Evaluates checks against one run (and a baseline run), opening the run's records once."""

    def __init__(self, run, baseline=None):
        from proactiv.analysis.runview import open_view

        self.run = run
        self.view = open_view(run)
        self.baseline = baseline
        self._task = None

    def _baseline(self, check: NoWorseThan):
        from proactiv.analysis.runview import AnalysisError

        baseline = self.baseline if self.baseline is not None else check.baseline
        if baseline is None:
            raise AnalysisError(
                f"check {check_name(check)!r}: no baseline run; give --baseline RUN or baseline:"
            )
        return baseline

    def evaluate(self, check: _Check) -> Outcome:
        from proactiv.assertions import contracts as c

        name, start, v = check_name(check), time.perf_counter(), self.view
        if isinstance(check, AccuracyAt):
            result = c.accuracy_at(v, check.point, check.at_least, scope=check.scope, name=name)
        elif isinstance(check, Monotonic):
            result = c.monotonic(v, check.transform, scope=check.scope, tolerance=check.tolerance, name=name)
        elif isinstance(check, BreakpointBeyond):
            result = c.breakpoint_beyond(
                v, check.transform, check.value, check.scope, check.threshold, name=name
            )
        elif isinstance(check, NoWorseThan):
            result = c.no_worse_than(v, self._baseline(check), check.tolerance, check.scope, name=name)
        elif isinstance(check, Invariant):
            if self._task is None:
                self._task = self.run.task()
            task, k = self._task, check.instances
            result = c.invariant(task.model, check.transform, None, task.inputs[:k], check.max_flip_rate,
                                 labels=task.labels[:k], frontend=task.frontend, class_names=task.class_names,
                                 seed=int(self.run.config.get("seed", 0)), name=name)  # fmt: skip
        elif isinstance(check, Soft):
            result = c.soft(v, check.where, name=name, rank_by=check.rank_by, top=check.top)
        elif isinstance(check, MovesAtMost):
            result = c.moves_at_most(v, check.d_x, top=check.top, name=name)
        else:
            result = c.keeps_clean_prediction(v, top=check.top, name=name)
        return Outcome(name, check.kind, result, time.perf_counter() - start)


def run_checks(checks: ChecksFile, run, baseline=None) -> list[Outcome]:
    """Evaluate every check of ``checks`` on ``run``."""
    checker = Checker(run, baseline)
    return [checker.evaluate(check) for check in checks.checks]


def _figure(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4g}"


def results_table(outcomes: list[Outcome]):
    """A rich table: check, result (PASS, FAIL, NOT CHECKED, or the number of records a soft rule lists),
    measured, limit, message (for a check not checked, why)."""
    from rich.table import Table

    table = Table(title="proactiv checks", show_lines=False)
    for col in ("check", "result", "measured", "limit", "message"):
        table.add_column(col, overflow="fold")
    for o in outcomes:
        r = o.result
        if o.soft:
            state, measured, limit = f"[yellow]SOFT {r.n_violations}[/]", str(r.n_violations), "review"
        else:
            state = {"holds": "[green]PASS[/]", "violated": "[bold red]FAIL[/]"}.get(
                r.status, "[bold magenta]NOT CHECKED[/]"
            )
            measured, limit = _figure(r.measured), _figure(r.limit)
        table.add_row(o.name, state, measured, limit, r.message)
    return table


def check_command(
    checks: Path,
    model: Path | None,
    baseline: Path | None,
    run: Path | None,
    out: Path | None,
    junit: Path | None,
    device: str,
    progress: bool,
    allow_unchecked: bool = False,
) -> int:
    """What ``proactiv check`` does; returns its exit code: 0 every hard check holds, 1 a check is violated or
    (unless ``allow_unchecked``) was not checked, 2 the input is bad (the error is printed)."""
    from rich.console import Console
    from rich.markup import escape

    from proactiv.assertions.junit import write_junit
    from proactiv.store import RunError, open_run

    console, errors = Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)
    try:
        spec = load_checks(checks)
        swept = prepare_run(spec, model=model, run=run, out=out, device=device, progress=progress)
        outcomes = run_checks(spec, swept, open_run(baseline) if baseline is not None else None)
    except (ValueError, TypeError, OSError, RunError) as err:
        errors.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False)
        return 2
    console.print(f"checks of {checks} on run {swept.path}", highlight=False, markup=False)
    console.print(results_table(outcomes))
    if junit is not None:
        console.print(f"JUnit XML written to {write_junit(outcomes, junit)}", highlight=False, markup=False)
    failed = [o.name for o in outcomes if o.failed]
    unchecked = [o.name for o in outcomes if o.unchecked]
    held = sum(o.status == "holds" for o in outcomes)
    review = sum(o.result.n_violations for o in outcomes if o.soft)
    console.print(
        f"{held} hold, {len(failed)} violated, {len(unchecked)} not checked; soft checks list {review} records "
        "for review",
        markup=False,
    )
    if failed:
        console.print(f"violated: {', '.join(failed)}", markup=False)
    if unchecked:
        allowed = (
            "allowed by --allow-unchecked"
            if allow_unchecked
            else "a failure; --allow-unchecked lets them pass"
        )
        console.print(f"not checked: {', '.join(unchecked)} ({allowed})", markup=False)
    return 1 if failed or (unchecked and not allow_unchecked) else 0
