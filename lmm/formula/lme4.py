"""lme4's formula syntax: ``y ~ x + (1 + x | g)``, ``(1 | g) + (0 + x | g)``, ``(x || g)``.

A formula is split into its fixed part and its random-effect terms (bars).
The terms' columns are gathered into one random-effects design, and the
covariance is block-diagonal with one block per term (one per column for a
double-bar term), which is lme4's model.  With one grouping factor the model
is fitted by the one-factor core (lmm.model.MixedLM); with several, nested
(``(1 | a/b)`` means ``(1 | a) + (1 | a:b)``) or crossed, by lmm.several_factors.
"""

import ast
import re
from dataclasses import dataclass

from .fast import caret_as_power, split_top


@dataclass(frozen=True)
class RandomTerm:
    """One bar term: the effects `expr` varying by `group`."""

    expr: str
    group: str
    uncorrelated: bool = False

    @property
    def has_intercept(self):
        """R's rule: an intercept unless the term says 0 or -1."""
        rhs = self.expr.replace(" ", "")
        return not (rhs.startswith("0") or "+0" in rhs or "-1" in rhs)

    def covariates(self):
        """The term's pieces other than the intercept markers."""
        pieces = [p.strip() for p in split_top(self.expr, "+-") if p not in "+-"]
        return [p for p in pieces if p and p not in ("0", "1")]


@dataclass(frozen=True)
class LmerFormula:
    response: str
    fixed: str
    terms: tuple

    @property
    def group(self):
        return self.terms[0].group

    @property
    def groups(self):
        """The grouping factors, in order of first appearance ("a:b" for interactions)."""
        out = []
        for t in self.terms:
            if t.group not in out:
                out.append(t.group)
        return out

    @property
    def single_factor(self):
        return len(self.groups) == 1 and ":" not in self.groups[0]

    @property
    def fixed_formula(self):
        return f"{self.response} ~ {self.fixed}"

    def re_formula(self):
        """One formula whose columns are the union of the terms' columns."""
        pieces = []
        for t in self.terms:
            for c in t.covariates():
                if c not in pieces:
                    pieces.append(c)
        intercept = any(t.has_intercept for t in self.terms)
        if not pieces:
            return "~1" if intercept else None
        return "~" + ("1 + " if intercept else "0 + ") + " + ".join(pieces)


def is_bar_term(piece):
    piece = piece.strip()
    if not (piece.startswith("(") and piece.endswith(")")):
        return False
    inner = piece[1:-1]
    # the parentheses must wrap the whole piece
    depth = 0
    for ch in inner:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return "|" in "".join(p for p in split_top(inner, "|") if p == "|")


def parse(formula):
    """Split an lme4 formula into response, fixed part and random terms.

    Examples
    --------
    >>> f = parse("Weight ~ Time + (Time || Pig)")
    >>> f.fixed, [(t.expr, t.group, t.uncorrelated) for t in f.terms]
    ('Time', [('Time', 'Pig', True)])
    >>> f = parse("Yield ~ 1 | Batch")          # lme4's shorthand for (1 | Batch)
    >>> f.fixed, [(t.expr, t.group) for t in f.terms]
    ('1', [('1', 'Batch')])
    """
    if "~" not in formula:
        raise ValueError(f"the formula {formula!r} needs a response on the left of '~'")
    lhs, rhs = formula.split("~", 1)
    response = lhs.strip()
    if not response:
        raise ValueError(f"the formula {formula!r} needs a response on the left of '~'")
    tokens = split_top(rhs, "+-")
    fixed, terms = [], []
    sign = "+"
    for tok in tokens:
        if tok in ("+", "-"):
            sign = tok
            continue
        if not tok.strip():
            continue
        if is_bar_term(tok):
            if sign == "-":
                raise ValueError(f"cannot subtract a random-effect term: {tok.strip()}")
            inner = tok.strip()[1:-1]
            parts = split_top(inner, "|")
            bars = [i for i, p in enumerate(parts) if p == "|"]
            double = len(bars) == 2 and bars[1] == bars[0] + 2 and parts[bars[0] + 1] == ""
            if not (len(bars) == 1 or double):
                raise ValueError(f"cannot read the random-effect term {tok.strip()!r}")
            expr = parts[0].strip()
            group = parts[-1].strip()
            if not expr or not group:
                raise ValueError(f"cannot read the random-effect term {tok.strip()!r}")
            terms.append(RandomTerm(expr, group, uncorrelated=double))
        else:
            fixed.append(("- " if sign == "-" else "+ ") + tok.strip())
            sign = "+"
    if not terms and "|" in split_top(rhs, "|"):
        # a bar outside parentheses binds loosest in R: y ~ 1 | g is y ~ (1 | g), and
        # y ~ x | g is y ~ (x | g) with an intercept-only fixed part (lme4's nobars)
        return parse(f"{lhs} ~ ({rhs.strip()})")
    if not terms:
        raise ValueError(
            f"the formula {formula!r} has no random-effect term such as (1 | group); "
            "use an ordinary regression for a model without random effects"
        )
    expanded = []
    for t in terms:
        if any(ch in t.group for ch in "*+() "):
            raise ValueError(f"cannot read the grouping {t.group!r} in ({t.expr} | {t.group})")
        if "/" in t.group:
            # (expr | a/b) means (expr | a) + (expr | a:b); a/b/c adds a:b:c
            parts = [p.strip() for p in t.group.split("/")]
            if any(not p for p in parts):
                raise ValueError(f"cannot read the grouping {t.group!r}")
            for i in range(1, len(parts) + 1):
                expanded.append(RandomTerm(t.expr, ":".join(parts[:i]), t.uncorrelated))
        else:
            expanded.append(RandomTerm(t.expr, ":".join(p.strip() for p in t.group.split(":")),
                                       t.uncorrelated))
    terms = expanded
    fixed_rhs = " ".join(fixed).strip()
    if fixed_rhs.startswith("+ "):
        fixed_rhs = fixed_rhs[2:]
    return LmerFormula(response, fixed_rhs or "1", tuple(terms))


def term_key(expr):
    """A bar term's left side as a comparable key: no spaces, the intercept written
    out (``"Time"`` and ``"1 + Time"`` are the same term)."""
    text = expr.replace(" ", "")
    return text if text.startswith(("0+", "-1+", "1+")) or text in ("1", "0") else "1+" + text


def parse_re_form(re_form):
    """lme4's ``re.form``: None (every random-effect term), an empty list (none:
    ``"~0"``, False or NaN) or the bar terms a formula names (``"~(1 | plate)"``)."""
    if re_form is None:
        return None
    if re_form is False or (isinstance(re_form, float) and re_form != re_form):
        return []
    if not isinstance(re_form, str):
        raise TypeError(f"re_form must be None, False or a formula string, got {re_form!r}")
    text = re_form.strip().lstrip("~").strip()
    if text in ("0", "-1", "NA", ""):
        return []
    return list(parse("__y__ ~ 0 + " + text).terms)


# R's operators by precedence (R's ?Syntax), highest first, and how deparse() spaces
# them; a Python operator's R spelling (** is R's ^, read as ** by caret_as_power;
# // is R's %/%)
_R_BINARY = {
    ast.Pow: ("^", 9), ast.Mod: (" %% ", 6),
    ast.FloorDiv: (" %/% ", 6), ast.Mult: (" * ", 5), ast.Div: ("/", 5),
    ast.Add: (" + ", 4), ast.Sub: (" - ", 4), ast.BitAnd: (" & ", 1),
    ast.BitOr: (" | ", 0),
}
_R_UNARY = {ast.USub: ("-", 8), ast.UAdd: ("+", 8), ast.Not: ("!", 2), ast.Invert: ("!", 2)}
_R_COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
              ast.GtE: ">="}
_R_COMPARE_PRECEDENCE = 3
_R_ATOM = 10


def _r_constant(value):
    if value is True or value is False:
        return "TRUE" if value else "FALSE"
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return f"{value:.15g}"      # (R's deparse: 15 significant digits, 1 for 1.0)
    return repr(value)


def _r_deparse(node):
    """(text, precedence) of an expression's AST as R's deparse() prints it."""
    if isinstance(node, ast.Constant):
        return _r_constant(node.value), _R_ATOM
    if isinstance(node, ast.Name):
        return node.id, _R_ATOM
    if isinstance(node, ast.Attribute):
        return f"{_r_deparse(node.value)[0]}.{node.attr}", _R_ATOM
    if isinstance(node, ast.Call):
        args = [_r_deparse(a)[0] for a in node.args]
        args += [f"{k.arg} = {_r_deparse(k.value)[0]}" for k in node.keywords]
        return f"{_r_deparse(node.func)[0]}({', '.join(args)})", _R_ATOM
    if isinstance(node, ast.BinOp) and type(node.op) in _R_BINARY:
        op, level = _R_BINARY[type(node.op)]
        right_assoc = level == 9
        left = _r_operand(node.left, level, tighter=right_assoc)
        if right_assoc and isinstance(node.right, ast.UnaryOp):
            right = _r_deparse(node.right)[0]       # (R: Time^-1, no parentheses)
        else:
            right = _r_operand(node.right, level, tighter=not right_assoc)
        return left + op + right, level
    if isinstance(node, ast.UnaryOp) and type(node.op) in _R_UNARY:
        op, level = _R_UNARY[type(node.op)]
        return op + _r_operand(node.operand, level, tighter=False), level
    if isinstance(node, ast.Compare) and len(node.ops) == 1 \
            and type(node.ops[0]) in _R_COMPARE:
        level = _R_COMPARE_PRECEDENCE
        return (_r_operand(node.left, level, tighter=False) + f" {_R_COMPARE[type(node.ops[0])]} "
                + _r_operand(node.comparators[0], level, tighter=True)), level
    if isinstance(node, ast.Tuple | ast.List):
        return "c(" + ", ".join(_r_deparse(e)[0] for e in node.elts) + ")", _R_ATOM
    raise ValueError(f"no R spelling for {type(node).__name__}")


def _r_operand(node, level, tighter):
    """An operand of an operator of precedence `level`, in parentheses where R needs
    them (`tighter`: the side where an operand of equal precedence needs them too)."""
    text, inner = _r_deparse(node)
    if inner < level or (tighter and inner == level):
        return f"({text})"
    return text


def r_expression(code):
    """R's spelling (deparse) of one factor's code as patsy normalizes it:
    ``ns(Days, df=3)`` -> ``ns(Days, df = 3)``, ``exp(Time / 10)`` -> ``exp(Time/10)``,
    ``I(x ** 2)`` -> ``I(x^2)``; code that is not a Python expression unchanged.

    Examples
    --------
    >>> r_expression("ns(Days, df=3, intercept=True)"), r_expression("I(Time ^ -1)")
    ('ns(Days, df = 3, intercept = TRUE)', 'I(Time^-1)')
    """
    try:
        return _r_deparse(ast.parse(caret_as_power(code.strip())[0], mode="eval").body)[0]
    except (SyntaxError, ValueError, RecursionError):
        return code


_PLAIN_NAME = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")
_CODED_LEVEL = re.compile(r"^(?P<factor>.*)\[(?:T\.)?(?P<level>[^\[\]]*)\]$")


def r_column_name(name):
    """R's name (``model.matrix``'s) of a fixed-effects column patsy names `name`:
    ``(Intercept)``, a factor's treatment column ``SexFemale`` for ``Sex[T.Female]``
    (or ``Sex[Female]``, a factor coded in full), the k-th column of a function of
    several columns ``poly(x, 2)1`` for ``poly(x, 2)[0]`` (R counts from 1),
    interactions part by part (``Time:SexFemale``); anything else as it is.

    Examples
    --------
    >>> r_column_name("Intercept"), r_column_name("Time:Sex[T.Female]")
    ('(Intercept)', 'Time:SexFemale')
    """
    if name in ("Intercept", "(Intercept)"):
        return "(Intercept)"
    parts = []
    for part in name.split(":"):
        if _PLAIN_NAME.match(part):
            parts.append(part)
            continue
        m = _CODED_LEVEL.match(part)
        if m is None:
            parts.append(r_expression(part))
            continue
        factor, level = r_expression(m.group("factor")), m.group("level")
        categorical = factor.startswith(("C(", "factor("))
        if factor.endswith(")") and not categorical and level.isdigit() and "[T." not in part:
            level = str(int(level) + 1)         # (a column of poly(), ns(), ...)
        parts.append(factor + level)
    return ":".join(parts)
