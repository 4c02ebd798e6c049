"""What every analysis needs to know about a run: its records in DuckDB, grid columns, metadata, classes.

Analyses load the completed record shards once into an in-memory DuckDB table (aggregations over 100 k
records take milliseconds there) and read the run's shape from its config, so each analysis module stays
about its own idea.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from proactiv.schema import METRIC_CATALOGUE, Metric, RunSchema
from proactiv.store import Run, RunError, open_run
from proactiv.transforms.base import Param

#: the difference metrics of a record (DESIGN.md), in the order the embeddings use them
DIFFERENCE_METRICS = ("d_x", "d_y", "loss_t", "loss_proj", "loss_change", "flipped")

#: PSNR is +inf for identical images (xT at the identity point); aggregates and plots cap it here, a level
#: no visible difference reaches (one 8-bit grey level of error is 48 dB), so means and axes stay finite
PSNR_CAP_DB = 60.0
#: image-quality record columns of image runs and their labels (``_out_*``: image-to-image outputs vs the
#: clean target)
QUALITY_METRICS = {m.name: m.label for m in METRIC_CATALOGUE.values() if m.quality}


class AnalysisError(RunError):
    """A run that cannot be analysed as asked (empty, corrupt, missing what an analysis needs)."""


def q(column: str) -> str:
    """Quote a column name for DuckDB (grid columns contain dots)."""
    return '"' + column.replace('"', '""') + '"'


def metric_sql(column: str) -> str:
    """SQL for one numeric record column in aggregates: PSNR capped at :data:`PSNR_CAP_DB`, NaN as NULL."""
    col = q(column)
    if column.startswith("psnr"):  # (DuckDB's least() skips NULLs: a missing PSNR must stay NULL)
        return f"(CASE WHEN {col} IS NULL OR isnan({col}) THEN NULL ELSE least({col}, {PSNR_CAP_DB}) END)"
    if column.startswith("ssim"):
        return f"(CASE WHEN isnan({col}) THEN NULL ELSE {col} END)"
    return col


def record_sql(metric: Metric) -> str:
    """SQL for a catalogue metric per record, to average: a fraction's boolean column as 0/1, else
    :func:`metric_sql` of its column."""
    return f"{q(metric.source)}::DOUBLE" if metric.fraction else metric_sql(metric.source)


def as_run(run: Run | str | os.PathLike) -> Run:
    """Accept an open :class:`Run` or a run directory."""
    return run if isinstance(run, Run) else open_run(run)


@dataclass
class RunView:
    """A run prepared for analysis: ``query`` runs SQL over the table ``records`` held in memory."""

    run: Run
    con: duckdb.DuckDBPyConnection = field(repr=False)
    columns: list[str]
    n_records: int
    #: per-instance columns of analyses joined onto the records (see :meth:`attach`)
    instance_columns: list[str] = field(default_factory=list)
    #: one query at a time on ``con``: the dashboard's callbacks share a view across threads, and a DuckDB
    #: connection refuses a second call while one runs (a cursor per query would not see registered frames);
    #: re-entrant so that :meth:`frames` holds it across the queries of its block
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @property
    def grid_columns(self) -> list[str]:
        return list(self.run.grid.columns)

    @property
    def params(self) -> dict[str, Param]:
        """Each grid column's parameter (name, unit, range, identity)."""
        return {t.column: t.param for t in self.run.grid.transforms}

    @property
    def meta_columns(self) -> list[str]:
        return [c for c in self.columns if c.startswith("meta.")]

    def attach(self, frames: list[pd.DataFrame]) -> list[str]:
        """Add per-instance columns of analyses (e.g. each instance's transform breakpoints) to the records,
        so slices can split on them; returns their names (also in :attr:`instance_columns`)."""
        added = attach_instance_columns(self.con, frames)
        self.columns = [r[0] for r in self.con.execute("DESCRIBE records").fetchall()]
        self.instance_columns = sorted(set(self.instance_columns) | set(added))
        return added

    @property
    def schema(self) -> RunSchema:
        """What kind of run this is; every property below reads it instead of guessing."""
        return self.run.schema

    @property
    def classifier(self) -> bool:
        """Whether records carry predictions (classifier runs); image-to-image runs do not."""
        return self.schema.classifier

    @property
    def correct_metric(self) -> str | None:
        """What ``correct_t`` means here: ``"accuracy"`` (classifiers), ``"within_cutoff"`` (the output's loss
        is below the projection cutoff), or None (no outcome)."""
        return self.schema.outcome

    @property
    def correct_label(self) -> str:
        """``correct_t`` for people: "accuracy on xT", or "within cutoff on xT (loss < 0.005)"."""
        return self.schema.outcome_label

    @property
    def quality_metrics(self) -> list[str]:
        """The PSNR/SSIM columns of an image run, in :data:`QUALITY_METRICS` order."""
        return [m for m in QUALITY_METRICS if self.schema.has(m)]

    @property
    def group_column(self) -> str | None:
        """The column per-class views group by (the schema's; None: one group ``"all"``)."""
        col = self.schema.group_column
        return col if col in self.columns else None

    @property
    def group_sql(self) -> str | None:
        """SQL giving each record's class name (text), or None when the run has one group."""
        col = self.group_column
        return None if col is None else f"CAST({q(col)} AS VARCHAR)"

    @property
    def group_title(self) -> str:
        """What a class is called here: "class", "digit" (from ``meta.digit``), or "all"."""
        return self.schema.group_title if self.group_column else "all"

    @property
    def classes(self) -> list[str]:
        """Class names present in the records, in label (or group value) order; ``["all"]`` without groups."""
        if self.classifier:
            names = self.query("SELECT DISTINCT label, label_name FROM records ORDER BY label")
            return [str(n) for n in names.label_name]
        if self.group_sql is None:
            return ["all"]
        col = q(self.group_column)
        names = self.query(
            f"SELECT DISTINCT {col} AS v, {self.group_sql} AS name FROM records WHERE {col} IS NOT NULL ORDER BY v"
        )
        return [str(n) for n in names["name"]]

    def instance_classes(self) -> dict[int, str]:
        """Each instance's class name (see :attr:`classes`)."""
        expr = self.group_sql or "'all'"
        frame = self.query(f"SELECT instance, any_value({expr}) AS name FROM records GROUP BY instance")
        return {int(i): str(n) for i, n in zip(frame.instance, frame["name"], strict=True)}

    def query(self, sql: str) -> pd.DataFrame:
        """The result of ``sql`` over the records (and whatever is registered on ``con``) as a DataFrame."""
        with self._lock:
            return self.con.execute(sql).df()

    @contextmanager
    def frames(self, **named: pd.DataFrame) -> Iterator[None]:
        """Register data frames on ``con`` under the given names for the queries of a ``with`` block.

        The view stays locked for the whole block: analyses register fixed names (``kept``), and another
        thread registering the same name between this block's registration and its query would swap the data.
        """
        with self._lock:
            for name, frame in named.items():
                self.con.register(name, frame)
            try:
                yield
            finally:
                for name in named:
                    self.con.unregister(name)

    def values(self, column: str) -> list[float]:
        """The distinct values of a grid column present in the records, sorted (inf last)."""
        return sorted(float(v) for v in self.query(f"SELECT DISTINCT {q(column)} AS v FROM records").v)

    def describe_point(self, point: int) -> str:
        """``noise.snr_db=10, clip.level=0.5`` for a grid point id."""
        values = self.run.grid[int(point)].values
        return ", ".join(f"{c}={format_value(v)}" for c, v in values.items())


def open_view(run: Run | str | os.PathLike) -> RunView:
    """Load a run's completed records into DuckDB; a clear error names the path if that is impossible."""
    run = as_run(run)
    if not run.shard_files():
        raise AnalysisError(f"run {run.path} has no completed records yet; nothing to analyse")
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    try:
        run.load_records(con)
    except RunError as err:
        raise AnalysisError(str(err)) from None
    columns = [r[0] for r in con.execute("DESCRIBE records").fetchall()]
    missing = [c for c in ("instance", "point", "label", "d_x", "loss_t") if c not in columns]
    missing += [c for c in run.grid.columns if c not in columns]
    if missing:
        raise AnalysisError(f"run {run.path}: records lack the columns {missing}; is it a proactiv run?")
    n = con.execute("SELECT count(*) FROM records").fetchall()[0][0]
    return RunView(run=run, con=con, columns=columns, n_records=int(n))


def attach_instance_columns(con: duckdb.DuckDBPyConnection, frames: list[pd.DataFrame]) -> list[str]:
    """Join per-instance columns (each frame: ``instance`` + columns, from a step's ``instance_columns``) onto
    the ``records`` table of ``con``, replacing earlier ones of the same name; returns the columns added."""
    added = []
    for k, frame in enumerate(f for f in frames if f is not None and not f.empty):
        cols = [c for c in frame.columns if c != "instance"]
        have = [r[0] for r in con.execute("DESCRIBE records").fetchall()]
        old = [c for c in cols if c in have]
        con.register(f"_instance_{k}", frame)
        try:
            keep = f"* EXCLUDE ({', '.join(q(c) for c in old)})" if old else "*"
            pick = ", ".join(f"c.{q(c)}" for c in cols)
            con.execute(
                f"CREATE OR REPLACE TABLE records AS SELECT r.{keep}, {pick} FROM records r "
                f"LEFT JOIN _instance_{k} c USING (instance)"
            )
        finally:
            con.unregister(f"_instance_{k}")
        added += cols
    return added


def records_fingerprint(run: Run) -> str:
    """A digest of the completed shards: changes whenever the records change (the store computes it)."""
    return run.fingerprint()


def format_value(value: float) -> str:
    """A parameter value for people: ``10``, ``0.5``, ``∞``."""
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:g}"


def analysis_dir(run: Run) -> Path:
    return run.analysis_dir
