"""GroupedStatistics: shifted sums that keep their digits and merge exactly.

Oracle: the same statistics computed directly from all the rows about the same centre
(`from_rows`), and, for the offset data, numpy's products of the exactly shifted columns.
"""

import numpy as np
import pytest

import lmm
from lmm.statistics import GroupedStatistics

FIELDS = ("x_sum", "z_sum", "y_sum", "ztz", "ztx", "zty", "xtx", "xty", "yty")


def _data(offset=0.0, n=300, g=17, seed=3):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=n) * 3 + offset
    X = np.column_stack([np.ones(n), t, rng.normal(size=n)])
    Z = X[:, :2].copy()
    y = rng.normal(size=n) + offset
    codes = rng.integers(0, g, n)
    return X, Z, y, codes, g


def _assert_same(a, b, rtol):
    for name in FIELDS:
        u, v = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        scale = max(np.abs(v).max(), 1.0)
        np.testing.assert_allclose(u, v, rtol=0, atol=rtol * scale, err_msg=name)
    np.testing.assert_array_equal(a.group_sizes, b.group_sizes)


@pytest.mark.parametrize("offset", [0.0, 1e6, 1.7e9])
def test_merge_of_chunks_equals_the_whole(offset):
    X, Z, y, codes, g = _data(offset)
    whole = GroupedStatistics.from_rows(X, Z, y, codes, g)
    cuts = [0, 40, 41, 190, len(y)]          # one chunk of a single row
    parts = [GroupedStatistics.from_rows(X[a:b], Z[a:b], y[a:b], codes[a:b], g)
             for a, b in zip(cuts[:-1], cuts[1:])]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    # the merge ends at the pooled mean; compare about that centre
    direct = GroupedStatistics.from_rows(X, Z, y, codes, g, merged.x_shift, merged.z_shift,
                                         merged.y_shift)
    _assert_same(merged, direct, 1e-11)
    np.testing.assert_allclose(merged.x_shift[1:], whole.x_shift[1:], rtol=1e-14)
    # and about the whole's own centre, through recentred
    _assert_same(merged.recentred(whole.x_shift, whole.z_shift, whole.y_shift), whole, 1e-11)


def test_centred_statistics_keep_their_digits():
    """With offsets of 1.7e9, the statistics equal numpy's products of the centred
    columns (made exactly: the offsets are added to representable values)."""
    X0, Z0, y0, codes, g = _data(0.0)
    off = 1.7e9
    X, Z, y = X0.copy(), Z0.copy(), y0 + off
    X[:, 1] += off
    Z[:, 1] += off
    st = GroupedStatistics.from_rows(X, Z, y, codes, g)
    xc, zc, yc = X - st.x_shift, Z - st.z_shift, y - st.y_shift
    np.testing.assert_allclose(st.xtx, xc.T @ xc, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(st.yty, yc @ yc, rtol=1e-12)
    for k in range(g):
        rows = codes == k
        np.testing.assert_allclose(st.ztz[k], zc[rows].T @ zc[rows], rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(st.zty[k], zc[rows].T @ yc[rows], rtol=1e-12, atol=1e-9)


def test_model_keeps_its_statistics_centred():
    d = lmm.datasets.get_rdataset("dietox", "geepack").data
    md = lmm.mixedlm("Weight ~ Time", d, groups="Pig", re_formula="~Time")
    st = md.statistics
    assert st.nobs == len(d)
    assert st.x_shift[1] == pytest.approx(d["Time"].mean(), rel=1e-14)
    assert st.y_shift == pytest.approx(d["Weight"].mean(), rel=1e-14)
    assert abs(st.x_sum.sum(0)[1]) < 1e-9 * len(d)


def test_merge_refuses_other_designs():
    X, Z, y, codes, g = _data()
    a = GroupedStatistics.from_rows(X, Z, y, codes, g)
    b = GroupedStatistics.from_rows(X[:, :2], Z, y, codes, g)
    with pytest.raises(ValueError, match="cannot be merged"):
        a.merge(b)
    with pytest.raises(ValueError, match="group codes"):
        GroupedStatistics.from_rows(X, Z, y, codes + 100, g)
