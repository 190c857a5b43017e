"""MixedLMParams: statsmodels' container of mixed-model parameters.

Holds fixed effects, the random-effects covariance (relative to the scale, as
in statsmodels) and variance components, and converts between that and the
packed vectors statsmodels uses for `start_params` and `free`.
"""

import numpy as np


class MixedLMParams:
    """Parameters of a mixed linear model, as statsmodels' MixedLMParams.

    Parameters
    ----------
    k_fe : int
        Number of fixed effects.
    k_re : int
        Number of random effects per group.
    k_vc : int
        Number of variance components (always 0 in lmm's single-factor models).

    Notes
    -----
    `cov_re` here is relative to the scale (cov_re / scale of the results),
    as in statsmodels.  Packed vectors list the fixed effects (optionally),
    then the lower triangle of cov_re row by row (or of its Cholesky factor
    when ``use_sqrt``), then the variance components.

    Examples
    --------
    Uncorrelated random effects through ``fit(free=...)``:

    >>> import numpy as np
    >>> free = MixedLMParams.from_components(np.ones(2), np.eye(2))
    >>> free.get_packed(use_sqrt=False, has_fe=True)
    array([1., 1., 1., 0., 1.])
    """

    def __init__(self, k_fe, k_re, k_vc=0):
        self.k_fe = int(k_fe)
        self.k_re = int(k_re)
        self.k_re2 = self.k_re * (self.k_re + 1) // 2
        self.k_vc = int(k_vc)
        self.k_tot = self.k_fe + self.k_re2 + self.k_vc
        self._ix = np.tril_indices(self.k_re)
        self.fe_params = np.zeros(self.k_fe)
        self.cov_re = np.zeros((self.k_re, self.k_re))
        self.vcomp = np.zeros(self.k_vc)

    @staticmethod
    def from_packed(params, k_fe, k_re, use_sqrt, has_fe):
        """Create a MixedLMParams from a packed parameter vector.

        Parameters
        ----------
        params : array_like
            fixed effects (if ``has_fe``), the lower triangle of cov_re (or of
            its Cholesky factor if ``use_sqrt``), then variance components.
        k_fe, k_re : int
        use_sqrt : bool
        has_fe : bool
        """
        params = np.asarray(params, dtype=float)
        k_re2 = int(k_re * (k_re + 1) / 2)
        if has_fe:
            k_vc = len(params) - k_fe - k_re2
        else:
            k_vc = len(params) - k_re2
        if k_vc < 0:
            raise ValueError(
                f"packed parameters of length {len(params)} are too short for "
                f"k_fe={k_fe}, k_re={k_re}"
            )
        pa = MixedLMParams(k_fe, k_re, k_vc)
        cov_re = np.zeros((k_re, k_re))
        ix = pa._ix
        if has_fe:
            pa.fe_params = params[0:k_fe].copy()
            cov_re[ix] = params[k_fe:k_fe + k_re2]
        else:
            pa.fe_params = np.zeros(k_fe)
            cov_re[ix] = params[0:k_re2]
        if use_sqrt:
            cov_re = cov_re @ cov_re.T
        else:
            cov_re = cov_re + cov_re.T - np.diag(np.diag(cov_re))
        pa.cov_re = cov_re
        vc = params[-k_vc:] if k_vc > 0 else np.zeros(0)
        pa.vcomp = vc**2 if use_sqrt else vc.copy()
        return pa

    @staticmethod
    def from_components(fe_params=None, cov_re=None, cov_re_sqrt=None, vcomp=None):
        """Create a MixedLMParams from its components.

        Parameters
        ----------
        fe_params : array_like, optional
        cov_re : array_like, optional
            Random-effects covariance, relative to the scale.
        cov_re_sqrt : array_like, optional
            Its Cholesky factor (an alternative to ``cov_re``).
        vcomp : array_like, optional

        Examples
        --------
        >>> import numpy as np
        >>> p = MixedLMParams.from_components(np.zeros(2), np.eye(2))
        >>> p.k_re2
        3
        """
        if vcomp is None:
            vcomp = np.empty(0)
        if fe_params is None:
            fe_params = np.empty(0)
        if cov_re is None and cov_re_sqrt is None:
            cov_re = np.empty((0, 0))
        fe_params = np.asarray(fe_params, dtype=float)
        k_fe = len(fe_params)
        if cov_re is not None:
            cov_re = np.atleast_2d(np.asarray(cov_re, dtype=float))
            k_re = cov_re.shape[0]
        else:
            cov_re_sqrt = np.atleast_2d(np.asarray(cov_re_sqrt, dtype=float))
            k_re = cov_re_sqrt.shape[0]
            cov_re = cov_re_sqrt @ cov_re_sqrt.T
        vcomp = np.asarray(vcomp, dtype=float)
        pa = MixedLMParams(k_fe, k_re, len(vcomp))
        pa.fe_params = fe_params.copy()
        pa.cov_re = cov_re.copy()
        pa.vcomp = vcomp.copy()
        return pa

    def copy(self):
        obj = MixedLMParams(self.k_fe, self.k_re, self.k_vc)
        obj.fe_params = self.fe_params.copy()
        obj.cov_re = self.cov_re.copy()
        obj.vcomp = self.vcomp.copy()
        return obj

    def get_packed(self, use_sqrt, has_fe=False):
        """The packed parameter vector (see `from_packed`)."""
        if self.k_re > 0:
            if use_sqrt:
                try:
                    low = np.linalg.cholesky(self.cov_re)
                except np.linalg.LinAlgError:
                    w, v = np.linalg.eigh(self.cov_re)
                    f = v * np.sqrt(np.clip(w, 0, None))
                    r = np.linalg.qr(f.T, mode="r")
                    low = r.T * np.where(np.diag(r) < 0, -1.0, 1.0)[None, :]
                cpa = low[self._ix]
            else:
                cpa = self.cov_re[self._ix]
        else:
            cpa = np.zeros(0)
        vcomp = np.sqrt(self.vcomp) if use_sqrt else self.vcomp
        parts = [self.fe_params, cpa, vcomp] if has_fe else [cpa, vcomp]
        return np.concatenate(parts)

    def __repr__(self):
        return (
            f"MixedLMParams(fe_params={self.fe_params!r}, cov_re={self.cov_re!r}, "
            f"vcomp={self.vcomp!r})"
        )
