"""MixedLMParams: packed <-> components, as statsmodels defines them."""

import numpy as np
import pytest

from lmm import MixedLMParams


def test_from_components_and_packed_round_trip():
    cov = np.array([[2.0, 0.3], [0.3, 0.5]])
    p = MixedLMParams.from_components(np.array([1.0, -2.0]), cov)
    packed = p.get_packed(use_sqrt=False, has_fe=True)
    np.testing.assert_allclose(packed, [1.0, -2.0, 2.0, 0.3, 0.5])
    q = MixedLMParams.from_packed(packed, 2, 2, use_sqrt=False, has_fe=True)
    np.testing.assert_allclose(q.cov_re, cov)
    np.testing.assert_allclose(q.fe_params, [1.0, -2.0])


def test_sqrt_packing_is_the_cholesky_factor():
    cov = np.array([[2.0, 0.3, 0.1], [0.3, 0.5, 0.0], [0.1, 0.0, 1.0]])
    p = MixedLMParams.from_components(np.zeros(1), cov)
    packed = p.get_packed(use_sqrt=True)
    low = np.linalg.cholesky(cov)
    np.testing.assert_allclose(packed, low[np.tril_indices(3)])
    q = MixedLMParams.from_packed(packed, 1, 3, use_sqrt=True, has_fe=False)
    np.testing.assert_allclose(q.cov_re, cov, atol=1e-15)


def test_from_components_with_sqrt():
    low = np.array([[1.0, 0.0], [0.5, 2.0]])
    p = MixedLMParams.from_components(cov_re_sqrt=low)
    np.testing.assert_allclose(p.cov_re, low @ low.T)
    assert p.k_fe == 0 and p.k_re == 2 and p.k_re2 == 3


def test_too_short_packed_vector():
    with pytest.raises(ValueError, match="too short"):
        MixedLMParams.from_packed(np.ones(2), 2, 2, use_sqrt=False, has_fe=True)


def test_singular_cov_packs_with_sqrt():
    cov = np.array([[1.0, 1.0], [1.0, 1.0]])
    p = MixedLMParams.from_components(np.zeros(1), cov)
    packed = p.get_packed(use_sqrt=True)
    q = MixedLMParams.from_packed(packed, 1, 2, use_sqrt=True, has_fe=False)
    np.testing.assert_allclose(q.cov_re, cov, atol=1e-12)
