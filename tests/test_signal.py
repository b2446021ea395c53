"""The Savitzky-Golay post-filter for generated windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmftraj.errors import UserError
from mmftraj.signal import savgol


def test_savgol_matches_scipy_interp_mode_including_the_ends():
    scipy_signal = pytest.importorskip("scipy.signal")
    x = torch.randn(3, 40, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for window in (5, 7, 11):
        expected = scipy_signal.savgol_filter(x.numpy(), window, 3, axis=1, mode="interp")
        assert np.allclose(savgol(x, window).numpy(), expected, atol=1e-12)


def test_savgol_keeps_cubics_and_removes_most_white_noise():
    t = torch.linspace(-1, 1, 64, dtype=torch.float64)
    cubic = (2 * t**3 - t + 0.5)[None, :, None]
    assert torch.allclose(savgol(cubic, 9), cubic, atol=1e-12)
    noise = torch.randn(200, 64, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    jitter = lambda x: x.diff(n=2, dim=1).pow(2).mean()  # noqa: E731
    assert jitter(savgol(noise, 9)) < 0.05 * jitter(noise)


@pytest.mark.parametrize("window, message", [(4, "odd"), (0, "odd"), (3, "no-op"), (65, "longer than the windows")])
def test_bad_smoothing_windows_are_refused(window, message):
    with pytest.raises(UserError, match=message):
        savgol(torch.zeros(1, 64, 2), window)
