"""A strict parser for the arithmetic subset of LaTeX answers, building sympy objects directly.

Most non-trivial final answers are arithmetic over numbers, letters, `\\pi`, `\\frac`, `\\sqrt` and
powers (`2\\sqrt{2}`, `\\frac{\\pi}{6}`, `x^2+2x+1`, `3+4i`). latex2sympy2_extended parses them
through a generic ANTLR grammar at about 10 ms each; this recursive-descent parser does it in tens of
microseconds. It accepts only what it fully understands and returns None for anything else
(functions, subscripts, factorials, relations, commas, an ambiguous `1/2x`), which then goes to
latex2sympy2_extended — so it changes speed, never meaning.

Grammar (whitespace ignored; input already normalized by grading.normalize.clean):
    expr   := term (("+" | "-") term)*
    term   := unary (("\\cdot" | "\\times" | "*" | "/" | "\\div")? unary)*   # no-op: implicit product
    unary  := ("-" | "+") unary | power
    power  := atom ("^" group)?
    atom   := number | letter | "\\pi" | "\\infty" | "\\frac" group group | "\\sqrt" ("[" expr "]")? group
              | "(" expr ")" | "{" expr "}"
    group  := "{" expr "}" | digit | letter | "\\pi"
Letters are symbols, except i (imaginary unit) and e, E (Euler's number), as latex2sympy reads them.
Powers too large to compute exactly (10^{10^{10}}) are left to latex2sympy2_extended.

`parse_structured` accepts more, each form read as latex2sympy2_extended reads it (checked by
tests/test_grader_formats.py): relations and chains of them (`x < 5`, `-793 < a < 10`, `2x+4y-3=0`,
at most one `=` and never mixed with `<`), intervals and unions of them (`(1, \\infty)`,
`[-\\frac32, -1] \\cup [1, \\frac32]`, only where the left end is below the right end), subscripted
names (`x_1`, `F_{n-k-1}`: one symbol each, as latex2sympy names them), `\\sum`/`\\prod` with
`_{k=a}^{b}` over one product term (unevaluated), and `\\sin`, `\\cos`, `\\tan`, `\\sec`, `\\csc`,
`\\cot`, `\\ln` of a parenthesized argument (a power `\\sin^2(y)` only with a digit exponent),
`|x|`, and pmatrix/bmatrix/matrix environments (sums and products of them evaluated).
latex2sympy2_extended builds its ANTLR prediction tables lazily, so in a fresh process the first
relation, interval or sum it meets costs 50-800 ms; here each costs well under a millisecond.
"""

from __future__ import annotations

import re

import sympy

_TOKEN = re.compile(r"\s*(\\(?:begin|end)\{[pb]?matrix\}|\\\\|\d+\.?\d*|\.\d+|\\[A-Za-z]+|[A-Za-z]"
                    r"|[-+*/^(){}\[\]<>=,_|&])")
_COMMANDS = {"\\frac", "\\sqrt", "\\pi", "\\infty", "\\cdot", "\\times", "\\div"}
_FUNCTIONS = {"\\sin": sympy.sin, "\\cos": sympy.cos, "\\tan": sympy.tan, "\\sec": sympy.sec,
              "\\csc": sympy.csc, "\\cot": sympy.cot, "\\ln": sympy.log}
_BIG = {"\\sum": sympy.Sum, "\\prod": sympy.Product}
_RELATIONS = {"<": sympy.StrictLessThan, ">": sympy.StrictGreaterThan, "\\le": sympy.LessThan,
              "\\ge": sympy.GreaterThan, "=": sympy.Eq}
_EXTENDED = {*_FUNCTIONS, *_BIG, "\\le", "\\ge", "\\cup"}
_STRUCTURE_TOKENS = {"<", ">", "=", ",", "_", "|", "&", "\\\\"}  # only parse_structured reads these
_MUL_OPS = {"\\cdot", "\\times", "*", "/", "\\div"}
_MAX_DIGITS = 10_000  # a numeric power with more digits than this is not evaluated here
_MAX_TOKENS = 400
_LETTERS = {"i": sympy.I, "e": sympy.E, "E": sympy.E}


class _Reject(Exception):
    """Input outside the subset: the caller falls back to latex2sympy2_extended."""


def parse_arith(text: str):
    """sympy expression for `text`, or None if it is outside the arithmetic subset."""
    return _parse(text, extended=False)


def parse_structured(text: str):
    """`parse_arith` plus relations, intervals, subscripts, sums/products and a few functions (see
    the module docstring); None for anything else."""
    return _parse(text, extended=True)


def _parse(text: str, extended: bool):
    tokens = []
    pos = 0
    text = text.strip()
    allowed = _COMMANDS | _EXTENDED if extended else _COMMANDS
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or len(tokens) >= _MAX_TOKENS:
            return None
        tok = m.group(1)
        if tok.startswith(("\\begin", "\\end")):
            if not extended:
                return None
        elif (tok.startswith("\\") and tok not in allowed and tok != "\\\\") or (
                not extended and tok in _STRUCTURE_TOKENS):
            return None
        tokens.append(tok)
        pos = m.end()
        if text[pos:].strip() == "":
            break
    if not tokens:
        return None
    parser = _Parser(tokens)
    try:
        expr = parser.top() if extended else parser.expr()
        if parser.i != len(tokens):
            return None
    except (_Reject, IndexError, ZeroDivisionError, ValueError, TypeError, AttributeError):
        return None
    return expr


class _Parser:
    def __init__(self, tokens: list[str]):
        self.t = tokens
        self.i = 0

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.t[self.i]
        if expected is not None and tok != expected:
            raise _Reject(f"expected {expected}, got {tok}")
        self.i += 1
        return tok

    # ------------------------------------------------------------ parse_structured only

    def top(self):
        """An interval or union of intervals, or a relation chain, or an expression."""
        if self.peek() in ("(", "[") and "," in self.t:
            parts = [self.interval()]
            while self.peek() == "\\cup":
                self.take()
                parts.append(self.interval())
            return parts[0] if len(parts) == 1 else sympy.Union(*parts)
        sides, ops = [self.expr()], []
        while self.peek() in _RELATIONS:
            ops.append(self.take())
            sides.append(self.expr())
        if not ops:
            return sides[0]
        if any(isinstance(x, sympy.MatrixBase) for x in sides):
            raise _Reject("a relation between matrices")
        if "=" in ops and len(ops) > 1:
            raise _Reject("`=` in a chain of relations")
        links = [_RELATIONS[op](a, b, evaluate=False) for op, a, b in zip(ops, sides, sides[1:])]
        return links[0] if len(links) == 1 else sympy.And(*links)

    def interval(self):
        """`(a, b)`, `[a, b]`, `(a, b]`, `[a, b)` with a < b decidably (else latex2sympy decides)."""
        left_open = self.take() == "("
        lo = self.expr()
        self.take(",")
        hi = self.expr()
        closer = self.take()
        if closer not in (")", "]"):
            raise _Reject(f"unexpected {closer} closing an interval")
        if not (lo.is_comparable or lo in (sympy.oo, -sympy.oo)) or not (hi.is_comparable or hi in (sympy.oo, -sympy.oo)):
            raise _Reject("interval ends that are not real numbers")
        if not bool(lo < hi):
            raise _Reject("empty or reversed interval")
        return sympy.Interval(lo, hi, left_open, closer == ")")

    def subscript(self) -> str:
        """The text of `_x` or `_{...}` as latex2sympy names a subscripted symbol (`x_1`, `F_{n-k}`)."""
        self.take("_")
        if self.peek() != "{":
            tok = self.take()
            if len(tok) != 1 or not tok.isalnum():
                raise _Reject(f"unexpected subscript {tok}")
            return tok
        self.take("{")
        inner = []
        while self.peek() != "}":
            tok = self.take()
            if not (tok.isalnum() or tok in ("+", "-")):
                raise _Reject(f"unexpected {tok} in a subscript")
            inner.append(tok)
        self.take("}")
        if not inner:
            raise _Reject("empty subscript")
        text = "".join(inner)
        return text if len(text) == 1 else "{" + text + "}"

    def big_operator(self, tok: str):
        """`\\sum_{k=a}^{b} term` (the summand: one product term, as latex2sympy reads it)."""
        self.take("_")
        self.take("{")
        var = self.take()
        if len(var) != 1 or not var.isalpha() or var in _LETTERS:
            raise _Reject(f"index {var}")
        self.take("=")
        lo = self.expr()
        self.take("}")
        self.take("^")
        hi = self.group()
        return _BIG[tok](self.term(), (sympy.Symbol(var), lo, hi))

    def matrix(self, begin: str):
        """`\\begin{pmatrix} a & b \\\\ c & d \\end{pmatrix}` (also bmatrix, matrix; never vmatrix, a
        determinant): an immutable sympy matrix, so sums and products of matrices are evaluated."""
        end = begin.replace("\\begin", "\\end")
        rows, row = [], [self.expr()]
        while self.peek() != end:
            sep = self.take()
            if sep == "&":
                row.append(self.expr())
            elif sep == "\\\\":
                rows.append(row)
                row = [] if self.peek() == end else [self.expr()]
            else:
                raise _Reject(f"unexpected {sep} in a matrix")
        self.take(end)
        if row:
            rows.append(row)
        if not rows or any(len(r) != len(rows[0]) for r in rows):
            raise _Reject("ragged matrix")
        if any(isinstance(c, sympy.MatrixBase) for r in rows for c in r):
            raise _Reject("a matrix inside a matrix")
        return sympy.ImmutableMatrix(rows)

    def function(self, tok: str):
        """`\\sin(x)`, `\\sin^2(x)`, `\\sin^{2}(x)` (a bare `\\sin x` is left to latex2sympy)."""
        power = None
        if self.peek() == "^":
            self.take()
            power = self.group()
            if not (power.is_Integer and power > 0):
                raise _Reject("a function power other than a positive integer (\\sin^{-1} is arcsin)")
        self.take("(")
        arg = self.expr()
        self.take(")")
        value = _FUNCTIONS[tok](arg)
        return value if power is None else value**power

    # ------------------------------------------------------------ arithmetic

    def expr(self):
        terms = [self.term()]
        while self.peek() in ("+", "-"):
            sign = self.take()
            t = self.term()
            terms.append(-t if sign == "-" else t)
        if any(isinstance(t, sympy.MatrixBase) for t in terms):
            total = terms[0]
            for t in terms[1:]:
                total = total + t  # a matrix plus a scalar raises TypeError: left to latex2sympy
            return total
        return sympy.Add(*terms)

    def term(self):
        value = self.unary()
        divided = implicit = False
        while True:
            tok = self.peek()
            if tok in _MUL_OPS:
                self.take()
                rhs = self.unary()
                if tok in ("/", "\\div"):
                    if isinstance(rhs, sympy.MatrixBase):
                        raise _Reject("division by a matrix")
                    divided = True
                    value = value / rhs
                else:
                    value = value * rhs
            elif tok is not None and self._starts_atom(tok):
                if tok[0].isdigit() or tok[0] == ".":
                    raise _Reject("a number after a factor (`2 3`, `x2`) is ambiguous")
                implicit = True
                value = value * self.power()
            else:
                break
            if divided and implicit:
                raise _Reject("ambiguous mix of / and an implicit product (1/2x)")
        return value

    def unary(self):
        if self.peek() == "-":
            self.take()
            return -self.unary()
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self):
        base = self.atom()
        if self.peek() == "^":
            self.take()
            return _pow(base, self.group())
        return base

    @staticmethod
    def _starts_atom(tok: str) -> bool:
        return (tok[0].isdigit() or tok[0] == "." or tok.isalpha() or tok in _FUNCTIONS or tok in _BIG
                or tok.startswith("\\begin") or tok in ("\\pi", "\\infty", "\\frac", "\\sqrt", "("))

    def atom(self):
        tok = self.take()
        if tok[0].isdigit() or tok[0] == ".":
            return sympy.Rational(tok)
        if tok.isalpha():
            if self.peek() == "_":
                return sympy.Symbol(f"{tok}_{self.subscript()}")
            return _LETTERS.get(tok) or sympy.Symbol(tok)
        if tok == "\\pi":
            return sympy.pi
        if tok == "\\infty":
            return sympy.oo
        if tok in _FUNCTIONS:
            return self.function(tok)
        if tok in _BIG:
            return self.big_operator(tok)
        if tok.startswith("\\begin"):
            return self.matrix(tok)
        if tok == "|":
            inner = self.expr()
            self.take("|")
            if isinstance(inner, sympy.MatrixBase):
                raise _Reject("|M| of a matrix")
            return sympy.Abs(inner)
        if tok == "\\frac":
            num = self.group()
            return num / self.group()
        if tok == "\\sqrt":
            if self.peek() == "[":
                self.take()
                n = self.expr()
                self.take("]")
                return sympy.root(self.group(), n)
            return sympy.sqrt(self.group())
        if tok in ("(", "{"):
            inner = self.expr()
            self.take(")" if tok == "(" else "}")
            return inner
        raise _Reject(f"unexpected {tok}")

    def group(self):
        tok = self.peek()
        if tok == "{":
            self.take()
            inner = self.expr()
            self.take("}")
            return inner
        tok = self.take()
        if tok.isdigit():
            return sympy.Integer(tok[0]) if len(tok) == 1 else _reject(tok)
        if tok.isalpha() and len(tok) == 1:
            return _LETTERS.get(tok) or sympy.Symbol(tok)
        if tok == "\\pi":
            return sympy.pi
        raise _Reject(f"unexpected {tok} as a group")


def _reject(tok: str):
    raise _Reject(f"multi-digit {tok} without braces")


def _pow(base, exponent):
    """base^exponent; an exact value of more than _MAX_DIGITS digits is not built here (sympy would
    expand it inside any sum), so such input goes to latex2sympy2_extended, which keeps it unevaluated."""
    if isinstance(base, sympy.MatrixBase) or isinstance(exponent, sympy.MatrixBase):
        raise _Reject("a power of a matrix")
    if base.is_Number and exponent.is_Number and base not in (0, 1, -1) and abs(exponent) > 1:
        if (abs(exponent) * abs(sympy.log(abs(base), 10))).evalf(5) > _MAX_DIGITS:
            raise _Reject("power too large to evaluate")
    return sympy.Pow(base, exponent)
