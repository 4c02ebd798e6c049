"""Per-instance breakpoints: for each instance and transform parameter, the smallest departure from the
identity that flips the instance (a classifier's prediction leaves the desired label; a multi-label output
decides a label wrong; a tensor target's loss rises above the projection cutoff), the other parameters held at the identity or at any grid point / values.

The search uses forward passes only, on a lattice of values spaced by the parameter's ``resolution``
outward from the identity over the parameter's continuous range ``[param.low, param.high]`` — each side of an
interior identity (gain 0 dB, rotation 0°) separately. An infinite identity (SNR = +∞, a clean input) has no
finite neighbour, so its side starts at the finite end (``param.high``, e.g. 120 dB) and runs to the other
(``param.low``). On each side a coarse scan of :data:`COARSE` steps walks outward until the first flip, then
bisection between the last non-flipping and the first flipping lattice value finds the first flip to one
lattice step. On a response that does not flip back inside one coarse step this is exactly the first flip a
dense scan of the lattice (``method="dense"``) would find, at ``COARSE + log2(K / COARSE)`` passes per side
instead of K. The queries of all instances, parameters and sides in one search round share one batched
forward pass. The transforms are the sweep's own, seeded as the sweep seeds them, except that a search holds
the random draws of its start point along the whole search (see :meth:`_Oracle.inputs`); every answer is
reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from proactiv.analysis.runview import AnalysisError, as_run
from proactiv.analysis.steps import Step, register
from proactiv.losses import resolve_loss
from proactiv.metrics import labels_right
from proactiv.model_copy import load_copy
from proactiv.store import Run, RunError, write_parquet
from proactiv.sweep import model_inputs
from proactiv.transforms.base import Param

#: default resolution of a parameter: this fraction of its whole range ``param.high - param.low``
RESOLUTION_FRACTION = 1 / 200
#: coarse scan steps per side (the scan stops at the first flip; bisection refines to the resolution). A flip
#: island narrower than one coarse step can be stepped over; where flips flicker (isolated flipping values
#: ahead of the boundary, as along pitch on the KWS model) the adaptive flip lies in the transition and a dense
#: scan reports the first flicker: there 12, 16 or 20 steps all agreed with the dense scan for 54-61 % of
#: searches, so more steps buy little
COARSE = 12
#: model inputs per forward pass
BATCH = 512
#: prefix of the per-instance columns (``ibp.<column>``) other analyses can join on ``instance``
PREFIX = "ibp."


@dataclass(frozen=True)
class Side:
    """One direction of one parameter's search: lattice values ``value(k) = origin + sign * k * resolution``
    for k = 1 .. steps (the last one clipped to ``end``); k = 0 is the identity."""

    column: str
    side: str
    identity: float
    origin: float
    sign: int
    end: float
    resolution: float
    steps: int

    def value(self, k: int) -> float:
        if k == 0:
            return self.identity
        v = round(self.origin + self.sign * k * self.resolution, 10)  # 14.64, not 14.639999999999999
        return max(v, self.end) if self.sign < 0 else min(v, self.end)


def sides(column: str, param: Param, resolution: float) -> list[Side]:
    """The search sides of a parameter: below and/or above a finite identity; from the finite end toward the
    other end for an infinite identity (``+inf``: from ``param.high`` down)."""
    ident = param.identity
    out = []
    for name, sign, end in (("down", -1, param.low), ("up", 1, param.high)):
        if math.isinf(ident):
            if (ident > 0) != (sign < 0):
                continue
            origin = (param.high if sign < 0 else param.low) - sign * resolution  # value(1) = the finite end
        elif (ident - end) * sign >= 0:
            continue  # the identity is this end of the range
        else:
            origin = ident
        steps = max(1, math.ceil(abs(end - origin) / resolution - 1e-9))
        out.append(Side(column, name, ident, origin, sign, end, resolution, steps))
    return out


def default_resolution(param: Param) -> float:
    return (param.high - param.low) * RESOLUTION_FRACTION


@dataclass
class InstanceBreakpoints:
    """``table``: one row per (instance, parameter, side) — ``instance``, ``label`` (NaN for tensor targets),
    ``group`` (class name or the schema's group), ``column``, ``side`` (``down``/``up``: toward lower or higher
    values), ``breakpoint`` (the first flipping lattice value; NaN: no flip within the range, or flipped at the
    identity already), ``range_fraction`` (how far along the side's range it lies, 0-1: comparable across
    parameters), ``flipped_at_identity`` (at the held point with this parameter at identity), ``evaluations``
    (forward passes this search paid; one pass shared by several searches is counted once) and
    ``resolution``. ``per_instance``: one row per instance with ``ibp.<column>`` (the breakpoint of the side
    that flips nearest the identity, NaN if none flips), to join on ``instance``. ``boundary``: one
    instance's boundary curve in the plane of two parameters (see :func:`instance_boundary`; may be empty)."""

    table: pd.DataFrame
    per_instance: pd.DataFrame
    boundary: pd.DataFrame = field(default_factory=pd.DataFrame)


class _Oracle:
    """Whether an instance flips at given parameter values. Each distinct (instance, values, draws) costs one
    model input in one forward pass; a round's queries are grouped by values (one transform call per group)
    and run together; answers are remembered."""

    def __init__(self, run: Run, task, device: str):
        from proactiv.device import resolve_device

        self.grid, self.seed = run.grid, int(run.config.get("seed", 0))
        self.task, self.device = task, resolve_device(device)
        self.model = task.model.to(self.device).eval()
        schema = run.schema
        loss = (run.config.get("projection") or {}).get("loss")
        self.classifier = schema.target == "label"
        self.multilabel = schema.output_kind.name == "multilabel_logits"
        if self.classifier:
            self.desired = task.labels.long()
            if schema.desired == "clean_prediction":  # the model's own output on the clean input
                self.desired = self._outputs(model_inputs(self.grid, task.frontend, task.inputs,
                                                          range(len(task.inputs)), self.seed)).argmax(1)  # fmt: skip
        elif not self.multilabel:
            if schema.cutoff is None or not isinstance(loss, str):
                raise AnalysisError("a tensor-target run needs a named projection loss and a cutoff to flip")
            self.loss, self.cutoff = resolve_loss(loss), float(schema.cutoff)
        self.known: dict[tuple[int, tuple, tuple], bool] = {}

    def _outputs(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([self.model(c.to(self.device)).cpu() for c in x.split(BATCH)])

    def key(self, values: dict[str, float]) -> tuple:
        return tuple(float(values.get(t.column, t.param.identity)) for t in self.grid.transforms)

    def inputs(self, x: torch.Tensor, ids: list[int], combo: tuple, draws: tuple) -> torch.Tensor:
        """The model inputs at parameter values ``combo`` with the random draws of the values ``draws``: the
        sweep's path (:func:`proactiv.sweep.model_inputs`: raw-domain transforms, frontend, feature-domain
        transforms) and its seed rule for ``draws`` (a grid point's id, else a key of the values). A search
        holds its start point's draws along the whole search, so the noise added at 10 dB and at 9 dB is one
        realisation scaled, and whether an instance flips changes with the parameter alone: with draws
        seeded by each value, flips come and go between neighbouring values and the first flip depends on how
        many values are tried (on 20 digits, a dense scan's first flip along image noise then agreed with the
        adaptive search's for 3; with held draws, on 100, for all)."""
        columns = self.grid.columns
        try:
            return model_inputs(self.grid, self.task.frontend, x, ids, self.seed,
                                values=dict(zip(columns, combo, strict=True)),
                                draws=dict(zip(columns, draws, strict=True)))  # fmt: skip
        except ValueError as err:
            raise AnalysisError(str(err)) from None

    def __call__(self, queries: Sequence[tuple[int, tuple, tuple]]) -> tuple[list[bool], list[bool]]:
        """(flipped, charged) per query (instance, values, draws); ``charged`` marks the query that paid the
        forward pass."""
        new: dict[tuple, list[int]] = {}
        charged, charged_now = [], set()
        for query in queries:
            fresh = query not in self.known and query not in charged_now
            if fresh:
                charged_now.add(query)
                new.setdefault(query[1:], []).append(query[0])
            charged.append(fresh)
        if new:
            batches, order = [], []
            for (combo, draws), ids in new.items():
                batches.append(self.inputs(self.task.inputs[torch.as_tensor(ids)], ids, combo, draws))
                order += [(i, combo, draws) for i in ids]
            out = self._outputs(torch.cat(batches))
            ids = torch.as_tensor([i for i, _, _ in order])
            if self.classifier:
                flips = out.argmax(1) != self.desired[ids]
            elif self.multilabel:
                flips = ~labels_right(out, self.task.labels[ids])
            else:
                flips = self.loss(out, self.task.labels[ids].to(out.dtype)) > self.cutoff
            self.known.update(zip(order, flips.tolist(), strict=True))
        return [self.known[q] for q in queries], charged


@dataclass
class _Search:
    """One instance along one side, from ``base`` (the held values with the searched column at identity)."""

    instance: int
    side: Side
    base: dict
    coarse: int
    dense: bool
    lo: int = 0
    hi: int | None = None
    evaluations: int = 0
    at_identity: bool | None = None

    def next_ks(self) -> list[int]:
        """The lattice steps to ask next ([] when done)."""
        if self.at_identity is None:
            return [0]
        if self.at_identity:
            return []
        if self.hi is not None:
            return [(self.lo + self.hi) // 2] if self.hi - self.lo > 1 else []
        if self.lo == self.side.steps:
            return []  # scanned to the end of the range without a flip
        if self.dense:
            return list(range(self.lo + 1, self.side.steps + 1))
        return [min(self.lo + max(1, math.ceil(self.side.steps / self.coarse)), self.side.steps)]

    def update(self, ks: list[int], flips: list[bool]) -> None:
        if ks == [0]:
            self.at_identity = flips[0]
        elif self.dense:
            hit = [k for k, f in zip(ks, flips, strict=True) if f]
            self.hi, self.lo = (hit[0], hit[0] - 1) if hit else (None, self.side.steps)
        elif flips[0]:
            self.hi = ks[0]
        else:
            self.lo = ks[0]

    def values(self, k: int) -> dict:
        return {**self.base, self.side.column: self.side.value(k)}


def _run_searches(oracle: _Oracle, searches: list[_Search], progress: Callable[[float], None]) -> None:
    """Advance every search a round at a time; each round is one batched set of forward passes."""
    while searches:
        asks = [(s, s.next_ks()) for s in searches]
        asks = [(s, ks) for s, ks in asks if ks]
        if not asks:
            return
        queries = [(s.instance, oracle.key(s.values(k)), oracle.key(s.base)) for s, ks in asks for k in ks]
        flips, charged = oracle(queries)
        at = 0
        for s, ks in asks:
            s.update(ks, flips[at : at + len(ks)])
            s.evaluations += sum(charged[at : at + len(ks)])
            at += len(ks)
        progress(sum(not s.next_ks() for s in searches) / len(searches))


def held_values(run: Run, held) -> dict[str, float]:
    """The values the other parameters are held at: identity (None), a grid point id, or column → value."""
    if held is None:
        return {}
    if isinstance(held, (int, np.integer)) and not isinstance(held, bool):
        return dict(run.grid[int(held)].values)
    if isinstance(held, dict):
        unknown = sorted(set(held) - set(run.grid.columns))
        if unknown:
            raise ValueError(
                f"held: no transform column {unknown[0]!r}; columns: {', '.join(run.grid.columns)}"
            )
        return {c: float(v) for c, v in held.items()}
    raise ValueError(f"held={held!r}: expected None (identity), a grid point id, or {{column: value}}")


def _resolutions(run: Run, resolution: dict | None) -> dict[str, float]:
    params = {t.column: t.param for t in run.grid.transforms}
    given = dict(resolution or {})
    unknown = sorted(set(given) - set(params))
    if unknown:
        raise ValueError(f"resolution: no transform column {unknown[0]!r}; columns: {', '.join(params)}")
    out = {c: float(given.get(c, default_resolution(p))) for c, p in params.items()}
    bad = [c for c, r in out.items() if not (math.isfinite(r) and r > 0)]
    if bad:
        raise ValueError(f"resolution of {bad[0]}: {out[bad[0]]} (expected a finite value > 0)")
    return out


def _pick(groups: np.ndarray, max_instances: int | None) -> np.ndarray:
    """At most ``max_instances`` instances, taken round-robin over the classes (first of each class first)."""
    n = len(groups)
    if max_instances is None or max_instances >= n:
        return np.arange(n)
    rank = pd.Series(groups).groupby(groups).cumcount().to_numpy()
    order = np.lexsort((np.arange(n), rank))
    return np.sort(order[: int(max_instances)])


def _groups(run: Run, task) -> tuple[np.ndarray, np.ndarray]:
    """(label, group name) per instance: labels and class names, or the schema's group column."""
    n = len(task.inputs)
    if run.schema.target == "label":
        labels = task.labels.numpy().astype(float)
        names = run.class_names or task.class_names
        return labels, np.asarray([names[int(v)] if names else str(int(v)) for v in labels])
    col = (run.schema.group_column or "").removeprefix("meta.")
    meta = task.metadata
    groups = meta[col].astype(str).to_numpy() if meta is not None and col in meta else np.full(n, "all")
    return np.full(n, np.nan), groups


def _task(run: Run, task):
    if task is not None:
        return task
    try:
        return load_copy(run, run.task)
    except (RunError, ValueError, OSError) as err:
        raise AnalysisError(f"cannot rebuild the task of run {run.path}: {err}") from err


def instance_breakpoints(
    run: Run | str,
    columns: Sequence[str] | None = None,
    resolution: dict[str, float] | None = None,
    held=None,
    max_instances: int | None = 100,
    coarse: int = COARSE,
    method: str = "adaptive",
    device: str = "auto",
    task=None,
    progress: Callable[[float], None] | None = None,
) -> InstanceBreakpoints:
    """Per-instance breakpoints of ``run`` along each of ``columns`` (default: every grid column).

    ``resolution``: column → lattice step in the parameter's units (default: :data:`RESOLUTION_FRACTION` of
    its range); ``held``: the other parameters' values (None: identity; a grid point id; column → value);
    ``max_instances``: taken round-robin over classes; ``method``: ``"adaptive"`` (coarse scan + bisection) or
    ``"dense"`` (every lattice value: the reference it must agree with); ``task``: the rebuilt task (default
    ``run.task()``). The table's ``breakpoint`` is the first flipping lattice value (NaN: none flips within the
    range, or the instance is flipped at the identity already), ``evaluations`` the forward passes it cost.
    """
    run = as_run(run)
    if method not in ("adaptive", "dense"):
        raise ValueError(f"method={method!r}: expected 'adaptive' or 'dense'")
    task = _task(run, task)
    cols = list(columns or run.grid.columns)
    unknown = sorted(set(cols) - set(run.grid.columns))
    if unknown:
        raise ValueError(f"no transform column {unknown[0]!r}; columns: {', '.join(run.grid.columns)}")
    base_values, res = held_values(run, held), _resolutions(run, resolution)
    params = {t.column: t.param for t in run.grid.transforms}
    labels, groups = _groups(run, task)
    chosen = _pick(groups, max_instances)
    searches = [
        _Search(int(i), s, {**base_values, c: params[c].identity}, int(coarse), method == "dense")
        for c in cols
        for s in sides(c, params[c], res[c])
        for i in chosen
    ]
    _run_searches(_Oracle(run, task, device), searches, progress or (lambda f: None))
    table = pd.DataFrame(
        {
            "instance": [s.instance for s in searches],
            "label": [labels[s.instance] for s in searches],
            "group": [groups[s.instance] for s in searches],
            "column": [s.side.column for s in searches],
            "side": [s.side.side for s in searches],
            "breakpoint": [s.side.value(s.hi) if s.hi is not None else np.nan for s in searches],
            "range_fraction": [s.hi / s.side.steps if s.hi is not None else np.nan for s in searches],
            "flipped_at_identity": [bool(s.at_identity) for s in searches],
            "evaluations": [s.evaluations for s in searches],
            "resolution": [s.side.resolution for s in searches],
        }
    )
    return InstanceBreakpoints(table, per_instance_table(table))


def per_instance_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per instance, ``ibp.<column>``: the breakpoint of the side that flips nearest the identity
    (smallest ``range_fraction``), NaN where no side flips."""
    first = table.dropna(subset=["breakpoint"]).sort_values(["range_fraction", "side"])
    first = first.drop_duplicates(["instance", "column"])
    wide = first.pivot(index="instance", columns="column", values="breakpoint")
    out = pd.DataFrame({"instance": np.sort(table.instance.unique())}).set_index("instance")
    for col in table.column.unique():
        out[PREFIX + col] = wide[col] if col in wide else np.nan
    return out.reset_index()


def instance_reach(table: pd.DataFrame) -> pd.DataFrame:
    """One row per instance, ``ibp.<column>``: the smallest ``range_fraction`` over the sides that flip, 0 for an
    instance flipped at the identity, 1 where no side flips — comparable across parameters and sides, and
    ordered by robustness (a breakpoint value is not: SNR breaks downward, speed on both sides)."""
    reach = table.assign(reach=np.where(table.flipped_at_identity, 0.0, table.range_fraction.fillna(1.0)))
    wide = reach.pivot_table(index="instance", columns="column", values="reach", aggfunc="min")
    return wide.rename(columns=lambda c: PREFIX + c).reset_index().rename_axis(columns=None)


def instance_boundary(
    run: Run | str,
    instance: int,
    col_a: str,
    col_b: str,
    values_a: Sequence[float] | None = None,
    n: int = 33,
    resolution: dict[str, float] | None = None,
    held=None,
    coarse: int = COARSE,
    device: str = "auto",
    task=None,
) -> pd.DataFrame:
    """One instance's boundary in the plane (``col_a``, ``col_b``): for each value of ``col_a`` (default ``n``
    values evenly over its search range: from ``param.high`` down for an infinite identity), the breakpoint
    along ``col_b`` on each of its sides (NaN: no flip; ``flipped_at_identity``: flipped with ``col_b`` at its
    identity). The other parameters are held as in :func:`instance_breakpoints`."""
    run = as_run(run)
    task = _task(run, task)
    params = {t.column: t.param for t in run.grid.transforms}
    for c in (col_a, col_b):
        if c not in params:
            raise ValueError(f"no transform column {c!r}; columns: {', '.join(params)}")
    if col_a == col_b:
        raise ValueError("instance_boundary needs two different columns")
    pa, res = params[col_a], _resolutions(run, resolution)
    if values_a is None:
        values_a = (
            np.linspace(pa.high, pa.low, n) if math.isinf(pa.identity) else np.linspace(pa.low, pa.high, n)
        )
    base = held_values(run, held)
    searches = [
        _Search(
            int(instance), s, {**base, col_a: float(a), col_b: params[col_b].identity}, int(coarse), False
        )
        for a in values_a
        for s in sides(col_b, params[col_b], res[col_b])
    ]
    _run_searches(_Oracle(run, task, device), searches, lambda f: None)
    return pd.DataFrame(
        {
            "instance": int(instance),
            "column_a": col_a,
            "value_a": [s.base[col_a] for s in searches],
            "column_b": col_b,
            "side": [s.side.side for s in searches],
            "breakpoint": [s.side.value(s.hi) if s.hi is not None else np.nan for s in searches],
            "flipped_at_identity": [bool(s.at_identity) for s in searches],
            "evaluations": [s.evaluations for s in searches],
        }
    )


def earliest(table: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` instances that break earliest: each instance's side that flips nearest its identity (as a
    fraction of that side's range), across parameters, nearest first."""
    hits = table.dropna(subset=["breakpoint"]).sort_values(["range_fraction", "instance"])
    return hits.drop_duplicates("instance").head(n).reset_index(drop=True)


class InstanceBreakpointsStep(Step):
    """Per-instance breakpoints of every grid parameter, and the boundary curve of the instance that breaks
    earliest in the plane of the first two parameters."""

    name = "instance_breakpoints"
    title = "Instance breakpoints"
    command = "instance-breakpoints"
    needs = frozenset({"model"})
    settings = {"resolution": {}, "max_instances": 100, "held": None, "coarse": COARSE}
    files = ("instance_breakpoints.parquet", "instance_breakpoints_wide.parquet", "instance_boundary.parquet")

    def compute(self, ctx, settings, progress):
        task = ctx.task()
        result = instance_breakpoints(ctx.run, resolution=settings["resolution"], held=settings["held"],
                                      max_instances=settings["max_instances"], coarse=settings["coarse"],
                                      device=ctx.device, task=task, progress=lambda f: progress(0.9 * f))  # fmt: skip
        first = earliest(result.table, 1)
        cols = ctx.run.grid.columns
        if len(cols) >= 2 and not first.empty:
            result.boundary = instance_boundary(ctx.run, int(first.instance[0]), cols[0], cols[1],
                                                resolution=settings["resolution"], held=settings["held"],
                                                coarse=settings["coarse"], device=ctx.device, task=task)  # fmt: skip
        return result

    def instance_columns(self, result: InstanceBreakpoints) -> pd.DataFrame:
        """``ibp.<column>`` per instance, for slices: how far from the identity it first flips, as a fraction of
        the parameter's search range (0: already flipped at the identity; 1: never within the range)."""
        return instance_reach(result.table)

    def save(self, result: InstanceBreakpoints, folder: Path) -> None:
        for name, frame in zip(self.files, (result.table, result.per_instance, result.boundary), strict=True):
            write_parquet(folder / name, frame)

    def load(self, folder: Path) -> InstanceBreakpoints:
        return InstanceBreakpoints(*(pd.read_parquet(folder / name) for name in self.files))

    def note(self, result: InstanceBreakpoints) -> str:
        t = result.table
        flips = t.dropna(subset=["breakpoint"])
        return (
            f"{t.instance.nunique()} instances × {t.column.nunique()} parameters: {len(flips)} of {len(t)} "
            f"searches flip within the range, {int(t.groupby('instance').flipped_at_identity.any().sum())} "
            f"instances flipped at the identity; {int(t.evaluations.sum())} forward passes"
        )


register(InstanceBreakpointsStep())
