"""examples/CHECKS.yaml stays in step with the KWS demo: it parses, names the demo's config, and every check that
reads a run resolves its transforms, values and classes on a run with the demo's grid (a synthetic stand-in, as
the demo's model and corpus are too slow to make here)."""

import math
from pathlib import Path

import pytest

from proactiv.assertions.checks import Checker, Invariant, check_name, load_checks
from proactiv.config import load_config
from proactiv.testing import write_synthetic_run
from proactiv.transforms import Grid, get

EXAMPLE = Path(__file__).parents[2] / "examples" / "CHECKS.yaml"


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory):
    demo = load_config(EXAMPLE.parent / "kws_demo.yaml").build_grid()
    grid = Grid([get(t.name, **{t.param.name: list(t.values)}) for t in demo.transforms])
    return write_synthetic_run(tmp_path_factory.mktemp("demo") / "run", n_instances=24, grid=grid,
                               classes=("yes", "no", "up", "down"), bias_class=None)  # fmt: skip


def test_the_example_names_the_demo_config():
    checks = load_checks(EXAMPLE)
    assert checks.config == (EXAMPLE.parent / "kws_demo.yaml").resolve()
    kinds = {c.kind for c in checks.checks}
    assert {"accuracy_at", "breakpoint_beyond", "monotonic", "no_worse_than", "invariant"} <= kinds


def test_every_run_check_of_the_example_resolves_on_the_demo_grid(demo_like):
    checker = Checker(demo_like, baseline=demo_like)  # the run stands in for the demo's run as well
    for check in load_checks(EXAMPLE).checks:
        if isinstance(check, Invariant):  # needs the demo's model
            continue
        outcome = checker.evaluate(check)  # a transform, value or class the grid lacks raises
        assert outcome.result.message, check_name(check)
        # a check on the demo's grid (and 'yes' with 6 of the stand-in's instances) can be checked
        assert outcome.soft or outcome.status != "not checked", outcome.result.message
        if check.kind == "accuracy_at":
            assert not math.isnan(outcome.result.measured)
