"""Smoke test of the installed wheel with its core dependencies only, run from outside the source tree by
``scripts/check_package.sh`` (not collected by pytest: it needs a venv without the extras).

A tiny model of a few lines is swept with ``pv.sweep``; ``proactiv info`` and ``proactiv report`` run on the
run; the report says which analyses an extra would add, and how to install it; the dashboard, whose extra is
not installed, says ``pip install 'proactiv[dashboard]'`` (imported, and as ``proactiv serve``); importing
proactiv loads none of the extras' libraries.

    python smoke.py WORKDIR
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

#: libraries only the extras install: none may be importable here, and proactiv must load none of them
EXTRAS_LIBRARIES = ("dash", "waitress", "captum", "shap", "interpret", "openTSNE", "umap", "wordfreq", "ray",
                    "onnx", "onnxruntime", "onnx2torch")  # fmt: skip


def command(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
    """Run the installed ``proactiv`` command (the script of this venv), check its exit code, say how long."""
    exe = Path(sys.executable).with_name("proactiv")
    started = time.perf_counter()
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=600)
    if done.returncode != expect:
        raise SystemExit(
            f"proactiv {' '.join(args)}: exit {done.returncode}, expected {expect}\n{done.stdout}\n{done.stderr}"
        )
    print(f"[smoke] proactiv {args[0]}: {time.perf_counter() - started:.1f} s", flush=True)
    return done


def main(work: Path) -> None:
    started = time.perf_counter()
    import importlib.util

    present = [name for name in EXTRAS_LIBRARIES if importlib.util.find_spec(name) is not None]
    assert not present, f"the core install holds libraries of the extras: {present}"

    import torch
    from torch import nn

    import proactiv as pv

    where = Path(pv.__file__).resolve()
    assert "site-packages" in where.parts, f"proactiv was imported from {where}, not from the installed wheel"
    loaded = [name for name in EXTRAS_LIBRARIES if name in sys.modules]
    assert not loaded, f"import proactiv loaded {loaded}"

    # a model of a few lines: 8 features, 3 classes, its own predictions on the clean inputs as labels
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)).eval()
    inputs = torch.randn(30, 8)
    with torch.no_grad():
        labels = model(inputs).argmax(1)
    grid = pv.Grid(
        [pv.transforms.get("noise", snr_db=[30, 10, 0]), pv.transforms.get("gain", gain_db=[0, -6])]
    )
    out = work / "run"
    data = pv.TaskData(inputs, labels, class_names=["a", "b", "c"], input_kind="vector")
    run = pv.sweep(model, data, grid, out, execution=pv.ExecutionSpec(progress=False))
    assert len(run.records) == 30 * 3 * 2, len(run.records)
    print(f"[smoke] import and pv.sweep: {time.perf_counter() - started:.1f} s", flush=True)

    version = command("--version").stdout
    assert version == f"proactiv {pv.__version__}\n", version
    info = command("info", str(out)).stdout
    assert "records: 180 of 180" in info, info
    command("report", str(out), "--no-progress")
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "<!DOCTYPE html>" in report[:200] and "Breakpoints" in report
    # the analyses of missing extras are named in the report with the line that installs them
    for extra in ("embed", "explain"):
        assert f"proactiv[{extra}]" in report, f"the report does not name the {extra} extra"

    # the dashboard without its extra: the install command, never a traceback
    try:
        import proactiv.dashboard  # noqa: F401
    except ImportError as err:
        assert "pip install 'proactiv[dashboard]'" in str(err), err
    else:
        raise AssertionError("proactiv.dashboard imported without the dashboard extra")
    served = command("serve", str(out), "--no-progress", expect=2)
    assert "pip install 'proactiv[dashboard]'" in served.stderr and "Traceback" not in served.stderr, (
        served.stderr
    )
    print(f"[smoke] the core wheel passed in {time.perf_counter() - started:.1f} s: sweep, info, report, "
          f"--version, and the dashboard names its extra ({where.parent})")  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]))
