"""Text summaries of fitted models.

`statsmodels_summary` lays out the table as statsmodels' MixedLM summary does
(a two-column information block, then one table of fixed-effect and
random-effect parameters), so output read by people or by scripts looks the
same.
"""

import numpy as np
import pandas as pd
from scipy import special


def _fmt_info(value):
    if isinstance(value, float | np.floating):
        return ("%.4f" % value).strip()
    return str(value).strip()


def _table_lines(cells, stubs, header, data_align, pad_col, pad_index):
    """Rows of a plain text table: left-aligned stubs, aligned data, centred header."""
    if stubs is not None:
        stubs = [s + " " * pad_index for s in stubs]
        rows = [[s] + list(r) for s, r in zip(stubs, cells)]
        head = [""] + list(header) if header is not None else None
    else:
        rows = [list(r) for r in cells]
        for r in rows:
            r[0] = r[0] + " " * pad_index
        head = list(header) if header is not None else None
    ncol = len(rows[0])
    widths = [max(len(r[j]) for r in rows + ([head] if head else [])) for j in range(ncol)]
    sep = " " * (pad_col + 1)
    lines = []

    def fmt_row(r, header_row=False):
        out = []
        for j, (cell, w) in enumerate(zip(r, widths)):
            if j == 0 and stubs is not None:
                out.append(cell.ljust(w))
            elif header_row:
                out.append(cell.center(w))
            elif data_align == "l":
                out.append(cell.ljust(w))
            else:
                out.append(cell.rjust(w))
        return sep.join(out)

    if head is not None:
        lines.append(fmt_row(head, header_row=True))
    lines.extend(fmt_row(r) for r in rows)
    return lines, sum(widths) + len(sep) * (ncol - 1)


class Summary:
    """A rendered summary: prints as text, renders as a table in notebooks."""

    def __init__(self, text, html=None):
        self._text = text
        self._html = html

    def as_text(self):
        return self._text

    def __str__(self):
        return self._text

    __repr__ = __str__

    def _repr_html_(self):
        if self._html is not None:
            return self._html
        return "<pre>" + self._text.replace("&", "&amp;").replace("<", "&lt;") + "</pre>"

    def as_html(self):
        return self._repr_html_()


def statsmodels_summary(res, yname=None, xname_fe=None, xname_re=None, title=None,
                        alpha=0.05):
    """statsmodels-style summary of a MixedLMResults."""
    m = res.model
    sizes = m.group_sizes
    info = [
        ("Model:", "MixedLM"),
        ("No. Observations:", str(m.nobs)),
        ("No. Groups:", str(m.n_groups)),
        ("Min. group size:", f"{sizes.min():.0f}"),
        ("Max. group size:", f"{sizes.max():.0f}"),
        ("Mean group size:", f"{sizes.mean():.1f}"),
        ("Dependent Variable:", yname if yname is not None else m.endog_names),
        ("Method:", res.method),
        ("Scale:", res.scale),
        ("Log-Likelihood:", res.llf),
        ("Converged:", "Yes" if res.converged else "No"),
    ]
    names = list(res.params.index)
    if xname_fe is not None:
        if len(xname_fe) != res.k_fe:
            raise ValueError(f"xname_fe should be a list of length {res.k_fe}")
        names[:res.k_fe] = list(xname_fe)
    if xname_re is not None:
        if len(xname_re) != res.k_re2:
            raise ValueError(f"xname_re should be a list of length {res.k_re2}")
        names[res.k_fe:] = list(xname_re)
    fe = res.fe_params.to_numpy()
    se = res.bse_fe.to_numpy()
    z = fe / se
    pv = 2 * special.ndtr(-np.abs(z))
    qm = special.ndtri(1 - alpha / 2)
    rows = np.full((len(names), 6), np.nan)
    rows[:res.k_fe] = np.column_stack([fe, se, z, pv, fe - qm * se, fe + qm * se])
    tril = np.tril_indices(res.k_re)
    rows[res.k_fe:, 0] = res.cov_re.to_numpy()[tril]
    rows[res.k_fe:, 1] = res.bse_re.to_numpy()
    return _statsmodels_layout(info, names, rows, alpha, title)


def _statsmodels_layout(info, names, rows, alpha, title=None):
    """statsmodels' summary2 layout: the model information (label, value pairs) in two
    columns over the parameter table (rows: coef, se, z, p, lower, upper; NaN blank)."""
    info = [(k, _fmt_info(v)) for k, v in info]
    if len(info) % 2:
        info.append(("", ""))
    half = len(info) // 2
    info_cells = [[a[0], a[1], b[0], b[1]] for a, b in zip(info[:half], info[half:])]
    cells = [["%.3f" % v if np.isfinite(v) else "" for v in r] for r in rows]
    header = ["Coef.", "Std.Err.", "z", "P>|z|", "[" + str(alpha / 2), str(1 - alpha / 2) + "]"]

    # statsmodels' summary2 spreads the narrower table's slack over its separators
    _, w_info = _table_lines(info_cells, None, None, "l", 0, 0)
    _, w_par = _table_lines(cells, names, header, "r", 0, 0)
    widest = max(w_info, w_par)
    pads = []
    for w, nsep in ((w_info, 3), (w_par, 5)):
        pad = int((widest - w) / nsep)
        pads.append((pad, widest - (w + nsep * pad)))
    info_lines, _ = _table_lines(info_cells, None, None, "l", *pads[0])
    par_lines, _ = _table_lines(cells, names, header, "r", *pads[1])
    title = "Mixed Linear Model Regression Results" if title is None else title
    if len(title) < widest:
        title = " " * int(widest / 2 - len(title) / 2) + title
    rule = "=" * widest
    dash = "-" * widest
    lines = [title, rule, *info_lines, dash, par_lines[0], dash, *par_lines[1:], rule, ""]
    return Summary("\n".join(lines), html=_statsmodels_html(title.strip(), info_cells, names,
                                                           header, cells))


def _statsmodels_html(title, info_cells, names, header, cells):
    """statsmodels' summary as two HTML tables (model information, parameters)."""
    import html

    def row(values, tag="td"):
        return "<tr>" + "".join(f"<{tag}>{html.escape(str(v))}</{tag}>" for v in values) + "</tr>"

    info = "".join(row(r) for r in info_cells)
    params = row([""] + list(header), "th") + "".join(
        row([n] + list(c)) for n, c in zip(names, cells))
    return (f"<table class='simpletable'><caption>{html.escape(title)}</caption>{info}</table>"
            f"<table class='simpletable'>{params}</table>")


def lme4_name(name):
    return "(Intercept)" if name == "Intercept" else str(name)


def _format_common(values, digits=4, drop_zeros=False):
    """Format numbers with the decimals R's format() gives a column: enough for
    every value to show `digits` significant digits, the same for all; with
    `drop_zeros`, as R's print of a variance table: a value's trailing zeros do
    not count (0.6780 needs three decimals)."""
    values = np.asarray(values, dtype=float)
    finite = np.abs(values[np.isfinite(values) & (values != 0)])
    if finite.size == 0:
        return [f"{v:g}" for v in values]
    # (R: each value rounded to `digits` significant digits, its trailing zeros
    # dropped; the column takes the most decimals any value then needs)
    needed = []
    for v in finite:
        places = int(np.clip(digits - 1 - np.floor(np.log10(v)), 0, 10))
        text = f"{v:.{places}f}"
        if drop_zeros and "." in text:
            text = text.rstrip("0")
            places = len(text.split(".")[1])
        needed.append(places)
    decimals = max(needed)
    out = [f"{v:.{decimals}f}" for v in values]
    width = max(len(o) for o in out)
    return [o.rjust(width) for o in out]


def _column(values, header, align="right"):
    width = max([len(header)] + [len(v) for v in values])
    just = str.rjust if align == "right" else str.ljust
    return [just(header, width)] + [just(v, width) for v in values]


def _join_columns(columns, sep=" "):
    return [sep.join(parts).rstrip() for parts in zip(*columns)]


_DDF_NAMES = {"satterthwaite": "Satterthwaite's", "kenward-roger": "Kenward-Roger's",
              "residual": "residual (n - p)"}


def _p_value_text(p):
    """R's format.pval for a coefficient table: 3 significant digits, < 2e-16 below."""
    if not np.isfinite(p):
        return "NA"
    return "< 2e-16" if p < 2.2e-16 else f"{p:.3g}"


def _stars(p):
    for cut, mark in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p < cut:
            return mark
    return ""


def fit_title(res, ddf):
    """lme4's first line, with lmerTest's note of the df method when there is one."""
    title = "Linear mixed model fit by " + ("REML" if res.reml else "maximum likelihood")
    if ddf is not None:
        title += f". t-tests use {_DDF_NAMES[ddf]} method"
    return title


def fixed_effects_lines(res, ddf):
    """The "Fixed effects:" table: lme4's (Estimate, Std. Error, t value), with
    lmerTest's df and Pr(>|t|) and significance codes when ddf is given."""
    names = [lme4_name(n) for n in res.fe_params.index]
    if ddf is None:
        fe = res.fe_params.to_numpy()
        se = res.bse_fe.to_numpy()
        both = _format_common(np.concatenate([fe, se]))    # R formats them together
        table = [_column(names, "", "left"), _column(both[:len(fe)], "Estimate"),
                 _column(both[len(fe):], "Std. Error"),
                 _column([f"{v:.2f}" for v in fe / se], "t value")]
        return ["Fixed effects:"] + _join_columns(table)
    tab = res.coef_table(ddf=ddf)
    fe, se = tab["estimate"].to_numpy(), tab["std_error"].to_numpy()
    both = _format_common(np.concatenate([fe, se]))
    pv = tab["p_value"].to_numpy()
    table = [_column(names, "", "left"), _column(both[:len(fe)], "Estimate"),
             _column(both[len(fe):], "Std. Error"),
             _column(_format_common(tab["df"].to_numpy(), digits=5), "df"),
             _column([f"{v:.3f}" for v in tab["t"]], "t value"),
             _column([_p_value_text(p) for p in pv], "Pr(>|t|)"),
             _column([_stars(p) for p in pv], "", "left")]
    lines = ["Fixed effects:"] + _join_columns(table)
    lines += ["---", "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"]
    return lines


def lme4_summary(res, ddf=None):
    """lme4-style summary (``summary(lmer(...))``) of a MixedLMResults; with `ddf`,
    lmerTest's (its df and p-values in the fixed-effects table)."""
    m = res.model
    lines = [fit_title(res, ddf)]
    formula = m.formula if m.lmer_formula is not None else lme4_formula(res)
    if formula is not None:
        lines.append(f"Formula: {formula}")
    lines.append("")
    if res.reml:
        lines.append(f"REML criterion at convergence: {res.REMLcrit:.1f}")
    else:
        aic = -2 * res.llf + 2 * res.n_params
        bic = -2 * res.llf + np.log(res.nobs) * res.n_params
        vals = [f"{aic:.1f}", f"{bic:.1f}", f"{res.llf:.1f}", f"{-2 * res.llf:.1f}",
                f"{res.nobs - res.n_params}"]
        heads = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
        cols = [_column([v], h) for v, h in zip(vals, heads)]
        lines.extend("  " + ln for ln in _join_columns(cols, "   "))
    lines.append("")
    if res.model.endog is not None:     # (a fit from a Dask frame has no rows here)
        lines.extend(scaled_residual_lines(res.resid.to_numpy(), res.scale))
        lines.append("")
    lines.append("Random effects:")
    lines.extend(random_effects_lines(res.varcorr()))
    lines.append(f"Number of obs: {res.nobs}, groups:  {m.group_name}, {res.n_groups}")
    lines.append("")

    fe = res.fe_params.to_numpy()
    fe_names = [lme4_name(n) for n in res.fe_params.index]
    lines.extend(fixed_effects_lines(res, ddf))
    if len(fe) > 1:
        lines.append("")
        lines.extend(fixed_effect_correlation_lines(res.solution["vcov_fe"], fe_names))
    if res.singular_messages:
        lines.append("boundary (singular) fit: " + "; ".join(res.singular_messages))
    if not res.converged:
        lines.append("Convergence warning: " + "; ".join(res.optimizer["messages"]))
    text = "\n".join(lines) + "\n"
    return Summary(text, html=lme4_html(res, lines, f"{res.model.group_name}, {res.n_groups}"))


def scaled_residual_lines(resid, scale):
    """lme4's "Scaled residuals:" quantiles."""
    scaled = np.asarray(resid, dtype=float) / np.sqrt(scale)
    q = np.quantile(scaled, [0, 0.25, 0.5, 0.75, 1.0])
    cols = [_column([f"{v:.4f}"], h) for v, h in zip(q, ["Min", "1Q", "Median", "3Q", "Max"])]
    return ["Scaled residuals: ", *_join_columns(cols)]


def fixed_effect_correlation_lines(vcov_fe, fe_names):
    """lme4's "Correlation of Fixed Effects:" table (lower triangle)."""
    d = np.sqrt(np.diag(vcov_fe))
    corr = vcov_fe / np.outer(d, d)
    short = ["(Intr)" if n == "(Intercept)" else n[:6] for n in fe_names]
    cols = [_column(fe_names[1:], "", "left")]
    for k in range(len(fe_names) - 1):
        cols.append(_column([f"{corr[i, k]:.3f}" if i > k else ""
                             for i in range(1, len(fe_names))], short[k], "right"))
    return ["Correlation of Fixed Effects:", *_join_columns(cols)]


def random_effects_lines(vc):
    """lme4's random-effects table (Groups, Name, Variance, Std.Dev., Corr) from a
    `varcorr()` frame, one block of rows per grouping factor, the residual last."""
    groups, names, variances, sds, corrs = [], [], [], [], []
    for grp in vc["grp"].unique():
        block = vc[vc["grp"] == grp]
        var_rows = block[block["var2"].isna()]
        cov_rows = block[block["var2"].notna()]
        effects = list(var_rows["var1"])
        for i, (_, row) in enumerate(var_rows.iterrows()):
            groups.append(grp if i == 0 else "")
            names.append("" if pd.isna(row["var1"]) else str(row["var1"]))
            variances.append(row["vcov"])
            sds.append(row["sdcor"])
            cor = [cov_rows[(cov_rows["var1"] == effects[k]) & (cov_rows["var2"] == row["var1"])]
                   ["sdcor"].iloc[0] for k in range(i)]
            corrs.append(" ".join(f"{c:5.2f}" for c in cor))
    table = [_column(groups, "Groups", "left"), _column(names, "Name", "left"),
             _column(_format_common(variances, drop_zeros=True), "Variance", "left"),
             _column(_format_common(sds, drop_zeros=True), "Std.Dev.", "left")]
    if any(corrs):
        table.append(_column(corrs, "Corr", "left"))
    return [" " + ln for ln in _join_columns(table)]


def lme4_formula(res):
    """The model written in lme4's syntax (for models made with statsmodels' API)."""
    m = res.model
    if m.formula is None:
        return None
    fixed = m.formula
    terms = []
    names = [str(n) for n in res.cov_re.index]
    for members in res.structure.blocks:
        parts = ["1" if m.re_ones[j] else names[j] for j in members]
        if "1" not in parts:
            parts.insert(0, "0")
        terms.append(f"({' + '.join(parts)} | {m.group_name})")
    return fixed + " + " + " + ".join(terms)


def lme4_html(res, lines, groups):
    """The lme4 summary as HTML tables (random effects, fixed effects); `groups` is
    the "groups:" text (factor, levels; ...)."""
    import html

    vc = res.varcorr()
    fe = res.fe_params.to_numpy()
    se = res.bse_fe.to_numpy()
    fixed = pd.DataFrame({"Estimate": fe, "Std. Error": se, "t value": fe / se},
                         index=[lme4_name(n) for n in res.fe_params.index])
    head = "<br/>".join(html.escape(ln) for ln in lines[:2])
    crit = (f"REML criterion at convergence: {res.REMLcrit:.1f}" if res.reml
            else f"logLik: {res.llf:.1f}, AIC: {-2 * res.llf + 2 * res.n_params:.1f}")
    return (f"<p>{head}<br/>{html.escape(crit)}</p>"
            f"<p><b>Random effects</b></p>{vc.to_html(index=False, na_rep='')}"
            f"<p>Number of obs: {res.nobs}, groups: {html.escape(groups)}</p>"
            f"<p><b>Fixed effects</b></p>{fixed.to_html(float_format=lambda v: f'{v:.5g}')}")


def multi_statsmodels_summary(res, alpha=0.05):
    """statsmodels-style summary of a model with several random-effect terms
    (lmm.several_factors): the fixed effects with Wald z tests, then every term's variances
    and covariances ("plate Var", "g1 x Var", "g1 (Intercept) x x Cov"; for
    statsmodels' vc_formula models the component's name), without standard
    errors."""
    m = res.model
    info = [("Model:", "MixedLM"), ("No. Observations:", str(m.nobs))]
    info += [(f"No. Groups ({t.group}):", str(t.n_levels)) for t in m.terms]
    info += [("Dependent Variable:", m.endog_names), ("Method:", res.method),
             ("Scale:", res.scale), ("Log-Likelihood:", res.llf),
             ("Converged:", "Yes" if res.converged else "No")]
    fe = res.fe_params.to_numpy()
    se = res.bse_fe.to_numpy()
    z = fe / se
    qm = special.ndtri(1 - alpha / 2)
    rows = [list(r) for r in np.column_stack([fe, se, z, 2 * special.ndtr(-np.abs(z)),
                                               fe - qm * se, fe + qm * se])]
    names = list(res.fe_params.index)
    for term in m.terms:
        cov = res.cov_re[term.group].to_numpy()
        label = [term.group if n == "(Intercept)" else f"{term.group} {n}" for n in term.names]
        for j, k in zip(term.structure.cov_rows, term.structure.cov_cols):
            names.append(f"{label[j]} Var" if j == k else f"{label[k]} x {term.names[j]} Cov")
            rows.append([cov[j, k]] + [np.nan] * 5)
    return _statsmodels_layout(info, names, np.array(rows), alpha)
