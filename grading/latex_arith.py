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
"""

from __future__ import annotations

import re

import sympy

_TOKEN = re.compile(r"\s*(\d+\.?\d*|\.\d+|\\[A-Za-z]+|[A-Za-z]|[-+*/^(){}\[\]])")
_COMMANDS = {"\\frac", "\\sqrt", "\\pi", "\\infty", "\\cdot", "\\times", "\\div"}
_MUL_OPS = {"\\cdot", "\\times", "*", "/", "\\div"}
_MAX_DIGITS = 10_000  # a numeric power with more digits than this is not evaluated here
_MAX_TOKENS = 400
_LETTERS = {"i": sympy.I, "e": sympy.E, "E": sympy.E}


class _Reject(Exception):
    """Input outside the subset: the caller falls back to latex2sympy2_extended."""


def parse_arith(text: str):
    """sympy expression for `text`, or None if it is outside the arithmetic subset."""
    tokens = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or len(tokens) >= _MAX_TOKENS:
            return None
        tok = m.group(1)
        if tok.startswith("\\") and tok not in _COMMANDS:
            return None
        tokens.append(tok)
        pos = m.end()
        if text[pos:].strip() == "":
            break
    if not tokens:
        return None
    parser = _Parser(tokens)
    try:
        expr = parser.expr()
        if parser.i != len(tokens):
            return None
    except (_Reject, IndexError, ZeroDivisionError, ValueError):
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

    def expr(self):
        terms = [self.term()]
        while self.peek() in ("+", "-"):
            sign = self.take()
            t = self.term()
            terms.append(-t if sign == "-" else t)
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
        return tok[0].isdigit() or tok[0] == "." or tok.isalpha() or tok in ("\\pi", "\\infty", "\\frac", "\\sqrt", "(")

    def atom(self):
        tok = self.take()
        if tok[0].isdigit() or tok[0] == ".":
            return sympy.Rational(tok)
        if tok.isalpha():
            return _LETTERS.get(tok) or sympy.Symbol(tok)
        if tok == "\\pi":
            return sympy.pi
        if tok == "\\infty":
            return sympy.oo
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
    if base.is_Number and exponent.is_Number and base not in (0, 1, -1) and abs(exponent) > 1:
        if (abs(exponent) * abs(sympy.log(abs(base), 10))).evalf(5) > _MAX_DIGITS:
            raise _Reject("power too large to evaluate")
    return sympy.Pow(base, exponent)
