"""Cheap, sympy-free normalization of final answers (the grader's fast path).

`clean` rewrites the notation a careful MATH/GSM8K grader ignores (math delimiters, `\\left`,
`\\dfrac`, `\\text{}`, spacing commands, unicode symbols, currency, degrees). `atom_key` goes on for
one answer element: it drops a leading `x =`, trailing units, thousands separators and the percent
sign (remembered), and classifies the element as a number (exact `Fraction`), a base-n numeral, a
multiple-choice letter, plain words, or LaTeX left for sympy.

Everything is regex/string work whose cost is linear in the input; nothing here evaluates or
sympifies model text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from grading.answer_extraction import balanced_group

_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u2014": "-", "\u00d7": "\\times ", "\u00b7": "\\cdot ",
    "\u22c5": "\\cdot ", "\u00f7": "\\div ", "\u03c0": "\\pi ", "\u221e": "\\infty ",
    "\u00b0": "^\\circ", "\u2264": "\\le ", "\u2265": "\\ge ", "\u2260": "\\ne ", "\u221a": "\\sqrt",
    "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2061": "", "\u00b2": "^2", "\u00b3": "^3",
}
MAX_ANSWER_CHARS = 2000  # longer answers are not normalized here (see grading.equivalence.FAST_PATH_MAX_CHARS)
# Relations, after `clean` has spelled them `<`, `>`, `\le`, `\ge`, `\ne`.
RELATION = re.compile(r"<|>|\\(?:le|ge|ne)(?![A-Za-z])")
_PY_RATIONAL = re.compile(r"\bRational\(\s*(-?\d+)\s*,\s*(-?\d+)\s*\)")
_PY_SQRT = re.compile(r"(?<!\\)\bsqrt\(([^()]*)\)")
_TEXT_COMMANDS = ("\\text", "\\textbf", "\\textit", "\\textrm", "\\textnormal", "\\mathrm", "\\mathbf",
                  "\\mathit", "\\mbox", "\\operatorname", "\\mathsf", "\\texttt", "\\boldsymbol")
_DROP = re.compile(
    r"\\(?:displaystyle|textstyle|scriptstyle|limits|nolimits|mathstrut|bigl|bigr|Bigl|Bigr|big|Big|"
    r"biggl|biggr|bigg|Bigg)(?![A-Za-z])|\\left\.|\\right\.|\\left(?![A-Za-z])|\\right(?![A-Za-z])"
)
_SPACES = re.compile(r"(?<!\\)\\[,;:! ]|\\q?quad(?![A-Za-z])|~")
# `(?<!\s)` before a leading `\s*`: a match may start only at the first space of a run, so a long
# run of spaces costs linear, not quadratic, time.
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree|(?<!\s)\s*\bdegrees?\b")
_PERCENT = re.compile(r"(?<!\s)\s*(?:\\%|%|\\percent\b|\b(?:percent|percentage|pct)\b)\s*$")
_CURRENCY = re.compile(r"\\\$|\$|\\(?:dollar|pounds|euro)\b|\b(?:USD|usd|dollars?|cents?|rs\.?|INR)\b|[€£¥₹]")
LHS = re.compile(r"^\s*\\?[A-Za-z]+(?:_(?:\{[A-Za-z0-9]+\}|[A-Za-z0-9]))?(?:\([A-Za-z]\))?\s*(?:=|\\in(?![A-Za-z]))(?!=)\s*")
# One token of a trailing unit phrase (`cm^2`, `km`, `/`, `per`). `_strip_units` walks these tokens from
# the end by hand: the old single pattern `(?:[A-Za-z]+\.?...\s*)+$` backtracked exponentially on a
# long run of letters (issue #14: `\boxed{the total number of students ... is 19}` never returned).
_UNIT_TOKEN = re.compile(r"[A-Za-z]+\.?(?:\^\s*\{?[23]\}?)?|\s+|/|[^A-Za-z\s/]+")
_ONE_LETTER_UNITS = {"m", "g", "s", "h", "L"}
_INFINITY = re.compile(r"^([+-]?)\s*(?:\\infty|infinity|inf)$", re.IGNORECASE)
_MATH_WORDS = {
    "sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "sqrt", "pi", "infty", "inf",
    "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "det", "gcd", "lcm", "mod", "max", "min",
    "frac", "cdot", "times", "and", "or", "i", "e",
}
_INT = r"\d+"
_DEC = r"(?:[1-9]\d{0,2}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+"
_NUM_PATTERNS = [
    ("frac", re.compile(rf"^(-?)\\frac\{{\s*(-?{_INT})\s*\}}\{{\s*(-?{_INT})\s*\}}$")),
    ("mixed", re.compile(rf"^(-?)({_INT})\s*\\frac\{{({_INT})\}}\{{({_INT})\}}$")),
    ("mixed_slash", re.compile(rf"^(-?)({_INT})\s+({_INT})/({_INT})$")),
    ("slash", re.compile(rf"^(-?)({_DEC})\s*/\s*({_DEC})$")),
    ("sci", re.compile(rf"^(-?)({_DEC})\s*(?:\\times|\\cdot|\*|x)\s*10\s*\^\s*\{{?\s*([+-]?{_INT})\s*\}}?$")),
    ("pow10", re.compile(rf"^(-?)10\s*\^\s*\{{?\s*([+-]?{_INT})\s*\}}?$")),
    ("e_notation", re.compile(rf"^(-?)({_DEC})[eE]([+-]?{_INT})$")),
    ("repeating", re.compile(r"^(-?)(\d*)\.(\d*)\\overline\{(\d+)\}$")),
    ("decimal", re.compile(rf"^([-+]?)({_DEC})$")),
    ("space_thousands", re.compile(r"^(-?)(\d{1,3}(?: \d{3})+(?:\.\d+)?)$")),
    # a decimal comma where neither a thousands comma nor a list fits: `0,111`, `1000,99`
    ("decimal_comma", re.compile(r"^(-?)((?:0|[1-9]\d{3,}),\d+)$")),
]
_RATIO = re.compile(r"^\d+\s*:\s*\d+$")
_MAX_EXPONENT = 400  # larger powers of ten go to sympy, where the worker's time limit applies
_BASE = re.compile(r"^([0-9A-Za-z]+)_\{?\(?(\d{1,2})\)?\}?$")
_CHOICE = re.compile(r"^\(?([A-Ea-e])\)$|^\(([A-E])\)?$|^([A-E])$")
_WORDS = re.compile(r"^[A-Za-z][A-Za-z' -]*[A-Za-z]$")
_SMALL = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i >= 2}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}


@dataclass(frozen=True)
class Atom:
    """One normalized answer element.

    kind: "number" (value: Fraction), "base" (value: (digits, base or None)), "choice" (value: letter),
    "words" (value: lower-cased text), "latex" (value: the cleaned LaTeX, for sympy).
    percent: the element was written with a percent sign.
    """

    kind: str
    value: object
    text: str
    percent: bool = False


def unwrap_commands(s: str, commands: tuple[str, ...]) -> str:
    """Replace `\\cmd{content}` by `content` for each command (balanced braces)."""
    for cmd in commands:
        start = s.find(cmd + "{")
        while start >= 0:
            brace = start + len(cmd)
            content = balanced_group(s, brace)
            if content is None:
                break
            s = s[:start] + content + s[brace + len(content) + 2 :]
            start = s.find(cmd + "{", start)
    return s


def _brace_single_args(s: str) -> str:
    """`\\frac12` -> `\\frac{1}{2}`, `\\sqrt2` -> `\\sqrt{2}` (malformed but common)."""
    s = re.sub(r"\\frac\s*([0-9a-zA-Z])\s*([0-9a-zA-Z])", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\s*(\{[^{}]*\})\s*([0-9a-zA-Z])(?![0-9a-zA-Z])", r"\\frac\1{\2}", s)
    s = re.sub(r"\\frac\s*([0-9a-zA-Z])\s*(\{)", r"\\frac{\1}\2", s)
    s = re.sub(r"\\frac\s*(\\[A-Za-z]+)\s*([0-9a-zA-Z])", r"\\frac{\1}{\2}", s)
    return re.sub(r"\\sqrt\s*([0-9a-zA-Z])", r"\\sqrt{\1}", s)


def clean(s: str) -> str:
    """Notation-level cleanup of a whole answer (keeps its structure: brackets, commas, matrices)."""
    s = s.strip()
    for k, v in _UNICODE.items():
        if k in s:
            s = s.replace(k, v)
    s = unwrap_commands(s, ("\\boxed", "\\fbox"))
    s = unwrap_commands(s, _TEXT_COMMANDS)
    s = s.replace("\\$", "")
    s = re.sub(r"\\[()\[\]]", " ", s).replace("$", " ")
    s = _DROP.sub("", s)
    # thousands separators written `1\,000`, `1,\!000`, `11,\! 111` (not `32, 349`: a list)
    s = re.sub(r"(?<=\d)(?:\\,|,\\!|\\!)[ ]?(?=\d{3}(?!\d))", "", s).replace("{,}", "")
    s = _SPACES.sub(" ", s)
    s = re.sub(r"\\[dtc]frac(?![A-Za-z])", r"\\frac", s)
    s = re.sub(r"\\[dt]binom(?![A-Za-z])", r"\\binom", s)
    s = s.replace("\\lbrace", "\\{").replace("\\rbrace", "\\}").replace("\\lbrack", "[").replace("\\rbrack", "]")
    s = re.sub(r"\\(?:le|leq|leqslant)(?![A-Za-z])|<=", "\\\\le ", s)
    s = re.sub(r"\\(?:ge|geq|geqslant)(?![A-Za-z])|>=", "\\\\ge ", s)
    s = re.sub(r"\\(?:ne|neq)(?![A-Za-z])|!=", "\\\\ne ", s)
    s = re.sub(r"\\lt(?![A-Za-z])", "<", s)
    s = re.sub(r"\\gt(?![A-Za-z])", ">", s)
    s = _python_syntax(s)
    s = _bare_brace_set(s.strip())
    s = _brace_single_args(s)
    s = re.sub(r"\s+", " ", s).strip()
    return s.rstrip(".;: ").strip()


def _python_syntax(s: str) -> str:
    """A program's printed value in LaTeX: `Rational(3, 2)` -> `\\frac{3}{2}`, `sqrt(2)` -> `\\sqrt{2}`,
    `x**2` -> `x^2`, `pi` -> `\\pi`."""
    if "Rational(" in s:
        s = _PY_RATIONAL.sub(r"\\frac{\1}{\2}", s)
    if "sqrt(" in s:
        s = _PY_SQRT.sub(r"\\sqrt{\1}", s)
    if "**" in s:
        s = s.replace("**", "^")
    return re.sub(r"(?<![\\A-Za-z])pi(?![A-Za-z])", r"\\pi ", s) if "pi" in s else s


def _bare_brace_set(s: str) -> str:
    """`{-2021, 2021}` (braces as a set, math delimiters already gone) -> `\\{-2021, 2021\\}`."""
    if s.startswith("{") and s.endswith("}") and "," in s and balanced_group(s, 0) == s[1:-1]:
        return "\\{" + s[1:-1] + "\\}"
    return s


def atom_key(raw: str) -> Atom:
    """Normalize one answer element and classify it (see `Atom`)."""
    if len(raw) > MAX_ANSWER_CHARS:
        return Atom("latex", raw, raw)
    s = clean(raw)
    lhs = LHS.match(s)
    if lhs and s[lhs.end() :].strip():
        s = s[lhs.end() :].strip()
    s = _CURRENCY.sub(" ", s).strip()
    percent = bool(_PERCENT.search(s))
    if percent:
        s = _PERCENT.sub("", s).strip()
    s = _DEGREES.sub("", s).strip()
    s = _strip_units(s)
    s = s.rstrip(".").strip()
    if s.startswith("+"):
        s = s[1:].strip()
    infinity = _INFINITY.match(s)
    if infinity:
        return Atom("latex", infinity.group(1).replace("+", "") + "\\infty", s, percent)

    if _RATIO.match(s):  # `12:00`, `7:32`: a time or a ratio, compared as written (never as 12/00)
        return Atom("ratio", re.sub(r"\s+", "", s).lstrip("0") or "0", s, percent)
    value = parse_number(s)
    if value is not None:
        return Atom("number", value, s, percent)
    word_value = parse_number_words(s)
    if word_value is not None:
        return Atom("number", Fraction(word_value), s, percent)
    base = _BASE.match(s)
    if base and _valid_in_base(base.group(1), int(base.group(2))):
        return Atom("base", (base.group(1).upper().lstrip("0") or "0", int(base.group(2))), s, percent)
    choice = _CHOICE.match(s)
    if choice:
        return Atom("choice", next(g for g in choice.groups() if g).upper(), s, percent)
    if _WORDS.match(s) and any(len(w) > 1 and w.lower() not in _MATH_WORDS for w in re.split(r"[ -]", s)):
        return Atom("words", " ".join(s.lower().replace("-", " ").split()), s, percent)
    return Atom("latex", re.sub(r"\s+", " ", s), s, percent)


def _strip_units(s: str) -> str:
    """`12 cm^2` -> `12`, `5\\sqrt{2} inches` -> `5\\sqrt{2}`: unit words after something numeric."""
    tokens = [(m.start(), m.group(0)) for m in _UNIT_TOKEN.finditer(s)]
    k = len(tokens)
    while k > 0 and (tokens[k - 1][1][0].isalpha() or tokens[k - 1][1].isspace() or tokens[k - 1][1] == "/"):
        k -= 1
    while k < len(tokens) and not tokens[k][1][0].isalpha():  # the phrase starts with a word
        k += 1
    if k == len(tokens) or tokens[k][0] == 0 or s[tokens[k][0] - 1] == "\\":
        return s
    start = tokens[k][0]
    head = s[:start].rstrip()
    if not head or head[-1] not in "0123456789}" or not re.search(r"\d", head):
        return s
    words = re.findall(r"[A-Za-z]+", s[start:])
    if any(w.lower() in _MATH_WORDS for w in words):
        return s
    if len(words) == 1 and len(words[0]) == 1 and not (
        words[0] in _ONE_LETTER_UNITS and s[start - 1].isspace()
    ):
        return s
    return head


def _to_fraction(dec: str) -> Fraction:
    return Fraction(dec.replace(",", ""))


def parse_number(s: str) -> Fraction | None:
    """An exact rational for plain numerals (ints, decimals, a/b, \\frac{a}{b}, mixed numbers,
    scientific notation, repeating decimals); None for anything else."""
    s = s.strip()
    if not s or len(s) > 400:
        return None
    for name, pattern in _NUM_PATTERNS:
        m = pattern.match(s)
        if not m:
            continue
        g = m.groups()
        sign = -1 if g[0] == "-" else 1
        try:
            if name == "frac" or name == "slash":
                den = _to_fraction(g[2])
                return None if den == 0 else sign * _to_fraction(g[1]) / den
            if name in ("mixed", "mixed_slash"):
                whole, num, den = int(g[1]), int(g[2]), int(g[3])
                if den == 0 or num >= den:
                    return None
                return sign * (whole + Fraction(num, den))
            if name in ("sci", "e_notation"):
                exp = int(g[2])
                return None if abs(exp) > _MAX_EXPONENT else sign * _to_fraction(g[1]) * Fraction(10) ** exp
            if name == "pow10":
                exp = int(g[1])
                return None if abs(exp) > _MAX_EXPONENT else sign * Fraction(10) ** exp
            if name == "repeating":
                whole, fixed, rep = g[1] or "0", g[2], g[3]
                base = Fraction(int(whole + fixed), 10 ** len(fixed))
                return sign * (base + Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(fixed)))
            if name == "space_thousands":
                return sign * Fraction(g[1].replace(" ", ""))
            if name == "decimal_comma":
                return sign * Fraction(g[1].replace(",", "."))
            return sign * _to_fraction(g[1])
        except (ValueError, ZeroDivisionError):  # e.g. more digits than int() accepts
            return None
    return None


def parse_number_words(s: str) -> int | None:
    """`twenty-one` -> 21, `one hundred five` -> 105; None unless every word is a number word."""
    words = s.lower().replace("-", " ").replace(" and ", " ").split()
    if not words or len(words) > 12:
        return None
    total, current = 0, 0
    for w in words:
        if w in _SMALL:
            current += _SMALL[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w == "hundred":
            current = max(current, 1) * 100
        elif w in _SCALES:
            total += max(current, 1) * _SCALES[w]
            current = 0
        else:
            return None
    return total + current


def _valid_in_base(digits: str, base: int) -> bool:
    if not 2 <= base <= 36:
        return False
    try:
        int(digits, base)
    except ValueError:
        return False
    return True
