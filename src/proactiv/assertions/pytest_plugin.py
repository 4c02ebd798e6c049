"""The pytest plugin: ``pytest --proactiv CHECKS.yaml`` runs a checks file inside a team's own test suite, each
check a test item that fails with its contract's message, or with the reason it could not be checked (no verdict
comes from nothing checked). The entry point ``proactiv_pytest`` (a top-level module,
so pytest runs without ``--proactiv`` import nothing of proactiv) adds the options and registers this module.

Options: ``--proactiv CHECKS.yaml``, ``--proactiv-model MODEL`` (the model under test; default the config's),
``--proactiv-baseline RUN`` (for ``no_worse_than``), ``--proactiv-run RUN`` (read this run instead of
sweeping; the checks file may then name no config), ``--proactiv-out DIR`` (where to sweep),
``--proactiv-allow-unchecked`` (skip, with the reason, a check that could not be checked instead of failing it).
The run is prepared once, by the first check that runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest


class ContractViolation(Exception):
    """A check whose contract does not hold (reported with the contract's message alone)."""


class ContractNotChecked(Exception):
    """A check the run could not check (reported with the reason)."""


class _Session:
    """The run the checks read, prepared on first use and shared by every check item."""

    def __init__(self, config: pytest.Config, spec):
        self.config, self.spec = config, spec
        self._checker = None
        self._error: Exception | None = None

    def checker(self):
        from proactiv.assertions.checks import Checker, prepare_run
        from proactiv.store import open_run

        if self._error is not None:
            raise self._error
        if self._checker is None:
            opt = self.config.getoption
            try:
                run = prepare_run(self.spec, model=opt("proactiv_model"), run=opt("proactiv_run"),
                                  out=opt("proactiv_out"), progress=False)  # fmt: skip
                baseline = opt("proactiv_baseline")
                self._checker = Checker(run, open_run(baseline) if baseline else None)
            except Exception as err:  # every check reports why the run could not be prepared
                self._error = err
                raise
        return self._checker


class CheckItem(pytest.Item):
    """One check of the checks file."""

    def __init__(self, *, check, shared: _Session, **kwargs):
        super().__init__(**kwargs)
        self.check, self.shared = check, shared

    def runtest(self) -> None:
        outcome = self.shared.checker().evaluate(self.check)
        if outcome.soft:
            result = outcome.result
            self.user_properties.append(("violations", result.n_violations))
            shown = result.violations.to_string(index=False) if result.n_violations else ""
            self.add_report_section("call", "proactiv", f"{result.message}\n{shown}".strip())
        elif outcome.failed:
            raise ContractViolation(outcome.result.message)
        elif outcome.unchecked:
            if self.config.getoption("proactiv_allow_unchecked"):
                pytest.skip(f"{self.name}: NOT CHECKED: {outcome.result.reason}")
            raise ContractNotChecked(outcome.result.reason)

    def repr_failure(self, excinfo, style=None):
        if excinfo.errisinstance(ContractViolation):
            return f"{self.name}: {excinfo.value}"
        if excinfo.errisinstance(ContractNotChecked):
            return f"{self.name}: NOT CHECKED: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"proactiv check: {self.name}"


class ChecksCollector(pytest.File):
    """The checks file as a collector of its checks."""

    def __init__(self, *, spec, shared: _Session, **kwargs):
        super().__init__(**kwargs)
        self.spec, self.shared = spec, shared

    def collect(self):
        from proactiv.assertions.checks import check_name

        for check in self.spec.checks:
            yield CheckItem.from_parent(self, name=check_name(check), check=check, shared=self.shared)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Add the checks of ``--proactiv`` to the collected tests (before -k and -m select among them)."""
    path = config.getoption("proactiv")
    if not path:
        return
    from proactiv.assertions.checks import load_checks

    try:
        spec = load_checks(path)
    except ValueError as err:
        raise pytest.UsageError(f"--proactiv: {err}") from None
    collector = ChecksCollector.from_parent(session, path=Path(path).resolve(), spec=spec,
                                            shared=_Session(config, spec))  # fmt: skip
    items.extend(collector.collect())
