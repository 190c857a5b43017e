"""The contrast matrices of lmerTest's analysis-of-variance tables (types I, II, III).

Each function returns a list of ``(term name, L)`` pairs, L a contrast matrix over the
fixed effects in the design's column order, whose F test is that row of the table.
The definitions are lmerTest's (``R/anova_contrasts.R`` and ``R/contrast_utils.R``):

* type I: the rows of L' where X'X = L D L' (the Doolittle factorization), the terms
  in the formula's order (by degree, as R orders them);
* type II: the marginal test (identity rows) of a term that no other term contains;
  for a contained term, the type I rows of the term with the columns reordered as
  [unrelated terms, the term, the terms containing it];
* type III: SAS's type III hypotheses, built in treatment coding from the full
  (rank-deficient) dummy design and orthogonalized against the containing terms,
  then mapped to the design's own coding (so Sum or Helmert coding give the same
  table as treatment coding).

Containment is SAS's: term F1 is contained in F2 if F2 has every variable of F1 and
more, and both have the same numeric variables.

Where lmerTest works on the data (``ginv(X) %*% rdX``), type III here works on the
design's coding alone: every column of the design, and every column of the full dummy
design, is written as a polynomial in treatment-coded dummies and numeric columns
(the expansion is exact for the designs R and patsy build from hierarchical
formulas), so no rows are needed and the result is exact.
"""

import itertools

import numpy as np

__all__ = ["containment", "model_terms", "type1_contrasts", "type2_contrasts",
           "type3_contrasts"]


class ModelTerm:
    """One term of the fixed-effects formula: its name (patsy's, e.g. ``Time:Evit``),
    its columns, its variables, which of them are numeric, and the variables R codes
    by contrasts in it (the ones that count for containment)."""

    def __init__(self, name, columns, variables, numeric):
        self.name = name
        self.columns = columns            # slice of the design's columns
        self.variables = frozenset(variables)
        self.numeric = frozenset(numeric)
        self.coded = self.variables       # set by model_terms


def _r_contrast_codes(terms):
    """R's factor codes (``attr(terms, "factors")``, model.c's TermCode): a variable v
    of term T is coded by contrasts (1) if T without v is empty or part of a preceding
    term (terms by degree), by indicators (2) otherwise.  lmerTest's containment reads
    only the variables coded 1."""
    ordered = sorted(terms, key=lambda t: len(t.variables))
    for i, term in enumerate(ordered):
        coded = set()
        for v in term.variables:
            rest = term.variables - {v}
            if not rest or any(rest <= u.variables for u in ordered[:i]):
                coded.add(v)
        term.coded = frozenset(coded)


def model_terms(design_info):
    """The design's terms (the intercept left out), as ModelTerm objects.

    `design_info` is a patsy DesignInfo or lmm's FastDesign.
    """
    slices = dict(design_info.term_name_slices)
    out = []
    if hasattr(design_info, "factor_infos"):          # patsy
        for term in design_info.terms:
            if not term.factors:
                continue
            names = [f.name() for f in term.factors]
            numeric = [f.name() for f in term.factors
                       if design_info.factor_infos[f].type == "numerical"]
            out.append(ModelTerm(term.name(), slices[term.name()], names, numeric))
    else:                                             # FastDesign
        for term in design_info.terms:
            name = ":".join(term)
            numeric = [label for label in term if label in design_info.numeric]
            out.append(ModelTerm(name, slices[name], term, numeric))
    _r_contrast_codes(out)
    return out


def containment(terms):
    """Term name -> names of the terms that contain it (SAS's definition, on the
    variables R codes by contrasts, as lmerTest reads it): F2 contains F1 if F2 has
    every variable of F1 and more, and both have the same numeric variables."""
    def contains(big, small):
        return (small.coded < big.coded
                and small.coded & small.numeric == big.coded & big.numeric)

    return {t.name: [u.name for u in terms if contains(u, t)] for t in terms}


def _unit_upper(xtx):
    """lmerTest's ``t(doolittle(xtx)$L)``: X'X = L U, L unit lower triangular;
    entries below 1e-6 in absolute value set to zero, as lmerTest does."""
    chol = np.linalg.cholesky(xtx)
    lt = (chol / np.diag(chol)).T
    lt[np.abs(lt) < 1e-6] = 0.0
    return lt


def _columns(sl, p):
    return np.arange(p)[sl]


def type1_contrasts(xtx, terms_in_order, p):
    """Sequential contrasts: `terms_in_order` a list of (name, slice) in R's order,
    the intercept included (it gets no row of the table)."""
    perm = np.concatenate([_columns(sl, p) for _, sl in terms_in_order])
    lt = _unit_upper(xtx[np.ix_(perm, perm)])
    out, start = [], 0
    for name, sl in terms_in_order:
        width = len(_columns(sl, p))
        if name != "Intercept":
            L = np.zeros((width, p))
            L[:, perm] = lt[start:start + width]
            out.append((name, L))
        start += width
    return out


def _marginal(term, p):
    cols = _columns(term.columns, p)
    L = np.zeros((len(cols), p))
    L[np.arange(len(cols)), cols] = 1.0
    return L


def type2_contrasts(xtx, terms, p):
    """lmerTest's type II contrasts (``get_contrasts_type2_unfolded``)."""
    contained_in = containment(terms)
    by_name = {t.name: t for t in terms}
    out = []
    for term in terms:
        containing = contained_in[term.name]
        if not containing:
            out.append((term.name, _marginal(term, p)))
            continue
        own = _columns(term.columns, p)
        later = np.concatenate([_columns(by_name[n].columns, p) for n in containing])
        rest = np.setdiff1d(np.arange(p), np.concatenate([own, later]))
        perm = np.concatenate([rest, own, later])
        lt = _unit_upper(xtx[np.ix_(perm, perm)])
        L = np.zeros((len(own), p))
        L[:, perm] = lt[len(rest):len(rest) + len(own)]
        out.append((term.name, L))
    return out


# -- type III: polynomials in treatment dummies and numeric columns ------------------
# A monomial is a frozenset of atoms: ("num", factor, column) for a numeric factor's
# column, ("dum", factor, level) for the treatment dummy of a level other than the
# first.  A polynomial is a dict monomial -> coefficient.

def _times(a, b):
    out = {}
    for ma, ca in a.items():
        for mb, cb in b.items():
            m = ma | mb
            out[m] = out.get(m, 0.0) + ca * cb
    return {m: c for m, c in out.items() if c != 0.0}


def _level_indicator(factor, level, n_levels):
    if level > 0:
        return {frozenset([("dum", factor, level)]): 1.0}
    out = {frozenset(): 1.0}
    for k in range(1, n_levels):
        out[frozenset([("dum", factor, k)])] = -1.0
    return out


def _contrast_column(factor, matrix, j):
    out = {}
    for level in range(matrix.shape[0]):
        c = float(matrix[level, j])
        if c != 0.0:
            for m, v in _level_indicator(factor, level, matrix.shape[0]).items():
                out[m] = out.get(m, 0.0) + c * v
    return {m: c for m, c in out.items() if abs(c) > 1e-12}


def _numeric_column(factor, j):
    return {frozenset([("num", factor, j)]): 1.0}


def _design_polynomials(design_info):
    """Each column of a patsy design as a polynomial."""
    columns = []
    for term in design_info.terms:
        for sub in design_info.term_codings[term]:
            per_factor = []
            for factor in sub.factors:
                name = factor.name()
                if factor in sub.contrast_matrices:
                    mat = np.asarray(sub.contrast_matrices[factor].matrix, dtype=float)
                    per_factor.append([_contrast_column(name, mat, j)
                                       for j in range(mat.shape[1])])
                else:
                    width = design_info.factor_infos[factor].num_columns
                    per_factor.append([_numeric_column(name, j) for j in range(width)])
            columns.extend(_products(per_factor))
    return columns


def _products(per_factor):
    """Every product of one polynomial per factor (patsy's column order: the
    left-most factor's columns vary fastest)."""
    out = []
    iterators = [range(len(c)) for c in reversed(per_factor)]
    for combo in itertools.product(*iterators):
        poly = {frozenset(): 1.0}
        for cols, j in zip(per_factor, combo[::-1]):
            poly = _times(poly, cols[j])
        out.append(poly)
    return out


def _indicator_columns(design_info, factor, levels):
    """(signature, polynomial) of a numeric factor's columns, or of the indicators of
    a categorical factor's `levels`."""
    info = design_info.factor_infos[factor]
    name = factor.name()
    if info.type == "numerical":
        return [(("num", name, j), _numeric_column(name, j))
                for j in range(info.num_columns)]
    n = len(info.categories)
    return [(("lev", name, k), _level_indicator(name, k, n)) for k in levels]


def _signed_products(per_factor):
    out = []
    for combo in itertools.product(*per_factor):
        poly = {frozenset(): 1.0}
        for _, piece in combo:
            poly = _times(poly, piece)
        out.append((frozenset(sig for sig, _ in combo), poly))
    return out


def _treatment_design(design_info):
    """The design in treatment coding (lmerTest's ``get_model_matrix(contrasts=
    "contr.treatment")``): each column an indicator product, with its signature, its
    polynomial and its term.  patsy's choice of which factors are coded in full is
    kept; every reduced coding becomes treatment coding (the first level dropped)."""
    columns = []
    for term in design_info.terms:
        for sub in design_info.term_codings[term]:
            per_factor = []
            for factor in sub.factors:
                info = design_info.factor_infos[factor]
                if info.type == "numerical":
                    per_factor.append(_indicator_columns(design_info, factor, None))
                    continue
                n = len(info.categories)
                full = sub.contrast_matrices[factor].matrix.shape[1] == n
                levels = range(n) if full else range(1, n)
                per_factor.append(_indicator_columns(design_info, factor, levels))
            columns.extend((sig, poly, term.name() if term.factors else "Intercept")
                           for sig, poly in _signed_products(per_factor))
    return columns


def _full_dummy_design(design_info):
    """The columns of lmerTest's rank-deficient design (``get_rdX``): the intercept
    and, for each term, every product of its numeric columns and of its categorical
    factors' level indicators; as (signature, polynomial)."""
    columns = []
    if any(not term.factors for term in design_info.terms):
        columns.append((frozenset(), {frozenset(): 1.0}))
    for term in design_info.terms:
        if not term.factors:
            continue
        per_factor = []
        for factor in term.factors:
            info = design_info.factor_infos[factor]
            levels = None if info.type == "numerical" else range(len(info.categories))
            per_factor.append(_indicator_columns(design_info, factor, levels))
        columns.extend(_signed_products(per_factor))
    return columns


def _zap(a, digits=7):
    """R's ``zapsmall``: entries below 10^-digits of the largest set to zero."""
    scale = np.max(np.abs(a)) if a.size else 0.0
    if scale > 0:
        a[np.abs(a) < scale * 10.0 ** -digits] = 0.0
    return a


def _coordinates(polys, index):
    out = np.zeros((len(index), len(polys)))
    for j, poly in enumerate(polys):
        for m, c in poly.items():
            out[index[m], j] = c
    return out


def _solve_exact(a, b, refuse):
    """x with a @ x = b, which must hold exactly (a of full column rank)."""
    x, *_ = np.linalg.lstsq(a, b, rcond=None)
    if np.linalg.matrix_rank(a) < a.shape[1] or not np.allclose(a @ x, b, atol=1e-9):
        raise refuse
    return x


def type3_contrasts(design_info, terms, p):
    """lmerTest's type III contrasts (``get_contrasts_type3``)."""
    contained_in = containment(terms)
    if not any(contained_in.values()):
        # nothing is contained in anything: every term's test is marginal
        return [(t.name, _marginal(t, p)) for t in terms]
    if not hasattr(design_info, "term_codings"):
        raise NotImplementedError("type III tests of this design need patsy's coding")
    refuse = NotImplementedError(
        "type III tests of this design: its columns are not a coding of the "
        "treatment-coded design (a non-hierarchical formula?)")
    x_polys = _design_polynomials(design_info)
    treatment = _treatment_design(design_info)
    full = _full_dummy_design(design_info)
    if len(x_polys) != p or len(treatment) != p:
        raise refuse
    monomials = {m for poly in x_polys for m in poly}
    monomials |= {m for _, poly, _ in treatment for m in poly}
    monomials |= {m for _, poly in full for m in poly}
    index = {m: i for i, m in enumerate(sorted(monomials, key=lambda m: sorted(m)))}
    x_t = _coordinates([poly for _, poly, _ in treatment], index)
    # the design's coding (X = X_t @ coding) and ginv(X_t) @ rdX, both exact
    coding = _solve_exact(x_t, _coordinates(x_polys, index), refuse)
    L = _solve_exact(x_t, _coordinates([poly for _, poly in full], index), refuse).T
    row_of = {sig: r for r, (sig, _) in enumerate(full)}
    try:
        kept_rows = [row_of[sig] for sig, _, _ in treatment]
    except KeyError:
        raise refuse from None
    cols = {t.name: [j for j, (_, _, name) in enumerate(treatment) if name == t.name]
            for t in terms}
    # orthogonalize each contained term against its containing terms, highest first
    for term in sorted(terms, key=lambda t: len(t.variables), reverse=True):
        containing = contained_in[term.name]
        if not containing:
            continue
        own = cols[term.name]
        other = [j for n in containing for j in cols[n]]
        fit = np.linalg.lstsq(L[:, other], L[:, own], rcond=None)[0]
        L[:, own] = _zap(L[:, own] - L[:, other] @ fit)
    kept = L[kept_rows]                    # p x p: the rows of the model's coefficients
    out = []
    for term in terms:
        block = kept[:, cols[term.name]].T
        block = block[np.abs(block).sum(axis=1) > 1e-8]
        out.append((term.name, block @ _zap(coding)))
    return out
