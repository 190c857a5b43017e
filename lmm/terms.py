"""The random-effect term of a model with several grouping factors: the data of one
factor's effects (codes, design, names, covariance structure), built by the
formula layer (`lmm.formula.design`) and read by the several-factor engine."""

from dataclasses import dataclass

import numpy as np

from .covariance import CovarianceStructure


@dataclass
class Term:
    """One random-effect term: effects `names` varying by the factor `group`.

    codes (n,) level of each row, labels (levels,), z (n, q) design,
    structure: blocks of the term's covariance (one block unless ||),
    designs: the formula designs of z's columns (for predictions on new data).
    """

    group: str
    codes: np.ndarray
    labels: list
    z: np.ndarray
    names: list
    structure: CovarianceStructure
    designs: list | None = None     # the bar terms' designs, to rebuild z for new data

    @property
    def n_levels(self):
        return len(self.labels)

    @property
    def q(self):
        return self.z.shape[1]
