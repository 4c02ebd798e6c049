"""``proactiv analyze``: compute every registered analysis step of a run into ``RUN/analysis/``, only what is
missing or stale.

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
plus the files of any other registered step (:mod:`proactiv.analysis.steps`). A step is redone when its
files are missing, its settings or version changed, the run's completed shards changed since it ran (the
records fingerprint), or a step it reads is redone. Every file is written to a temporary name and renamed.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from proactiv.analysis.bias import BiasMaps
from proactiv.analysis.runview import AnalysisError, analysis_dir, as_run, records_fingerprint
from proactiv.analysis.steps import Step, StepContext, get, registered
from proactiv.extras import MissingExtra
from proactiv.model_copy import UnimportableClass
from proactiv.store import Run, write_json

#: bump when the manifest or the meaning of every step changes (one step: bump its ``version``)
FORMAT = 2


def _result(name: str, doc: str) -> property:
    return property(lambda self: self[name], doc=doc)


@dataclass
class Analysis:
    """The stored analyses of a run: ``results[step]`` (also ``analysis[step]``) is None where a step was
    not computed or was skipped, with the reason in ``notes``."""

    run: Run
    results: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    computed: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> Any:
        if name not in self.results:
            get(name)  # an unknown step is an error, a known one without a result is None
        return self.results.get(name)

    curves = _result("curves", "metric curves along each transform parameter")
    breakpoints = _result("breakpoints", "where the model breaks")
    slices = _result("slices", "error slices")
    embedding_points = _result("embedding_points", "difference embedding per grid point")
    embedding_instances = _result("embedding_instances", "difference embedding per instance")
    bias = _result("bias_maps", "bias maps (BiasMaps)")

    @property
    def bias_ranking(self) -> pd.DataFrame | None:
        """Class biases over all grid points, strongest first."""
        maps: BiasMaps | None = self.bias
        return None if maps is None else maps.ranking


def read_manifest(run: Run) -> dict:
    path = analysis_dir(run) / "manifest.json"
    if not path.exists():
        return {"steps": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {"steps": {}}  # a damaged manifest only means every step is redone


def _plain(settings: dict) -> dict:
    """Settings as the manifest stores them (JSON types), so stored and current ones compare equal."""
    return json.loads(json.dumps(settings, default=str))


def default_settings(settings: dict[str, dict] | None = None, **flat) -> dict[str, dict]:
    """Each registered step's settings: its defaults, then ``flat`` ones (``threshold=0.5`` goes to every step
    that has a ``threshold``; ``method``, ``max_rows``, ``seed`` to both embeddings), then per-step ones
    (``settings={"breakpoints": {"threshold": 0.5}}``). Unknown steps or settings are errors."""
    steps = registered()
    known = {k for s in steps for k in s.settings}
    unknown = sorted(set(flat) - known)
    if unknown:
        raise ValueError(f"unknown analysis settings {unknown}; known settings: {', '.join(sorted(known))}")
    per_step = settings or {}
    names = [s.name for s in steps]
    unknown = sorted(set(per_step) - set(names))
    if unknown:
        raise ValueError(f"settings for unknown analysis steps {unknown}; known steps: {', '.join(names)}")
    for name, given in per_step.items():
        wrong = sorted(set(given) - set(get(name).settings))
        if wrong:
            raise ValueError(
                f"analysis step {name} has no settings {wrong}; its settings: {', '.join(get(name).settings) or 'none'}"
            )
    return {
        s.name: {
            **s.settings,
            **{k: v for k, v in flat.items() if k in s.settings},
            **per_step.get(s.name, {}),
        }
        for s in steps
    }


def _result_id(manifest: dict, step: str) -> str | None:
    """The id of ``step``'s stored result (a new one each time it is computed; None: never computed)."""
    return (manifest["steps"].get(step) or {}).get("id")


def stale_steps(run: Run, settings: dict[str, dict] | None = None) -> list[str]:
    """Steps whose outputs are missing, were made from other records, with other settings or by another
    version, that read (``after``) a stale step, or whose ``uses`` steps have a new result since they ran."""
    settings = settings or default_settings()
    manifest, fingerprint, folder = read_manifest(run), records_fingerprint(run), analysis_dir(run)
    out: list[str] = []
    for step in registered():
        entry = manifest["steps"].get(step.name)
        fresh = (
            entry is not None
            and entry.get("records") == fingerprint
            and entry.get("format") == FORMAT
            and entry.get("version", 1) == step.version  # manifests from before step versions: version 1
            and entry.get("settings") == _plain(settings.get(step.name, step.settings))
            and all((folder / f).exists() for f in entry.get("files", []))
            and not any(a in out for a in step.after)
            and all((entry.get("read") or {}).get(u) == _result_id(manifest, u) for u in step.uses)
            and not _installed_since(entry)
        )
        if not fresh:
            out.append(step.name)
    return out


def _installed_since(entry: dict) -> bool:
    """A step skipped for want of a module that can be found now: an optional library installed since, or the
    module of the model's class once run from its folder (it is computed again)."""
    missing = entry.get("missing")
    return bool(missing) and importlib.util.find_spec(missing.split(".")[0]) is not None


def installed_since(run: Run) -> list[str]:
    """The steps of ``run`` skipped for want of an optional library that is installed now."""
    return [name for name, entry in read_manifest(run)["steps"].items() if _installed_since(entry)]


def _stored(step: Step, folder: Path) -> Any:
    """A step's stored result, or None when any of its files is missing or cannot be read back (a damaged file
    counts as missing: :func:`analyze` computes the step again)."""
    if not all((folder / f).exists() for f in step.files):
        return None
    try:
        return step.load(folder)
    except Exception:  # a damaged file raises whatever its reader raises (Arrow, zip, JSON, pickle, numpy)
        return None


def _run_step(step: Step, ctx: StepContext, settings: dict, folder: Path, tick) -> tuple[str, list[str], str]:
    """Compute and save one step (its results go to ``ctx.results``); returns its note, its files, and the
    module whose absence skipped it ("" when none did)."""
    for name in step.files:
        (folder / name).unlink(missing_ok=True)
    try:
        unread = [a for a in step.after if ctx.results.get(a) is None]
        if unread:
            raise AnalysisError(f"it reads {', '.join(unread)}, which has no result")
        if "arrays" in step.needs and not ctx.run.array_files():
            keep = (ctx.run.config.get("arrays") or {}).get("keep")
            raise AnalysisError(f"run {ctx.run.path} kept no arrays (arrays.keep = {keep!r})")
        result = step.compute(ctx, settings, tick)
        step.save(result, folder)
    except AnalysisError as err:
        ctx.results[step.name] = None
        cause = err.__cause__  # the model's class not importable here: redone once its module is found
        return f"skipped: {err}", [], cause.module if isinstance(cause, UnimportableClass) else ""
    except MissingExtra as err:  # the note names the extra that installs it
        ctx.results[step.name] = None
        return f"skipped: {err}", [], err.module
    ctx.results[step.name] = result
    return step.note(result), list(step.files), ""


def analyze(
    run: Run | str | os.PathLike,
    steps: list[str] | None = None,
    force: bool = False,
    progress: Callable[[str, float], None] | None = None,
    settings: dict[str, dict] | None = None,
    device: str = "auto",
    **flat,
) -> Analysis:
    """Compute the missing or stale analyses of ``run`` into ``RUN/analysis/`` and return all of them.

    ``steps`` limits the work to some registered steps (stale steps they read are redone too); ``force``
    redoes them even when fresh; ``progress(step, fraction)`` is called as steps advance; ``settings`` (per
    step) and ``flat`` (``method``, ``max_rows``, ``seed``, ``threshold``, ``failure``, ``max_depth`` …) go
    to :func:`default_settings`; ``device`` is where steps that need the model rebuild it.
    """
    run = as_run(run)
    order = [s.name for s in registered()]
    unknown = sorted(set(steps or []) - set(order))
    if unknown:
        raise ValueError(f"unknown analysis steps {unknown}; known steps: {', '.join(order)}")
    cfg = default_settings(settings, **flat)
    fingerprint = records_fingerprint(run)  # before loading: shards added meanwhile leave the steps stale
    stale = order if force else stale_steps(run, cfg)
    have = load_analysis(run)  # a fresh step whose files no longer read back (damaged) is stale too
    written = {name for name, entry in read_manifest(run)["steps"].items() if entry.get("files")}
    stale = [*stale, *(n for n in order if n not in stale and n in written and have[n] is None)]
    wanted = set(order if steps is None else steps)
    for step in reversed(registered()):  # a wanted step's stale inputs are wanted too (they come earlier)
        if step.name in wanted:
            wanted.update(a for a in step.after if a in stale)
    redo: set[str] = set()
    for name in order:  # in dependency order: a step that uses one redone now gets a new input now
        if name in wanted and (name in stale or any(u in redo for u in get(name).uses)):
            redo.add(name)
    todo = [get(n) for n in order if n in redo]
    if not todo:
        return have
    folder = analysis_dir(run)
    folder.mkdir(exist_ok=True)
    ctx = StepContext(run, device=device)
    n_records = ctx.view.n_records  # opened here: unreadable records are an error, not a skipped step
    manifest = read_manifest(run)
    computed = []
    for step in todo:
        started = time.perf_counter()
        tick = (lambda f, s=step.name: progress(s, f)) if progress else (lambda f: None)
        tick(0.0)
        for name in (*step.after, *step.uses):
            if name not in ctx.results:
                ctx.results[name] = _stored(get(name), folder)
        note, files, missing = _run_step(step, ctx, cfg[step.name], folder, tick)
        manifest["steps"][step.name] = {
            "records": fingerprint,
            "format": FORMAT,
            "version": step.version,
            "settings": _plain(cfg[step.name]),
            "files": files,
            "seconds": round(time.perf_counter() - started, 3),
            "note": note,
            "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "id": uuid.uuid4().hex,
            # the results of the steps it uses, as they were: a new one of theirs makes this step stale
            "read": {u: _result_id(manifest, u) for u in step.uses},
            # a module it lacked (an optional library, the model's own module): once found, it is computed again
            **({"missing": missing} if missing else {}),
        }
        manifest.update(records=fingerprint, n_records=n_records, run_status=run.status)
        write_json(folder / "manifest.json", manifest)
        tick(1.0)
        computed.append(step.name)
    result = load_analysis(run)
    result.computed = computed
    return result


def load_analysis(run: Run | str | os.PathLike) -> Analysis:
    """Read what ``RUN/analysis/`` holds for every registered step (without computing anything)."""
    run = as_run(run)
    folder = analysis_dir(run)
    manifest = read_manifest(run)
    return Analysis(
        run=run,
        results={s.name: _stored(s, folder) for s in registered()},
        notes={s: e.get("note", "") for s, e in manifest["steps"].items()},
    )


def require_run(run: Run | str | os.PathLike) -> Run:
    """Open a run for analysis with an error naming the path when it is missing, corrupt or empty."""
    if not isinstance(run, Run) and not Path(run).is_dir():
        raise AnalysisError(f"{run}: no such run directory")
    run = as_run(run)
    if not run.shard_files():
        raise AnalysisError(f"run {run.path} has no completed records yet; nothing to analyse")
    return run
