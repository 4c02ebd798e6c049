"""proactiv's pytest entry point (``pytest11``), a top-level module so that loading it imports nothing of proactiv:
pytest loads it in every run of anyone who installs proactiv. It adds the ``--proactiv`` options; when
``--proactiv CHECKS.yaml`` is given it registers :mod:`proactiv.assertions.pytest_plugin`, which turns each check
into a test item."""

from __future__ import annotations

import pytest

_OPTIONS = {
    "--proactiv": ("CHECKS.yaml", "run the robustness contracts of this checks file as tests"),
    "--proactiv-model": ("MODEL", "the model under test (a model directory or file); default: the config's"),
    "--proactiv-baseline": ("RUN", "the baseline run of no_worse_than checks"),
    "--proactiv-run": ("RUN", "check this run instead of sweeping the config (then no config is needed)"),
    "--proactiv-out": ("DIR", "where to sweep (default runs/checks/<model>-<config>)"),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("proactiv", "robustness contracts (proactiv)")
    for flag, (metavar, help_text) in _OPTIONS.items():
        group.addoption(flag, metavar=metavar, default=None, help=help_text)
    group.addoption(
        "--proactiv-allow-unchecked",
        action="store_true",
        help="skip a check the run could not check (with the reason) instead of failing it",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("proactiv"):
        from proactiv.assertions import pytest_plugin

        config.pluginmanager.register(pytest_plugin, "proactiv-checks")
