"""Model assertions (``pv.assertions``): robustness contracts a test suite or a CI job holds a model to.

Contracts over a run — :func:`accuracy_at`, :func:`monotonic`, :func:`breakpoint_beyond`,
:func:`no_worse_than` — and over a model and inputs — :func:`invariant` — return a :class:`ContractResult`
(``assert`` it in a plain pytest test); soft assertions — :func:`soft`, :func:`moves_at_most`,
:func:`keeps_clean_prediction` — list the records that break a rule, worst first. ``proactiv check
CHECKS.yaml`` and ``pytest --proactiv CHECKS.yaml`` run a list of them (:mod:`.checks`, :mod:`.pytest_plugin`).

The names are imported on first use, so the pytest plugin, loaded in every pytest run once proactiv is
installed, costs nothing until ``--proactiv`` is given.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from proactiv.assertions.checks import ChecksFile, load_checks, run_checks
    from proactiv.assertions.contracts import (
        ContractResult,
        SoftResult,
        accuracy_at,
        breakpoint_beyond,
        invariant,
        keeps_clean_prediction,
        monotonic,
        moves_at_most,
        no_worse_than,
        soft,
    )
    from proactiv.assertions.junit import write_junit

__all__ = [
    "ChecksFile",
    "ContractResult",
    "SoftResult",
    "accuracy_at",
    "breakpoint_beyond",
    "invariant",
    "keeps_clean_prediction",
    "load_checks",
    "monotonic",
    "moves_at_most",
    "no_worse_than",
    "run_checks",
    "soft",
    "write_junit",
]
#: the module each name lives in (everything else is in ``contracts``)
_HOME = {"ChecksFile": "checks", "load_checks": "checks", "run_checks": "checks", "write_junit": "junit"}


def __getattr__(name: str):
    if name in __all__:
        module = importlib.import_module(f"proactiv.assertions.{_HOME.get(name, 'contracts')}")
        return getattr(module, name)
    raise AttributeError(f"module 'proactiv.assertions' has no attribute {name!r}")
