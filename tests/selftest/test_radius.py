"""The ``linear_radius`` and ``relu_radius`` cases: the exact radii they judge by are exact (the closed form
against the flip it predicts, the enumeration against a mixed-integer program and a search along rays), the cases
pass, and a radius broken on purpose — an unverified flip, a certified bound above the exact radius (even by 5 %),
a non-finite or negative one — fails them."""

import math
from importlib import import_module

import numpy as np
import pytest
import torch

from proactiv.selftest import registered_plants, run_selftest
from proactiv.selftest.radius import closed_form_radius, exact_radius, linear_plant, relu_plant

torch.set_num_threads(1)
module = import_module("proactiv.analysis.radius")
PLANTS = tuple(p for p in registered_plants() if p.name in ("linear_radius", "relu_radius"))


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("selftest-radius")
    run_selftest(folder, device="cpu", plants=PLANTS)
    return folder


def _flips(model, points, pred):
    with torch.no_grad():
        return model(torch.as_tensor(np.atleast_2d(points)).float()).argmax(1).numpy() != pred


@pytest.mark.parametrize("p", ["l2", "linf"])
def test_the_closed_form_is_the_distance_to_the_nearest_flip(p):
    model, x = linear_plant()
    r = closed_form_radius(model, x, p)
    w = model[0].weight.detach().double().numpy()
    logits = x.double().numpy() @ w.T + model[0].bias.detach().double().numpy()
    pred = logits.argmax(1)
    for i in range(len(x)):
        # the step toward the nearest boundary, just past it, flips; just short of it, no step of that norm can
        j = min((k for k in range(3) if k != pred[i]),
                key=lambda k: (logits[i, pred[i]] - logits[i, k]) / np.linalg.norm(w[pred[i]] - w[k], 2 if p == "l2" else 1))  # fmt: skip
        d = w[j] - w[pred[i]]
        step = d / np.linalg.norm(d) if p == "l2" else np.sign(d)
        assert _flips(model, x[i].numpy() + 1.001 * r[i] * step, pred[i]).all()
        assert not _flips(model, x[i].numpy() + 0.999 * r[i] * step, pred[i]).any()


def _milp_linf(model, x, box=20.0):
    """The exact L∞ radius of a Linear → ReLU → Linear network by a mixed-integer program (big-M ReLUs)."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    w1, b1, w2, b2 = (t.detach().double().numpy() for t in (model[0].weight, model[0].bias, model[2].weight,
                                                           model[2].bias))  # fmt: skip
    hidden, d = w1.shape
    n = d + 1 + 2 * hidden  # variables: δ (d), t, h (post-ReLU), a (ReLU on)
    cost = np.zeros(n)
    cost[d] = 1.0
    integer = np.r_[np.zeros(d + 1 + hidden), np.ones(hidden)]
    out = []
    for xi in x.double().numpy():
        pre = w1 @ xi + b1
        pred = int((np.maximum(pre, 0) @ w2.T + b2).argmax())
        lo, hi = pre - box * np.abs(w1).sum(1), pre + box * np.abs(w1).sum(1)
        bounds = Bounds(np.r_[np.full(d, -box), 0.0, np.zeros(2 * hidden)],
                        np.r_[np.full(d, box), box, np.maximum(hi, 0), np.ones(hidden)])  # fmt: skip
        rows = []  # (coefficients {variable: value}, lower, upper)
        for k in range(hidden):
            h, a = d + 1 + k, d + 1 + hidden + k
            delta = {i: -w1[k, i] for i in range(d)}
            rows.append(({h: 1.0, **delta}, pre[k], np.inf))  # h ≥ pre
            rows.append(({h: 1.0, **delta, a: -lo[k]}, -np.inf, pre[k] - lo[k]))  # h ≤ pre − lo (1 − a)
            rows.append(({h: 1.0, a: -max(hi[k], 0.0)}, -np.inf, 0.0))  # h ≤ hi a
        for i in range(d):
            rows.append(({i: 1.0, d: -1.0}, -np.inf, 0.0))  # |δ_i| ≤ t
            rows.append(({i: -1.0, d: -1.0}, -np.inf, 0.0))
        best = math.inf
        for j in (k for k in range(len(b2)) if k != pred):
            margin = ({d + 1 + k: w2[j, k] - w2[pred, k] for k in range(hidden)}, b2[pred] - b2[j], np.inf)
            matrix = np.zeros((len(rows) + 1, n))
            for r, (coef, _, _) in enumerate([*rows, margin]):
                for k, v in coef.items():
                    matrix[r, k] = v
            low, up = zip(*[(lb, ub) for _, lb, ub in [*rows, margin]], strict=True)
            res = milp(cost, integrality=integer, bounds=bounds, constraints=LinearConstraint(matrix, low, up),
                       options={"mip_rel_gap": 1e-9})  # fmt: skip
            if res.status == 0:
                best = min(best, res.fun)
        out.append(best)
    return np.asarray(out)


def test_the_enumeration_matches_a_mixed_integer_program_in_linf():
    if not hasattr(pytest.importorskip("scipy.optimize"), "milp"):
        pytest.skip("scipy < 1.9 has no milp")
    model, x = relu_plant()
    np.testing.assert_allclose(exact_radius(model, x, "linf"), _milp_linf(model, x), rtol=1e-6, atol=1e-9)


def test_the_enumeration_matches_a_search_along_rays_in_l2():
    model, x = relu_plant()
    r = exact_radius(model, x, "l2")
    with torch.no_grad():
        pred = model(x).argmax(1).numpy()
    angle = np.linspace(0, 2 * np.pi, 1440, endpoint=False)
    ray = np.stack([np.cos(angle), np.sin(angle)], 1)
    for i in range(len(x)):
        # no flip until 0.999 r on any ray (coarse steps up to 0.99 r, fine ones beyond), one by 1.002 r
        steps = np.r_[np.linspace(0, 0.99, 100, endpoint=False), np.linspace(0.99, 1.002, 241)] * r[i]
        points = x[i].numpy() + steps[:, None, None] * ray[None]
        flips = _flips(model, points.reshape(-1, 2), pred[i]).reshape(len(steps), len(ray))
        first = steps[flips.any(1).argmax()] if flips.any() else math.inf
        assert 0.999 * r[i] <= first <= 1.002 * r[i], (i, first, r[i])


def test_the_cases_pass(kept):
    result = run_selftest(kept, device="cpu", plants=PLANTS)
    assert result.passed, [f.found for f in result.failed]
    assert {f.run for f in result.findings} == {"linear_radius", "relu_radius"}


def _unverified(original):
    def broken(*args, **kwargs):
        found, delta = original(*args, **kwargs)
        return found * 0.97, delta  # reports a flip 3 % closer than any that exists

    return broken


def _certified_at(factor):
    def breaker(original):
        def broken(ops, x, pred, p, upper, *args, **kwargs):
            return original(ops, x, pred, p, upper, *args, **kwargs) * factor  # a bound factor × too far

        return broken

    breaker.__name__ = f"_certified_times_{factor:g}".replace(".", "_")
    return breaker


def _found_as_certified(original):
    def broken(ops, x, pred, p, upper, *args, **kwargs):
        return upper.clone()  # "proved" up to the found radius

    return broken


def _constant(value):
    def breaker(original):
        def broken(ops, x, pred, p, upper, *args, **kwargs):
            return torch.full_like(upper, value)

        return broken

    breaker.__name__ = f"_certified_{value:g}".replace("-", "minus_")
    return breaker


#: (function of the radius module, how it is broken, the cases that must fail)
BROKEN = [
    ("adversarial_radius", _unverified, {"linear_radius", "relu_radius"}),
    # CROWN is exact on the linear model and on the ReLU network's instances whose units are all stable
    ("certified_radius", _certified_at(1.05), {"linear_radius", "relu_radius"}),
    ("certified_radius", _certified_at(1.001), {"linear_radius", "relu_radius"}),
    ("certified_radius", _found_as_certified, {"linear_radius", "relu_radius"}),
    ("certified_radius", _constant(-math.inf), {"linear_radius", "relu_radius"}),
    ("certified_radius", _constant(math.nan), {"linear_radius", "relu_radius"}),
    ("certified_radius", _constant(-1.0), {"linear_radius", "relu_radius"}),
    ("certified_radius", _constant(0.0), {"linear_radius", "relu_radius"}),  # sound but proves nothing
]


@pytest.mark.parametrize("name, breaker, cases", BROKEN, ids=[b.__name__.strip("_") for _, b, _ in BROKEN])
def test_a_radius_broken_on_purpose_fails(kept, monkeypatch, name, breaker, cases):
    monkeypatch.setattr(module, name, breaker(getattr(module, name)))
    result = run_selftest(kept, device="cpu", plants=PLANTS)
    assert {f.run for f in result.failed} == cases, [(f.run, f.found) for f in result.findings]
    assert result.status("radius") == "fail"
    assert not any(f.found.startswith("raised") for f in result.failed)
