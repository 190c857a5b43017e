"""Agreement, targets, the printed tables and the chart of a benchmark run.

Everything here works on the JSON-ready dict that `bench.cli` builds, so a
saved results file can be re-reported.
"""

from .measurement import growth_exponent

TOOLS = ("lmm", "statsmodels", "lme4")
# Seed models: lmm's time at most 1/factor of the other tool's.
SEED_TARGETS = (("lme4", 10), ("statsmodels", 100))
LARGE_CASE = "scale_1e6"
LARGE_MAX_SECONDS = 1.0
LARGE_LME4_FACTOR = 30
MEMORY_FACTOR = 3.0


def llf_tolerance(llf):
    """Two log-likelihoods agree if they differ by at most max(1e-3, 1e-8 |llf|)."""
    return max(1e-3, 1e-8 * abs(llf))


def agreement(case):
    """Is lmm's log-likelihood confirmed by another tool?

    ``verified`` is True when lmm's llf matches (within `llf_tolerance`) that
    of another tool, or of lme4's untimed bobyqa refit, and no tool found a
    higher one; False when some tool found a higher one (lmm stopped short or
    is wrong); None when there is nothing to compare with or every other tool
    stopped lower.  A fast wrong answer cannot be verified; a tool that stopped
    short of the optimum shows in the llf-difference columns.
    """
    tools = case["tools"]
    lmm_llf = tools["lmm"].get("llf")
    refs = {name: t["llf"] for name, t in tools.items()
            if name != "lmm" and t.get("llf") is not None}
    if case.get("lme4_check_llf") is not None:
        refs["lme4 bobyqa refit"] = case["lme4_check_llf"]
    if lmm_llf is None:
        return {"verified": None, "detail": f"lmm: {tools['lmm']['status']}"}
    if not refs:
        return {"verified": None, "detail": "no other tool to compare with"}
    tol = llf_tolerance(lmm_llf)
    diffs = {name: lmm_llf - llf for name, llf in refs.items()}
    matches = [name for name, d in diffs.items() if abs(d) <= tol]
    beaten_by = [name for name, d in diffs.items() if d < -tol]
    if beaten_by:
        verified, detail = False, "lmm's llf is lower than " + ", ".join(beaten_by)
    elif matches:
        verified, detail = True, "matches " + ", ".join(matches)
    else:
        # every other tool stopped lower (typically reporting non-convergence):
        # nothing contradicts lmm, nothing confirms it
        verified, detail = None, "higher than " + ", ".join(diffs) + "; none confirms it"
    return {"verified": verified, "detail": detail, "tolerance": tol, "llf_diff": diffs}


def _verdict(fast, verified, missing=None):
    if missing:
        return f"n/a ({missing})"
    if verified is False:
        return "not met (llf disagrees)"
    if not fast:
        return "not met"
    return "met" if verified else "met (llf unverified)"


def targets(run):
    """The targets of the cases present in `run`, each with a status."""
    out = []
    cases = {c["id"]: c for c in run["cases"]}
    for case in run["cases"]:
        if case["kind"] != "seed":
            continue
        for tool, factor in SEED_TARGETS:
            ratio = case["ratios"].get(tool)
            missing = None if ratio is not None else case["tools"][tool]["status"]
            out.append({
                "target": f"{case['id']}: lmm <= 1/{factor} of {tool}",
                "measured": _fmt_ratio(ratio),
                "status": _verdict(ratio is not None and ratio <= 1 / factor,
                                   case["agreement"]["verified"], missing),
            })
    big = cases.get(LARGE_CASE)
    if big is not None:
        t = big["tools"]["lmm"].get("median")
        out.append({
            "target": f"{LARGE_CASE}: lmm under {LARGE_MAX_SECONDS:g} s",
            "measured": _fmt_time(t),
            "status": _verdict(t is not None and t < LARGE_MAX_SECONDS,
                               big["agreement"]["verified"]),
        })
        ratio = big["ratios"].get("lme4")
        out.append({
            "target": f"{LARGE_CASE}: lmm {LARGE_LME4_FACTOR}x faster than lme4",
            "measured": _fmt_ratio(ratio),
            "status": _verdict(ratio is not None and ratio <= 1 / LARGE_LME4_FACTOR,
                               big["agreement"]["verified"],
                               None if ratio is not None else big["tools"]["lme4"]["status"]),
        })
        mem = big.get("memory") or {}
        factor = mem.get("extra_bytes", 0) / mem["input_bytes"] if "input_bytes" in mem else None
        out.append({
            "target": f"{LARGE_CASE}: peak extra memory <= {MEMORY_FACTOR:g}x input arrays",
            "measured": f"{factor:.2f}x" if factor is not None else "-",
            "status": _verdict(factor is not None and factor <= MEMORY_FACTOR, True,
                               None if factor is not None else "not measured"),
        })
    return out


def growth(run):
    """Exponent k of time ~ n^k between successive scale sizes, per tool."""
    scale = [c for c in run["cases"] if c["kind"] == "scale"]
    out = {}
    for tool in TOOLS:
        pts = [(c["n"], c["tools"][tool].get("median")) for c in scale]
        pts = [(n, t) for n, t in pts if t is not None]
        out[tool] = {f"{n1:.0e}->{n2:.0e}".replace("+0", ""): growth_exponent(n1, t1, n2, t2)
                     for (n1, t1), (n2, t2) in zip(pts, pts[1:], strict=False)}
    return out


# -- formatting -----------------------------------------------------------------

def _fmt_time(t):
    return "-" if t is None else f"{t:.3g}"


def _fmt_ratio(r):
    if r is None:
        return "-"
    return f"1/{1 / r:.3g}" if r < 1 else f"{r:.3g}"


def _fmt_diff(d):
    return "-" if d is None else f"{d:+.2g}"


def _tool_cell(tool):
    if tool.get("median") is None:
        return tool["status"].split(":")[0]
    star = "" if tool.get("converged") is not False else "*"
    return f"{_fmt_time(tool['median'])}{star} ({tool['reps']})"


def markdown_table(header, rows):
    """A GitHub-markdown table, columns padded for reading in a terminal."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(header)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line([str(h) for h in header]), sep] + [line(r) for r in rows])


def format_report(run):
    """The full text report: timings, targets, growth, memory."""
    header = ["case", "n", "lmm s (reps)", "statsmodels s (reps)", "lme4 s (reps)",
              "lmm/sm", "lmm/lme4", "dllf lmm-sm", "dllf lmm-lme4", "lmm llf verified"]
    rows = []
    for c in run["cases"]:
        ag = c["agreement"]
        rows.append([
            c["id"], c["n"],
            _tool_cell(c["tools"]["lmm"]), _tool_cell(c["tools"]["statsmodels"]),
            _tool_cell(c["tools"]["lme4"]),
            _fmt_ratio(c["ratios"].get("statsmodels")), _fmt_ratio(c["ratios"].get("lme4")),
            _fmt_diff(c["llf_diff"].get("statsmodels")), _fmt_diff(c["llf_diff"].get("lme4")),
            {True: "yes", False: "NO", None: "-"}[ag["verified"]] + f" ({ag['detail']})",
        ])
    parts = ["Median wall time in seconds (number of timed runs); * = the tool reported "
             "non-convergence. dllf = lmm's log-likelihood minus the other tool's.",
             markdown_table(header, rows)]
    notes = [f"{name} skipped: {why}" for name, why in run["meta"]["skipped"].items()]
    notes += sorted({f"{c['id']} {name}: {t.get('note') or t['status']}" for c in run["cases"]
                     for name, t in c["tools"].items() if t["status"] != "skipped"
                     and (t.get("note") or t["status"].startswith("error"))})
    if notes:
        parts.append("Notes:\n" + "\n".join(f"- {n}" for n in notes))
    parts.append(markdown_table(["target", "measured", "status"],
                                [[t["target"], t["measured"], t["status"]]
                                 for t in run["targets"]]))
    grow = run["growth"]
    spans = sorted({s for g in grow.values() for s in g}, key=lambda s: float(s.split("->")[0]))
    if spans:
        parts.append("Growth of time with n (k in time ~ n^k; 1 = linear):\n\n" + markdown_table(
            ["tool", *spans],
            [[tool, *(f"{grow[tool][s]:.2f}" if grow[tool].get(s) is not None else "-"
                      for s in spans)] for tool in TOOLS]))
    mem_rows = [[c["n"], f"{c['memory']['input_bytes'] / 1e6:.1f}",
                 f"{c['memory']['extra_bytes'] / 1e6:.1f}",
                 f"{c['memory']['extra_bytes'] / c['memory']['input_bytes']:.2f}x"]
                for c in run["cases"] if c.get("memory") and "extra_bytes" in c["memory"]]
    if mem_rows:
        method = next(c["memory"]["method"] for c in run["cases"]
                      if c.get("memory") and "method" in c["memory"])
        parts.append(f"lmm peak extra memory of one fit ({method}):\n\n" + markdown_table(
            ["n", "input MB", "peak extra MB", "extra/input"], mem_rows))
    return "\n\n".join(parts)


def write_chart(run, path):
    """A PNG: seed/profile medians (bars) and scale medians vs n (log-log).

    Returns None, or a message if matplotlib is missing.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no chart written"
    small = [c for c in run["cases"] if c["kind"] != "scale"]
    scale = [c for c in run["cases"] if c["kind"] == "scale"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    width = 0.8 / len(TOOLS)
    for k, tool in enumerate(TOOLS):
        bars = [(i + (k - 1) * width, c["tools"][tool]["median"]) for i, c in enumerate(small)
                if c["tools"][tool].get("median")]
        if bars:
            ax1.bar(*zip(*bars, strict=True), width, label=tool)
        pts = [(c["n"], c["tools"][tool]["median"]) for c in scale
               if c["tools"][tool].get("median")]
        if pts:
            ax2.plot(*zip(*pts, strict=True), marker="o", label=tool)
    ax1.set_xticks(range(len(small)), [c["id"] for c in small], rotation=30, ha="right")
    ax1.set_title("seed models and profile")
    ax2.set_xlabel("rows (10 per group)")
    ax2.set_title("y ~ x1+x2+x3+x4, random intercept + slope")
    for ax in (ax1, ax2):
        ax.set_ylabel("median seconds")
        if ax.has_data():
            ax.set_yscale("log")
            ax.legend()
    if ax2.has_data():
        ax2.set_xscale("log")
    meta = run["meta"]
    fig.suptitle(f"lmm {meta['versions'].get('lmm')} vs statsmodels "
                 f"{meta['versions'].get('statsmodels')} vs lme4 "
                 f"{meta['versions'].get('lme4')}: {meta['cpu_count']} cores, {meta['date']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
