"""The ``attr_<method>`` cases: each attribution method puts x's evidence on the planted patch and shows it moving
onto the noise's bright specks; attributions broken on purpose fail the checks they break, and only those."""

from importlib import import_module

import numpy as np
import pytest
import torch

from proactiv.analysis.attribution import METHODS
from proactiv.selftest import registered_plants, run_selftest
from proactiv.selftest.attribution import PATCH, SpeckDetector, patch_images

torch.set_num_threads(1)
NAMES = {f"attr_{m}" for m in METHODS}
PLANTS = tuple(p for p in registered_plants() if p.name in NAMES)
CUE, SHIFT = "only evidence", "specks"  # words of each check's planted fault


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("selftest-attribution")
    run_selftest(folder, device="cpu", plants=PLANTS)
    return folder


def test_the_patch_is_the_only_evidence_on_clean_images_and_specks_count_under_noise():
    model, x = SpeckDetector(), patch_images()
    logits = model(x)
    assert (logits.argmax(1) == 1).all()
    dark = x.clone()
    dark[(slice(None), 0, *PATCH)] = 0
    assert (model(dark)[:, 1] == 0).all()  # without the patch, no evidence for class 1
    specks = x.clone()
    specks[:, 0, 12, 2] = 1.0  # one bright pixel far from the patch
    assert (model(specks)[:, 1] > logits[:, 1]).all()


def test_every_method_is_proven(kept):
    result = run_selftest(kept, device="cpu", plants=PLANTS)
    assert result.passed, [(f.run, f.found) for f in result.failed]
    assert {f.run for f in result.findings} == NAMES and len(result.findings) == 2 * len(METHODS)
    assert all("100%" in f.found for f in result.findings if CUE in f.fault)


def _transposed(original):
    return lambda *a, **k: original(*a, **k).transpose(-1, -2)  # rows for columns: the patch lands elsewhere


def _wrong_class(original):
    def broken(view, pairs, names, target):
        return {n: 1 - t for n, t in original(view, pairs, names, target).items()}  # toward class 0

    return broken


def _everything_is_support(original):
    return lambda x, spec: np.ones(np.shape(x), dtype=bool)  # nothing lies outside the support


def _upside_down_gradcam(original):
    return lambda cam, shape: original(cam, shape).flip(-2)  # Grad-CAM's map mirrored on its way to the input


def _one_occlusion_window(original):
    return lambda size, windows=8: (size, size)  # occludes the whole image at once: no place


def _baseline_is_the_input(original):
    return lambda spec, x: x.clone()  # integrated gradients and occlusion have nothing to remove


def _fails(methods, kinds=(CUE, SHIFT)):
    return {(f"attr_{m}", kind) for m in methods for kind in kinds}


#: (module, function, how it is broken, the (case, check) pairs that must fail): evidence put in the wrong place
#: fails both checks of a method (x's evidence then lies outside the support already), a wrong support only the
#: shift
BROKEN = [
    ("record_attributions", "attribution_maps", _transposed, _fails(METHODS)),
    ("record_attributions", "explained_targets", _wrong_class, _fails(METHODS)),
    ("attribution_shift", "support_mask", _everything_is_support, _fails(METHODS, [SHIFT])),
    ("attribution_maps", "_to_input", _upside_down_gradcam, _fails(["gradcam"])),
    ("attribution_maps", "occlusion_window", _one_occlusion_window, _fails(["occlusion"])),
    ("record_attributions", "baseline_for", _baseline_is_the_input, _fails(["integrated_gradients", "occlusion"])),
]  # fmt: skip


@pytest.mark.parametrize(
    "module, name, breaker, missed", BROKEN, ids=[b.__name__.strip("_") for _, _, b, _ in BROKEN]
)
def test_attributions_broken_on_purpose_fail_the_checks_they_break(
    kept, monkeypatch, module, name, breaker, missed
):
    module = import_module(f"proactiv.analysis.{module}")
    monkeypatch.setattr(module, name, breaker(getattr(module, name)))
    result = run_selftest(kept, device="cpu", plants=PLANTS)
    failed = {(f.run, CUE if CUE in f.fault else SHIFT) for f in result.failed}
    assert failed == missed, [(f.run, f.found) for f in result.failed]
    assert result.status("attributions") == "fail"
