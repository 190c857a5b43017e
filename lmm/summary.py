"""Text summaries of fitted models.

`statsmodels_summary` lays out the table as statsmodels' MixedLM summary does
(a two-column information block, then one table of fixed-effect and
random-effect parameters), so output read by people or by scripts looks the
same.
"""

import numpy as np
from scipy import stats


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
    info = [(k, _fmt_info(v)) for k, v in info]
    if len(info) % 2:
        info.append(("", ""))
    half = len(info) // 2
    info_cells = [[a[0], a[1], b[0], b[1]] for a, b in zip(info[:half], info[half:])]

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
    pv = 2 * stats.norm.sf(np.abs(z))
    qm = stats.norm.ppf(1 - alpha / 2)
    rows = np.full((len(names), 6), np.nan)
    rows[:res.k_fe] = np.column_stack([fe, se, z, pv, fe - qm * se, fe + qm * se])
    tril = np.tril_indices(res.k_re)
    rows[res.k_fe:, 0] = res.cov_re.to_numpy()[tril]
    rows[res.k_fe:, 1] = res.bse_re.to_numpy()
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
    return Summary("\n".join(lines))
