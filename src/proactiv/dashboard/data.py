"""Server-side data of one run for the dashboard: records in an in-memory DuckDB table, the stored analyses,
and queries that return only what a view draws (aggregates, never the 100 k raw rows).

The client never sends SQL or paths: a view's filter is a :class:`Filter` of validated integers (grid
points, instances, a slice number); the slice's WHERE clause is read from the run's own analysis.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from proactiv.analysis import Analysis, analyze, load_analysis, registered
from proactiv.analysis.arrays import kept_pairs
from proactiv.analysis.pipeline import installed_since
from proactiv.analysis.runview import RunView, attach_instance_columns, metric_sql, q, record_sql
from proactiv.schema import METRIC_CATALOGUE, InputSpec
from proactiv.store import Run, RunError, open_run

#: metric name → (SQL aggregate, axis label, record column); only those whose columns exist in a run are
#: offered; ``within_cutoff`` replaces ``accuracy`` in runs without predictions
METRICS: dict[str, tuple[str, str, str]] = {
    m.name: (f"avg({record_sql(m)})", m.dashboard, m.source) for m in METRIC_CATALOGUE.values() if m.dashboard
}


def run_metrics(view: RunView) -> dict[str, tuple[str, str, str]]:
    """The metrics a run's records support (one outcome metric: accuracy or within cutoff)."""
    outcome = {"accuracy", "within_cutoff"} - {view.correct_metric}
    return {k: v for k, v in METRICS.items() if view.schema.has(v[2]) and k not in outcome}


@dataclass(frozen=True)
class Filter:
    """What the linked views are restricted to: grid points, instances, one error slice (all optional)."""

    points: tuple[int, ...] | None = None
    instances: tuple[int, ...] | None = None
    slice: int | None = None

    @classmethod
    def from_store(cls, store: dict | None) -> Filter:
        """Parse the browser's filter store, keeping only integers that can be ids (anything else is dropped:
        a store that is not a mapping, a part that is not a list, non-numbers, fractions, ids beyond 64 bits)."""
        store = store if isinstance(store, dict) else {}

        def ints(v) -> tuple[int, ...] | None:
            return tuple(sorted({int(x) for x in v if _id(x)})) if isinstance(v, list) else None

        sl = store.get("slice")
        return cls(ints(store.get("points")), ints(store.get("instances")), int(sl) if _id(sl) else None)

    def without(self, what: str) -> Filter:
        """The same filter minus one part (a view is not filtered by its own selection)."""
        return Filter(**{**self.__dict__, what: None})

    @property
    def empty(self) -> bool:
        return self.points is None and self.instances is None and self.slice is None


def _id(x) -> bool:
    """Whether a value from the browser is a whole number usable as an id (JSON has no integer type)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return False
    return math.isfinite(x) and x == int(x) and abs(x) < 2**63


def fmt_value(v: float) -> str:
    """A grid value for display: ∞ for infinities, no trailing zeros."""
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return f"{v:g}" if isinstance(v, float) else str(v)


def ensure_analysis(run: Run, progress: Callable[[str, float], None] | None = None) -> Analysis:
    """The stored analyses of ``run``, computing the steps whose files are missing (not those skipped, unless
    for want of a library that is installed now)."""
    have = load_analysis(run)
    installed = installed_since(run)
    missing = [
        s.name
        for s in registered()
        if have[s.name] is None
        and (not have.notes.get(s.name, "").startswith("skipped") or s.name in installed)
    ]
    return analyze(run, steps=missing, progress=progress) if missing else have


class RunData:
    """One run opened for the dashboard (records in DuckDB, analyses, kept-array index)."""

    def __init__(self, path: str | Path, compute: bool = True, progress=None):
        self.path = Path(path)
        self.run = open_run(self.path)
        files = self.run.shard_files()
        if not files:
            raise RunError(f"run {self.path} has no completed records yet (is the sweep still running?)")
        self.analysis = ensure_analysis(self.run, progress) if compute else load_analysis(self.run)
        self.con = duckdb.connect()
        self.run.load_records(self.con)
        # per-instance columns of analyses (e.g. breakpoints) that slice clauses may use, like record columns
        attach_instance_columns(self.con, [s.instance_columns(self.analysis[s.name]) for s in registered()
                                           if self.analysis[s.name] is not None])  # fmt: skip
        kept = kept_pairs(self.run).astype("int64")
        self.con.register("kept_df", kept)
        self.con.execute("CREATE TABLE kept AS SELECT DISTINCT instance, point FROM kept_df")
        self.con.unregister("kept_df")
        self.columns: list[str] = [r[0] for r in self.con.execute("DESCRIBE records").fetchall()]
        self.n_records = self.scalar("SELECT count(*) FROM records")
        #: the analysis view over the same table: classes, groups and outcome words come from there
        self.view = RunView(self.run, self.con.cursor(), self.columns, int(self.n_records))
        self.groups: list[str] = self.view.classes  # class names, or group values (e.g. digits)
        self.grid_columns: list[str] = list(self.run.grid.columns)
        self.meta_columns = [c for c in self.columns if c.startswith("meta.")]
        self.metrics = run_metrics(self.view)
        self.classifier = self.view.classifier
        self.class_names: list[str] = list(self.run.class_names or [])
        self._lock = threading.Lock()
        self._cache: dict = {}
        self.n_instances = self.scalar("SELECT count(DISTINCT instance) FROM records")
        self.n_points = self.scalar("SELECT count(DISTINCT point) FROM records")

    # basics ---------------------------------------------------------------------------------------
    def sql(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """Run SQL on a private cursor (DuckDB cursors are safe across the server's threads)."""
        cur = self.con.cursor()
        try:
            return cur.execute(sql, params or []).df()
        finally:
            cur.close()

    def scalar(self, sql: str, params: list | None = None):
        cur = self.con.cursor()
        try:
            return cur.execute(sql, params or []).fetchone()[0]
        finally:
            cur.close()

    def where(self, flt: Filter) -> str:
        """The WHERE clause of a filter (integers only, and the run's own slice clause)."""
        parts = ["TRUE"]
        if flt.points is not None:
            parts.append(f"point IN ({','.join(map(str, flt.points)) or 'NULL'})")
        if flt.instances is not None:
            parts.append(f"instance IN ({','.join(map(str, flt.instances)) or 'NULL'})")
        if flt.slice is not None:
            clause = self.slice_where(flt.slice)
            if clause:
                parts.append(f"({clause})")
        return " AND ".join(parts)

    def slice_where(self, number: int) -> str | None:
        table = self.analysis.slices
        if table is None or "slice" not in table:
            return None
        hit = table[table["slice"] == int(number)]
        return None if hit.empty else str(hit["where"].iloc[0])

    @property
    def kind(self) -> InputSpec:
        """What this run's inputs are and how they are drawn (the run schema's input)."""
        return self.run.schema.input

    @property
    def outcome(self) -> str | None:
        """The outcome metric: ``accuracy``, ``within_cutoff`` (runs without predictions) or None."""
        return self.view.correct_metric

    def grid_label(self, column: str) -> str:
        """``speed.factor (×)``: a grid column with its unit."""
        for t in self.run.grid.transforms:
            if t.column == column:
                unit = getattr(t.param, "unit", "") or ""
                return f"{column} ({unit})" if unit else column
        return column

    def identity(self, column: str) -> float | None:
        for t in self.run.grid.transforms:
            if t.column == column:
                return t.param.identity
        return None

    # summary --------------------------------------------------------------------------------------
    def summary(self) -> dict:
        """Model, data, grid, clean accuracy and how the projections ended (records per status), for the
        overview header."""
        cfg = self.run.config
        model = cfg.get("model") or {}
        model_text = (
            (model.get("path") or model.get("torchscript") or model.get("factory") or "built-in")
            if isinstance(model, dict)
            else str(model)
        )
        clean = (
            self.scalar(
                "SELECT avg(correct_clean::DOUBLE) FROM (SELECT DISTINCT instance, correct_clean FROM records)"
            )
            if self.run.schema.has("correct_clean")
            else None
        )
        within = None
        if self.outcome == "within_cutoff":
            ident = self.run.grid.identity_point()
            within = {
                "all": float(self.scalar("SELECT avg(correct_t::DOUBLE) FROM records")),
                "identity": None
                if ident is None
                else self.scalar("SELECT avg(correct_t::DOUBLE) FROM records WHERE point = ?", [int(ident)]),
            }
        quality = {
            m: float(self.scalar(f"SELECT avg({metric_sql(m)}) FROM records"))
            for m in ("psnr_t", "psnr_out_t", "psnr_out_proj")
            if self.run.schema.has(m)
        }
        grid = "; ".join(
            f"{self.grid_label(c)}: {', '.join(fmt_value(v) for v in self.values(c))}"
            for c in self.grid_columns
        )
        ended = self.sql("SELECT status, count(*) AS n FROM records GROUP BY 1")
        return {
            "name": self.path.name,
            "task": cfg.get("task", "?"),
            "domain": "feature" if self.run.schema.frontend is not None else "input",
            "model": str(model_text),
            "classes": len(self.class_names),
            "group": self.view.group_column,
            "groups": len(self.groups) if self.view.group_column else 0,
            "correct_label": self.view.correct_label if self.outcome else None,
            "within_cutoff": within,
            "psnr": quality,
            "kind": self.kind.kind,
            "instances": int(self.n_instances),
            "points": int(self.n_points),
            "records": int(self.n_records),
            "grid": grid,
            "clean_accuracy": None if clean is None else float(clean),
            "statuses": {str(k): int(n) for k, n in zip(ended.status, ended.n, strict=True)},
            "status": self.run.state(),  # read afresh: follows a sweep still writing the run
            "in_progress": self.run.in_progress,
            "notes": {k: v for k, v in self.analysis.notes.items() if v.startswith("skipped")},
        }

    def values(self, column: str) -> list[float]:
        key = ("values", column)
        if key not in self._cache:
            self._check_column(column, self.grid_columns)
            self._cache[key] = [
                float(v) for v in self.sql(f"SELECT DISTINCT {q(column)} AS v FROM records ORDER BY v")["v"]
            ]
        return self._cache[key]

    @staticmethod
    def _check_column(column: str, allowed: list[str]) -> None:
        if column not in allowed:
            raise ValueError(f"unknown column {column!r}")

    # aggregates -----------------------------------------------------------------------------------
    def _aggs(self) -> str:
        return ", ".join(f"{expr} AS {name}" for name, (expr, _, _) in self.metrics.items())

    def marginal(self, column: str, flt: Filter) -> pd.DataFrame:
        """Every metric per value of one grid column, over the filtered records."""
        self._check_column(column, self.grid_columns)
        return self.sql(
            f"SELECT {q(column)} AS value, count(*) AS n, {self._aggs()} FROM records "
            f"WHERE {self.where(flt)} GROUP BY 1 ORDER BY 1"
        )

    def heatmap(self, col_a: str, col_b: str, metric: str, flt: Filter) -> pd.DataFrame:
        """One metric per (value of col_a, value of col_b), over the filtered records."""
        self._check_column(col_a, self.grid_columns)
        self._check_column(col_b, self.grid_columns)
        expr = self.metrics[metric][0]
        return self.sql(
            f"SELECT {q(col_a)} AS a, {q(col_b)} AS b, {expr} AS m, count(*) AS n FROM records "
            f"WHERE {self.where(flt)} GROUP BY 1, 2 ORDER BY 1, 2"
        )

    def per_point(self, flt: Filter) -> pd.DataFrame:
        """Every metric per grid point (with its grid values), over the filtered records."""
        cols = ", ".join(f"any_value({q(c)}) AS {q(c)}" for c in self.grid_columns)
        return self.sql(
            f"SELECT point, {cols}, count(*) AS n, {self._aggs()} FROM records "
            f"WHERE {self.where(flt)} GROUP BY point ORDER BY point"
        )

    def per_instance(self, flt: Filter) -> pd.DataFrame:
        """Every metric per instance, over the filtered records."""
        return self.sql(
            f"SELECT instance, count(*) AS n, {self._aggs()} FROM records "
            f"WHERE {self.where(flt)} GROUP BY instance ORDER BY instance"
        )

    def slice_counts(self, flt: Filter) -> pd.DataFrame:
        """The error-slice table with how many of each slice's records are in the current selection."""
        table = self.analysis.slices
        if table is None or table.empty:
            return pd.DataFrame()
        parts = ", ".join(
            f"count(*) FILTER (WHERE {w}) AS s{int(n)}"
            for n, w in zip(table["slice"], table["where"], strict=True)
        )
        row = self.sql(f"SELECT {parts} FROM records WHERE {self.where(flt.without('slice'))}").iloc[0]
        out = table[["slice", "conditions", "size", "errors", "error_rate", "coverage"]].copy()
        out["selected"] = [int(row[f"s{int(n)}"]) for n in table["slice"]]
        return out

    def kept_records(self, flt: Filter, limit: int = 200) -> pd.DataFrame:
        """Records with kept arrays in the filter, failures (wrong, or outside the cutoff) and high losses
        first; runs without predictions show their group (e.g. the digit) and the output PSNR instead."""
        wrong = "(NOT r.correct_t)::INT" if self.outcome else "0"
        grid = ", ".join(f"r.{q(c)}" for c in self.grid_columns)
        if self.classifier:
            preds = ", r.label_name, r.pred_t, r.pred_proj"
        else:
            extra = [c for c in ("correct_t", "psnr_out_t") if self.run.schema.has(c)]
            extra = [self.view.group_column, *extra] if self.view.group_column else extra
            preds = "".join(f", r.{q(c)}" for c in extra)
        return self.sql(
            f"SELECT r.instance, r.point, {grid}{preds}, r.loss_t, r.d_x "
            f"FROM (SELECT * FROM records WHERE {self.where(flt)}) r JOIN kept k USING (instance, point) "
            f"ORDER BY {wrong} DESC, r.loss_t DESC, r.instance, r.point LIMIT {int(limit)}"
        )

    def record(self, instance: int, point: int) -> dict | None:
        """The record of (instance, point) or None when the run has no such record."""
        frame = self.sql(
            "SELECT * FROM records WHERE instance = ? AND point = ?", [int(instance), int(point)]
        )
        return None if frame.empty else frame.iloc[0].to_dict()

    def is_kept(self, instance: int, point: int) -> bool:
        return bool(
            self.scalar(
                "SELECT count(*) FROM kept WHERE instance = ? AND point = ?", [int(instance), int(point)]
            )
        )

    def class_name(self, label) -> str:
        try:
            i = int(label)
        except (TypeError, ValueError):
            return str(label)
        return self.class_names[i] if 0 <= i < len(self.class_names) else str(i)

    def shape(self) -> tuple[int, ...] | None:
        bias = self.analysis.bias
        return None if bias is None else tuple(np.asarray(bias.mean_).shape[2:])


def open_runs(paths: list[str | Path], compute: bool = True, progress=None) -> list[RunData | str]:
    """Open each run; a run that cannot be used becomes its error message (shown in the page)."""
    out: list[RunData | str] = []
    for p in paths:
        try:
            out.append(RunData(p, compute=compute, progress=progress))
        except Exception as err:  # corrupt or half-written runs: any reader error becomes a message
            out.append(f"{Path(p).name}: {type(err).__name__}: {err}")
    return out
