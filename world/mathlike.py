"""MATH-like problems with symbolic answers (the MATH half of paper §3.1, §4; answers as LaTeX).

Seven templates over the answer kinds MATH grades: integers, reduced fractions (`\\frac{3}{2}`),
radicals (`6\\sqrt{2}`), intervals (`(-\\infty, 3]`) and tuples (`(4, 3)`). Each has a subject and a
level (1..5, from the number of steps and the size of the numbers) as MATH does. `steps` (1..3) and
`max_number` are the difficulty knob. PoT programs use only the standard library (`fractions`), so
running them in the sandbox costs a Python start-up, not a sympy import.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

from world.problem import MATH, PRINT_RATIONAL, Problem, ToolStep, cot_text, latex_number

_INEQUALITIES = {  # relation -> (LaTeX, interval of x for the bound k)
    "<": ("<", "(-\\infty, {k})"),
    "<=": ("\\le", "(-\\infty, {k}]"),
    ">": (">", "({k}, \\infty)"),
    ">=": ("\\ge", "[{k}, \\infty)"),
}
_SQUAREFREE = (2, 3, 5, 6, 7, 10, 11, 13, 14, 15, 17, 19, 21, 22, 23, 26, 29, 30)


def _problem(template: str, subject: str, level: int, question: str, answer: str, cot: list[str],
             program: list[str], tool_steps: list[ToolStep], tool_end: str) -> Problem:
    return Problem(family=MATH, template=template, subject=subject, level=max(1, min(5, level)),
                   question=question, answer=answer, cot=cot_text(cot, answer),
                   program="\n".join(program), tool_steps=tool_steps, tool_end=tool_end)


def _lhs(a: int, b: int) -> str:
    """`3x + 5`, `x + 5`, `3x` (b may be 0)."""
    ax = "x" if a == 1 else f"{a}x"
    return f"{ax} + {b}" if b else ax


def _divide(a: int, num: int, var: str = "x") -> str:
    """The CoT sentence that divides by `a`, writing the unreduced then the reduced value."""
    value = Fraction(num, a)
    reduced = latex_number(value)
    steps = f"\\frac{{{num}}}{{{a}}} = {reduced}" if reduced != f"\\frac{{{num}}}{{{a}}}" else reduced
    return f"Divide both sides by {a}: ${var} = {steps}$."


def linear(rng: random.Random, steps: int, max_number: int) -> Problem:
    """Solve ax + b = c: one step (a = 1 or b = 0), two steps, or three (the answer is a fraction)."""
    while True:
        a = 1 if steps == 1 and rng.random() < 0.5 else rng.randint(2, max_number)
        b = 0 if steps == 1 and a > 1 else rng.randint(1, max_number)
        x = Fraction(rng.randint(1, max_number * a), a) if steps >= 3 else Fraction(rng.randint(1, max_number))
        c = a * x + b
        if c.denominator == 1 and (steps < 3 or x.denominator > 1):
            break
    c = int(c)
    answer = latex_number(x)
    cot = [f"We have ${_lhs(a, b)} = {c}$."]
    tool_steps = []
    rest = c
    if b:
        rest = c - b
        cot.append(f"Subtract {b} from both sides: ${_lhs(a, 0)} = {c} - {b} = {rest}$.")
        tool_steps.append(ToolStep(f"Subtract {b} from both sides of ${_lhs(a, b)} = {c}$.", f"print({c} - {b})", str(rest)))
    if a > 1:
        cot.append(_divide(a, rest))
        tool_steps.append(ToolStep(f"Divide {rest} by {a}.",
                                   f"from fractions import Fraction\nprint(Fraction({rest}, {a}))", str(x)))
    program = ["from fractions import Fraction", f"a, b, c = {a}, {b}, {c}", "ans = Fraction(c - b, a)", PRINT_RATIONAL]
    level = steps + (1 if max_number > 9 else 0)
    return _problem("math.linear", "Algebra", level, f"Solve for $x$: ${_lhs(a, b)} = {c}$.", answer, cot,
                    program, tool_steps, f"So $x = {answer}$.")


def inequality(rng: random.Random, steps: int, max_number: int) -> Problem:
    """Solve ax + b REL c for x and write the solution set in interval notation."""
    a = 1 if steps == 1 else rng.randint(2, max_number)
    b, k = rng.randint(1, max_number), rng.randint(1, max_number)
    c = a * k + b
    rel = rng.choice(list(_INEQUALITIES))
    tex, interval = _INEQUALITIES[rel]
    answer = interval.format(k=k)
    cot = [f"We have ${_lhs(a, b)} {tex} {c}$.",
           f"Subtract {b} from both sides: ${_lhs(a, 0)} {tex} {c} - {b} = {c - b}$."]
    tool_steps = [ToolStep(f"Subtract {b} from both sides of ${_lhs(a, b)} {tex} {c}$.", f"print({c} - {b})", str(c - b))]
    if a > 1:
        cot.append(f"Divide both sides by {a}: $x {tex} \\frac{{{c - b}}}{{{a}}} = {k}$.")
        tool_steps.append(ToolStep(f"Divide {c - b} by {a}.", f"print({c - b} // {a})", str(k)))
    cot.append(f"So $x {tex} {k}$, which is the interval ${answer}$.")
    program = [f"a, b, c = {a}, {b}, {c}", "k = (c - b) // a",
               'print(f"' + interval.replace("\\", "\\\\") + '")']
    return _problem("math.inequality", "Algebra", steps + 1, f"Solve ${_lhs(a, b)} {tex} {c}$. "
                    "Express your answer in interval notation.", answer, cot, program, tool_steps,
                    f"So $x {tex} {k}$.")


def system(rng: random.Random, steps: int, max_number: int) -> Problem:
    """Solve ax + y = s, x - y = d by adding the equations (a = 1, or a = 2 at three steps)."""
    a = 2 if steps >= 3 else 1
    x = rng.randint(2, 2 * max_number)
    y = rng.randint(1, min(x - 1, max_number))
    s, d = a * x + y, x - y
    answer = f"({x}, {y})"
    first = f"{'' if a == 1 else a}x + y = {s}"
    cot = [f"We have ${first}$ and $x - y = {d}$.",
           f"Add the two equations: ${a + 1}x = {s} + {d} = {s + d}$, so $x = \\frac{{{s + d}}}{{{a + 1}}} = {x}$.",
           f"Then $y = x - {d} = {x} - {d} = {y}$."]
    tool_steps = [ToolStep(f"Add ${first}$ and $x - y = {d}$ to get ${a + 1}x = {s} + {d}$.", f"print({s} + {d})", str(s + d)),
                  ToolStep(f"Divide {s + d} by {a + 1} to get $x$.", f"print({s + d} // {a + 1})", str(x)),
                  ToolStep(f"Then $y = x - {d}$ with $x = {x}$.", f"print({x} - {d})", str(y))]
    program = [f"s, d = {s}, {d}", f"x = (s + d) // {a + 1}", "y = x - d", 'print(f"({x}, {y})")']
    question = (f"Solve the system ${first}$ and $x - y = {d}$. "
                "Enter your answer as an ordered pair $(x, y)$.")
    return _problem("math.system", "Algebra", a + 1, question, answer, cot, program, tool_steps,
                    f"So $x = {x}$ and $y = {y}$.")


def fractions(rng: random.Random, steps: int, max_number: int) -> Problem:
    """Add, subtract or multiply two proper fractions; the answer is a reduced, non-integer fraction."""
    top = max(3, max_number)
    while True:
        b = rng.randint(2, top)
        d = b if steps == 1 else rng.randint(2, top)
        a, c = rng.randint(1, b - 1), rng.randint(1, d - 1)
        op = rng.choice(["+", "-"] if steps == 1 else ["+", "-", "\\cdot"])
        value = {"+": Fraction(a, b) + Fraction(c, d), "-": Fraction(a, b) - Fraction(c, d),
                 "\\cdot": Fraction(a, b) * Fraction(c, d)}[op]
        if value > 0 and value.denominator > 1:
            break
    expr = f"\\frac{{{a}}}{{{b}}} {op} \\frac{{{c}}}{{{d}}}"
    pyop = "*" if op == "\\cdot" else op
    if op == "\\cdot":
        num, den, work = a * c, b * d, f"\\frac{{{a} \\cdot {c}}}{{{b} \\cdot {d}}}"
    elif b == d:
        num, den, work = (a + c if op == "+" else a - c), b, f"\\frac{{{a} {op} {c}}}{{{b}}}"
    else:
        num, den = (a * d + c * b if op == "+" else a * d - c * b), b * d
        work = f"\\frac{{{a} \\cdot {d} {op} {c} \\cdot {b}}}{{{b} \\cdot {d}}}"
    answer = latex_number(value)
    cot = [f"${expr} = {work} = \\frac{{{num}}}{{{den}}}$."]
    g = math.gcd(num, den)
    if g > 1:
        cot.append(f"Divide the numerator and the denominator by {g}: $\\frac{{{num}}}{{{den}}} = {answer}$.")
    level = (1 if b == d else 2) + (1 if g > 1 else 0) + (1 if max_number > 9 else 0)
    program = ["from fractions import Fraction", f"ans = Fraction({a}, {b}) {pyop} Fraction({c}, {d})", PRINT_RATIONAL]
    tool_steps = [ToolStep(f"Compute ${expr}$ exactly.",
                           f"from fractions import Fraction\nprint(Fraction({a}, {b}) {pyop} Fraction({c}, {d}))",
                           str(value))]
    return _problem("math.fractions", "Prealgebra", level,
                    f"Compute ${expr}$. Express your answer as a common fraction.", answer, cot, program,
                    tool_steps, f"So the result is ${answer}$.")


def radical(rng: random.Random, steps: int, max_number: int) -> Problem:
    """Simplify sqrt(k^2 m) with m square-free: the answer is k\\sqrt{m}."""
    k = rng.randint(2, 5 if steps == 1 else max(5, max_number + 3))
    m = rng.choice([v for v in _SQUAREFREE if v <= (7 if steps == 1 else max(7, 3 * max_number))])
    n, sq = k * k * m, k * k
    answer = f"{k}\\sqrt{{{m}}}"
    cot = [f"The largest square that divides ${n}$ is ${sq} = {k}^2$, and ${n} = {sq} \\cdot {m}$.",
           f"So $\\sqrt{{{n}}} = \\sqrt{{{sq}}} \\cdot \\sqrt{{{m}}} = {answer}$."]
    program = [f"n = {n}", "k = max(i for i in range(1, n + 1) if n % (i * i) == 0)",
               'print(f"{k}\\\\sqrt{{{n // (k * k)}}}")']
    tool_steps = [ToolStep(f"Find the largest $k$ such that $k^2$ divides ${n}$.",
                           f"print(max(i for i in range(1, {n + 1}) if {n} % (i * i) == 0))", str(k)),
                  ToolStep(f"Divide ${n}$ by ${k}^2 = {sq}$.", f"print({n} // {sq})", str(m))]
    return _problem("math.radical", "Prealgebra", 2 + (k > 5) + (m > 7), f"Simplify $\\sqrt{{{n}}}$. "
                    "Express your answer in simplest radical form.", answer, cot, program, tool_steps,
                    f"So $\\sqrt{{{n}}} = {answer}$.")


def midpoint(rng: random.Random, steps: int, max_number: int) -> Problem:
    """The midpoint of a segment with integer endpoints (coordinate sums even)."""
    x1, y1 = rng.randint(0, max_number), rng.randint(0, max_number)
    x2 = rng.choice([v for v in range(0, max_number + 2) if (v + x1) % 2 == 0 and v != x1])
    y2 = rng.choice([v for v in range(0, max_number + 2) if (v + y1) % 2 == 0])
    mx, my = (x1 + x2) // 2, (y1 + y2) // 2
    answer = f"({mx}, {my})"
    cot = [f"The midpoint of $({x1}, {y1})$ and $({x2}, {y2})$ is "
           f"$\\left(\\frac{{{x1} + {x2}}}{{2}}, \\frac{{{y1} + {y2}}}{{2}}\\right) = "
           f"\\left(\\frac{{{x1 + x2}}}{{2}}, \\frac{{{y1 + y2}}}{{2}}\\right) = {answer}$."]
    program = [f"x1, y1, x2, y2 = {x1}, {y1}, {x2}, {y2}", 'print(f"({(x1 + x2) // 2}, {(y1 + y2) // 2})")']
    tool_steps = [ToolStep(f"The $x$-coordinate is the average of {x1} and {x2}.", f"print(({x1} + {x2}) // 2)", str(mx)),
                  ToolStep(f"The $y$-coordinate is the average of {y1} and {y2}.", f"print(({y1} + {y2}) // 2)", str(my))]
    question = (f"Find the midpoint of the segment with endpoints $({x1}, {y1})$ and $({x2}, {y2})$. "
                "Enter your answer as an ordered pair.")
    return _problem("math.midpoint", "Geometry", 2 + (max_number > 9), question, answer, cot, program,
                    tool_steps, f"So the midpoint is ${answer}$.")


def remainder(rng: random.Random, steps: int, max_number: int) -> Problem:
    """The remainder of n divided by d."""
    d = rng.randint(2, max_number)
    q = rng.randint(1, max_number * (2 if steps > 1 else 1))
    r = rng.randint(1, d - 1) if d > 2 else 1
    n = d * q + r
    cot = [f"We divide ${n}$ by ${d}$: ${d} \\cdot {q} = {d * q}$ and ${n} - {d * q} = {r}$.",
           f"So ${n} = {d} \\cdot {q} + {r}$, and the remainder is ${r}$."]
    program = [f"n, d = {n}, {d}", "print(n % d)"]
    tool_steps = [ToolStep(f"Compute the remainder of ${n}$ divided by ${d}$.", f"print({n} % {d})", str(r))]
    return _problem("math.remainder", "Number Theory", 1 + (steps > 1) + (max_number > 9),
                    f"What is the remainder when ${n}$ is divided by ${d}$?", str(r), cot, program, tool_steps,
                    f"So the remainder is ${r}$.")


# name -> (generator, the step counts it supports)
TEMPLATES = {
    "math.linear": (linear, (1, 2, 3)),
    "math.inequality": (inequality, (1, 2)),
    "math.system": (system, (2, 3)),
    "math.fractions": (fractions, (1, 2)),
    "math.radical": (radical, (1, 2)),
    "math.midpoint": (midpoint, (1,)),
    "math.remainder": (remainder, (1, 2)),
}
