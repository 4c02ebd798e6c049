"""Small synthetic runs (waveforms, so records have audio) with their analyses, shared by the tests."""

from pathlib import Path

import pytest

from proactiv.analysis import analyze
from proactiv.testing import write_synthetic_run


def make_run(path: Path, seed: int = 0, fail_below_snr: float = 2.5) -> Path:
    run = write_synthetic_run(
        path,
        n_instances=48,
        shape=(4000,),
        bias_rows=(1000, 1400),
        seed=seed,
        fail_below_snr=fail_below_snr,
        input_kind="waveform",
    )
    analyze(run)
    return path


@pytest.fixture(scope="session")
def run_a(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("dash") / "model-a")


@pytest.fixture(scope="session")
def run_b(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("dash") / "model-b", seed=1, fail_below_snr=7.5)


@pytest.fixture(scope="session")
def denoise_run(tmp_path_factory) -> Path:
    """A tiny image-to-image run (identity "denoiser", meta.digit groups), analysed."""
    from proactiv.testing import sweep_image_run

    run = sweep_image_run(tmp_path_factory.mktemp("dash") / "denoise")
    analyze(run, method="pca")
    return run.path
