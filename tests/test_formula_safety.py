"""Formula strings never run arbitrary code (unless eval_env=), and ^ is R's power.

The oracles: a payload that would set an environment variable must not; the
message must name the refused part; ``I(x^2)`` must give the same fit as a
precomputed column x**2 (numpy), and functions must give numpy's values.
"""

import inspect
import os

import numpy as np
import pandas as pd
import patsy
import pytest

import lmm
from lmm.formula import safe

SENTINEL = "LMM_FORMULA_PAYLOAD_RAN"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    n_g, per = 12, 6
    g = np.repeat(np.arange(n_g), per)
    h = np.tile(np.arange(per), n_g)
    x = np.tile(np.array([0.0, 1.0, 2.0, 4.0, 5.0, 7.0]), n_g)
    u = rng.normal(size=n_g)[g]
    v = rng.normal(scale=0.5, size=per)[h]
    y = 1.0 + 0.5 * x - 0.2 * x ** 2 + u + v + rng.normal(scale=0.7, size=len(g))
    return pd.DataFrame({
        "y": y, "x": x, "w": rng.uniform(1.0, 3.0, len(g)),
        "f": rng.choice(["a", "b", "c"], len(g)),
        "g": [f"G{i:02d}" for i in g], "h": [f"H{i}" for i in h],
        "odd name": rng.normal(size=len(g)),
    })


# (payload, a piece of the refused part the message must name)
PAYLOADS = [
    ("__import__('os').system('true')", "__import__"),
    (f"I(__import__('os').environ.setdefault('{SENTINEL}', '1'))", "__import__"),
    ("I(().__class__.__bases__[0].__subclasses__())", "__class__"),
    ("I(x.__class__)", "__class__"),
    ("I(log.__globals__)", "__globals__"),
    ("np.log.__self__", "__self__"),
    ("eval('1')", "eval"),
    ("exec('x = 1')", "exec"),
    ("open('/etc/passwd')", "open"),
    ("getattr(x, 'real')", "getattr"),
    ("globals()", "globals"),
    ("I(locals())", "locals"),
    ("I(vars())", "vars"),
    ("compile('1', '', 'eval')", "compile"),
    ("I(type(x))", "type"),
    ("I((lambda: 1)())", "lambda"),
    ("I([v for v in x])", "comprehension"),
    ("I({v: 1 for v in x})", "comprehension"),
    ("I(sum(v for v in x))", "sum"),
    ("I(np.sum(v for v in x))", "np.sum"),
    ("x[0]", "x[0]"),
    ("I(x[::2])", "x[::2]"),
    ("I(f'{x}')", "f-string"),
    ("I((z := x))", ":="),
    ("np.__dict__", "np.__dict__"),
    ("np.load('data.npy')", "np.load"),
    ("numpy.lib", "numpy.lib"),
    ("np.lib.npyio", "np.lib"),
    ("np.ctypeslib", "np.ctypeslib"),
    ("pd.read_csv('data.csv')", "read_csv"),
    ("os.system('true')", "system"),
    ("sys", "'sys'"),
    ("I(np)", "'np'"),
    ("I(x.real)", "attribute 'real'"),
    ("Q('__builtins__')", "__builtins__"),
    ("__builtins__", "__builtins__"),
    ("_patsy_stobj0__center__", "_patsy_stobj0__center__"),
    ("C(f, **{'levels': ['a']})", "**"),
    ("I(*x)", "starred"),
    ("I(x if True else w)", "if-expression"),
    ("I(x and w)", "'and'/'or'"),
    ("I(x is None)", "comparison Is"),
    ("I(x in (1, 2))", "comparison In"),
    ("I(b'bytes')", "b'bytes'"),
    ("I({1: x})", "dict"),
    ("I(9**9**9)", "power of constants"),
    ("I(9^9^9)", "power of constants"),
    ("I(10 ** 100000)", "power of constants"),
    ("I('a' * 1000000000)", "arithmetic on a string"),
    ("I(I(9) ** I(9) ** I(9))", "I() of a constant"),
    ("I(I('a') * 1000000000)", "I() of a constant"),
    ("np.where(x > 0, 'a', 'b')", "string argument"),
    ("I([x] * 1000000000)", "arithmetic on a string, list"),
    ("I(" + "-" * 5000 + "x)", "nested too deeply"),
    ("np.log(w, w)", "output array"),
    ("np.add(x, w, x)", "output array"),
    ("np.log(w, out=w)", "out="),
    ("np.log(w, where=w > 2)", "where="),
    ("secret_local", "secret_local"),
    ("I(2 * secret_local)", "secret_local"),
    ("log(secret_local)", "secret_local"),
]


def _places(payload):
    """(name, thunk) pairs: the payload in every formula part lmm evaluates."""
    return [
        ("mixedlm formula", lambda d: lmm.mixedlm(f"y ~ x + {payload}", d, groups="g")),
        ("mixedlm re_formula", lambda d: lmm.mixedlm("y ~ x", d, groups="g",
                                                       re_formula=f"~{payload}")),
        ("mixedlm vc_formula", lambda d: lmm.mixedlm("y ~ x", d, groups="g",
                                                       vc_formula={"c": f"0 + {payload}"})),
        ("lmer fixed part", lambda d: lmm.MixedLM.from_lmer(f"y ~ {payload} + (1 | g)", d)),
        ("lmer bar term", lambda d: lmm.MixedLM.from_lmer(f"y ~ x + (1 + {payload} | g)", d)),
        ("lmer crossed bar term",
         lambda d: lmm.MixedLM.from_lmer(f"y ~ x + (1 | g) + (0 + {payload} | h)", d)),
        ("lmer crossed fixed part",
         lambda d: lmm.MixedLM.from_lmer(f"y ~ {payload} + (1 | g) + (1 | h)", d)),
        ("fit_many formula", lambda d: lmm.fit_many(f"~ x + {payload}", d, _responses(d),
                                                     groups="g", progress=False)),
        ("fit_many bar term", lambda d: lmm.fit_many(f"~ x + (1 + {payload} | g)", d,
                                                      _responses(d), progress=False)),
    ]


def _responses(d):
    return np.column_stack([d["y"].to_numpy(), -d["y"].to_numpy()])


@pytest.mark.parametrize("payload,part", PAYLOADS, ids=[p[:40] for p, _ in PAYLOADS])
def test_escape_payloads_are_refused_everywhere(data, payload, part):
    secret_local = data["x"] * 2.0       # a variable of the caller, not a column  # noqa: F841
    for where, build in _places(payload):
        with pytest.raises(ValueError) as info:
            build(data)
        message = str(info.value).lower()
        # the refused part is named after the formula's own text (which a
        # message may shorten)
        after = message.split(payload.lower(), 1)[1] if payload.lower() in message else message
        assert part.lower() in after, (where, str(info.value))
        assert SENTINEL not in os.environ, where


def test_messages_say_what_is_allowed_and_how_to_opt_in(data):
    with pytest.raises(ValueError, match=r"'secret', not a column of the data nor a formula "
                                         r"function.*eval_env="):
        lmm.mixedlm("y ~ secret", data, groups="g")
    with pytest.raises(ValueError, match=r"\"eval\('1'\)\" is refused \(a call of 'eval', not a "
                                         r"formula function\)"):
        lmm.mixedlm("y ~ eval('1')", data, groups="g")
    with pytest.raises(ValueError, match=r"quotes 'no such'.*not a column"):
        lmm.mixedlm("y ~ Q('no such')", data, groups="g")


def test_columns_that_hide_a_function_are_named(data):
    with pytest.raises(ValueError, match="calls 'log', which the data's column"):
        lmm.mixedlm("y ~ log(w)", data.assign(log=1.0), groups="g")
    with pytest.raises(ValueError, match="calls 'np', which the data's column"):
        lmm.mixedlm("y ~ np.log(w)", data.assign(np=1.0), groups="g")


def test_fit_many_with_functions_in_its_formula(data):
    # (fit_many's placeholder response is a column named with double underscores)
    res = lmm.fit_many("~ x + I(x^2) + (1 | g)", data, _responses(data), progress=False)
    ref = lmm.lmer("y ~ x + x2 + (1 | g)", data.assign(x2=data["x"] ** 2))
    np.testing.assert_allclose(res.results(0).fe_params.to_numpy(),
                               ref.fe_params.to_numpy(), rtol=1e-6, atol=1e-8)
    res = lmm.fit_many("~ np.log(w)", data, _responses(data), groups="g", progress=False)
    ref = lmm.mixedlm("y ~ lw", data.assign(lw=np.log(data["w"])), groups="g").fit()
    assert res.table["np.log(w)"].iloc[0] == pytest.approx(ref.fe_params["lw"], rel=1e-6)


def test_grouping_expressions_are_only_column_names(data):
    for group in ["__import__", "os.system", "g.__class__"]:
        with pytest.raises(ValueError, match="not in the data"):
            lmm.MixedLM.from_lmer(f"y ~ x + (1 | {group})", data)
    with pytest.raises(ValueError, match="cannot read the grouping"):
        lmm.MixedLM.from_lmer("y ~ x + (1 | __import__('os'))", data)


def test_caller_variables_need_eval_env(data):
    shift = data["x"].to_numpy() * 2.0 + 1.0      # a local variable, not a column
    with pytest.raises(ValueError, match="'shift'"):
        lmm.mixedlm("y ~ shift", data, groups="g")
    with pytest.raises(ValueError, match="'shift'"):
        lmm.MixedLM.from_lmer("y ~ shift + (1 | g)", data)
    with pytest.raises(ValueError, match="'shift'"):
        lmm.MixedLM.from_lmer("y ~ shift + (1 | g) + (1 | h)", data)
    for env in (0, {"shift": shift}, patsy.EvalEnvironment.capture()):
        md = lmm.mixedlm("y ~ shift", data, groups="g", eval_env=env)
        np.testing.assert_array_equal(md.exog[:, 1], shift)
        md = lmm.MixedLM.from_lmer("y ~ shift + (1 | g)", data, eval_env=env)
        np.testing.assert_array_equal(md.exog[:, 1], shift)
        md = lmm.MixedLM.from_lmer("y ~ shift + (1 | g) + (1 | h)", data, eval_env=env)
        np.testing.assert_array_equal(md.exog[:, 1], shift)
        md = lmm.MixedLM.from_lmer("y ~ x + (shift || g)", data, eval_env=env)
        np.testing.assert_array_equal(md.exog_re[:, 1], shift)


@pytest.mark.skipif("eval_env" not in inspect.signature(lmm.lmer).parameters,
                    reason="lmm.lmer passes eval_env on once lmm/__init__.py has it")
def test_lmer_eval_env(data):
    shift = data["x"].to_numpy() * 2.0 + 1.0      # a local variable, not a column
    with pytest.raises(ValueError, match="'shift'"):
        lmm.lmer("y ~ shift + (1 | g)", data)
    res = lmm.lmer("y ~ shift + (1 | g)", data, eval_env=0)
    ref = lmm.lmer("y ~ s + (1 | g)", data.assign(s=shift))
    assert res.llf == pytest.approx(ref.llf, rel=1e-12)
    res = lmm.lmer("y ~ shift + (1 | g) + (1 | h)", data, eval_env={"shift": shift})
    ref = lmm.lmer("y ~ s + (1 | g) + (1 | h)", data.assign(s=shift))
    assert res.llf == pytest.approx(ref.llf, rel=1e-12)


def test_eval_env_depth_counts_from_the_caller(data):
    def inner():
        shift = "not this one"        # noqa: F841 (eval_env=1 looks past this frame)
        return lmm.mixedlm("y ~ shift", data, groups="g", eval_env=1)

    shift = data["x"].to_numpy() + 5.0
    np.testing.assert_array_equal(inner().exog[:, 1], shift)


def test_eval_env_allows_python(data):
    formula = "y ~ I(__import__('math').pi * x) + I(x.to_numpy()[::-1])"
    with pytest.raises(ValueError, match="__import__"):
        lmm.mixedlm(formula, data, groups="g")
    md = lmm.mixedlm(formula, data, groups="g", eval_env=0)
    np.testing.assert_allclose(md.exog[:, 1], np.pi * data["x"].to_numpy())
    np.testing.assert_array_equal(md.exog[:, 2], data["x"].to_numpy()[::-1])
    # -1: an empty namespace (statsmodels' meaning), Python still evaluated
    md = lmm.MixedLM.from_lmer("y ~ I(abs(-x)) + (1 | g)", data, eval_env=-1)
    np.testing.assert_array_equal(md.exog[:, 1], data["x"].to_numpy())


@pytest.mark.parametrize("bad,error", [("0", TypeError), (1.5, TypeError), (True, TypeError),
                                       (-2, ValueError), (10 ** 6, ValueError)])
def test_bad_eval_env(data, bad, error):
    with pytest.raises(error, match="eval_env"):
        lmm.mixedlm("y ~ x", data.assign(x2=1.0), groups="g", re_formula="~I(x**2)",
                    eval_env=bad)


# -- ^ is the power -----------------------------------------------------------------

def test_caret_in_lmer_is_the_power(data):
    d = data.assign(x2=data["x"] ** 2)
    # days 0, 1, 2, 4 as XOR would give 2, 3, 0, 6: the column must be the square
    md = lmm.MixedLM.from_lmer("y ~ x + I(x^2) + (1 | g)", d)
    np.testing.assert_array_equal(md.exog[:, 2], d["x"].to_numpy() ** 2)
    assert md.exog_names[2] == "I(x^2)"         # (R's name of the column)
    res = lmm.lmer("y ~ x + I(x^2) + (1 | g)", d)
    ref = lmm.lmer("y ~ x + x2 + (1 | g)", d)
    assert res.llf == pytest.approx(ref.llf, rel=1e-12, abs=1e-9)
    np.testing.assert_allclose(res.fe_params.to_numpy(), ref.fe_params.to_numpy(),
                               rtol=1e-8, atol=1e-10)
    # and a power inside a random-effect term, with R's functions
    md = lmm.MixedLM.from_lmer("y ~ x + (1 + log(w^2) | g)", d)
    np.testing.assert_allclose(md.exog_re[:, 1], 2 * np.log(d["w"].to_numpy()), rtol=1e-13)
    md = lmm.MixedLM.from_lmer("y ~ x + (1 | g) + (0 + I(w^3) | h)", d)
    # (R's ^ is C's pow(), numpy's ** of 3 multiplies: they may round 1 ulp apart)
    np.testing.assert_allclose(md.terms[1].z[:, 0], d["w"].to_numpy() ** 3, rtol=1e-15)


def test_caret_in_crossed_lmer_is_the_power(data):
    d = data.assign(x2=data["x"] ** 2)
    res = lmm.lmer("y ~ x + I(x^2) + (1 | g) + (1 | h)", d)
    ref = lmm.lmer("y ~ x + x2 + (1 | g) + (1 | h)", d)
    assert res.llf == pytest.approx(ref.llf, rel=1e-12, abs=1e-9)
    np.testing.assert_allclose(np.asarray(res.fe_params), np.asarray(ref.fe_params),
                               rtol=1e-8, atol=1e-10)


def test_caret_in_mixedlm_is_the_power(data):
    d = data.assign(x2=data["x"] ** 2)
    res = lmm.mixedlm("y ~ x + I(x^2)", d, groups="g").fit()
    ref = lmm.mixedlm("y ~ x + x2", d, groups="g").fit()
    assert res.llf == pytest.approx(ref.llf, rel=1e-12, abs=1e-9)
    np.testing.assert_allclose(res.fe_params.to_numpy(), ref.fe_params.to_numpy(),
                               rtol=1e-8, atol=1e-10)
    # prediction on new data evaluates the power too
    new = pd.DataFrame({"x": [3.0, 6.0]})
    expected = res.fe_params.to_numpy() @ np.array([[1, 1], [3, 6], [9, 36]])
    np.testing.assert_allclose(res.predict(new).to_numpy(), expected, rtol=1e-12)
    # with eval_env as well (nobody means XOR)
    md = lmm.mixedlm("y ~ I(x^2)", d, groups="g", eval_env={})
    np.testing.assert_array_equal(md.exog[:, 1], d["x"].to_numpy() ** 2)


def test_caret_has_rs_precedence(data):
    # R's ^ binds tighter than unary minus and +, and is right associative; Python's
    # xor binds looser than +: I(x + x^2) must not be (x + x)^2
    x, w = data["x"].to_numpy(), data["w"].to_numpy()
    for make in (lambda f: lmm.mixedlm("y ~ " + f, data, groups="g"),
                 lambda f: lmm.MixedLM.from_lmer("y ~ " + f + " + (1 | g)", data)):
        np.testing.assert_array_equal(make("I(x + x^2)").exog[:, 1], x + x ** 2)
        np.testing.assert_array_equal(make("I(-x^2)").exog[:, 1], -(x ** 2))
        np.testing.assert_allclose(make("I(w^-1)").exog[:, 1], 1 / w, rtol=1e-15)
        np.testing.assert_allclose(make("I(2^x^2)").exog[:, 1], 2.0 ** (x ** 2), rtol=1e-15)
        np.testing.assert_allclose(make("I((w^2)^0.5)").exog[:, 1], w, rtol=1e-15)


def test_caret_at_formula_level_is_the_interaction_power(data):
    md = lmm.mixedlm("y ~ (x + w)^2", data, groups="g")
    ref = lmm.mixedlm("y ~ x * w", data, groups="g")
    assert md.exog_names == ref.exog_names == ["Intercept", "x", "w", "x:w"]
    np.testing.assert_array_equal(md.exog, ref.exog)
    md = lmm.MixedLM.from_lmer("y ~ (x + w)^2 + (1 | g)", data)
    np.testing.assert_array_equal(md.exog, ref.exog)
    # a ^ inside a string is text, not an operator
    odd = data.rename(columns={"odd name": "a^b"})
    md = lmm.mixedlm("y ~ Q('a^b')", odd, groups="g")
    np.testing.assert_array_equal(md.exog[:, 1], odd["a^b"].to_numpy())


# -- the functions formulas may use -----------------------------------------------

def test_registered_functions_give_numpys_values(data):
    x, w = data["x"].to_numpy(), data["w"].to_numpy()
    cases = {
        "np.log(w)": np.log(w), "numpy.log(w)": np.log(w), "log(w)": np.log(w),
        "log(w, 2)": np.log2(w), "log10(w)": np.log10(w), "exp(x / 10)": np.exp(x / 10),
        "sqrt(w)": np.sqrt(w), "abs(x - 3)": np.abs(x - 3), "np.sqrt(x + np.pi)":
        np.sqrt(x + np.pi), "ceiling(w)": np.ceil(w), "I(x > 2)": (x > 2) * 1.0,
        "center(x)": x - x.mean(), "I(-x ** 2 // 3 % 2)": -x ** 2 // 3 % 2,
        "np.maximum(x, w)": np.maximum(x, w), "Q('odd name')": data["odd name"].to_numpy(),
        "standardize(w)": (w - w.mean()) / w.std(),
        "I(Q('odd name') * 2)": data["odd name"].to_numpy() * 2,
        "I(x * np.pi ** 2)": x * np.pi ** 2,
    }
    cases["I(x * 10 ** 3)"] = x * 1000.0
    cases["factor(f)"] = (data["f"].to_numpy() == "b") * 1.0
    for expr, expected in cases.items():
        md = lmm.mixedlm(f"y ~ {expr}", data, groups="g")
        np.testing.assert_allclose(md.exog[:, 1], expected, rtol=1e-13, err_msg=expr)


def test_contrasts_and_splines(data):
    md = lmm.mixedlm("y ~ C(f, Sum)", data, groups="g")
    f = data["f"].to_numpy()
    expected = (f == "a") * 1.0 - (f == "c")
    np.testing.assert_array_equal(md.exog[:, 1], expected)
    md = lmm.mixedlm("y ~ C(f, Treatment('b'))", data, groups="g")
    assert md.exog_names[1:] == ["C(f, Treatment('b'))[T.a]", "C(f, Treatment('b'))[T.c]"]
    md = lmm.mixedlm("y ~ C(f, levels=['c', 'b', 'a'])", data, groups="g")
    np.testing.assert_array_equal(md.exog[:, 1], (f == "b") * 1.0)
    md = lmm.mixedlm("y ~ bs(w, df=3) + cr(x, df=3, constraints='center')", data, groups="g")
    assert md.exog.shape[1] == 1 + 3 + 3


def test_stateful_transforms_keep_the_fits_statistics(data):
    res = lmm.mixedlm("y ~ center(x)", data, groups="g").fit()
    new = pd.DataFrame({"x": [10.0]})
    expected = res.fe_params.iloc[0] + res.fe_params.iloc[1] * (10.0 - data["x"].mean())
    assert res.predict(new).iloc[0] == pytest.approx(expected, rel=1e-12)


def test_register_makes_a_function_available(data, monkeypatch):
    monkeypatch.setitem(safe.FUNCTIONS, "halve", lambda v: v / 2)
    monkeypatch.setitem(safe._NAMESPACE, "halve", lambda v: v / 2)
    md = lmm.mixedlm("y ~ halve(x)", data, groups="g")
    np.testing.assert_array_equal(md.exog[:, 1], data["x"].to_numpy() / 2)
    with pytest.raises(ValueError, match="cannot be a formula function"):
        safe.register("__class__", abs)


def test_restricted_evaluation_sees_no_builtins():
    # the second wall: even code that skipped the check finds no builtins
    env = safe.environment(None)
    with pytest.raises(NameError):
        env.eval("__import__('os')")
    assert env.eval("log(x)", inner_namespace={"x": np.e}) == pytest.approx(1.0)


# -- columns a formula cannot read as they are: refused, not guessed --------------

@pytest.fixture(scope="module")
def odd_columns(data):
    d = data[["y", "x", "g", "h"]].copy()
    d["x_text"] = d["x"].astype(str)
    d["day"] = pd.Timestamp("2021-03-01") + pd.to_timedelta(d["x"], unit="D")
    d["span"] = pd.to_timedelta(d["x"], unit="h")
    return d


@pytest.mark.parametrize("formula", ["y ~ x_text", "y ~ x + x_text:x", "y ~ day", "y ~ span"])
def test_numbers_as_strings_and_dates_are_refused(odd_columns, formula):
    column = formula.split()[-1].split(":")[0]
    with pytest.raises(TypeError, match=rf"the column '{column}' holds .*C\({column}\)"):
        lmm.mixedlm(formula, odd_columns, groups="g")
    with pytest.raises(TypeError, match=rf"the column '{column}'"):
        lmm.MixedLM.from_lmer(formula + " + (1 | g)", odd_columns)
    with pytest.raises(TypeError, match=rf"the column '{column}'"):
        lmm.MixedLM.from_lmer(formula + " + (1 | g) + (1 | h)", odd_columns)


def test_C_makes_a_factor_of_them(odd_columns):
    md = lmm.mixedlm("y ~ C(x_text)", odd_columns, groups="g")
    levels = sorted(odd_columns["x_text"].unique())
    assert md.exog_names[1:] == [f"C(x_text)[T.{v}]" for v in levels[1:]]
    md = lmm.mixedlm("y ~ C(day)", odd_columns, groups="g")
    assert md.exog.shape[1] == odd_columns["day"].nunique()
    # a string column of words stays patsy's factor, as before
    md = lmm.mixedlm("y ~ h", odd_columns, groups="g")
    assert md.exog_names[1] == "h[T.H1]"


def test_predict_refuses_strings_for_a_numeric_column(data):
    res = lmm.mixedlm("y ~ x", data, groups="g").fit()
    with pytest.raises(TypeError, match="the column 'x' must be numeric"):
        res.predict(pd.DataFrame({"x": ["1.5", "2"]}))
    res = lmm.mixedlm("y ~ np.sqrt(x)", data, groups="g").fit()
    with pytest.raises(ValueError, match="design of the new data.*str"):
        res.predict(pd.DataFrame({"x": ["1.5", "2"]}))


def test_duplicate_and_multiindex_columns(data):
    dup = pd.concat([data[["y", "x", "g"]], data[["x"]]], axis=1)
    for build in (lambda: lmm.mixedlm("y ~ x", dup, groups="g"),
                  lambda: lmm.mixedlm("y ~ np.log(x)", dup, groups="g"),
                  lambda: lmm.MixedLM.from_lmer("y ~ 1 + (x | g)", dup),
                  lambda: lmm.MixedLM.from_lmer("y ~ x + (1 | g) + (1 | y)", dup)):
        with pytest.raises(ValueError, match=r"several columns named \['x'\]"):
            build()
    # an unused duplicate is no obstacle
    md = lmm.mixedlm("y ~ 1", dup, groups="g")
    assert md.exog_names == ["Intercept"]
    flat = data[["y", "x", "g"]].copy()
    multi = flat.copy()
    multi.columns = pd.MultiIndex.from_tuples([("a", "y"), ("a", "x"), ("b", "g")])
    with pytest.raises(ValueError, match="MultiIndex"):
        lmm.mixedlm("y ~ x", multi, groups="g")
    with pytest.raises(ValueError, match="MultiIndex"):
        lmm.MixedLM.from_lmer("y ~ x + (1 | g) + (1 | y)", multi)


# -- R's poly() ---------------------------------------------------------------------

def _qr_orthonormal_polynomials(x, degree):
    """R's construction: QR of the centred Vandermonde matrix, Q times R's diagonal,
    columns scaled to unit length (the oracle for lmm's recurrence)."""
    v = np.vander(x - x.mean(), degree + 1, increasing=True)
    q, r = np.linalg.qr(v)
    z = (q * np.diag(r))[:, 1:]
    return z / np.sqrt((z ** 2).sum(axis=0))


def test_poly_is_rs_orthogonal_polynomials(data):
    x = data["w"].to_numpy()
    md = lmm.mixedlm("y ~ poly(w, 3)", data, groups="g")
    np.testing.assert_allclose(md.exog[:, 1:], _qr_orthonormal_polynomials(x, 3),
                               atol=1e-12)
    md = lmm.MixedLM.from_lmer("y ~ poly(w, 2, raw=True) + (1 | g)", data)
    np.testing.assert_array_equal(md.exog[:, 1:], np.column_stack([x, x ** 2]))
    # the same column space as x + x^2 (with an intercept): the same ML fit
    res = lmm.lmer("y ~ poly(x, 2) + (1 | g)", data, REML=False)
    ref = lmm.lmer("y ~ x + I(x^2) + (1 | g)", data, REML=False)
    assert res.llf == pytest.approx(ref.llf, rel=1e-10)
    # new data: the fit's coefficients, not the new rows' own polynomials
    new = data.iloc[[5, 0, 17]]
    np.testing.assert_allclose(res.predict(new).to_numpy(),
                               ref.predict(new).to_numpy(), rtol=1e-8)


@pytest.mark.parametrize("formula,match", [("y ~ poly(x, 0)", "degree"),
                                           ("y ~ poly(x, 2.5)", "degree"),
                                           ("y ~ poly(x, 6)", "distinct values"),
                                           ("y ~ poly(f, 2)", "numeric")])
def test_poly_errors(data, formula, match):
    with pytest.raises(ValueError, match=match):
        lmm.mixedlm(formula, data, groups="g")


def test_fit_many_and_vc_formula_pass_eval_env_on():
    d = lmm.datasets.get_rdataset("dietox", "geepack").data
    Y = np.column_stack([d["Weight"].to_numpy(), d["Weight"].to_numpy() * 2.0])
    shift = 3.0  # noqa: F841 - read by the formula through eval_env
    with pytest.raises(ValueError):
        lmm.fit_many("~ I(Time + shift)", d, responses=Y, groups="Pig")
    res = lmm.fit_many("~ I(Time + shift)", d, responses=Y, groups="Pig", eval_env=0)
    ref = lmm.fit_many("~ Time", d, responses=Y, groups="Pig")
    np.testing.assert_allclose(res.table["llf"], ref.table["llf"], rtol=1e-9)
    d2 = d.assign(Litter=d["Litter"] % 3, one=1)
    with pytest.raises(ValueError):
        lmm.mixedlm("Weight ~ I(Time + shift)", d2, groups="one",
                    vc_formula={"Pig": "0 + C(Pig)"})
    md = lmm.mixedlm("Weight ~ I(Time + shift)", d2, groups="one",
                     vc_formula={"Pig": "0 + C(Pig)"}, eval_env=0)
    assert md is not None
