"""Data sets shipped with lmm, loadable offline.

``get_rdataset(name, package)`` mirrors statsmodels' function of that name for
the data sets shipped here, so code written for statsmodels (and the examples of
lme4's and nlme's documentation) runs without a network.

Sources and licences: each file is the data set as its R package ships it, written
with R's ``write.csv`` (R 4.2.2): ``dietox`` (geepack 1.3, GPL >= 3; Lauridsen et al.
1999), ``Sitka`` (MASS 7.3, GPL-2 | GPL-3; Diggle, Liang and Zeger 1994),
``sleepstudy``, ``Penicillin``, ``Pastes`` and ``Dyestuff`` (lme4 1.1-31, GPL >= 2;
Belenky et al. 2003 and Davies and Goldsmith 1972), ``Orthodont`` (nlme 3.1-162,
GPL >= 2; Potthoff and Roy 1964).  They are measurements, reproduced with their
source named, as R's own packages distribute them.

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
    ("sleepstudy", "lme4"): (
        "sleepstudy.csv",
        "Reaction times in a sleep deprivation study",
        "Average reaction time of 18 subjects over 10 days of sleep deprivation "
        "(lme4::sleepstudy; Belenky et al. 2003).",
    ),
    ("Penicillin", "lme4"): (
        "Penicillin.csv",
        "Variation in penicillin testing",
        "Diameters of growth-inhibition zones: 24 plates crossed with 6 samples "
        "(lme4::Penicillin; Davies and Goldsmith 1972).",
    ),
    ("Pastes", "lme4"): (
        "Pastes.csv",
        "Paste strength by batch and cask",
        "Strength of a chemical paste: 3 casks nested in each of 10 batches, 2 "
        "assays each (lme4::Pastes; Davies and Goldsmith 1972).",
    ),
    ("Dyestuff", "lme4"): (
        "Dyestuff.csv",
        "Yield of dyestuff by batch",
        "Yield of dyestuff from 5 preparations of each of 6 batches (lme4::Dyestuff; "
        "Davies and Goldsmith 1972).",
    ),
    ("Orthodont", "nlme"): (
        "Orthodont.csv",
        "Growth curve data on an orthodontic measurement",
        "Pituitary-pterygomaxillary distance of 27 children at ages 8 to 14 "
        "(nlme::Orthodont; Potthoff and Roy 1964).",
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
