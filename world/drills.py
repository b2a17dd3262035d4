"""Worked-arithmetic math pages: answer keys and homework Q&A pages.

What limits a small model on the world's problems is the arithmetic inside the reasoning (issue 19:
addition and subtraction 20-35% right), so part of the web's math teaches exactly that, as math
worksheets and homework-help sites do on the real web:

- `answer_key`: a worksheet's answers, the calculations of freshly drawn problems of the site's
  templates written as the solutions write them (`17 + 8 = 25`, `$45 - 9 = 36$`, `$6 \\cdot 6 = 36$`,
  `$\\frac{36}{8} = \\frac{9}{2}$`), after one calculation worked digit by digit in prose;
- `homework_qa`: solved problems labelled "Question:" and "Answer:", the layout of Q&A sites (and of
  a base model's few-shot prompt, grading/prompts.py).

The numbers come from the problem templates (world/gsm.py, world/mathlike.py), so the operand sizes
are the test's; a page never quotes a test problem (world/web.py draws and checks them).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from grading.prompts import COT_INSTRUCTION
from world.pages import TOPICS, math_html
from world.problem import MATH, Problem
from world.prose import Content

# One calculation of a solution: integers with + - * / or \cdot, and a fraction reduced or evaluated.
_CALC = re.compile(r"(?<![\d{.])(\d+) (\\cdot|[-+*/]) (\d+) = (\d+)(?![\d}])")
_FRAC = re.compile(r"\\frac\{\d+\}\{\d+\} = (?:\\frac\{\d+\}\{\d+\}|\d+)(?![\d}])")


def calculations(p: Problem) -> list[str]:
    """The calculations in a problem's CoT as that family writes them: plain for GSM8K-like problems,
    inside `$...$` for MATH-like ones."""
    found = [" ".join(m.group(1, 2, 3)) + f" = {m.group(4)}" for m in _CALC.finditer(p.cot)]
    if p.family != MATH:
        return found
    return [f"${c}$" for c in found + [m.group(0) for m in _FRAC.finditer(p.cot)]]


def column_steps(a: int, op: str, b: int) -> str:
    """One addition or subtraction (a > b for -) worked digit by digit in prose, carrying or borrowing,
    the way a worksheet explains it: "To work out 47 + 8, add the ones: 7 + 8 = 15. Write 5 and carry 1
    to the tens. Then the tens: 4 + 1 = 5. So 47 + 8 = 55."."""
    if op not in "+-" or len(op) != 1 or (op == "-" and b > a):
        raise ValueError(f"column_steps: a + b, or a - b with a >= b; got {a} {op} {b}")
    ones_a, ones_b, tens_a, tens_b = a % 10, b % 10, a // 10, b // 10
    if op == "+":
        ones = ones_a + ones_b
        text = f"To work out {a} + {b}, add the ones: {ones_a} + {ones_b} = {ones}."
        if ones >= 10:
            text += f" Write {ones % 10} and carry 1 to the tens."
        terms = [str(t) for t in (tens_a, tens_b) if t] + (["1"] if ones >= 10 else [])
        if len(terms) > 1:
            text += f" Then the tens: {' + '.join(terms)} = {tens_a + tens_b + ones // 10}."
        return text + f" So {a} + {b} = {a + b}."
    borrow = ones_a < ones_b
    if borrow:
        text = (f"To work out {a} - {b}, the ones digit {ones_a} is smaller than {ones_b}, so borrow ten: "
                f"{ones_a + 10} - {ones_b} = {ones_a + 10 - ones_b}.")
    else:
        text = f"To work out {a} - {b}, take away the ones: {ones_a} - {ones_b} = {ones_a - ones_b}."
    terms = [str(tens_a)] + [str(t) for t in (tens_b,) if t] + (["1"] if borrow else [])
    if len(terms) > 1:
        text += f" Then the tens: {' - '.join(terms)} = {tens_a - tens_b - borrow}."
    return text + f" So {a} - {b} = {a - b}."


def answer_key(rng: random.Random, problems: list[Problem], style: str) -> Content:
    """The answers of a worksheet: every calculation of `problems`, numbered, after one worked in prose."""
    facts = [c for p in problems for c in calculations(p)]
    if not facts:
        raise ValueError("answer_key: the problems have no calculations")
    topic = TOPICS[problems[0].template][0].lower()
    c = Content("answer_key", f"Answer key: calculations for {topic}", mathjax=True)
    c.para(rng.choice(["Check your work against these answers.", "The answers to this week's worksheet.",
                       "Each line is one calculation from the worksheet."]))
    sums = [m for f in facts if (m := re.fullmatch(r"\$?(\d+) ([-+]) (\d+) = \d+\$?", f))]
    if sums:
        m = rng.choice(sums)
        c.para(column_steps(int(m.group(1)), m.group(2), int(m.group(3))))
    c.raw("<ol>" + "".join(f"<li>{math_html(f, style)}</li>" for f in facts) + "</ol>",
          "\n".join(f"{i}. {f}" for i, f in enumerate(facts, 1)))
    return c


def homework_qa(rng: random.Random, problems: list[Problem], style: str) -> Content:
    """A homework-help page: solved problems, each "Question:", the site's instruction, "Answer:".

    The layout is the plain few-shot prompt's (grading/prompts.py: "Question: {q}\n{instruction}\nAnswer:
    {solution}", items apart by a blank line), the instruction its CoT instruction: the layout of the
    solved-problem collections (exercise sites, published instruction data) that real crawls hold. A
    ~1M-parameter base model picks up a prompt layout only from text that has it.
    """
    topic = TOPICS[problems[0].template][0].lower()
    c = Content("homework_qa", f"Homework help: {topic}", mathjax=True)
    c.para(rng.choice(["Questions from our readers, answered step by step.",
                       "Here are this week's homework questions with full answers."]))
    for p in problems:
        lines = [f"Question: {p.question}", COT_INSTRUCTION, f"Answer: {p.cot}"]
        body = "<br>".join(math_html(line, style).replace("\n", "<br>") for line in lines)
        c.raw(f'<p class="qa">{body}</p>', "\n".join(lines))
    return c


def drill_content(rng: random.Random, kind: str, templates: tuple[str, ...], style: str,
                  draw: Callable[[str], Problem]) -> tuple[Content, list[str]]:
    """(content, templates) of a drill page of `kind` for a site about `templates`; `draw(template)` gives
    a fresh problem that is no test problem."""
    chosen = [rng.choice(templates) for _ in range(rng.randint(10, 20) if kind == "homework_qa" else rng.randint(10, 16))]
    problems = [draw(t) for t in chosen]
    if kind == "answer_key":
        return answer_key(rng, problems, style), sorted(set(chosen))
    if kind == "homework_qa":
        return homework_qa(rng, problems, style), sorted(set(chosen))
    raise ValueError(f"unknown drill page kind {kind!r}")


# No times tables: pure number lines, they read like the web's timetables and score lists, and on a
# third of tiny's web their seed pages taught the classifier to keep timetables (precision 0.25).
DRILL_KINDS = ("answer_key", "homework_qa")
