"""A monitored window as a one-instance run, so the what-if studio (:class:`proactiv.whatif.Studio`) can take it
apart: the studio rebuilds a sweep run's instance, and a window of a stream is none until it is swept as one.

The run's one instance is the window's samples; its label is the model's decision on the window as the monitor
recorded it (a stream has no ground truth), or a class the caller picks; its grid is the one asked for, or the
keyword demo's (:data:`DEFAULT_GRID`). The run is the monitored model's (the copy the store keeps) and is kept
under the store (``STORE/whatif/window-<step>/``), reused while the model, the window, the label and the grid
are the same.

    from proactiv.monitor import window_run

    run = window_run("monitors/day1", 412)          # or label="yes", grid=[{"type": "speed", ...}]
    studio = pv.whatif.Studio(run)
    studio.transform(0, {"audio_noise.snr_db": 10}).prediction
"""

from __future__ import annotations

import json
import math
import os
import shutil

import pandas as pd
import torch

from proactiv.config import ExecutionSpec
from proactiv.fingerprint import data_hash
from proactiv.monitor.store import MonitorError, MonitorStore, open_monitor
from proactiv.store import Run, RunError, open_run
from proactiv.sweep import sweep
from proactiv.task_data import TaskData
from proactiv.transforms import Grid

#: the grid of a waveform window when none is given: the keyword demo's (examples/kws_demo.yaml), 54 points; a
#: window of the demo model sweeps in 2-9 s on one busy core
DEFAULT_GRID = [
    {"type": "audio_noise", "snr_db": [math.inf, 20, 10, 5, 0, -5], "color": "white"},
    {"type": "speed", "factor": [0.8, 1.0, 1.25]},
    {"type": "pitch", "semitones": [-4, 0, 4]},
]


def window_run(
    store: MonitorStore | str | os.PathLike,
    step: int,
    grid: Grid | list[dict] | None = None,
    *,
    label: str | None = None,
    progress: bool = False,
) -> Run:
    """Sweep window ``step`` of a monitor store as a one-instance run (or reuse the one swept before).

    Parameters
    ----------
    store : a :class:`MonitorStore` or its folder; it must keep its model (stores written by
        :func:`proactiv.monitor` do; ``resume=True`` on an older one adds the copy).
    step : the window's number (the store's ``step`` column).
    grid : a :class:`~proactiv.transforms.Grid` or its spec (a sweep config's ``grid:`` list); None:
        :data:`DEFAULT_GRID`.
    label : the desired output, one of the model's class names; None: the model's decision on the window.
    progress : show the sweep's progress bar.

    Returns
    -------
    The run in ``store.window_path(step)``; it is reused when it was swept with the same model, window, label
    and grid, and swept again otherwise.
    """
    store = store if isinstance(store, MonitorStore) else open_monitor(store)
    row = store.window(step)
    step = int(row.step)
    found = store.samples(step)
    if found is None:
        raise MonitorError(
            f"monitor store {store.path}: window {step} has no samples to sweep (the stream is not a "
            "waveform, or its source file moved)"
        )
    wave, rate = found
    names = store.class_names
    decision = names[int(row.decision)]
    label = decision if label is None else label
    if label not in names:
        raise ValueError(f"label {label!r}: not one of the model's classes ({', '.join(names)})")
    grid = _grid(grid)
    model, frontend = store.model()
    data = TaskData(
        inputs=torch.from_numpy(wave)[None],
        labels=torch.tensor([names.index(label)]),
        class_names=names,
        metadata=pd.DataFrame({"step": [step], "start_s": [float(row.start_s)], "decision": [decision]}),
        frontend=frontend,
        sample_rate=rate,
        config={"monitor_window": {"stream": store.stream.get("name"), "step": step, "label": label}},
    )
    out = store.window_path(step)
    old = _reusable(out, store, data, grid)
    if old is not None:
        return old
    execution = ExecutionSpec(progress=progress, device="cpu")
    return sweep(model, data, grid, out, arrays={"keep": "all"}, execution=execution,
                 seed=int(store.config.get("seed", 0)))  # fmt: skip


def _grid(grid: Grid | list[dict] | None) -> Grid:
    if isinstance(grid, Grid):
        return grid
    try:
        return Grid.from_spec(DEFAULT_GRID if grid is None else grid)
    except (TypeError, ValueError, LookupError) as err:
        raise ValueError(f"grid: {err}") from None


def _reusable(out, store: MonitorStore, data: TaskData, grid: Grid) -> Run | None:
    """The run already in ``out`` when it is complete and was swept with this model, window, label and grid;
    None after clearing ``out`` otherwise (a window run is re-creatable, nothing else lives there)."""
    if not out.exists():
        return None
    try:
        run = open_run(out)
    except RunError:
        run = None
    if run is not None and run.status == "complete":
        made = (run.fingerprints.get("model"), run.fingerprints.get("data"), run.config.get("grid"))
        asked = (store.config.get("model", {}).get("fingerprint"), data_hash(data.inputs, data.labels, data.metadata),
                 json.loads(json.dumps(grid.spec())))  # fmt: skip
        if made == asked:
            return run
    shutil.rmtree(out)
    return None
