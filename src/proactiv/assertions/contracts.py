"""Contracts: model assertions over a run (or over a model and inputs) that a test or a CI job can hold a model to.

Each contract returns a :class:`ContractResult` whose message names the transform value, the class (scope) and
the measured figure. It holds, is violated, or was **not checked**: the run cannot show what the contract claims
(a value outside the swept range, a class without records, a class too small for the breakpoint rule, two runs
that share no grid point), and ``reason`` says what is missing. No verdict comes from nothing checked:
``bool(result)`` is true only when it holds, so ``assert accuracy_at(...)`` in a plain pytest test fails with
the message or the reason. Contracts over a run read the analyses' curves and breakpoints
(:mod:`proactiv.analysis.breakpoints`) rather than computing accuracies again, so a contract and the report
always agree. Soft assertions (:func:`soft`) never fail: they list the records that break a rule, worst first,
for a person to review.

Scopes: ``"all"`` (every instance), a class name (per-class curves; a class the run names but has no records of
is not checked), or ``"each"`` (all, and every class). Under ``"each"`` the contract is violated when any scope
that could be checked violates it (the message names the worst); otherwise it is **not checked when any scope
could not be checked** (the reason names each such scope and why), since "in every class" was not shown; it
holds only when it holds in every scope.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import torch

from proactiv.analysis.breakpoints import (
    DEFAULT_THRESHOLD,
    breakpoints,
    curves,
    distance_from_identity,
    sides_of_identity,
)
from proactiv.analysis.runview import AnalysisError, RunView, format_value, open_view, q
from proactiv.store import Run
from proactiv.sweep import model_inputs
from proactiv.transforms import Grid, Transform, get

RunLike = Run | str | os.PathLike | RunView
Status = Literal["holds", "violated", "not checked"]
STATUSES: tuple[Status, ...] = ("holds", "violated", "not checked")
_SHOWN = {"holds": "PASS", "violated": "FAIL", "not checked": "NOT CHECKED"}


@dataclass
class ContractResult:
    """The outcome of one contract: its ``status`` (``"holds"``, ``"violated"``, or ``"not checked"`` with a
    ``reason`` naming the transform value, the scope and what is missing), a ``message`` naming where and how
    much, the ``measured`` figure against its ``limit``, and ``details`` (the figures behind it, per scope).
    ``passed`` and ``bool(result)`` are true only when it holds. ``status`` defaults from ``passed``."""

    name: str
    passed: bool
    message: str
    measured: float | None = None
    limit: float | None = None
    details: pd.DataFrame | dict | None = field(default=None, repr=False)
    status: Status | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.status is None:
            self.status = "holds" if self.passed else "violated"
        if self.status not in STATUSES:
            raise ValueError(f"contract {self.name!r}: status {self.status!r}; expected one of {STATUSES}")
        if self.passed != (self.status == "holds"):
            raise ValueError(f"contract {self.name!r}: passed={self.passed} with status {self.status!r}")
        if self.status == "not checked" and not self.reason:
            raise ValueError(f"contract {self.name!r}: a result that was not checked needs a reason")

    @classmethod
    def not_checked(
        cls, name: str, reason: str, limit: float | None = None, details: pd.DataFrame | dict | None = None
    ) -> ContractResult:
        """The result of a contract the run could not check, and why (``message`` is ``"not checked: " + reason``)."""
        return cls(name, False, f"not checked: {reason}", None, limit, details, "not checked", reason)

    def __bool__(self) -> bool:
        return self.status == "holds"

    def __repr__(self) -> str:
        return f"{_SHOWN[self.status]} {self.name}: {self.reason if self.status == 'not checked' else self.message}"

    def check(self) -> ContractResult:
        """Raise ``AssertionError`` with the message (or the reason it was not checked) unless the contract
        holds; return self otherwise."""
        if self.status != "holds":
            raise AssertionError(f"{self.name}: {self.message}")
        return self


@dataclass
class SoftResult:
    """The records that break a soft rule, ranked worst first (``violations``, at most ``top`` rows), out of
    ``n_records``. It is for review and never fails a check; ``bool`` says whether no record broke the rule."""

    name: str
    where: str
    rank_by: str
    n_records: int
    n_violations: int
    violations: pd.DataFrame = field(repr=False)
    message: str = ""
    passed: bool = True  # a soft assertion never fails a check

    def __bool__(self) -> bool:
        return self.n_violations == 0

    def __repr__(self) -> str:
        return f"SOFT {self.name}: {self.message}"


# ------------------------------------------------------------------------------------------------ helpers
def _view(run: RunLike) -> RunView:
    return run if isinstance(run, RunView) else open_view(run)


def _outcome(view: RunView) -> str:
    """The outcome metric of the run's curves ("accuracy", "within_cutoff"), or a clear refusal."""
    if view.correct_metric is None:
        raise AnalysisError(
            f"run {view.run.path}: {view.schema.outcome_label}; contracts on accuracy cannot be checked"
        )
    return view.correct_metric


def _column(view: RunView, transform: str) -> str:
    """The grid column a contract names: ``audio_noise.snr_db``, its parameter ``snr_db`` or transform
    ``audio_noise``."""
    cols = view.grid_columns
    hits = [c for c in cols if transform in (c, c.rsplit(".", 1)[1], c.rsplit(".", 1)[0])]
    if len(hits) != 1:
        why = "is ambiguous" if hits else "is not in the run's grid"
        raise AnalysisError(f"transform {transform!r} {why}; the grid's columns: {', '.join(cols)}")
    return hits[0]


def _grid_value(view: RunView, column: str, value) -> float:
    """``value`` as the grid value it names (``inf``, ``.inf`` and numbers), or an error listing the grid's. A
    value of the run's grid without records yet (an unfinished run) is returned too: contracts say they could not
    check it."""
    swept = next(t.values for t in view.run.grid.transforms if t.column == column)
    values = sorted(set(view.values(column)) | set(swept))
    try:
        wanted = float(value)
    except (TypeError, ValueError):
        wanted = math.nan
    for v in values:
        if v == wanted or (math.isfinite(v) and math.isclose(v, wanted, rel_tol=1e-9, abs_tol=1e-12)):
            return v
    raise AnalysisError(
        f"{column} = {value!r} is not a value of the run's grid; its values: "
        + ", ".join(format_value(v) for v in values)
    )


def _classes(view: RunView) -> list[str]:
    """The run's classes: those of its records, then those its config names without a record."""
    have = [c for c in view.classes if c != "all"]
    named = [str(c) for c in (view.run.class_names or [])] if view.classifier else []
    return have + [c for c in named if c not in have]


def _scopes(view: RunView, scope: str) -> list[str]:
    """The curve scopes a contract looks at (see the module docstring)."""
    classes = _classes(view)
    if scope == "all":
        return ["all"]
    if scope == "each":
        return ["all", *classes]
    if scope in classes:
        return [scope]
    raise AnalysisError(
        f"scope {scope!r}: expected 'all', 'each' or a {view.group_title} of the run: {', '.join(classes) or '(none)'}"
    )


def _where(scope: str) -> str:
    if scope in ("all", "each"):
        return "over all instances" + (" and in every class" if scope == "each" else "")
    return f"for {scope!r}"


def _no_records(view: RunView, scope: str) -> str:
    """Why a scope's curve is empty: a class the run names but never swept, or no records where it looks."""
    if scope != "all" and scope not in view.classes:
        return f"no records (the run names {view.group_title} {scope!r} but holds no record of it)"
    return "no records there"


def _not_checked(
    name: str, claim: str, unchecked: dict[str, str], limit: float | None, details, checked: str = ""
) -> ContractResult:
    """A result that could not be checked: the ``claim`` (transform value), then each scope and what it lacks;
    ``checked`` says how the scopes that could be checked came out."""
    gaps = "; ".join(f"{_where(s)}: {why}" for s, why in unchecked.items())
    return ContractResult.not_checked(
        name, f"{claim}: {gaps}" + (f" ({checked})" if checked else ""), limit, details
    )


def _marginal(table: pd.DataFrame, metric: str, column: str, scope: str) -> pd.DataFrame:
    """One marginal curve of a :func:`~proactiv.analysis.breakpoints.curves` table, sorted by value."""
    sel = (
        (table.metric == metric) & (table.column == column) & (table.condition == "") & (table.scope == scope)
    )
    return table[sel].sort_values("value", ignore_index=True)


# ------------------------------------------------------------------------------------------ over a run
def accuracy_at(
    run: RunLike, point: dict, at_least: float, scope: str = "all", name: str = "accuracy_at"
) -> ContractResult:
    """Accuracy at a grid ``point`` (column → value) must be at least ``at_least``.

    A partial point (some columns left out) means the mean over the left-out parameters' values, i.e. over
    every grid point that matches; a value not in the grid is an error listing the grid's values. A scope
    without records at the point is not checked."""
    view = _view(run)
    metric = _outcome(view)
    if not point:
        raise AnalysisError("accuracy_at: the point names no transform; give e.g. {'snr_db': 10}")
    fixed: dict[str, float] = {}
    for key, value in point.items():
        column = _column(view, str(key))
        fixed[column] = _grid_value(view, column, value)
    first, others = next(iter(fixed)), [c for c in view.grid_columns if c not in fixed]
    table = curves(view, within_others=len(fixed) > 1)
    rows, unchecked = [], {}
    for s in _scopes(view, scope):
        sel = (table.metric == metric) & (table.column == first) & (table.value == fixed[first])
        sel &= table.scope == s
        if len(fixed) == 1:
            sel &= table.condition == ""
        else:  # the conditioned curves of every matching grid point (each holds the other columns fixed)
            rest = [c for c in view.grid_columns if c != first]
            combos = itertools.product(*(view.values(c) for c in others))
            conditions = set()
            for combo in combos:
                at = {**fixed, **dict(zip(others, combo, strict=True))}
                conditions.add(", ".join(f"{c}={format_value(at[c])}" for c in rest))
            sel &= table.condition.isin(conditions)
        part = table[sel]
        if part.empty:
            unchecked[s] = _no_records(view, s)
            continue
        rows.append({"scope": s, metric: float(part["mean"].mean()), "n": int(part["n"].min())})
    details = pd.DataFrame(rows, columns=["scope", metric, "n"])
    where = ", ".join(f"{c}={format_value(v)}" for c, v in fixed.items())
    mean_over = f" (mean over {', '.join(others)})" if others and len(view.grid_columns) > 1 else ""
    words = metric.replace("_", " ")
    if details.empty:
        return _not_checked(name, f"{words} at {where}{mean_over}", unchecked, float(at_least), details)
    worst = details.loc[details[metric].idxmin()]
    passed = bool(worst[metric] >= at_least)
    if passed and unchecked:
        return _not_checked(name, f"{words} at {where}{mean_over}", unchecked, float(at_least), details,
                            f"at least {at_least:g} in the {len(details)} scopes checked")  # fmt: skip
    message = (
        f"{words} at {where}{mean_over} {_where(worst.scope)} is {worst[metric]:.3f}"
        f" ({int(worst.n)} instances), {'at least' if passed else 'below'} the required {at_least:g}"
    )
    return ContractResult(name, passed, message, float(worst[metric]), float(at_least), details)


def monotonic(
    run: RunLike, transform: str, scope: str = "all", tolerance: float = 0.0, name: str = "monotonic"
) -> ContractResult:
    """Accuracy may not rise (by more than ``tolerance``) as a degradation grows, i.e. moving away from the
    transform's identity value along its marginal curve, on each side of the identity (speed below and
    above 1) — read the other way, it may not fall as the degradation shrinks. A scope without records is not
    checked."""
    view = _view(run)
    metric, column = _outcome(view), _column(view, transform)
    identity = view.params[column].identity
    table = curves(view, within_others=False)
    steps, unchecked = [], {}
    for s in _scopes(view, scope):
        curve = _marginal(table, metric, column, s)
        if curve.empty:
            unchecked[s] = _no_records(view, s)
            continue
        values, mean = curve.value.to_numpy(dtype=float), curve["mean"].to_numpy(dtype=float)
        ref = int(np.argmin([distance_from_identity(v, identity) for v in values]))
        for side, order in sides_of_identity(values, identity).items():
            prev = ref
            for i in (i for i in order if i != ref):
                steps.append({"scope": s, "side": side, "from": values[prev], "to": values[i],
                              "before": mean[prev], "after": mean[i], "rise": mean[i] - mean[prev]})  # fmt: skip
                prev = i
    details = pd.DataFrame(steps, columns=["scope", "side", "from", "to", "before", "after", "rise"])
    words = metric.replace("_", " ")
    claim = f"{words} moving away from {column}'s identity ({format_value(identity)})"
    if details.empty and not unchecked:
        raise AnalysisError(f"monotonic: {column} has a single value in the run; nothing to compare")
    if details.empty:
        return _not_checked(name, claim, unchecked, float(tolerance), details)
    worst = details.loc[details.rise.idxmax()]
    passed = bool(worst.rise <= tolerance)
    if passed and unchecked:
        checked = f"it never rises by more than {tolerance:g} where checked"
        return _not_checked(name, claim, unchecked, float(tolerance), details, checked)
    if passed:
        message = (
            f"{words} never rises by more than {tolerance:g} moving away from {column}'s identity "
            f"({format_value(identity)}); largest rise {max(worst.rise, 0):.3f} {_where(worst.scope)}"
        )
    else:
        message = (
            f"{words} rises from {worst.before:.3f} at {column}={format_value(worst['from'])} to "
            f"{worst.after:.3f} at {format_value(worst.to)} {_where(worst.scope)}, moving away from the identity "
            f"({format_value(identity)}): a rise of {worst.rise:.3f} > the tolerance {tolerance:g}"
        )
    return ContractResult(name, passed, message, max(float(worst.rise), 0.0), float(tolerance), details)


def _swept_reach(view: RunView, column: str, value: float, side: str) -> str | None:
    """Why the grid cannot show whether ``column`` holds out to ``value`` on ``side`` of its identity, or None:
    no grid value lies between the identity and ``value`` (inclusive), or the grid stops nearer the identity."""
    identity = view.params[column].identity
    far = lambda v: distance_from_identity(v, identity)  # noqa: E731
    values = [v for v in view.values(column) if (v < identity if side == "below" else v > identity)]
    at = f"{column}={format_value(value)}"
    if not values:
        return f"the grid has no value of {column} {side} the identity"
    if min(map(far, values)) > far(value):
        nearest = min(values, key=far)
        return f"no grid value of {column} lies between the identity and {at} (the nearest {side} it is {format_value(nearest)})"
    farthest = max(values, key=far)
    if far(farthest) < far(value):
        return (
            f"the grid of {column} stops at {format_value(farthest)} {side} the identity, nearer to it than {at}: "
            f"a breakpoint between {format_value(farthest)} and {format_value(value)} would not show"
        )
    return None


#: how a scope too small for the breakpoint rule starts its reason (they are listed together)
_SMALL = "too small: "


def breakpoint_beyond(
    run: RunLike,
    transform: str,
    value: float,
    scope: str = "all",
    threshold: float = DEFAULT_THRESHOLD,
    name: str = "breakpoint_beyond",
) -> ContractResult:
    """The breakpoint of ``transform`` (the analyses' rule at ``threshold``) must lie beyond ``value``: farther
    from the identity than ``value``, on ``value``'s side of it — so the model holds at every grid value from
    the identity up to and including ``value``.

    "Beyond 5 dB SNR" (identity ∞) means the model breaks only below 5 dB; for speed (identity 1) "beyond 0.8"
    is about slowing down (a breakpoint must be below 0.8) and "beyond 1.25" about speeding up (above 1.25):
    one contract per side. No breakpoint on that side holds only where one could have been seen; it is
    **not checked** when

    - the grid cannot show it: no grid value lies between the identity and ``value`` (inclusive) on that side,
      or the farthest grid value on that side is nearer the identity than ``value`` (a breakpoint found nearer
      than ``value`` still violates the contract);
    - a scope has no records, or no correct record at the identity (accuracy 0 cannot fall);
    - a scope is too small for the rule: a value breaks only when its 95 % interval lies below ``threshold`` ×
      the lower end of the identity's interval, so when that product is ≤ 0 (few instances, or a spread
      between them) even accuracy 0 could not count as a breakpoint.
    """
    view = _view(run)
    metric = _outcome(view)
    column = _column(view, transform)
    identity = view.params[column].identity
    value = float(value)
    if value == identity:
        raise AnalysisError(
            f"breakpoint_beyond: {column}={format_value(value)} is the identity; give a degradation"
        )
    side = "below" if value < identity else "above"
    far = lambda v: distance_from_identity(v, identity)  # noqa: E731
    reach = _swept_reach(view, column, value, side)
    curve_table = curves(view, within_others=False)
    table = breakpoints(view, threshold=threshold, within_others=False, curves_table=curve_table)
    table = table[(table.column == column) & (table.side == side) & (table.condition == "")]
    rows = []
    for s in _scopes(view, scope):
        hit, curve = table[table.scope == s], _marginal(curve_table, metric, column, s)
        row = {"scope": s, "breakpoint": None, "status": "holds", "why": ""}
        if len(hit):
            row.update(
                {k: float(hit[k].iloc[0]) for k in ("value", "previous", "before", "after", "reference")}
            )
            row["breakpoint"] = row.pop("value")
            if far(row["breakpoint"]) <= far(value):
                row["status"] = "violated"
        if curve.empty:
            row.update(status="not checked", why=_no_records(view, s))
        elif row["breakpoint"] is None or row["status"] == "holds":
            ref = curve.iloc[int(np.argmin([far(v) for v in curve.value]))]
            at_ref = f"{column}={format_value(ref.value)}"
            if ref["mean"] <= 0:
                why = f"no correct record at the identity ({at_ref}; {int(ref.n)} instances)"
            elif threshold * ref.ci_low <= 0:
                label = "all instances" if s == "all" else repr(s)
                why = f"{_SMALL}{label} ({int(ref.n)} instances; at {at_ref} down to {ref.ci_low:.3f})"
            else:
                why = reach or ""
            row.update(status="not checked" if why else "holds", why=why)
        rows.append(row)
    details = pd.DataFrame(rows)
    broken, unchecked = details[details.status == "violated"], details[details.status == "not checked"]
    beyond = f"beyond {format_value(value)} ({side} the identity {format_value(identity)})"
    dist = lambda frame: frame.breakpoint.map(far)  # noqa: E731
    if not broken.empty:
        worst = broken.loc[dist(broken).idxmin()]
        message = (
            f"the breakpoint of {column} {_where(worst.scope)} is at {format_value(worst.breakpoint)} (accuracy "
            f"{worst.before:.3f} at {format_value(worst.previous)} → {worst.after:.3f}; {worst.reference:.3f} at "
            f"the identity), not {beyond}"
        )
        return ContractResult(name, False, message, float(worst.breakpoint), value, details)
    if not unchecked.empty:
        parts = [f"{reach} {_where(scope)}"] if reach in set(unchecked.why) else []
        small = unchecked.why.str.startswith(_SMALL)
        parts += [
            f"{_where(s)}: {why}"
            for s, why in zip(unchecked.scope[~small], unchecked.why[~small], strict=True)
            if why != reach
        ]
        if small.any():
            words = metric.replace("_", " ")
            parts.append(
                "too small for the rule, the lower end of the identity's 95 % interval being ≤ 0: "
                + ", ".join(why.removeprefix(_SMALL) for why in unchecked.why[small])
                + f" (a value breaks only when its interval lies below {threshold:g} × that lower end, so even "
                f"{words} 0 could not count as a breakpoint)"
            )
        held = len(details) - len(unchecked)
        reason = (
            f"the breakpoint of {column} {beyond.replace('beyond ', f'beyond {column}=', 1)}: "
            + "; ".join(parts)
            + (f"; it holds in {held} other scope{'s' * (held > 1)}" if held else "")
        )
        return ContractResult.not_checked(name, reason, value, details)
    found = details.dropna(subset=["breakpoint"])
    if found.empty:
        message = f"{column} has no breakpoint {side} the identity {_where(scope)}: it holds {beyond}"
        return ContractResult(name, True, message, None, value, details)
    near = found.loc[dist(found).idxmin()]
    message = (
        f"the breakpoint of {column} {_where(near.scope)} is at {format_value(near.breakpoint)}, {beyond}"
    )
    return ContractResult(name, True, message, float(near.breakpoint), value, details)


def _shared(view: RunView, metric: str, scopes: list[str]) -> pd.DataFrame:
    """Per grid point (column, its value, the others' values as ``condition``) and scope, the outcome's mean;
    a condition lists the other columns in name order, so grids listing them in another order compare."""
    table = curves(view, within_others=True)
    table = table[(table.metric == metric) & table.scope.isin(scopes)]
    table = table[(table.condition != "") if len(view.grid_columns) > 1 else (table.condition == "")]
    return table.assign(condition=[", ".join(sorted(c.split(", "))) for c in table.condition])[
        ["column", "scope", "condition", "value", "mean"]
    ]


def _grid_text(view: RunView) -> str:
    """``noise.snr_db in ∞, 10, 0; gain.gain_db in -6, 0, 6``: the grid values of a run's records."""
    return "; ".join(f"{c} in {', '.join(map(format_value, view.values(c)))}" for c in view.grid_columns)


def no_worse_than(
    run: RunLike, baseline: RunLike, tolerance: float = 0.02, scope: str = "all", name: str = "no_worse_than"
) -> ContractResult:
    """Along every transform parameter, accuracy at each value may not fall more than ``tolerance`` below the
    ``baseline`` run's (e.g. the last release's model on the same grid).

    Only the grid points both runs swept are compared (each marginal curve is the mean over them), and the
    message says how many of the run's they are; the contract is not checked when the runs share no grid point
    in a scope (other transforms or values; a class only one run has)."""
    view, base = _view(run), _view(baseline)
    metric = _outcome(view)
    if _outcome(base) != metric:
        raise AnalysisError(
            f"no_worse_than: run {view.run.path} ({metric}) and baseline {base.run.path} ({base.correct_metric}) "
            "measure different outcomes; they do not compare"
        )
    scopes = _scopes(view, scope)
    keys = ["column", "scope", "value"]
    points = _shared(view, metric, scopes).merge(
        _shared(base, metric, scopes), on=[*keys, "condition"], suffixes=("", "_baseline")
    )
    both = points.groupby(keys, as_index=False).agg(
        mean=("mean", "mean"), mean_baseline=("mean_baseline", "mean"), points=("condition", "size")
    )
    words = metric.replace("_", " ")
    claim = f"{words} no worse than baseline {base.run.path}"
    if both.empty:
        reason = (
            f"{claim}: the runs share no grid point {_where(scope)} (the run's grid: {_grid_text(view)}; the "
            f"baseline's: {_grid_text(base)})"
        )
        return ContractResult.not_checked(name, reason, float(tolerance), both)
    unchecked = {s: "no grid point shared with the baseline (a class one of the runs has no records of)"
                 for s in scopes if s not in set(both.scope)}  # fmt: skip
    both["drop"] = both.mean_baseline - both["mean"]
    worst = both.loc[both["drop"].idxmax()]
    passed = bool(worst["drop"] <= tolerance)
    if passed and unchecked:
        checked = f"no drop above {tolerance:g} where compared"
        return _not_checked(name, claim, unchecked, float(tolerance), both, checked)
    same = view.run.fingerprints.get("data") == base.run.fingerprints.get("data")
    shared = len(points[(points.column == points.column.iloc[0]) & (points.scope == points.scope.iloc[0])])
    note = f"; baseline run {base.run.path}" + ("" if same else ", which swept other instances")
    if shared < len(view.run.grid):
        note += f"; compared on the {shared} of {len(view.run.grid)} grid points the baseline swept too"
    at = f"{worst.column}={format_value(worst.value)} {_where(worst.scope)}"
    message = (
        f"{words} at {at}: {worst['mean']:.3f}, baseline {worst.mean_baseline:.3f} "
        + (
            f"(largest drop {max(worst['drop'], 0):.3f}, within"
            if passed
            else f"(a drop of {worst['drop']:.3f} >"
        )
        + f" the tolerance {tolerance:g}{note})"
    )
    return ContractResult(name, passed, message, float(worst["drop"]), float(tolerance), both)


# ------------------------------------------------------------------------------------ over a model
def _build(transform: Transform | dict, values: Sequence[float] | None) -> Transform:
    """A transform from a spec dict (as a config's grid entry) or a Transform, with ``values`` to test."""
    spec = dict(transform.spec() if isinstance(transform, Transform) else transform)
    if "type" not in spec:
        raise ValueError(f"transform {spec}: missing 'type' (a transform name such as 'gain')")
    kind = spec.pop("type")
    built = get(kind, **spec)
    if values is not None:
        built = get(kind, **{**spec, built.param.name: list(values)})
    return built


def invariant(
    model: torch.nn.Module,
    transform: Transform | dict,
    values: Sequence[float] | None,
    data: torch.Tensor,
    max_flip_rate: float = 0.05,
    labels: torch.Tensor | None = None,
    frontend: Callable[[torch.Tensor], torch.Tensor] | None = None,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
    batch_size: int = 256,
    name: str = "invariant",
) -> ContractResult:
    """At each of ``values`` of ``transform`` (a spec dict like a grid entry, ``{"type": "gain"}``, or a
    Transform; None: its own values), at most ``max_flip_rate`` of the model's predictions on ``data`` (raw
    inputs; ``frontend`` makes model inputs of them) may differ from its predictions on the clean inputs.

    No run is needed. The transforms are applied as a sweep applies them (seeded by ``seed`` and the instance).
    Classes are ``labels`` when given, else the clean predictions; the message names the worst value, its flip
    rate and the class that flips most there. The model is put in eval mode."""
    if not isinstance(data, torch.Tensor) or not data.is_floating_point() or data.shape[0] == 0:
        raise ValueError(
            f"invariant: data must be a non-empty floating-point tensor (N, ...), got {type(data).__name__}"
        )
    if labels is not None and len(labels) != len(data):
        raise ValueError(f"invariant: {len(labels)} labels for {len(data)} inputs; expected one per input")
    built = _build(transform, values)
    grid = Grid([built])
    model = model.eval()
    device = next(iter(model.parameters()), torch.empty(0)).device

    def predict(point: int | None) -> torch.Tensor:
        preds = []
        for start in range(0, len(data), batch_size):
            ids = range(start, min(len(data), start + batch_size))
            x = model_inputs(grid, frontend, data[start : ids.stop], ids, seed, point=point)
            with torch.no_grad():
                preds.append(model(x.to(device)).argmax(1).cpu())
        return torch.cat(preds)

    clean = predict(None)
    groups = (torch.as_tensor(labels) if labels is not None else clean).numpy()
    names = lambda g: str(class_names[g]) if class_names is not None else str(g)  # noqa: E731
    rows = []
    for point, value in enumerate(built.values):
        flips = (predict(point) != clean).numpy()
        per = pd.Series(flips).groupby(groups).agg(["mean", "sum", "size"])
        per = per.sort_values(["mean", "sum"], ascending=False)
        top = per.iloc[0]
        rows.append({"value": value, "flip_rate": float(flips.mean()), "flips": int(flips.sum()), "n": len(flips),
                     "worst_class": names(per.index[0]),
                     "class_flip_rate": float(top["mean"]), "class_flips": int(top["sum"]),
                     "class_n": int(top["size"])})  # fmt: skip
    details = pd.DataFrame(rows)
    worst = details.loc[details.flip_rate.idxmax()]
    passed = bool(worst.flip_rate <= max_flip_rate)
    at = f"{built.column}={format_value(worst.value)}"
    message = (
        f"at {at}, {worst.flip_rate:.1%} of {worst.n} predictions flip ({'limit' if passed else 'above the limit'} "
        f"{max_flip_rate:.1%}); class {worst.worst_class!r} flips most ({worst.class_flips} of {worst.class_n})"
    )
    if passed and worst.flips == 0:
        message = (
            f"no prediction flips under {built.column} in {', '.join(format_value(v) for v in built.values)}"
        )
    return ContractResult(name, passed, message, float(worst.flip_rate), float(max_flip_rate), details)


# ------------------------------------------------------------------------------------ soft assertions
_SIMPLE = re.compile(r'^\s*"?([A-Za-z_][\w.]*)"?\s*(<=|<|>=|>)\s*[-+\w.]+\s*$')


def _default_rank(where: str) -> str:
    """How badly a record breaks ``where``: the compared column for ``col <= x`` (larger is worse), its
    negative for ``col >= x``; ``loss_t`` for any other rule."""
    m = _SIMPLE.match(where)
    if m is None:
        return "loss_t"
    return m.group(1) if m.group(2).startswith("<") else f"-{m.group(1)}"


def soft(
    run: RunLike, where: str, name: str | None = None, rank_by: str | None = None, top: int = 10
) -> SoftResult:
    """Records that break the rule ``where`` (SQL over the records every record should satisfy, e.g.
    ``"d_x <= 5"``), ranked by ``rank_by`` (SQL, larger = worse; default see :func:`_default_rank`): the
    ``top`` worst with their instance, class and grid point."""
    view = _view(run)
    rank = rank_by or _default_rank(where)
    rank_sql = rank_by or re.sub(r"[A-Za-z_][\w.]*", lambda m: q(m.group(0)), rank)  # quote dotted names
    bad = f"NOT coalesce(({where}), false)"
    cls = view.group_sql or "'all'"
    grid = ", ".join(q(c) for c in view.grid_columns)
    try:
        n_bad = int(view.query(f"SELECT count(*) AS n FROM records WHERE {bad}").n[0])
        table = view.query(
            f"SELECT instance, point, {cls} AS class, {grid}, ({rank_sql})::DOUBLE AS severity FROM records "
            f"WHERE {bad} ORDER BY severity DESC NULLS LAST, instance, point LIMIT {int(top)}"
        )
    except Exception as err:  # DuckDB's parser and binder errors: name the rule and the columns it may use
        first = str(err).splitlines()[0]
        raise AnalysisError(
            f"soft assertion {name or where!r}: {where!r} (ranked by {rank!r}) is not a rule over the records of "
            f"{view.run.path} ({first}); their columns: {', '.join(view.columns)}"
        ) from None
    name = name or f"soft: {where}"
    if n_bad == 0:
        message = f"all {view.n_records} records satisfy {where}"
    else:
        w = table.iloc[0]
        at = ", ".join(f"{c}={format_value(w[c])}" for c in view.grid_columns)
        message = (
            f"{n_bad} of {view.n_records} records ({n_bad / view.n_records:.1%}) break {where}; worst: instance "
            f"{w.instance} ({w['class']}) at {at}, {rank} = {w.severity:.4g}"
        )
    return SoftResult(name, where, rank, view.n_records, n_bad, table, message)


def moves_at_most(run: RunLike, d_x: float, top: int = 10, name: str | None = None) -> SoftResult:
    """Soft: the projection should not need to move the input farther than ``d_x``."""
    return soft(run, f"d_x <= {float(d_x)!r}", name=name or f"moves_at_most d_x <= {d_x:g}", top=top)


def keeps_clean_prediction(run: RunLike, top: int = 10, name: str = "keeps_clean_prediction") -> SoftResult:
    """Soft: x̂T should keep the prediction of its clean instance (ranked by the projection's remaining loss)."""
    view = _view(run)
    if not view.classifier:
        raise AnalysisError(
            f"keeps_clean_prediction: run {view.run.path} has no predictions ({view.schema.target} targets)"
        )
    return soft(view, "pred_proj = pred_clean", name=name, rank_by="loss_proj", top=top)
