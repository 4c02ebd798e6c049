"""Reports of image runs: images instead of spectrograms, the outputs f(xT), f(x̂T) of an image-to-image run,
PSNR/SSIM curves, "within cutoff" wording, and nothing about audio."""

import re

import pytest

from proactiv.report import write_report
from proactiv.testing import sweep_image_run

from .page import assert_self_contained, figures, labels


def _no_audio(page: str) -> None:
    assert "<audio" not in page and "Griffin" not in page and "mel band" not in page


@pytest.fixture(scope="module")
def denoise_page(tmp_path_factory):
    run = sweep_image_run(tmp_path_factory.mktemp("rep") / "denoise")
    return write_report(run, gallery=2, method="pca").read_text()


@pytest.fixture(scope="module")
def digits_page(tmp_path_factory):
    run = sweep_image_run(tmp_path_factory.mktemp("rep") / "classify", image_to_image=False)
    return write_report(run, gallery=2, method="pca").read_text()


def test_image_to_image_report_shows_outputs_and_quality(denoise_page):
    page = denoise_page
    assert_self_contained(page)
    _no_audio(page)
    for alt in ("breakpoint curves", "per-digit within cutoff curves", "image quality curves", "within cutoff heatmaps",
                "output PSNR heatmaps", "bias maps"):  # fmt: skip
        assert alt in labels(page)
    records = [f for a, f in zip(labels(page), figures(page), strict=True)
               if re.fullmatch(r"record \d+ at point \d+: inputs and outputs f\(xT\), f\(x̂T\)", a)]  # fmt: skip
    assert len(records) == 2
    # two rows of maps: x, xT, x̂T, x̂T − xT and y, f(xT), f(x̂T), f(x̂T) − f(xT), images upright
    assert all([t["type"] for t in f["data"]] == ["heatmap"] * 8 for f in records)
    assert records[0]["layout"]["yaxis"]["autorange"] == "reversed"
    assert "The second row shows the model's outputs f(xT), f(x̂T) next to the target y." in page
    assert "<h3>Image quality along each parameter</h3>" in page
    # "correct" for a denoiser: the output's loss is within the cutoff, said so; per digit, not per class
    assert "within cutoff on xT (loss &lt; 0.001) over the whole grid</dt><dd>0.250" in page
    assert "grouped by meta.digit: 0, 1, 2" in page and "per digit" in page
    assert "accuracy on clean input" not in page
    # the identity point has PSNR ∞: it counts as the cap, never as inf or NaN in the text
    assert "count as 60 dB" in page and not re.search(r">\s*(nan|inf)\s*<", page)


def test_image_classifier_report(digits_page):
    page = digits_page
    assert_self_contained(page)
    _no_audio(page)
    assert "image quality curves" in labels(page) and "output PSNR heatmaps" not in labels(page)
    assert "accuracy on clean input" in page and "second row shows" not in page
    assert len([a for a in labels(page) if re.fullmatch(r"record \d+ at point \d+", a)]) == 2
