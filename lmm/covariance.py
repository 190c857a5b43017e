"""The structure of the random-effects covariance and its parametrizations.

The optimizer works on lme4's theta: the free entries of the lower-triangular
relative covariance factor Lambda (cov_re / scale = Lambda Lambda'), listed
column by column.  A `CovarianceStructure` says which entries are free: the
random effects fall into blocks, unstructured within a block and uncorrelated
across blocks (one block is the unstructured model, q blocks the diagonal one).
A block pattern in cov_re is the same pattern in Lambda, so the bounds stay
simple (diagonal entries >= 0, the rest free).

`Reparametrization` conditions the problem for the optimizer: Z -> Z T with T
block-diagonal (within a block that holds an intercept, the other columns are
centred as well as scaled, which only an unstructured block allows).
"""

import math
from functools import cached_property, lru_cache

import numpy as np


def _lower_factor(f):
    """Lower-triangular L with non-negative diagonal and L L' = F F'.

    Works for singular F F' too (it is an LQ decomposition, not a Cholesky).
    """
    if f.shape == (1, 1):
        return np.abs(f)      # what the QR below gives for one entry, without its overhead
    if f.shape == (2, 2):
        # the LQ factor of a 2 x 2 matrix in closed form (a Givens rotation)
        (a, b), (c, d) = f.tolist()
        r = math.hypot(a, b)
        if r > 0:
            return np.array([[r, 0.0], [(a * c + b * d) / r, abs(a * d - b * c) / r]])
    r = np.linalg.qr(f.T, mode="r")
    low = r.T.copy()
    signs = np.where(np.diag(low) < 0, -1.0, 1.0)
    return low * signs[None, :]


class CovarianceStructure:
    """Which entries of cov_re (and so of Lambda) are free.

    Parameters
    ----------
    q : int
        Number of random effects per group.
    blocks : sequence of sequences of int, optional
        Indices of the random effects in each block; effects in different
        blocks are uncorrelated.  Default: one block (unstructured).

    Examples
    --------
    >>> s = CovarianceStructure(2, blocks=[[0], [1]])   # uncorrelated
    >>> s.n_theta
    2
    """

    def __init__(self, q, blocks=None):
        self.q = int(q)
        if blocks is None:
            blocks = [list(range(self.q))]
        self.blocks = tuple(tuple(sorted(int(i) for i in b)) for b in blocks)
        block_of = np.full(self.q, -1)
        for b, members in enumerate(self.blocks):
            block_of[list(members)] = b
        if np.any(block_of < 0) or sum(len(b) for b in self.blocks) != self.q:
            raise ValueError("blocks must partition the random effects")
        self.block_of = block_of
        b = block_of.tolist()
        # theta: lower entries (j >= k) in the same block, column by column (lme4's order)
        # (plain loops: q is small, and numpy's index helpers cost more here)
        pairs = [(j, k) for k in range(self.q) for j in range(k, self.q) if b[j] == b[k]]
        self.theta_rows = np.array([j for j, _ in pairs], dtype=np.intp)
        self.theta_cols = np.array([k for _, k in pairs], dtype=np.intp)
        self.n_theta = len(pairs)
        self.lower_bounds = np.array([0.0 if j == k else -np.inf for j, k in pairs])
        # free entries of cov_re in statsmodels' order (row-major lower triangle)
        pairs = [(j, k) for j in range(self.q) for k in range(j + 1) if b[j] == b[k]]
        self.cov_rows = np.array([j for j, _ in pairs], dtype=np.intp)
        self.cov_cols = np.array([k for _, k in pairs], dtype=np.intp)
        # which entries of the row-major lower triangle are free
        self.cov_free = np.array([b[j] == b[k] for j in range(self.q) for k in range(j + 1)],
                                 dtype=bool)
        # entries of Lambda that are not in theta (the upper triangle, and the
        # lower one across blocks): set to zero in factors mapped between spaces
        pairs = [(j, k) for j in range(self.q) for k in range(self.q)
                 if not (j >= k and b[j] == b[k])]
        self.fixed_rows = np.array([j for j, _ in pairs], dtype=np.intp)
        self.fixed_cols = np.array([k for _, k in pairs], dtype=np.intp)
        # flat (row-major) positions in a q x q Lambda, for take/put: numpy's
        # fancy indexing runs far more code for these few entries
        self._theta_flat = self.theta_rows * self.q + self.theta_cols
        self._fixed_flat = self.fixed_rows * self.q + self.fixed_cols
        self._has_fixed = len(pairs) > 0
        self.is_unstructured = len(self.blocks) == 1
        self.is_diagonal = all(len(b) == 1 for b in self.blocks)

    @classmethod
    def from_free(cls, free_cov):
        """Structure from statsmodels' `free` pattern of cov_re (1 = free, 0 = fixed at 0).

        Only block patterns are supported: effects linked by free covariances
        must all be pairwise free.
        """
        free_cov = np.asarray(free_cov, dtype=float)
        if cls is CovarianceStructure and free_cov.ndim == 2:
            # the same pattern gives the same (never changed) structure
            return _structure_from_free(tuple(map(tuple, free_cov.tolist())))
        return cls._from_free(free_cov)

    @classmethod
    def _from_free(cls, free_cov):
        q = free_cov.shape[0]
        if free_cov.shape != (q, q):
            raise ValueError(f"free.cov_re must be square, got shape {free_cov.shape}")
        if not np.allclose(free_cov, free_cov.T):
            raise ValueError("free.cov_re must be symmetric")
        if np.any(np.diag(free_cov) == 0):
            raise NotImplementedError(
                "fixing a random-effect variance through `free` is not supported; "
                "drop that random effect from the model instead"
            )
        linked = free_cov != 0
        # connected components of the 'free covariance' graph
        block_of = -np.ones(q, dtype=int)
        blocks = []
        for start in range(q):
            if block_of[start] >= 0:
                continue
            stack, members = [start], []
            block_of[start] = len(blocks)
            while stack:
                i = stack.pop()
                members.append(i)
                for j in np.flatnonzero(linked[i]):
                    if block_of[j] < 0:
                        block_of[j] = len(blocks)
                        stack.append(j)
            blocks.append(sorted(members))
        for members in blocks:
            sub = linked[np.ix_(members, members)]
            if not sub.all():
                raise ValueError(
                    "free.cov_re must be block-diagonal (up to the order of the "
                    f"random effects): effects {members} are linked but not all pairwise free"
                )
        return cls(q, blocks)

    # -- theta <-> Lambda ----------------------------------------------------
    def lam(self, theta):
        """The q x q lower-triangular factor Lambda of a theta vector."""
        lam = np.zeros((self.q, self.q))
        if type(theta) is np.ndarray and theta.shape == (self.n_theta,):
            lam.put(self._theta_flat, theta)
        else:
            lam[self.theta_rows, self.theta_cols] = theta
        return lam

    def theta(self, lam):
        if type(lam) is np.ndarray and lam.shape == (self.q, self.q):
            return lam.take(self._theta_flat)
        return np.asarray(lam)[self.theta_rows, self.theta_cols].copy()

    def zero_fixed(self, lam):
        """Set the entries of the q x q `lam` that are not in theta to zero (in place)."""
        if self._has_fixed:
            lam.put(self._fixed_flat, 0.0)
        return lam

    def start_theta(self):
        """lme4's start: Lambda = I."""
        start = []
        for j, k in zip(self.theta_rows.tolist(), self.theta_cols.tolist()):
            start.append(1.0 if j == k else 0.0)
        return np.array(start)

    def theta_from_cov(self, cov):
        """theta of a PSD relative covariance (entries outside the blocks ignored)."""
        cov = np.asarray(cov, dtype=float)
        out = np.zeros((self.q, self.q))
        for members in self.blocks:
            ix = np.ix_(members, members)
            w, v = np.linalg.eigh(cov[ix])
            f = v * np.sqrt(np.clip(w, 0, None))
            out[ix] = _lower_factor(f)
        return self.theta(out)

    def thetas_from_covs(self, covs, tol=1e-12):
        """theta of each of a stack (m, q, q) of PSD relative covariances (the
        bootstrap's replicates), vectorized: a Cholesky factor block by block, a
        column whose pivot falls below `tol` times the diagonal's scale set to zero
        (the same factor as `theta_from_cov` where that is unique)."""
        covs = np.asarray(covs, dtype=float)
        lam = np.zeros_like(covs)
        scale = np.maximum(np.einsum("mjj->m", covs), np.finfo(float).tiny)
        for members in self.blocks:
            for a, j in enumerate(members):
                done = members[:a]
                pivot = covs[:, j, j] - np.sum(lam[:, j, done] ** 2, axis=1)
                ok = pivot > tol * scale
                root = np.sqrt(np.where(ok, pivot, 0.0))
                lam[:, j, j] = root
                for i in members[a + 1:]:
                    num = covs[:, i, j] - np.sum(lam[:, i, done] * lam[:, j, done], axis=1)
                    lam[:, i, j] = np.where(ok, num / np.where(ok, root, 1.0), 0.0)
        return lam[:, self.theta_rows, self.theta_cols]

    # -- directions for second derivatives --------------------------------
    def theta_directions(self, lam):
        """dG/dtheta_a = E_a Lambda' + Lambda E_a' for each theta entry."""
        d = np.zeros((self.n_theta, self.q, self.q))
        for a, (j, k) in enumerate(zip(self.theta_rows, self.theta_cols)):
            e = np.zeros((self.q, self.q))
            e[j, k] = 1.0
            d[a] = e @ lam.T + lam @ e.T
        return d

    def cov_directions(self):
        """Unit symmetric matrices for the free entries of cov_re (statsmodels' order)."""
        d = np.zeros((len(self.cov_rows), self.q, self.q))
        for a, (j, k) in enumerate(zip(self.cov_rows, self.cov_cols)):
            d[a, j, k] = d[a, k, j] = 1.0
        return d

    def cov_vector(self, cov):
        return np.asarray(cov)[self.cov_rows, self.cov_cols].copy()


@lru_cache(maxsize=64)
def _structure_from_free(pattern):
    """CovarianceStructure.from_free of a pattern given as a tuple of rows (cached;
    errors are raised again on every call)."""
    return CovarianceStructure._from_free(np.array(pattern, dtype=float))


class Reparametrization:
    """Z -> Z T, for the optimizer; maps relative factors between the two spaces.

    T is block-diagonal with the structure's blocks; within a block that holds
    an intercept column (and only there, since it takes an unstructured block),
    the other columns are centred as well as scaled.

    Parameters
    ----------
    structure : CovarianceStructure
    col_mean, col_rms : (q,) arrays of the Z columns' means and root mean squares
    intercept : (q,) bool, which Z columns are constant ones
    z_centring : (q, q) array, optional
        When the cross-products were made of a centred design Z B (B = I -
        e_0 m', the intercept's row holding the shifts of the columns centred
        in its block), B: then `t_products` (what the products are conditioned
        with: Z B t_products) differs from `t` (the map from the user's Z:
        Z t = Z B t_products), and every map to the user's units goes through `t`.
    """

    def __init__(self, structure, col_mean, col_sd, col_rms, intercept, z_centring=None):
        q = structure.q
        t = np.zeros((q, q))
        for j in range(q):
            t[j, j] = 1.0              # (np.eye, without its Python-level wrapper)
        for members in structure.blocks:
            icpt = []
            for k in members:
                if intercept[k]:
                    icpt.append(k)
            for j in members:
                if intercept[j]:
                    continue
                if icpt and len(members) > 1 and col_sd[j] > 0:
                    t[j, j] = 1.0 / col_sd[j]
                    t[icpt[0], j] = -col_mean[j] / col_sd[j]
                elif col_rms[j] > 0:
                    t[j, j] = 1.0 / col_rms[j]
        self.structure = structure
        self.z_centring = z_centring
        self.t_products = t
        self.t = t if z_centring is None else z_centring @ t

    @cached_property
    def t_inv(self):
        """T^-1 (made on first use: only a start or a profile needs it)."""
        return np.linalg.inv(self.t)

    def lam_to_user(self, lam_scaled):
        """Lambda of the user's Z from Lambda of Z T: L L' = T Ls Ls' T'."""
        # (one effect: the 1 x 1 product, exactly, without matmul's machinery)
        prod = self.t * lam_scaled if self.t.shape == (1, 1) else self.t @ lam_scaled
        return self.structure.zero_fixed(_lower_factor(prod))

    def lam_to_scaled(self, lam_user):
        return self.structure.zero_fixed(_lower_factor(self.t_inv @ lam_user))

    def cov_to_user(self, cov_scaled):
        return self.t @ cov_scaled @ self.t.T

    def cov_jacobian(self):
        """Matrix M with vec_free(T C T') = M vec_free(C) for symmetric C."""
        s = self.structure
        dirs = s.cov_directions()
        return np.array([s.cov_vector(self.t @ d @ self.t.T) for d in dirs]).T


@lru_cache(maxsize=64)
def default_structure(q, blocks):
    """The CovarianceStructure of q effects in `blocks` (a tuple of tuples), cached:
    a model's default structure is never changed, and building it is not free.

    Examples
    --------
    >>> default_structure(2, ((0,), (1,))).blocks
    ((0,), (1,))
    """
    return CovarianceStructure(q, blocks)
