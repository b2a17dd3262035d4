"""Is a predicted answer the same mathematical object as the gold answer? (DeepSeekMath §4 rewards)

`compare(pred, gold, use_sympy=...)` first splits both answers into structure — matrices,
tuples/intervals (bracket kinds must match: open and closed ends differ), sets and unordered
solution lists, unions of intervals, `a \\pm b` — and compares element by element:

- fast path (`use_sympy=False`): exact rationals, base-n numerals, multiple-choice letters, words
  and identical normalized LaTeX; returns None when only sympy can decide;
- slow path (`use_sympy=True`): LaTeX parsed by latex2sympy2_extended (an ANTLR grammar; model text
  is never `eval`ed or `sympify`ed), then exact comparison: constants by 40-digit numerical
  evaluation with a relative tolerance of 1e-25 (a rounded decimal is never equal to an irrational),
  expressions by `expand` and then evaluation at random points.

The slow path can take unbounded time on hostile input; callers run it in `grading.worker_pool`.
"""

from __future__ import annotations

import logging
import re
from fractions import Fraction

from grading.normalize import LHS, RELATION, Atom, atom_key, clean

log = logging.getLogger(__name__)

FAST_PATH_MAX_CHARS = 2000  # longer answers go to a worker, where the time limit applies
_MATRIX = re.compile(r"^\\begin\{([pbvBV]?matrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}$", re.DOTALL)
_OPEN = {"(": ")", "[": "]", "\\{": "\\}"}
_SEPARATORS = re.compile(r"\s*(?:,|;|\bor\b|\band\b)\s*")
_THOUSANDS = re.compile(r"^-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$|^-?(?:0|[1-9]\d{3,}),\d+$")
_LIST_WORD = re.compile(r"\b(?:and|or)\b|\\text\s*\{\s*(?:and|or)\s*\}")
_SUBSCRIPT = re.compile(r"_(?:\{[^{}]*\}|\\?[A-Za-z0-9])")
_NOT_IN_LABEL = re.compile(r"[\d+\-*^<>=]|\\(?:le|ge|ne|infty|pi)(?![A-Za-z])")


def _sympy():
    """grading.sympy_compare, imported on first use: it imports sympy and latex2sympy2 (0.75 s), which the
    fast path in every calling process (RL's reward, the grader's caller) must not pay; only the worker
    processes of the slow path get here."""
    from grading import sympy_compare

    return sympy_compare


# ---------------------------------------------------------------- structure


def split_top_level(s: str, seps: tuple[str, ...] = (",",)) -> list[str]:
    """Split `s` on separators that are outside every (), [], {} and \\{ \\} group."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in "{}":
            depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            for sep in seps:
                if s.startswith(sep, i) and (not sep.isalpha() or _word_boundary(s, i, len(sep))):
                    parts.append(s[start:i])
                    start = i + len(sep)
                    i = start - 1
                    break
        i += 1
    parts.append(s[start:])
    return [p.strip() for p in parts]


def _word_boundary(s: str, i: int, n: int) -> bool:
    before = s[i - 1] if i > 0 else " "
    after = s[i + n] if i + n < len(s) else " "
    return not (before.isalnum() or before == "\\") and not after.isalnum()


def _enclosing(s: str) -> tuple[str, str, str] | None:
    """(open, close, inside) if `s` is one bracketed group: `(…)`, `[…)`, `\\{…\\}` etc."""
    for opener in ("\\{", "(", "["):
        if not s.startswith(opener):
            continue
        closer = "\\}" if opener == "\\{" else (")" if s.endswith(")") else "]" if s.endswith("]") else None)
        if closer is None or not s.endswith(closer):
            return None
        inside = s[len(opener) : len(s) - len(closer)]
        if _balanced(inside):
            return opener, closer, inside
    return None


def _balanced(s: str) -> bool:
    depth = 0
    for c in s:
        depth += c in "([{"
        depth -= c in ")]}"
        if depth < 0:
            return False
    return depth == 0


def structure(s: str):
    """Parse a cleaned answer into nested tuples: ("matrix", rows), ("seq", open, close, items),
    ("set", items), ("union", items), ("list", items) or ("atom", text)."""
    s = s.strip()
    if s[:1] in "([" and s[-1:] in ")]" and _MATRIX.match(s[1:-1].strip()):
        s = s[1:-1].strip()  # `\left[\begin{array}{cc}...\end{array}\right]`
    m = _MATRIX.match(s)
    if m and "\\begin{" not in m.group(2):  # a sum or product of matrices is not one matrix
        rows = [r for r in re.split(r"\\\\", m.group(2)) if r.strip() and not r.strip().startswith("\\hline")]
        return ("matrix", tuple(tuple(c.strip() for c in r.split("&")) for r in rows))
    union = split_top_level(s, ("\\cup",))
    if len(union) > 1:
        return ("union", tuple(structure(u) for u in union))
    if _THOUSANDS.match(s):
        return ("atom", s)
    value = _stated_value(s)
    if value != s:
        return structure(value)
    if RELATION.search(s) and len(split_top_level(s, (",", ";"))) == 1:
        return ("relation", s)  # `x \ge 5`, `-793 < a < 10`: decided by sympy (as sets)
    lhs = LHS.match(s)
    if lhs and s[lhs.end() :].lstrip().startswith(("(", "[", "\\{")):
        return structure(s[lhs.end() :])  # `x \in [0, 1]`, `S = \{1, 2\}`
    enclosed = _enclosing(s)
    if enclosed:
        opener, closer, inside = enclosed
        items = split_top_level(inside)
        if len(items) == 1:  # `(0;-2;6)`: semicolons as the separator
            items = split_top_level(inside, (";",))
        if opener == "\\{":
            return ("set", tuple(structure(x) for x in items if x))
        if len(items) > 1:
            return ("seq", opener, closer, tuple(structure(x) for x in items))
    items = [x for x in split_top_level(s, (",", ";", "\\text{ or }", "or", "and")) if x]
    if len(items) > 1:
        return ("list", tuple(structure(x) for x in items))
    pm = split_top_level(s, ("\\pm",))
    if len(pm) == 2 and pm[1]:
        if not pm[0]:  # `\pm 2021` is the list 2021, -2021
            return ("list", (("atom", pm[1]), ("atom", f"-({pm[1]})" if RELATION.search(pm[1]) else f"-{pm[1]}")))
        return ("list", (("atom", f"{pm[0]}+{pm[1]}"), ("atom", f"{pm[0]}-({pm[1]})")))
    return ("atom", s)


def _is_label(s: str) -> bool:
    """`x`, `(p,q)`, `|AB|`, `f(x)`, `A:B`, `V_{1}:V_{2}`, `\\frac{NO}{BO}`: names, no values."""
    bare = _SUBSCRIPT.sub("", s).strip()
    return bool(bare) and len(bare) <= 40 and any(c.isalpha() for c in bare) and not _NOT_IN_LABEL.search(bare)


def _stated_value(s: str) -> str:
    """The value an answer states: `x = 5+5+1 = 11` -> `11`, `(p,q)=(3,2)` -> `(3,2)`,
    `x \\approx 11` -> `11`, `x = \\frac13 \\approx 0.33` -> `\\frac13`. An equation whose left side is
    not a name (`7 = 11a+c`, `2x+3y=1`) is kept whole."""
    if "\\approx" in s:
        parts = split_top_level(s, ("\\approx",))
        if len(parts) > 1:
            return parts[0] if "=" in parts[0] else parts[-1]
    if "=" not in s:
        return s
    sides = split_top_level(s, ("=",))
    if len(sides) < 2 or not all(sides) or any(_LIST_WORD.search(x) or len(split_top_level(x, (",", ";"))) > 1
                                                for x in sides[:-1]):
        return s
    if len(sides) >= 3 or _is_label(sides[0]) or not (_has_letters(sides[0]) or _has_letters(sides[-1])):
        return sides[-1]  # `\\frac12 = \\frac{10}{9}`: a computation ending in its value
    return s


def _has_letters(s: str) -> bool:
    return any(c.isalpha() for c in re.sub(r"\\[A-Za-z]+", "", s))


def _atoms(node):
    if node[0] in ("atom", "relation"):
        yield node[1]
    elif node[0] == "matrix":
        yield from (cell for row in node[1] for cell in row)
    else:
        for child in node[-1]:
            yield from _atoms(child)


def gold_is_malformed(gold: str | None) -> bool:
    """Cheap check: an empty gold answer or one with unbalanced brackets cannot be graded."""
    if gold is None:
        return True
    s = clean(gold) if len(gold) <= FAST_PATH_MAX_CHARS else gold.strip()
    return not s or not _balanced(s)


def gold_parses(gold: str) -> bool:
    """Slow path: every element of the gold answer is understood (a number, a letter, words, or
    LaTeX that sympy parses). A gold answer that does not parse is skipped, never rewarded."""
    if gold_is_malformed(gold):
        return False
    for text in _atoms(structure(clean(gold))):
        atom = atom_key(text)
        if atom.kind == "latex" and _sympy().parse_latex(atom.text) is None:
            return False
    return True


def number_key(answer: str) -> Fraction | None:
    """The exact value of an answer that is one plain number without a percent sign, else None.
    Two answers with keys are equivalent exactly when their keys are equal (used to group Maj@K
    samples without comparing every pair)."""
    if len(answer) > FAST_PATH_MAX_CHARS:
        return None
    node = structure(clean(answer))
    if node[0] != "atom":
        return None
    atom = atom_key(node[1])
    return atom.value if atom.kind == "number" and not atom.percent else None


# ---------------------------------------------------------------- comparison


def compare(pred: str, gold: str, *, use_sympy: bool) -> bool | None:
    """True/False when decided; None when only the slow path could decide (`use_sympy=False`)."""
    if not use_sympy and (len(pred) > FAST_PATH_MAX_CHARS or len(gold) > FAST_PATH_MAX_CHARS):
        return None
    p, g = clean(pred), clean(gold)
    if p == g:
        return True
    pn, gn = structure(p), structure(g)
    if gn[0] == "atom" and "=" in gn[1] and "=" in p and len(split_top_level(p, (",", ";"))) == 1:
        # the gold is an equation kept whole (`2x+4y-3=0`): compare the predicted equation whole too
        if not use_sympy:
            return None
        return _sympy().sympy_equal(p, g) or bool(_compare_nodes(pn, gn, use_sympy))
    return _compare_nodes(pn, gn, use_sympy)


def _compare_nodes(p, g, use_sympy: bool) -> bool | None:
    if p[0] == "relation" or g[0] == "relation":
        if not use_sympy:
            return None
        return _sympy().sympy_equal(_node_text(p), _node_text(g))
    if g[0] == "atom" and p[0] == "atom":
        return _compare_atoms(atom_key(p[1]), atom_key(g[1]), use_sympy)
    if (g[0] == "matrix" and p[0] == "atom" and "\\begin{" in p[1]) or (p[0] == "matrix" and g[0] == "atom"
                                                                         and "\\begin{" in g[1]):
        if not use_sympy:  # a sum or product of matrices: sympy evaluates it
            return None
        return _sympy().sympy_equal(_node_text(p), _node_text(g))
    if g[0] == "matrix":
        if p[0] == "seq" and all(len(row) == 1 for row in g[1]):  # column vector written as a tuple
            p = ("matrix", tuple((x[1],) for x in p[3] if x[0] == "atom"))
        if p[0] != "matrix" or [len(r) for r in p[1]] != [len(r) for r in g[1]]:
            return False
        cells = [(("atom", a), ("atom", b)) for ra, rb in zip(p[1], g[1]) for a, b in zip(ra, rb)]
        return _all(_compare_nodes(a, b, use_sympy) for a, b in cells)
    if g[0] == "seq":
        if p[0] != "seq" or (p[1], p[2]) != (g[1], g[2]) or len(p[3]) != len(g[3]):
            return False
        return _all(_compare_nodes(a, b, use_sympy) for a, b in zip(p[3], g[3]))
    if g[0] in ("set", "list", "union"):
        if p[0] in ("set", "list", "union") and (p[0] == "union") == (g[0] == "union"):
            return _match_unordered(list(p[-1]), list(g[-1]), use_sympy)
        if len(g[-1]) == 1:  # `\{3\}` == `3`
            return _compare_nodes(p, g[-1][0], use_sympy)
        return False
    if g[0] == "atom" and p[0] in ("set", "list") and len(p[-1]) == 1:
        return _compare_nodes(p[-1][0], g, use_sympy)
    return False


def _node_text(node) -> str:
    """LaTeX for a node again (relations and intervals are compared by sympy as a whole)."""
    kind = node[0]
    if kind in ("atom", "relation"):
        return node[1]
    if kind == "seq":
        return node[1] + ", ".join(_node_text(x) for x in node[3]) + node[2]
    if kind == "union":
        return " \\cup ".join(_node_text(x) for x in node[1])
    if kind == "set":
        return "\\{" + ", ".join(_node_text(x) for x in node[1]) + "\\}"
    if kind == "matrix":
        return "\\begin{pmatrix}" + "\\\\".join("&".join(r) for r in node[1]) + "\\end{pmatrix}"
    return ", ".join(_node_text(x) for x in node[1])


def _all(results) -> bool | None:
    undecided = False
    for r in results:
        if r is False:
            return False
        undecided |= r is None
    return None if undecided else True


def _match_unordered(p_items: list, g_items: list, use_sympy: bool) -> bool | None:
    """Multiset equality under element equivalence (greedy; fine for the sizes answers have)."""
    if len(p_items) != len(g_items):
        return False
    remaining = list(g_items)
    undecided = False
    for a in p_items:
        for j, b in enumerate(remaining):
            r = _compare_nodes(a, b, use_sympy)
            if r:
                del remaining[j]
                break
            undecided |= r is None
        else:
            if not undecided:
                return False
    return True if not remaining else (None if undecided else False)


def _compare_atoms(p: Atom, g: Atom, use_sympy: bool) -> bool | None:
    if p.kind == "number" and g.kind == "number":
        return _numbers_equal(p, g)
    if g.kind == "base" or p.kind == "base":
        return _bases_equal(p, g)
    if g.kind == "ratio" or p.kind == "ratio":
        return p.kind == g.kind and p.value == g.value
    if g.kind in ("choice", "words") or p.kind in ("choice", "words"):
        if p.kind == g.kind:
            return p.value == g.value
        if g.kind == "choice" and p.kind == "latex":
            return False
    if p.kind == g.kind and p.value == g.value and p.percent == g.percent:
        return True
    if p.kind in ("number", "latex") and g.kind in ("number", "latex"):
        if not use_sympy:
            return None
        scale = _percent_scales(p, g)
        return any(_sympy().sympy_equal(_as_latex(p), _as_latex(g), s) for s in scale)
    return False


def _numbers_equal(p: Atom, g: Atom) -> bool:
    a, b = p.value, g.value
    if a == b:
        return True
    # 25% of the answer: "25\%" == "25" == "0.25"; a bare decimal never matches a percent of itself.
    if g.percent and not p.percent:
        return a == b / 100
    if p.percent and not g.percent:
        return a / 100 == b
    return False


def _percent_scales(p: Atom, g: Atom) -> tuple[Fraction, ...]:
    """Factors f with pred == f * gold allowed: 1, and 1/100 when exactly one side has a percent."""
    if g.percent != p.percent:
        return (Fraction(1), Fraction(1, 100) if g.percent else Fraction(100))
    return (Fraction(1),)


def _bases_equal(p: Atom, g: Atom) -> bool:
    """Base-n numerals: same digits and, when both give a base, the same base."""
    def digits(a: Atom) -> tuple[str, int | None] | None:
        if a.kind == "base":
            return a.value
        if a.kind == "number" and a.value.denominator == 1 and a.value >= 0 and "," not in a.text:
            return a.text.lstrip("0") or "0", None
        if re.fullmatch(r"[0-9A-Za-z]+", a.text):
            return a.text.upper().lstrip("0") or "0", None
        return None

    dp, dg = digits(p), digits(g)
    if dp is None or dg is None or dp[0] != dg[0]:
        return False
    return dp[1] is None or dg[1] is None or dp[1] == dg[1]


def _as_latex(a: Atom) -> str:
    if a.kind == "number":
        v = a.value
        return f"\\frac{{{v.numerator}}}{{{v.denominator}}}" if v.denominator != 1 else str(v.numerator)
    return str(a.value)
