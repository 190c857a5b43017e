"""Data sets shipped with lmm, loadable offline.

``get_rdataset(name, package)`` mirrors statsmodels' function of that name for
the data sets shipped here (``dietox`` from R's geepack, ``Sitka`` from MASS),
so code written for statsmodels runs without a network.

Examples
--------
>>> import lmm
>>> data = lmm.datasets.get_rdataset("dietox", "geepack").data
>>> data.shape
(861, 8)
"""

from importlib import resources

import pandas as pd

_SHIPPED = {
    ("dietox", "geepack"): (
        "dietox.csv",
        "Growth curves of pigs in a 3x3 factorial experiment",
        "Weights of 72 slaughter pigs measured weekly for 12 weeks (geepack::dietox).",
    ),
    ("Sitka", "MASS"): (
        "Sitka.csv",
        "Growth Curves for Sitka Spruce Trees in 1988",
        "Log-size of 79 Sitka spruce trees at five times, two treatments (MASS::Sitka).",
    ),
}


class Dataset:
    """A loaded data set: ``data`` (DataFrame), ``title``, ``package``, ``__doc__``."""

    def __init__(self, data, title, package, doc):
        self.data = data
        self.title = title
        self.package = package
        self.__doc__ = doc
        self.from_cache = True

    def __repr__(self):
        return f"<Dataset {self.package}::{self.title} {self.data.shape}>"


def _find(dataname, package):
    for (name, pkg), entry in _SHIPPED.items():
        if name.lower() == str(dataname).lower() and (
            package in (None, "datasets") or pkg.lower() == str(package).lower()
        ):
            return name, pkg, entry
    known = ", ".join(f"{n} ({p})" for n, p in _SHIPPED)
    raise ValueError(
        f"data set {dataname!r} from package {package!r} is not shipped with lmm "
        f"(it has no network access); available: {known}"
    )


def load(dataname, package=None):
    """Load a shipped data set as a DataFrame.

    Examples
    --------
    >>> load("Sitka").shape
    (395, 4)
    """
    _, _, (fname, _, _) = _find(dataname, package)
    with resources.files(__name__).joinpath(fname).open("r") as fh:
        return pd.read_csv(fh)


def get_rdataset(dataname, package="datasets", cache=False):
    """statsmodels' ``get_rdataset`` for the data sets shipped with lmm.

    Parameters
    ----------
    dataname : str
        ``"dietox"`` or ``"Sitka"``.
    package : str
        ``"geepack"`` or ``"MASS"``.
    cache : ignored (nothing is downloaded)

    Returns
    -------
    Dataset with a ``data`` DataFrame.

    Examples
    --------
    >>> get_rdataset("Sitka", "MASS").data.columns.tolist()
    ['size', 'Time', 'tree', 'treat']
    """
    name, pkg, (fname, title, doc) = _find(dataname, package)
    return Dataset(load(name, pkg), title, pkg, doc)


__all__ = ["get_rdataset", "load", "Dataset"]
