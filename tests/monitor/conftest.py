"""The planted stream of :mod:`proactiv.testing.streams` as fixtures."""

import pytest

from proactiv.testing.streams import ToneModel, planted_wave


@pytest.fixture
def planted():
    return planted_wave()


@pytest.fixture
def tone_model():
    return ToneModel()
