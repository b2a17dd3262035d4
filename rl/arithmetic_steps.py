"""The equations of a solution step and whether their arithmetic is right (the process reward's rule).

An equation is a whole arithmetic expression, an `=`, and a number: `16 - 3 - 4 = 9`, `6*60 + 4*40 = $520`,
`$204 + $160 + $330 = $694`, `(2 + 3) x 4 = 20`, `$6 \\cdot 6 = 36$`, `1,000 + 250 = 1,250`, and GSM8K's
calculator notes `<<16-3-4=9>>`. The expression is read back from the `=` as far as it is made of numbers,
operators (+ - * / × ÷ \\cdot \\times \\div, and x between spaced numbers), parentheses, `$` and spaces, and
is scored only if that is all of it: `60g * 4/5 = 240g/5` (a unit inside), `2x - 4 = 6` (a variable),
`x = 3 + 4` (the number is followed by more expression) and a bare `x = 5` (no operator) are not scored,
rather than scored on a fragment such as `4/5 = 240` or `-4 = 6`.

A stated result (a mixed number `3 1/2` and a percentage `50%` read as such) is right if it equals the
exact value, or if it has decimals and is the exact value rounded to them (`10/3 = 3.33`), or cut off after
them where `...` says so. Evaluation is exact (fractions) through Python's `ast` over + - * / and unary
minus only: no sympy in the training process, and no power operator (no huge numbers from a short text).
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction

_LATEX_OPS = (("\\cdots", " … "), ("\\cdot", " * "), ("\\times", " * "), ("\\div", " / "), ("×", "*"), ("÷", "/"))
_TIMES_X = re.compile(r"(?<=[\d)]) x (?=[$(]?\d)")  # "3 x 4"; "2x" is a variable, not a product
# The characters an expression may be made of, read backwards from its `=`.
_EXPR_CHARS = frozenset("0123456789.,+-*/()$ ")
_RESULT = re.compile(r"\s*\$?\s*(-?(?:\d{1,3}(?:,\d{3})+(?!\d|,\d)|\d+(?:\.\d+)?))")
# After the result: more expression ("= 3 + 4", "= 144^2", "= 123(1001)", "= 4!", "= 34x", "= 240g/5",
# "= 0.\\overline{3}"), a ratio ("= 18:30") or a remainder ("= 8 \\text{ R}4"), so not a number.
_MORE_EXPRESSION = re.compile(r"\s*[-+*/]|[\^_{\\(!]|\.\\|[a-zA-Z]|:|\s*\\text\{\s*R|\s*R\s*\d|\$?\s*remainder")
# A LaTeX command that takes what follows as its operand ("\\frac 12", "\\sqrt 4"): not a whole expression.
# Relations (\\le, \\ge, \\approx, ...) before an expression are boundaries, like "=".
_COMMAND = re.compile(r"\\(?:[dt]?frac|sqrt|binom|log|ln|sin|cos|tan|exp|lfloor|lceil|pi)$")
_MIXED = re.compile(r" (\d+)/(\d+)(?![\d/])")  # "3 1/2"
_PERCENT = re.compile(r"\s*(?:%|\\%)")
_TRUNCATED = re.compile(r"\s*(?:\.\.\.|\\l?dots|…)")  # "= 419.999844..."
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NUMBER_OR_OP = re.compile(r"\d+(?:\.\d+)?|[-+*/()]")
MAX_EXPRESSION_CHARS = 200


def _value(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_value(node.operand)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
        a, b = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
        return a / b  # ZeroDivisionError: the caller scores the equation wrong
    raise ValueError("not arithmetic")


def _expression(text: str, eq: int) -> str | None:
    """The arithmetic expression ending just before the `=` at `eq`, or None if what precedes it is not
    one whole expression with at least one operator."""
    start = eq
    while start > 0 and text[start - 1] in _EXPR_CHARS and eq - start < MAX_EXPRESSION_CHARS:
        if text[start - 1] in ".," and text[start].isspace():
            break  # a sentence's period or a list's comma, not a decimal point or a thousands separator
        start -= 1
    k = start
    while k > 0 and text[k - 1] == " ":
        k -= 1
    prev = text[k - 1] if k > 0 else ""
    if prev and (prev in "}^_)!:" or prev.isdigit() or _COMMAND.search(text, max(0, k - 12), k)
                 or (text[start] != " " and (prev.isalnum() or prev == "\\"))):
        # it continues to the left: a factor ("\\frac{9}{2} (3)(-4)", "\\frac 12 * 2"), a unit or word run
        # into it ("60g * 4/5")
        return None
    expr = _THOUSANDS.sub("", text[start:eq].replace("$", "")).strip()
    if not expr or not (expr[0].isdigit() or expr[0] == "("):
        return None  # starts with an operator: the expression began before a word ("2x - 4")
    tokens = _NUMBER_OR_OP.findall(expr)
    if "".join(tokens) != expr.replace(" ", "") or not any(t in "+-*/" for t in tokens[1:]):
        return None  # stray characters (a list's comma), or a bare number
    return expr


def _readings(text: str, result: re.Match) -> list[tuple[Fraction, int]]:
    """The stated result's readings (value, decimals): a mixed number "3 1/2" as 7/2; a percentage "50%"
    as 1/2 or as 50 (percentages added as quantities: "45 + 21 + 28 = 94%")."""
    number = result.group(1).replace(",", "")
    value = Fraction(number)
    decimals = len(number.split(".")[1]) if "." in number else 0
    mixed = _MIXED.match(text, result.end())
    if mixed and int(mixed.group(2)) != 0:
        part = Fraction(int(mixed.group(1)), int(mixed.group(2)))
        return [(value - part if value < 0 else value + part, 0)]
    if _PERCENT.match(text, result.end()):
        return [(value / 100, decimals + 2), (value, decimals)]
    if _TRUNCATED.match(text, result.end()):
        return [(value, -decimals)]  # cut off, not rounded: within one unit of its last digit
    return [(value, decimals)]


def _matches(value: Fraction, stated: Fraction, decimals: int) -> bool:
    """The stated result is the exact value, or the value rounded to the decimals it states (negative
    `decimals`: cut off after -decimals digits, so within one unit of the last)."""
    if value == stated:
        return True
    if decimals < 0:
        return abs(value - stated) < Fraction(1, 10 ** -decimals)
    return decimals > 0 and abs(value - stated) <= Fraction(1, 2 * 10 ** decimals)


def check_equations(text: str) -> list[bool]:
    """Right/wrong for each whole equation `expression = number` in `text`, in order."""
    for latex, op in _LATEX_OPS:
        text = text.replace(latex, op)
    text = text.replace(",\\!", ",").replace("{,}", ",")  # LaTeX thousands: 90,\!000 and 90{,}000
    text = _TIMES_X.sub(" * ", text)
    verdicts = []
    for m in re.finditer(r"(?<![<>!=])=(?!=)", text):
        result = _RESULT.match(text, m.end())
        if not result or _MORE_EXPRESSION.match(text, result.end()):
            continue  # no number after the `=`, or an expression ("x = 3 + 4")
        expr = _expression(text, m.start())
        if expr is None:
            continue
        try:
            value = _value(ast.parse(expr, mode="eval").body)
        except ZeroDivisionError:
            verdicts.append(False)
            continue
        except (SyntaxError, ValueError, RecursionError):
            continue  # not arithmetic after all ("(2 + 3")
        verdicts.append(any(_matches(value, *reading) for reading in _readings(text, result)))
    return verdicts
