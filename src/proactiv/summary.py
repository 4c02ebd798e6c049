"""A run at a glance: counts, clean accuracy, accuracy and convergence per transform value, with how many
projections ended with each status (via DuckDB)."""

from __future__ import annotations

import pandas as pd

from proactiv.schema import STATUS_COUNTS
from proactiv.store import Run


def _q(col: str) -> str:
    return '"' + col.replace('"', '""') + '"'


def summarize(run: Run) -> dict:
    """``counts`` (dict), ``overall`` and one table per transform column (mean metrics per value, and
    ``n_<status>``: how many projections ended with each status some record has)."""
    n_points = len(run.grid)
    n_inst = run.config.get("n_instances", 0)
    expected = n_points * n_inst
    counts = run.query(
        "SELECT count(*) AS n, count(DISTINCT instance) AS inst, count(DISTINCT point) AS pts FROM records"
    )
    schema = run.schema
    parts = []
    if schema.outcome == "accuracy":
        parts += [
            "avg(correct_clean::DOUBLE) AS clean_accuracy",
            "avg(correct_t::DOUBLE) AS accuracy",
            "avg(correct_proj::DOUBLE) AS accuracy_proj",
            "avg(flipped::DOUBLE) AS flip_rate",
        ]
    elif schema.outcome == "within_cutoff":  # the output's loss is within the cutoff
        parts += [
            "avg(correct_t::DOUBLE) AS within_cutoff",
            "avg(correct_proj::DOUBLE) AS within_cutoff_proj",
        ]
    if schema.has("psnr_out_t"):  # medians: identical images have an infinite PSNR
        parts += ["median(psnr_out_t) AS psnr_out_t", "median(psnr_out_proj) AS psnr_out_proj"]
    parts += ["avg(converged::DOUBLE) AS converged", "median(steps) AS median_steps", "avg(d_x) AS mean_d_x"]
    ended = set(run.query("SELECT DISTINCT status FROM records").status)  # counts of statuses some record has
    parts += [f"{sql} AS n_{name}" for name, sql in STATUS_COUNTS.items() if name in ended]
    agg = ", ".join(parts + ["count(*) AS records"])
    out = {
        "status": run.status,
        "records": int(counts.n[0]),
        "expected_records": expected,
        "instances": int(counts.inst[0]),
        "points": int(counts.pts[0]),
        "overall": run.query(f"SELECT {agg} FROM records"),
        "per_transform": {},
    }
    for col in run.grid.columns:
        table = run.query(f"SELECT {_q(col)} AS value, {agg} FROM records GROUP BY 1 ORDER BY 1 DESC")
        out["per_transform"][col] = table
    return out


def format_table(df: pd.DataFrame) -> str:
    return df.to_string(index=False, float_format=lambda v: f"{v:.3f}")
