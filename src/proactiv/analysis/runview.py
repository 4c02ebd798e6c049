"""What every analysis needs to know about a run: its records in DuckDB, grid columns, metadata, classes.

Analyses load the completed record shards once into an in-memory DuckDB table (aggregations over 100 k
records take milliseconds there) and read the run's shape from its config, so each analysis module stays
about its own idea.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from proactiv.store import Run, RunError, open_run
from proactiv.transforms.base import Param

#: the difference metrics of a record (DESIGN.md), in the order the embeddings use them
DIFFERENCE_METRICS = ("d_x", "d_y", "loss_t", "loss_proj", "loss_change", "flipped")


class AnalysisError(RunError):
    """A run that cannot be analysed as asked (empty, corrupt, missing what an analysis needs)."""


def q(column: str) -> str:
    """Quote a column name for DuckDB (grid columns contain dots)."""
    return '"' + column.replace('"', '""') + '"'


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

    @property
    def classifier(self) -> bool:
        """Whether records carry predictions (classifier runs); image-to-image runs do not."""
        return "correct_t" in self.columns

    @property
    def classes(self) -> list[str]:
        """Class names present in the records, in label order (one class ``"all"`` for non-classifiers)."""
        if not self.classifier:
            return ["all"]
        names = self.query("SELECT DISTINCT label, label_name FROM records ORDER BY label")
        return [str(n) for n in names.label_name]

    def query(self, sql: str) -> pd.DataFrame:
        return self.con.execute(sql).df()

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
    files = run.shard_files()
    if not files:
        raise AnalysisError(f"run {run.path} has no completed records yet; nothing to analyse")
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    try:
        con.execute(f"CREATE TABLE records AS SELECT * FROM read_parquet([{listing}], union_by_name = true)")
    except duckdb.Error as err:
        raise AnalysisError(f"run {run.path}: cannot read its record shards ({err})") from None
    columns = [r[0] for r in con.execute("DESCRIBE records").fetchall()]
    missing = [c for c in ("instance", "point", "label", "d_x", "loss_t") if c not in columns]
    missing += [c for c in run.grid.columns if c not in columns]
    if missing:
        raise AnalysisError(f"run {run.path}: records lack the columns {missing}; is it a proactiv run?")
    n = con.execute("SELECT count(*) FROM records").fetchall()[0][0]
    return RunView(run=run, con=con, columns=columns, n_records=int(n))


def records_fingerprint(run: Run) -> str:
    """A digest of the completed shards (names, sizes, times): changes whenever the records change."""
    digest = hashlib.blake2b(digest_size=12)
    for marker in sorted((run.path / "done").glob("*.json")):
        shard = run.path / "records" / f"part-{marker.stem}.parquet"
        for f in (marker, shard):
            stat = f.stat() if f.exists() else None
            digest.update(
                f"{f.name}:{stat.st_size if stat else -1}:{stat.st_mtime_ns if stat else -1};".encode()
            )
    return digest.hexdigest()


def format_value(value: float) -> str:
    """A parameter value for people: ``10``, ``0.5``, ``∞``."""
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:g}"


def analysis_dir(run: Run) -> Path:
    return run.path / "analysis"
