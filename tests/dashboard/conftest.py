"""Small synthetic runs (waveforms, so records have audio) with their analyses, shared by the tests; and the
callbacks a panel registers, as plain functions."""

from pathlib import Path

import pytest
from dash import Output

from proactiv.analysis import analyze
from proactiv.dashboard.data import RunData
from proactiv.dashboard.panels import PanelContext, registered_panels
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
def data(run_a) -> RunData:
    """Run a opened for the dashboard."""
    return RunData(run_a)


@pytest.fixture(scope="session")
def denoise_run(tmp_path_factory) -> Path:
    """A tiny image-to-image run (identity "denoiser", meta.digit groups), analysed."""
    from proactiv.testing import sweep_image_run

    run = sweep_image_run(tmp_path_factory.mktemp("dash") / "denoise")
    analyze(run, method="pca")
    return run.path


@pytest.fixture(scope="session")
def classifier_run(tmp_path_factory) -> Path:
    """A tiny image classifier's run (a model to rebuild: every step computes), analysed."""
    import torch

    from proactiv.testing import sweep_image_run

    torch.set_num_threads(1)
    run = sweep_image_run(tmp_path_factory.mktemp("dash") / "classifier", image_to_image=False)
    analyze(run, method="pca", device="cpu")
    return run.path


class _App:
    """Stands in for the Dash app: keeps each callback function under its first output (``"id.property"``)."""

    def __init__(self):
        self.functions = {}

    def callback(self, *dependencies, **_):
        first = next(d for d in dependencies if isinstance(d, Output))

        def keep(function):
            self.functions[f"{first.component_id}.{first.component_property}"] = function
            return function

        return keep


@pytest.fixture
def callbacks_of():
    """``callbacks_of(panel, runs)``: the callbacks the registered panel named ``panel`` (or the function
    ``panel(app, ctx)``) registers over ``runs``, as plain functions by their first output (``"curves.figure"``)."""

    def collect(panel, runs: list) -> dict:
        app, ctx = _App(), PanelContext(tuple(runs))
        if callable(panel):
            panel(app, ctx)
        else:
            found = next(p for p in registered_panels() if p.name == panel)
            found.callbacks(app, ctx.of(found))
        return app.functions

    return collect
