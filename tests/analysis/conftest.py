"""Synthetic runs with planted answers (see proactiv.testing)."""

import pytest

from proactiv.testing import write_synthetic_run


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Spectrogram-shaped run: accuracy collapses below 2.5 dB SNR, voice v3 always fails, class 'yes'
    needs +1 dB in mel bands 10-13."""
    return write_synthetic_run(tmp_path_factory.mktemp("planted") / "run")
