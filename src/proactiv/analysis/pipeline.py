"""``proactiv analyze``: compute every analysis of a run into ``RUN/analysis/``, only what is missing or stale.

```
RUN/analysis/manifest.json                per step: records fingerprint, settings, files, seconds, note
RUN/analysis/curves.parquet               metric curves along each transform parameter (breakpoints.curves)
RUN/analysis/breakpoints.parquet          where the model breaks (breakpoints.breakpoints)
RUN/analysis/slices.parquet               error slices (slices.error_slices)
RUN/analysis/embedding_points.parquet     2-D difference embedding per grid point (embedding.embed)
RUN/analysis/embedding_instances.parquet  2-D difference embedding per instance
RUN/analysis/bias_maps.npz                mean x̂T − xT per class (or group) × grid point (bias.BiasMaps.save)
RUN/analysis/bias_ranking.parquet         class biases, strongest first
```
A step is redone when its files are missing, its settings changed, or the run's completed shards changed
since it ran (the records fingerprint). Every file is written to a temporary name and renamed.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from proactiv.analysis.bias import BiasMaps, bias_maps
from proactiv.analysis.breakpoints import DEFAULT_THRESHOLD, breakpoints, curves
from proactiv.analysis.embedding import embed
from proactiv.analysis.runview import (
    AnalysisError,
    RunView,
    analysis_dir,
    as_run,
    open_view,
    records_fingerprint,
)
from proactiv.analysis.slices import error_slices
from proactiv.store import Run

#: bump when what a step computes changes, so analyses stored by an older proactiv count as stale
FORMAT = 2
STEPS = ("curves", "breakpoints", "slices", "embedding_points", "embedding_instances", "bias_maps")
FILES = {
    "curves": ["curves.parquet"],
    "breakpoints": ["breakpoints.parquet"],
    "slices": ["slices.parquet"],
    "embedding_points": ["embedding_points.parquet"],
    "embedding_instances": ["embedding_instances.parquet"],
    "bias_maps": ["bias_maps.npz", "bias_ranking.parquet"],
}


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _parquet(path: Path, table: pd.DataFrame) -> None:
    _atomic(path, lambda tmp: table.to_parquet(tmp, index=False))


@dataclass
class Analysis:
    """The stored analyses of a run (None where a step was skipped, with the reason in ``notes``)."""

    run: Run
    curves: pd.DataFrame | None = None
    breakpoints: pd.DataFrame | None = None
    slices: pd.DataFrame | None = None
    embedding_points: pd.DataFrame | None = None
    embedding_instances: pd.DataFrame | None = None
    bias: BiasMaps | None = None
    bias_ranking: pd.DataFrame | None = None
    notes: dict[str, str] = field(default_factory=dict)
    computed: list[str] = field(default_factory=list)


def read_manifest(run: Run) -> dict:
    path = analysis_dir(run) / "manifest.json"
    if not path.exists():
        return {"steps": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {"steps": {}}  # a damaged manifest only means every step is redone


def stale_steps(run: Run, settings: dict[str, dict] | None = None) -> list[str]:
    """Steps whose outputs are missing, were made from other records, or with other settings."""
    settings = settings or default_settings()
    manifest, fingerprint, folder = read_manifest(run), records_fingerprint(run), analysis_dir(run)
    out = []
    for step in STEPS:
        entry = manifest["steps"].get(step)
        fresh = (
            entry is not None
            and entry.get("records") == fingerprint
            and entry.get("format") == FORMAT
            and entry.get("settings") == json.loads(json.dumps(settings[step]))
            and all((folder / f).exists() for f in entry.get("files", []))
        )
        if not fresh:
            out.append(step)
    return out


def default_settings(
    method: str = "tsne",
    max_rows: int = 3000,
    seed: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    failure: str | None = None,
    max_depth: int = 3,
) -> dict[str, dict]:
    """The settings of each step (a change of any makes that step stale)."""
    emb = {"method": method, "max_rows": max_rows, "seed": seed}
    return {
        "curves": {},
        "breakpoints": {"threshold": threshold},
        "slices": {"failure": failure, "max_depth": max_depth},
        "embedding_points": emb,
        "embedding_instances": emb,
        "bias_maps": {},
    }


def _compute(step: str, view: RunView, folder: Path, cfg: dict, tick: Callable[[float], None]) -> str:
    """Run one step and write its files; returns a note for people (what was sampled, skipped …)."""
    if step == "curves":
        _parquet(folder / "curves.parquet", curves(view))
        return ""
    if step == "breakpoints":
        table = breakpoints(
            view, threshold=cfg["threshold"], curves_table=pd.read_parquet(folder / "curves.parquet")
        )
        _parquet(folder / "breakpoints.parquet", table)
        if view.correct_metric is None:
            return "no predictions and no loss cutoff in this run: accuracy breakpoints are undefined"
        on = (
            ""
            if view.classifier
            else "on the share of outputs within the loss cutoff (no predictions in this run); "
        )
        return on + (
            f"{(table.condition == '').sum()} breakpoints over marginal curves; rule: {table.rule.iloc[0]}"
            if len(table)
            else "the model never broke under the breakpoint rule"
        )
    if step == "slices":
        table = error_slices(view, failure=cfg["failure"], max_depth=cfg["max_depth"])
        _parquet(folder / "slices.parquet", table)
        return f"failure = {table.attrs['failure']}"
    if step.startswith("embedding_"):
        by = {"embedding_points": "point", "embedding_instances": "instance"}[step]
        table = embed(
            view, by=by, method=cfg["method"], max_rows=cfg["max_rows"], seed=cfg["seed"], progress=tick
        )
        _parquet(folder / f"{step}.parquet", table)
        return "; ".join(n for n in (f"method {table.attrs['method']}", table.attrs["note"]) if n)
    maps = bias_maps(view, progress=tick)
    _atomic(folder / "bias_maps.npz", maps.save)
    _parquet(folder / "bias_ranking.parquet", maps.ranking)
    pooled = ", ".join(f"{c}: {n}" for c, n in zip(maps.classes, maps.instances_, strict=True))
    per = "class" if maps.group in ("class", "all") else maps.group
    return f"instances pooled per {per} (arrays kept for a sample only): {pooled}"


def analyze(
    run: Run | str | os.PathLike,
    steps: list[str] | None = None,
    force: bool = False,
    progress: Callable[[str, float], None] | None = None,
    **settings,
) -> Analysis:
    """Compute the missing or stale analyses of ``run`` into ``RUN/analysis/`` and return all of them.

    ``steps`` limits the work to some of :data:`STEPS`; ``force`` redoes them even when fresh;
    ``progress(step, fraction)`` is called as steps advance; ``settings`` go to :func:`default_settings`
    (``method``, ``max_rows``, ``seed``, ``threshold``, ``failure``, ``max_depth``).
    """
    run = as_run(run)
    unknown = sorted(set(steps or []) - set(STEPS))
    if unknown:
        raise ValueError(f"unknown analysis steps {unknown}; known steps: {', '.join(STEPS)}")
    cfg = default_settings(**settings)
    fingerprint = records_fingerprint(run)  # before loading: shards added meanwhile leave the steps stale
    view = open_view(run)
    folder = analysis_dir(run)
    folder.mkdir(exist_ok=True)
    stale = STEPS if force else stale_steps(run, cfg)
    todo = [s for s in STEPS if (steps is None or s in steps) and s in stale]
    if "breakpoints" in todo and "curves" in stale and "curves" not in todo:
        todo.insert(0, "curves")
    manifest = read_manifest(run)
    computed = []
    for step in todo:
        started = time.perf_counter()
        tick = (lambda f, s=step: progress(s, f)) if progress else (lambda f: None)
        tick(0.0)
        for name in FILES[step]:
            (folder / name).unlink(missing_ok=True)
        try:
            note, files = _compute(step, view, folder, cfg[step], tick), FILES[step]
        except AnalysisError as err:
            note, files = f"skipped: {err}", []
        manifest["steps"][step] = {
            "records": fingerprint,
            "format": FORMAT,
            "settings": cfg[step],
            "files": files,
            "seconds": round(time.perf_counter() - started, 3),
            "note": note,
            "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        manifest.update(records=fingerprint, n_records=view.n_records, run_status=run.status)
        _atomic(
            folder / "manifest.json", lambda tmp: tmp.write_text(json.dumps(manifest, indent=2, default=str))
        )
        tick(1.0)
        computed.append(step)
    result = load_analysis(run)
    result.computed = computed
    return result


def load_analysis(run: Run | str | os.PathLike) -> Analysis:
    """Read what ``RUN/analysis/`` holds (without computing anything)."""
    run = as_run(run)
    folder = analysis_dir(run)
    manifest = read_manifest(run)
    out = Analysis(run=run, notes={s: e.get("note", "") for s, e in manifest["steps"].items()})
    for step in ("curves", "breakpoints", "slices", "embedding_points", "embedding_instances"):
        path = folder / f"{step}.parquet"
        if path.exists():
            setattr(out, step, pd.read_parquet(path))
    if (folder / "bias_maps.npz").exists():
        out.bias = BiasMaps.load(folder / "bias_maps.npz")
        out.bias_ranking = pd.read_parquet(folder / "bias_ranking.parquet")
    return out


def require_run(run: Run | str | os.PathLike) -> Run:
    """Open a run for analysis with an error naming the path when it is missing, corrupt or empty."""
    if not isinstance(run, Run) and not Path(run).is_dir():
        raise AnalysisError(f"{run}: no such run directory")
    run = as_run(run)
    if not run.shard_files():
        raise AnalysisError(f"run {run.path} has no completed records yet; nothing to analyse")
    return run
