"""``proactiv selftest``: plant known faults in tiny models built on the spot, sweep them and analyse the runs
through the real pipeline (sweep → store → analysis steps → stored results read back), and say, per view,
whether it found the fault planted for it.

Each planted run has one fault, known by construction (hand-set weights, no training), so a view's answer can
be judged exactly:

- ``breakpoint``: :class:`LevelGate` calls an input "loud" while the mean of its features stays above a
  threshold; every instance's mean is set so that it flips at its own gain in :data:`FLIPS_DB` (-6.55 …
  -8.35 dB), between the grid values -6 and -9 dB. The breakpoints view must name -9 dB (the first broken
  value) after -6 dB, and nothing along the noise beside it; per-instance breakpoints must recover each
  instance's flip value to one lattice step.
- ``group``: the same gate, with a mark that sends every input of speaker ``s3`` to the wrong class whatever
  the gain. The top error slice must be that speaker; the surrogate (when the package has one) must rank
  ``meta.speaker`` first.
- ``patch`` and ``band``: :func:`proactiv.testing.planted_cue` models whose only evidence for class ``cue`` is a
  small image patch, or two mel bands of the log-mel map behind the keyword-spotting frontend (waveforms in,
  projection on the map); that class's bias map must hold the cue's place.

A view that raises is a view that missed: its finding names the error.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from proactiv.analysis.pipeline import Analysis, analyze
from proactiv.optimize import Projector
from proactiv.store import Run
from proactiv.sweep import sweep
from proactiv.testing import cue_shares, planted_cue
from proactiv.transforms import Grid, get

#: the planted per-instance flip values along gain (dB): none on the resolution lattice, all inside (-9, -6)
FLIPS_DB = tuple(float(v) for v in -6.55 - 0.12 * np.arange(16))
#: the gain grid of the breakpoint run: the model breaks between -6 and -9 dB, never above the identity
BREAK_GRID_DB = (6.0, 3.0, 0.0, -3.0, -6.0, -9.0, -12.0)
#: lattice step of the per-instance search along gain (dB)
RESOLUTION_DB = 0.1
#: the speaker the group run's model fails on, among its four speakers
BAD_SPEAKER = "s3"
#: the patch run's images and where its class's only cue lies
PATCH_SHAPE, PATCH = (16, 16), (slice(5, 8), slice(9, 12))
#: the band run's mel bands and the two its class's only cue lies in (every frame)
MELS, BAND = 24, (slice(9, 11), slice(None))
#: a cue found: it holds the largest elements of its class's bias map and more than this share of its mass
CUE_MASS = 0.5
GAIN = "gain.gain_db"


class LevelGate(nn.Module):
    """Class 1 ("loud") while the mean of all features but the last stays above ``threshold``, class 0 below;
    a 1 in the last feature (a speaker's mark) pushes any input to class 0 (values below 0.5 there, such as
    added noise, count for nothing). Under a gain of ``v`` dB an unmarked input of mean ``m`` flips exactly at
    ``v = 20·log10(threshold / m)``."""

    def __init__(self, threshold: float = 0.5, scale: float = 4.0, mark: float = 10.0):
        super().__init__()
        self.register_buffer("threshold", torch.tensor(threshold))
        self.register_buffer("scale", torch.tensor(scale))
        self.register_buffer("mark", torch.tensor(mark))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        margin = x[:, :-1].mean(1) - self.threshold - self.mark * torch.relu(x[:, -1] - 0.5)
        return self.scale * torch.stack([-margin, margin], 1)


def level_inputs(means: np.ndarray, marked: np.ndarray, width: int = 8, seed: int = 0) -> torch.Tensor:
    """Positive random features whose mean is exactly ``means[i]``, plus the mark feature (1 where
    ``marked``)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(len(means), width, generator=gen, dtype=torch.float64) + 0.5
    x = x / x.mean(1, keepdim=True) * torch.as_tensor(means, dtype=torch.float64)[:, None]
    return torch.cat([x, torch.as_tensor(marked, dtype=torch.float64)[:, None]], 1).float()


@dataclass
class Finding:
    """What one view reported about the fault planted for it: ``status`` is ``pass`` or ``fail``."""

    view: str
    run: str
    fault: str
    found: str
    status: str


@dataclass
class SelftestResult:
    """Every view's finding; ``passed`` when no view missed its fault."""

    findings: list[Finding]
    folder: Path | None
    seconds: float
    failed: list[Finding] = field(init=False)

    def __post_init__(self):
        self.failed = [f for f in self.findings if f.status == "fail"]

    @property
    def passed(self) -> bool:
        return not self.failed

    def status(self, view: str) -> str:
        """The status of ``view`` (``fail`` when any of its findings failed)."""
        mine = [f.status for f in self.findings if f.view == view]
        if not mine:
            raise KeyError(f"no finding for view {view!r}; views: {sorted({f.view for f in self.findings})}")
        return "fail" if "fail" in mine else "pass"


def _verdict(ok: bool) -> str:
    return "pass" if ok else "fail"


# planting ---------------------------------------------------------------------------------------------
def plant_breakpoint(path: Path, device: str = "auto") -> Run:
    """The breakpoint run: 16 instances, each flipping at its own gain in :data:`FLIPS_DB`; noise at 30 dB
    beside it moves no flip across a grid value (it shifts a mean by about 1 %, a flip by about 0.1 dB)."""
    model = LevelGate()
    means = float(model.threshold) * 10 ** (-np.asarray(FLIPS_DB) / 20)
    x = level_inputs(means, np.zeros(len(means)))
    grid = Grid([get("gain", gain_db=list(BREAK_GRID_DB)), get("noise", snr_db=[math.inf, 30.0])])
    return sweep(model, x, torch.ones(len(x), dtype=torch.long), grid, path,
                 projector=Projector(model, max_steps=50, device=device), class_names=["quiet", "loud"],
                 keep_arrays="none", progress=False, resume=True)  # fmt: skip


def plant_group(path: Path, device: str = "auto") -> Run:
    """The group run: 24 instances of four speakers, well above the flip at every gain of the grid, except
    that the model fails on every input of :data:`BAD_SPEAKER`; a session column is a decoy."""
    model = LevelGate()
    n = 24
    speaker = np.asarray([f"s{i % 4}" for i in range(n)])
    means = np.linspace(0.9, 1.1, n)
    x = level_inputs(means, speaker == BAD_SPEAKER, seed=1)
    meta = pd.DataFrame({"speaker": speaker, "session": [f"day{i % 3}" for i in range(n)]})
    grid = Grid([get("gain", gain_db=[-4.0, -2.0, 0.0, 2.0, 4.0])])
    return sweep(model, x, torch.ones(n, dtype=torch.long), grid, path,
                 projector=Projector(model, max_steps=50, device=device), class_names=["quiet", "loud"],
                 metadata=meta, keep_arrays="none", progress=False, resume=True)  # fmt: skip


def plant_patch(path: Path, device: str = "auto") -> Run:
    """The patch run: class ``cue``'s only evidence is a 3×3 patch of a 16×16 image, under brightness."""
    model, x, y = planted_cue(PATCH_SHAPE, PATCH, n=16)
    grid = Grid([get("brightness", delta=[0.0, 0.1], value_range=[0.0, 1.0])])
    return sweep(model, x, y, grid, path, class_names=["whole", "cue"],
                 projector=Projector(model, max_steps=300, device=device), keep_arrays="all", pixel_range=1.0,
                 progress=False, resume=True)  # fmt: skip


def plant_band(path: Path, device: str = "auto") -> Run:
    """The band run, shaped like a keyword-spotting run: quiet noise clips (0.25 s at 16 kHz) through the
    log-mel frontend, under audio noise, projected on the log-mel map; class ``cue``'s only evidence is 2 of its
    24 mel bands (the :func:`~proactiv.testing.planted_cue` model on the map)."""
    from proactiv.tasks.kws.frontend import LogMel

    frontend = LogMel(n_mels=MELS)
    waves = 0.01 * torch.randn(16, 4000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        shape = tuple(frontend(waves[:1]).shape[1:])
    cue, _, y = planted_cue(shape, BAND, n=len(waves))
    model = nn.Sequential(nn.Unflatten(1, (1, MELS)), cue)
    grid = Grid([get("audio_noise", snr_db=[math.inf, 20.0])])
    return sweep(model, waves, y, grid, path, frontend=frontend, class_names=["whole", "cue"],
                 projector=Projector(model, max_steps=300, device=device), keep_arrays="all", progress=False,
                 resume=True)  # fmt: skip


# judging ----------------------------------------------------------------------------------------------
def judge_breakpoints(run: Run, analysis: Analysis) -> tuple[str, bool]:
    """The overall accuracy breakpoint along gain must be -9 dB after -6 dB; none above the identity, none along
    noise."""
    table = analysis.breakpoints
    if table is None:
        return f"no result ({analysis.notes.get('breakpoints', 'no note')})", False
    marginal = table[(table.scope == "all") & (table.condition == "")]
    found = "; ".join(
        f"{r.column} {r.side}: {r.previous:g} → {r.value:g} ({r.metric} {r.before:.2f} → {r.after:.2f})"
        for r in marginal.itertuples()
    )
    below = marginal[(marginal.column == GAIN) & (marginal.side == "below")]
    ok = (
        len(marginal) == 1
        and len(below) == 1
        and below.value.iloc[0] <= min(FLIPS_DB)
        and below.previous.iloc[0] >= max(FLIPS_DB)
    )
    return found or "no breakpoint", ok


def judge_instance_breakpoints(run: Run, analysis: Analysis) -> tuple[str, bool]:
    """Each instance's first flip going down must lie within one lattice step below its planted value; going
    up none flips."""
    result = analysis["instance_breakpoints"]
    if result is None:
        return f"no result ({analysis.notes.get('instance_breakpoints', 'no note')})", False
    t = result.table[result.table.column == GAIN]
    down = t[t.side == "down"].set_index("instance").breakpoint.reindex(range(len(FLIPS_DB)))
    error = down.to_numpy() - np.asarray(FLIPS_DB)
    hits = (error <= 1e-6) & (error > -RESOLUTION_DB - 1e-6)
    up_flips = int(t[t.side == "up"].breakpoint.notna().sum())
    worst = np.nanmax(np.abs(error)) if np.isfinite(error).any() else math.nan
    found = (
        f"{int(hits.sum())}/{len(FLIPS_DB)} within {RESOLUTION_DB:g} dB below the planted flip "
        f"(largest error {worst:.3f} dB); {up_flips} flip above"
    )
    return found, bool(hits.all() and up_flips == 0)


def judge_slices(run: Run, analysis: Analysis) -> tuple[str, bool]:
    """The top error slice must be the bad speaker, every one of its records failing."""
    table = analysis.slices
    if table is None or table.empty:
        return f"no slices ({analysis.notes.get('slices', 'no note')})", False
    top = table.iloc[0]
    found = f"top slice: {top.conditions} (error rate {top.error_rate:.2f}, {top.errors} errors)"
    named = f"meta.speaker = {BAD_SPEAKER}" in top.conditions.split(" and ")
    return found, bool(named and top.error_rate == 1.0 and top.coverage == 1.0)


def judge_surrogate(run: Run, analysis: Analysis) -> tuple[str, bool]:
    """The EBM surrogate's most important feature must be ``meta.speaker``."""
    fitted = analysis["surrogate"]
    if fitted is None:
        return f"no result ({analysis.notes.get('surrogate', 'no note')})", False
    ranking = fitted.importance
    top = str(ranking.feature.iloc[0])
    shown = ", ".join(
        f"{f} {v:.3g}" for f, v in zip(ranking.feature[:3], ranking.importance[:3], strict=False)
    )
    fidelity = fitted.fidelity
    found = f"importance: {shown}; held-out {fidelity['metric']} {fidelity['score']:.2f}"
    return found, top == "meta.speaker"


def judge_bias(run: Run, analysis: Analysis, region: tuple[slice, slice]) -> tuple[str, bool]:
    """Class ``cue``'s bias map must hold the cue in ``region``: its largest elements all inside, and most of
    its mass."""
    maps = analysis.bias
    if maps is None:
        return f"no bias maps ({analysis.notes.get('bias_maps', 'no note')})", False
    mean = np.asarray(maps.mean("cue"), dtype=np.float64)
    shape = mean.shape[-2:]
    rank, mass = cue_shares(torch.from_numpy(mean.reshape(1, 1, *shape)), region)
    area = np.zeros(shape, dtype=bool)
    area[region] = True
    found = (
        f"cue holds {rank:.0%} of the map's top elements and {mass:.0%} of its mass ({area.mean():.1%} of "
        "the area)"
    )
    return found, bool(rank == 1.0 and mass > CUE_MASS)


@dataclass(frozen=True)
class Check:
    """One view (an analysis step) judged on one planted run."""

    view: str
    fault: str
    judge: Callable[[Run, Analysis], tuple[str, bool]]


@dataclass(frozen=True)
class Plant:
    """One planted run: how it is swept, the views judged on it, the settings of their steps."""

    name: str
    sweep: Callable[[Path, str], Run]
    checks: tuple[Check, ...]
    settings: dict = field(default_factory=dict)


PLANTS = (
    Plant(
        "breakpoint",
        plant_breakpoint,
        (
            Check("breakpoints", "accuracy 1 → 0 between gain -6 and -9 dB", judge_breakpoints),
            Check(
                "instance_breakpoints",
                f"each instance flips at its own gain in {max(FLIPS_DB):g} … {min(FLIPS_DB):g} dB",
                judge_instance_breakpoints,
            ),
        ),
        settings={"instance_breakpoints": {"resolution": {GAIN: RESOLUTION_DB}}},
    ),
    Plant(
        "group",
        plant_group,
        (
            Check("slices", f"every record of meta.speaker = {BAD_SPEAKER} fails", judge_slices),
            Check("surrogate", f"meta.speaker = {BAD_SPEAKER} drives failure", judge_surrogate),
        ),
        settings={"surrogate": {"learner": "ebm"}},
    ),
    Plant(
        "patch",
        plant_patch,
        (
            Check(
                "bias_maps",
                "class cue's only cue: a 3×3 patch of a 16×16 image",
                partial(judge_bias, region=PATCH),
            ),
        ),
    ),
    Plant(
        "band",
        plant_band,
        (
            Check(
                "bias_maps",
                f"class cue's only cue: 2 of {MELS} mel bands of a log-mel frontend",
                partial(judge_bias, region=BAND),
            ),
        ),
    ),
)


def _check_plant(plant: Plant, folder: Path, device: str) -> list[Finding]:
    """Sweep one planted run (reusing a complete one in ``folder``), then recompute and judge each view on its
    own, so one view that raises leaves the others judged."""
    run = plant.sweep(folder / plant.name, device)
    findings = []
    for check in plant.checks:
        settings = {k: v for k, v in plant.settings.items() if k == check.view}
        try:
            analysis = analyze(run, steps=[check.view], force=True, settings=settings, device=device)
            found, ok = check.judge(run, analysis)
        except Exception as err:  # a view that raises missed its fault
            found, ok = f"raised {type(err).__name__}: {err}", False
        findings.append(Finding(check.view, plant.name, check.fault, found, _verdict(ok)))
    return findings


def run_selftest(
    folder: str | Path | None = None,
    device: str = "auto",
    plants: tuple[Plant, ...] = PLANTS,
    say: Callable[[str], None] | None = None,
) -> SelftestResult:
    """Plant every fault, sweep, analyse and judge each view.

    ``folder`` keeps the planted runs (a complete run already there is reused, its analyses recomputed); by
    default they go to a temporary directory removed afterwards. ``say`` is told which run is being planted."""
    started = time.perf_counter()
    place = (
        tempfile.TemporaryDirectory(prefix="proactiv-selftest-") if folder is None else nullcontext(folder)
    )
    with place as where:
        where = Path(where)
        where.mkdir(parents=True, exist_ok=True)
        findings = []
        for plant in plants:
            if say:
                say(f"planting {plant.name} …")
            findings += _check_plant(plant, where, device)
    return SelftestResult(
        findings, Path(folder) if folder is not None else None, time.perf_counter() - started
    )


def print_result(result: SelftestResult, console) -> None:
    """The table of view → planted fault → what it found → pass/fail, and a closing line."""
    from rich.table import Table

    table = Table(title="proactiv selftest: does each view find its planted fault?")
    for column in ("view", "run", "planted fault", "found", "result"):
        table.add_column(column, overflow="fold")
    colour = {"pass": "green", "fail": "bold red"}
    for f in result.findings:
        table.add_row(f.view, f.run, f.fault, f.found, f"[{colour[f.status]}]{f.status}[/]")
    console.print(table)
    n = len(result.findings)
    kept = f"; runs kept in {result.folder}" if result.folder is not None else ""
    if result.passed:
        console.print(f"selftest passed: {n} of {n} checks found their planted fault "
                      f"in {result.seconds:.0f} s{kept}", markup=False, highlight=False)  # fmt: skip
    else:
        missed = ", ".join(f"{f.view} ({f.run})" for f in result.failed)
        console.print(f"selftest FAILED: {len(result.failed)} of {n} checks missed their planted fault: "
                      f"{missed}{kept}", markup=False, highlight=False)  # fmt: skip
