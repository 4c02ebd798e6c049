"""Synthetic runs with planted answers for the view tests (see :func:`proactiv.testing.write_synthetic_run`):
accuracy collapses below 2.5 dB SNR, voice v3 always fails, class "yes" needs +1 in rows 10-13."""

import pytest

from proactiv.testing import synthetic_grid, write_synthetic_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A spectrogram-shaped run of 24 instances over SNR × gain (6 × 3 grid points), nothing analysed yet."""
    return write_synthetic_run(tmp_path_factory.mktemp("views") / "spec", n_instances=24)


@pytest.fixture(scope="module")
def vector_run(tmp_path_factory):
    """A run of 1-D inputs (64 values) at a clean and a 0 dB grid point; class "yes" shifted in values 10-19."""
    grid = synthetic_grid([float("inf"), 0], [0])
    return write_synthetic_run(tmp_path_factory.mktemp("views") / "vec", n_instances=8, shape=(64,), grid=grid,
                               bias_rows=(10, 20), input_kind="vector")  # fmt: skip
