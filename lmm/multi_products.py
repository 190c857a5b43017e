"""The products a several-term model's criterion is made of, from conditioned rows.

`lmm.several_factors.MultiTermModel` conditions its rows (fixed-effects columns
centred and scaled, the response's least-squares residual, the terms' designs
centred and scaled) and reduces them here, once, to per-level and level-pair
cross-products; chunks of rows conditioned alike give products that add
(`merge_products`), which is how a fit from a Dask DataFrame gets them
(`lmm.dask_frames`).
"""

import numpy as np

from . import _core, _several_factors


def check_fixed_rank(gram, names, all_zero=None):
    """A ValueError naming the columns if the conditioned fixed-effects design, whose
    Gram matrix is `gram`, is rank deficient; `all_zero(columns)` says which of the
    columns with no variation are all zero in the user's design (None: unknown)."""
    p = gram.shape[0]
    zero = np.flatnonzero(np.diag(gram) == 0)
    if zero.size:
        raw_zero = None if all_zero is None else all_zero(zero)
        what = "are all zero" if raw_zero is not None and raw_zero.all() else \
            "are constant (collinear with the intercept) or all zero"
        raise ValueError("the fixed-effects design is rank deficient: columns "
                         f"{[names[i] for i in zero]} {what}")
    if p > 1:       # one nonzero column is full rank
        norm = np.sqrt(np.diag(gram))
        ev, v = np.linalg.eigh(gram / np.outer(norm, norm))
        if ev[0] < 1e-10 * ev[-1]:
            dep = [names[i] for i in np.flatnonzero(np.abs(v[:, 0]) > 1e-6)]
            raise ValueError(f"the fixed-effects design is rank deficient: columns {dep}")


def row_products(terms, grouped, xs, z_conditioned, yr, intercepts=(), weighted=False):
    """The products of conditioned rows that a several-term model's criterion is
    made of, as a dict: for each term its per-level Z'Z, Z'X, Z'y (`per_level`), its
    rows per level (`counts`) and per-level sums of the response (`level_sums`); for
    each two terms a < b the level pairs that share rows with their Z_b'Z_a
    (`pairs[a, b]`: levels of a, levels of b, values (npairs, q_b, q_a), sorted by a
    then b), and for two random-intercept terms (`intercepts`: a flag per term) the
    rows each pair shares (`pair_counts[a, b]`: the values themselves unless the rows
    are `weighted`); X'X, X'y, y'y.  Chunks of rows conditioned alike give products
    that add (`merge_products`).

    `grouped`: each term's (row order, level offsets) (`_core.group_blocks`)."""
    per_level, counts, level_sums = [], [], []
    xtx = xty = yty = None
    for k, (order, offsets) in enumerate(grouped):
        ztz, ztx, zty, xtx_k, xty_k, yty_k = _core.cross_products(xs, z_conditioned[k], yr,
                                                                  order, offsets)
        if k == 0:      # (the first term's row order: as `with_response` sums them)
            xtx, xty, yty = xtx_k, xty_k, yty_k
        per_level.append((ztz, ztx, zty))
        counts.append(np.diff(offsets).astype(float))
        level_sums.append(np.bincount(terms[k].codes, weights=yr, minlength=terms[k].n_levels))
    pairs, pair_counts = {}, {}
    for a in range(len(terms)):
        order, offsets = grouped[a]
        for b in range(a + 1, len(terms)):
            tb = terms[b]
            pair_offsets, level_b, values = _several_factors.pair_sums(
                order, offsets, np.ascontiguousarray(tb.codes, dtype=np.intp), tb.n_levels,
                z_conditioned[a], z_conditioned[b])
            level_a = np.repeat(np.arange(terms[a].n_levels, dtype=np.intp),
                                np.diff(pair_offsets))
            pairs[a, b] = (level_a, level_b, values)
            if len(intercepts) and intercepts[a] and intercepts[b]:
                if weighted:
                    ones = np.ones((len(yr), 1))
                    values = _several_factors.pair_sums(
                        order, offsets, np.ascontiguousarray(tb.codes, dtype=np.intp),
                        tb.n_levels, ones, ones)[2]
                pair_counts[a, b] = values[:, 0, 0].copy()
    return {"per_level": per_level, "counts": counts, "level_sums": level_sums,
            "pairs": pairs, "pair_counts": pair_counts, "xtx": xtx, "xty": xty,
            "yty": float(yty)}


def merge_products(a, b):
    """The products of two chunks of rows conditioned alike (`row_products`): sums,
    the level pairs of either (a pair in both adds)."""
    pairs, pair_counts = {}, {}
    for key, (la, lb, va) in a["pairs"].items():
        la2, lb2, vb = b["pairs"][key]
        level_a = np.concatenate([la, la2])
        level_b = np.concatenate([lb, lb2])
        width = int(max(lb.max(initial=-1), lb2.max(initial=-1))) + 1
        joint = level_a.astype(np.int64) * width + level_b
        keys, inverse = np.unique(joint, return_inverse=True)
        inverse = inverse.reshape(-1)
        values = np.zeros((len(keys),) + va.shape[1:])
        np.add.at(values, inverse, np.concatenate([va, vb]))
        pairs[key] = ((keys // width).astype(np.intp), (keys % width).astype(np.intp), values)
        if key in a["pair_counts"]:
            pair_counts[key] = np.bincount(inverse, np.concatenate(
                [a["pair_counts"][key], b["pair_counts"][key]]), minlength=len(keys))
    return {"pair_counts": pair_counts,
        "per_level": [tuple(u + v for u, v in zip(pa, pb))
                      for pa, pb in zip(a["per_level"], b["per_level"])],
        "counts": [u + v for u, v in zip(a["counts"], b["counts"])],
        "level_sums": [u + v for u, v in zip(a["level_sums"], b["level_sums"])],
        "pairs": pairs, "xtx": a["xtx"] + b["xtx"], "xty": a["xty"] + b["xty"],
        "yty": a["yty"] + b["yty"]}
