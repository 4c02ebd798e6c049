"""PSNR and SSIM of the image records: the same numbers as scikit-image, and the record columns they feed."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from proactiv.metrics import psnr, ssim

#: scikit-image's settings for the SSIM of Wang et al. (2004), which ours follows
SKIMAGE_SSIM = {"data_range": 1.0, "gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}


def _pair(shape, seed):
    gen = np.random.default_rng(seed)
    clean = gen.random(shape)
    noisy = np.clip(clean + 0.1 * gen.standard_normal(shape), 0, 1)
    return clean, noisy


@pytest.mark.parametrize("side, tol", [(28, 1e-6), (16, 1e-6), (11, 1e-6), (9, 1e-3)])
def test_psnr_and_ssim_agree_with_scikit_image(side, tol):
    """Below 11 pixels our window shrinks where scikit-image reflects an 11-tap filter: close, not equal."""
    clean, noisy = _pair((3, side, side), seed=side)
    ours_psnr = psnr(torch.tensor(noisy), torch.tensor(clean), 1.0).numpy()
    ours_ssim = ssim(torch.tensor(noisy), torch.tensor(clean), 1.0).numpy()
    for i in range(3):
        ref_psnr = peak_signal_noise_ratio(clean[i], noisy[i], data_range=1.0)
        win = min(11, side if side % 2 else side - 1)
        ref_ssim = structural_similarity(clean[i], noisy[i], win_size=win, **SKIMAGE_SSIM)
        assert ours_psnr[i] == pytest.approx(ref_psnr, abs=1e-9)
        assert ours_ssim[i] == pytest.approx(ref_ssim, abs=tol)


def test_ssim_averages_channels_like_scikit_image():
    clean, noisy = _pair((2, 3, 20, 20), seed=3)
    ours = ssim(torch.tensor(noisy), torch.tensor(clean), 1.0).numpy()
    for i in range(2):
        ref = structural_similarity(clean[i], noisy[i], channel_axis=0, **SKIMAGE_SSIM)
        assert ours[i] == pytest.approx(ref, abs=1e-6)


def test_hand_computed_cases():
    a = torch.zeros(1, 1, 10, 10)
    b = torch.full((1, 1, 10, 10), 0.1)  # MSE 0.01 → PSNR 20 dB at range 1, 40 dB at range 10
    assert psnr(b, a, 1.0).item() == pytest.approx(20.0)
    assert psnr(b, a, 10.0).item() == pytest.approx(40.0)
    assert psnr(a, a, 1.0).item() == math.inf
    assert ssim(a, a, 1.0).item() == pytest.approx(1.0)
    # constant images: SSIM = (2 μa μb + c1) / (μa² + μb² + c1)
    c1 = (0.01 * 1.0) ** 2
    assert ssim(b, a, 1.0).item() == pytest.approx(c1 / (0.01 + c1))
    with pytest.raises(ValueError, match="too small"):
        ssim(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), 1.0)
