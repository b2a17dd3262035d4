"""The grader's slow path: LaTeX -> sympy and an exact-as-possible equality test (paper §4.1 rewards).

Parsing uses grading.latex_arith for plain arithmetic, relations, intervals, subscripts and sums
(`parse_structured`) and latex2sympy2_extended (an ANTLR grammar) for everything else; both build sympy objects directly, nothing is `eval`ed or `sympify`ed from
model text. A drift between the ANTLR runtime and the generated
parser can make every parse fail silently, so `self_test()` checks a few known parses and raises;
grader workers run it before they accept work.

Equality:
- constants: `a - b` evaluated to 40 significant digits with sympy's adaptive precision; equal only
  when that difference is zero (see `_is_zero_at`) — a rounded decimal (1.414 vs \\sqrt2) or a huge
  number plus one is never equal; decimals are read as exact rationals (0.1 is 1/10);
- expressions with variables: `expand(a - b) == 0`, else evaluation at three random rational
  points (a polynomial identity that holds at random points holds everywhere with probability 1);
- equations: the same as comparing `lhs - rhs` up to a constant factor; `x = 3` vs `3` compares
  the side that is not the lone variable;
- matrices elementwise; finite sets unordered; intervals by ends and open/closed flags; a relation
  (or chain) in one variable as the interval it describes — read off directly when every link is
  linear in that variable (`-x > -1` is x < 1), else by sympy's `as_set`;
- sums, products, integrals, limits and derivatives only when structurally identical: they are never
  evaluated, numerically or symbolically (a Euler-Maclaurin evaluation of `\\sum_{k=0}^{n-1} F_k` took
  seconds and proves nothing about a symbolic sum); a miss there is possible, a false accept is not.
"""

from __future__ import annotations

import itertools
import logging
import random
from functools import lru_cache
from importlib import metadata

import sympy
from latex2sympy2_extended import latex2sympy
from latex2sympy2_extended.latex2sympy2 import ConversionConfig
from sympy.core.evalf import PrecisionExhausted

from grading.latex_arith import parse_arith, parse_structured

log = logging.getLogger(__name__)

_CONVERSION = ConversionConfig(interpret_as_mixed_fractions=True, lowercase_symbols=False)
_DIGITS = 40
_ZERO_TOL = sympy.Float("1e-30", _DIGITS)
_POINTS = 3
_SPECIAL = {sympy.Symbol("i"): sympy.I, sympy.Symbol("e"): sympy.E, sympy.Symbol("E"): sympy.E}


@lru_cache(maxsize=4096)
def parse_latex(text: str):
    """sympy object for a cleaned LaTeX answer, or None when it does not parse.

    What `grading.latex_arith.parse_structured` reads goes through it (microseconds); the rest through
    latex2sympy2_extended (milliseconds, and 50-800 ms the first time a process meets a construct)."""
    expr = parse_structured(text)
    return expr if expr is not None else _latex2sympy(text)


def _latex2sympy(text: str):
    try:
        expr = latex2sympy(text, normalization_config=None, conversion_config=_CONVERSION)
    except Exception as e:  # the ANTLR error listener raises bare Exception on syntax errors
        log.debug("latex2sympy could not parse %r: %s", text[:200], e)
        return None
    if not isinstance(expr, (sympy.Basic, sympy.MatrixBase)):
        return None
    return _canonical(expr)


def _canonical(expr):
    """Exact rationals for decimals; the symbols i and e as the imaginary unit and Euler's number."""
    if isinstance(expr, sympy.MatrixBase):
        return expr.applyfunc(_canonical)
    floats = expr.atoms(sympy.Float)
    specials = expr.free_symbols & set(_SPECIAL)
    if not floats and not specials:
        return expr
    mapping = {f: sympy.Rational(str(f)) for f in floats}
    mapping.update({s: _SPECIAL[s] for s in specials})
    return expr.xreplace(mapping)


def sympy_equal(pred: str, gold: str, scale=1) -> bool:
    """True if `pred` parses to `scale * gold` (see the module docstring for what "equal" means)."""
    a, b = parse_latex(pred), parse_latex(gold)
    if a is None or b is None:
        return False
    if scale != 1:
        if isinstance(b, sympy.MatrixBase) or not isinstance(b, sympy.Expr):
            return False
        b = b * sympy.Rational(scale.numerator, scale.denominator)
    return objects_equal(a, b)


_UNDEFINED = (sympy.zoo, sympy.nan)
_UNEVALUATED = (sympy.Sum, sympy.Product, sympy.Integral, sympy.Limit, sympy.Derivative)


def _undefined(x) -> bool:
    """zoo (1/0, or `1:00` read as 1/00) and nan are equal to nothing, themselves included."""
    return isinstance(x, sympy.Basic) and not isinstance(x, sympy.MatrixBase) and x.has(*_UNDEFINED)


def _as_set(x):
    """A relation or a conjunction of relations in one variable as the set it describes
    (`-793 < a < 10` -> (-793, 10)); `x \\in S` -> S; anything else unchanged."""
    if isinstance(x, sympy.Eq) and isinstance(x.rhs, sympy.Set):
        return x.rhs
    if isinstance(x, (sympy.And, sympy.Or)) or (isinstance(x, sympy.Rel) and not isinstance(x, (sympy.Eq, sympy.Ne))):
        if len(x.free_symbols) == 1:
            linear = _linear_interval(x)
            if linear is not None:
                return linear
            try:
                return x.as_set()
            except (NotImplementedError, TypeError, ValueError):
                return x
    return x


def _linear_interval(x):
    """The set a relation or a conjunction of relations in one variable v describes when every link
    is linear in v (`-793 < a < 10`, `-x \\ge -1`) or in |v| (`1 \\le |z| \\le 2`) with a non-zero
    numeric coefficient, read off directly; None otherwise (sympy's `as_set`, about 80 ms each and
    400 ms for the first, decides). Only a bounded-below-by-above range (lo < hi) is read off here."""
    links = x.args if isinstance(x, sympy.And) else (x,)
    if not all(isinstance(r, sympy.Rel) and not isinstance(r, (sympy.Eq, sympy.Ne)) for r in links):
        return None
    (var,) = x.free_symbols
    if not x.has(sympy.Abs):
        bounds = _linear_bounds(links, var)
        return None if bounds is None else sympy.Interval(bounds[0], bounds[2], bounds[1], bounds[3])
    if x.atoms(sympy.Abs) != {sympy.Abs(var)}:
        return None
    t = sympy.Dummy("t")
    links = [r.xreplace({sympy.Abs(var): t}) for r in links]
    if any(var in r.free_symbols for r in links):
        return None  # v also outside |v|
    bounds = _linear_bounds(links, t)
    if bounds is None:
        return None
    lo, lo_open, hi, hi_open = bounds
    if not bool(hi > 0):
        return None  # empty, or only |v| = 0
    if bool(lo < 0):
        lo, lo_open = sympy.Integer(0), False
    if lo == 0 and not lo_open:  # |v| <= hi: one interval around 0
        return sympy.Interval(-hi, hi, hi_open, hi_open)
    return sympy.Union(sympy.Interval(-hi, -lo, hi_open, lo_open), sympy.Interval(lo, hi, lo_open, hi_open))


def _linear_bounds(links, var):
    """(lo, lo_open, hi, hi_open) for `var` from relations each linear in it, or None."""
    lo, lo_open, hi, hi_open = -sympy.oo, True, sympy.oo, True
    for r in links:
        kind, d = _relation_key(r)  # r is `d < 0` or `d <= 0`
        if d.has(sympy.oo, -sympy.oo, *_UNDEFINED) or not d.is_polynomial(var):
            return None
        d = sympy.expand(d)
        a, b = d.coeff(var, 1), d.coeff(var, 0)
        if a.free_symbols or b.free_symbols or sympy.expand(a * var + b - d) != 0 or not (a.is_real and b.is_real):
            return None
        if not (a.is_positive or a.is_negative) or not (b.is_comparable or b == 0):
            return None
        bound, strict = -b / a, kind == "<"
        if a.is_positive:  # var < bound (or <=)
            if bool(bound < hi):
                hi, hi_open = bound, strict
            elif bound == hi:
                hi_open = hi_open or strict
        elif bool(bound > lo):  # var > bound (or >=)
            lo, lo_open = bound, strict
        elif bound == lo:
            lo_open = lo_open or strict
    return (lo, lo_open, hi, hi_open) if bool(lo < hi) else None


def _relation_key(r):
    """(kind, d) with the relation equivalent to `d < 0` (kind "<"), `d <= 0` ("<=") or `d != 0`."""
    if isinstance(r, (sympy.StrictLessThan, sympy.StrictGreaterThan)):
        return "<", (r.lhs - r.rhs) if isinstance(r, sympy.StrictLessThan) else (r.rhs - r.lhs)
    if isinstance(r, (sympy.LessThan, sympy.GreaterThan)):
        return "<=", (r.lhs - r.rhs) if isinstance(r, sympy.LessThan) else (r.rhs - r.lhs)
    return "!=", r.lhs - r.rhs


def _relations_equal(a, b) -> bool:
    """`5 \\ge x` == `x \\le 5`, `-x > -1` == `x < 1`: same kind, sides' differences equal up to a
    positive constant factor (any non-zero factor for `\\ne`)."""
    ka, da = _relation_key(a)
    kb, db = _relation_key(b)
    if ka != kb:
        return False
    if expressions_equal(da, db) or (ka == "!=" and expressions_equal(da, -db)):
        return True
    ratio = _constant_ratio(da, db)
    return bool(ratio is not None and (ka == "!=" or ratio.is_positive))


def objects_equal(a, b) -> bool:
    if _undefined(a) or _undefined(b):
        return False
    a, b = _as_set(a), _as_set(b)
    if isinstance(a, sympy.Rel) and isinstance(b, sympy.Rel) and not isinstance(a, sympy.Eq) \
            and not isinstance(b, sympy.Eq):
        return _relations_equal(a, b)
    if isinstance(a, (sympy.And, sympy.Or)) or isinstance(b, (sympy.And, sympy.Or)):
        return bool(a == b)
    if isinstance(a, sympy.MatrixBase) or isinstance(b, sympy.MatrixBase):
        if not (isinstance(a, sympy.MatrixBase) and isinstance(b, sympy.MatrixBase)) or a.shape != b.shape:
            return False
        return all(objects_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, sympy.Eq) or isinstance(b, sympy.Eq):
        return _equations_equal(a, b)
    if isinstance(a, sympy.Set) or isinstance(b, sympy.Set):
        return _sets_equal(a, b)
    if isinstance(a, sympy.Expr) and isinstance(b, sympy.Expr):
        return expressions_equal(a, b)
    return a == b


def _equations_equal(a, b) -> bool:
    if isinstance(a, sympy.Eq) and isinstance(b, sympy.Eq):
        da, db = a.lhs - a.rhs, b.lhs - b.rhs
        if expressions_equal(da, db) or expressions_equal(da, -db):
            return True
        return _constant_ratio(da, db) is not None
    eq, other = (a, b) if isinstance(a, sympy.Eq) else (b, a)
    if not isinstance(other, sympy.Expr):
        return False
    if isinstance(eq.lhs, sympy.Symbol):
        return expressions_equal(eq.rhs, other)
    if isinstance(eq.rhs, sympy.Symbol):
        return expressions_equal(eq.lhs, other)
    return False


def _constant_ratio(da, db):
    """da / db when it is a non-zero finite constant, else None. Rational functions: `cancel` puts the
    ratio in lowest terms, which is a constant exactly when the ratio is (no `simplify`, which took
    100-250 ms on two plane equations); other expressions: `simplify`. Never for sums, integrals etc."""
    if da.has(*_UNEVALUATED) or db.has(*_UNEVALUATED) or db == 0:
        return None
    symbols = da.free_symbols | db.free_symbols
    if da.is_rational_function(*symbols) and db.is_rational_function(*symbols):
        ratio = sympy.cancel(da / db)
    else:
        ratio = sympy.simplify(da / db)
    return ratio if ratio.is_number and ratio != 0 and ratio.is_finite is True else None


def _sets_equal(a, b) -> bool:
    if not (isinstance(a, sympy.Set) and isinstance(b, sympy.Set)):
        return False
    if isinstance(a, sympy.FiniteSet) and isinstance(b, sympy.FiniteSet):
        rest = list(b.args)
        if len(rest) != len(a.args):
            return False
        for x in a.args:
            j = next((k for k, y in enumerate(rest) if objects_equal(x, y)), None)
            if j is None:
                return False
            del rest[j]
        return True
    if isinstance(a, sympy.Union) and isinstance(b, sympy.Union):
        return len(a.args) == len(b.args) and all(any(_sets_equal(x, y) for y in b.args) for x in a.args)
    if isinstance(a, sympy.Interval) and isinstance(b, sympy.Interval):
        return (a.left_open, a.right_open) == (b.left_open, b.right_open) and \
            expressions_equal(a.start, b.start) and expressions_equal(a.end, b.end)
    return bool(a == b)


def expressions_equal(a: sympy.Expr, b: sympy.Expr) -> bool:
    if a.has(*_UNDEFINED) or b.has(*_UNDEFINED):
        return False
    if a == b:
        return True
    if a.has(*_UNEVALUATED) or b.has(*_UNEVALUATED):  # never evaluated (see the module docstring)
        return _rebuilt(a) == _rebuilt(b)
    if a.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan) or b.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan):
        return False  # equal infinities were caught by `a == b`
    diff = a - b
    symbols = sorted(diff.free_symbols, key=str)
    if not symbols:
        return _is_zero_at(diff, {}) is True
    if sympy.expand(diff) == 0:
        return True
    rng = random.Random(0)
    checked = 0
    for _ in range(_POINTS * 3):
        point = {s: sympy.Rational(rng.randint(-1000, 1000), rng.randint(101, 997)) for s in symbols}
        verdict = _is_zero_at(diff, point)
        if verdict is False:
            return False
        checked += verdict is True
        if checked == _POINTS:
            return True
    return sympy.simplify(diff) == 0


def _rebuilt(e):
    """`e` built again bottom-up with sympy's automatic evaluation, which puts the unevaluated products
    latex2sympy2_extended leaves (`-1*1` in `n - 1`) in canonical form; sums, integrals etc. are not
    computed by their constructors, so this only normalizes their structure."""
    if not e.args or not isinstance(e, sympy.Basic):
        return e
    return e.func(*(_rebuilt(x) for x in e.args))


def _is_zero_at(diff: sympy.Expr, point: dict) -> bool | None:
    """Whether `diff` is exactly zero at `point`: True, False, or None where it is undefined.

    `evalf(strict=True)` either returns the value to full relative precision — then a non-zero
    value is certainly non-zero, however small or however large the terms (10^{10^{10}}+1 is not
    10^{10^{10}}) — or raises PrecisionExhausted, which is what exact cancellation to zero does;
    then the loosely evaluated value must also be negligible next to 1.
    """
    subs = point or None
    try:
        value = diff.evalf(_DIGITS, subs=subs, strict=True)
        exhausted = False
    except PrecisionExhausted:
        value = diff.evalf(_DIGITS, subs=subs)
        exhausted = True
    if not value.is_number or value.free_symbols or value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        return None
    if not exhausted:
        return bool(value == 0)
    return bool(abs(value) <= _ZERO_TOL)


SELF_TEST_CASES = [
    ("\\frac{1}{2}", sympy.Rational(1, 2)),
    ("\\sqrt{8}", 2 * sympy.sqrt(2)),
    ("2^{10}", sympy.Integer(1024)),
    ("x^2+2x+1", (sympy.Symbol("x") + 1) ** 2),
    ("\\frac{\\pi}{3}", sympy.pi / 3),
    ("3+4i", 3 + 4 * sympy.I),
]


def self_test() -> None:
    """Raise RuntimeError if LaTeX parsing does not give the known answers (ANTLR/sympy drift)."""
    for (text, expected), parser in itertools.product(SELF_TEST_CASES, (_latex2sympy, parse_arith)):
        got = parser(text)
        if got is None or not objects_equal(got, expected):
            versions = {p: _version(metadata, p) for p in ("latex2sympy2_extended", "antlr4-python3-runtime", "sympy")}
            raise RuntimeError(
                f"grader self-test failed: {text!r} parsed as {got!r}, expected {expected!r}; "
                f"LaTeX parsing is broken for {versions} (a version drift between the ANTLR runtime "
                "and latex2sympy2_extended's generated parser?)"
            )


def _version(metadata, package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "missing"
