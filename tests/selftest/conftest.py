"""Shared by the selftest cases' tests: a module names its case (``CASE = "…"``); ``kept`` sweeps that case's
planted run once per module into a temporary folder, and ``selftest()`` judges its views again on it (reusing
the run, recomputing the analyses). They run on one torch thread (the shared conftest sets two per test): the
cases' times are measured so, and the machine's cores are shared."""

import pytest
import torch

from proactiv.selftest import registered_plants, run_selftest


@pytest.fixture(autouse=True)
def _one_thread(_isolated_cache):
    torch.set_num_threads(1)


def _plants(request) -> tuple:
    return tuple(p for p in registered_plants() if p.name == request.module.CASE)


@pytest.fixture(scope="module")
def kept(request, tmp_path_factory):
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp(f"selftest-{request.module.CASE}")
    run_selftest(folder, device="cpu", plants=_plants(request))
    return folder


@pytest.fixture
def selftest(request, kept):
    plants = _plants(request)
    return lambda: run_selftest(kept, device="cpu", plants=plants)
