"""Helpers for testing analyses, views and your own steps: synthetic runs with planted answers
(:mod:`proactiv.testing.synthetic`) and the conformance suite every analysis step passes
(:func:`check_step`, :mod:`proactiv.testing.conformance`)."""

from proactiv.testing.conformance import ConformanceError, ConformanceRun, check_step, conformance_runs
from proactiv.testing.synthetic import (
    BENCH_CLASSES,
    SYNTHETIC_METRICS,
    bench_grid,
    cue_shares,
    planted_cue,
    sweep_image_run,
    synthetic_grid,
    write_synthetic_run,
)

__all__ = [
    "BENCH_CLASSES",
    "SYNTHETIC_METRICS",
    "ConformanceError",
    "ConformanceRun",
    "bench_grid",
    "check_step",
    "conformance_runs",
    "cue_shares",
    "planted_cue",
    "sweep_image_run",
    "synthetic_grid",
    "write_synthetic_run",
]
