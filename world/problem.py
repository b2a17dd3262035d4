"""One generated problem and the three response formats of DeepSeekMath's SFT data (paper §3.1).

A template (world/gsm.py, world/mathlike.py) returns a `Problem`: the question, the gold answer, a
chain-of-thought (CoT) solution, a program-of-thought (PoT) program and the steps of a tool-integrated
solution. The tool solution's code outputs are not written by the template: world/problems.py runs
every code block and `tool_text` puts the real outputs in.

Learnability for a small model trained from scratch (issue "The embedded default's world"): every
solution restates each quantity right before using it ("Tom has 5 apples. He buys 3 more, so he has
5 + 3 = 8 apples."), so copying numbers from the question is a local pattern, and every CoT ends with
the same sentence, "The answer is \\boxed{...}".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

from world.vocab import MASKED_WORDS

GSM8K = "gsm8k"
MATH = "math"


@dataclass(frozen=True)
class ToolStep:
    """One round of a tool-integrated solution: reasoning, then a self-contained program."""

    text: str  # the reasoning before the code block
    code: str  # a program that prints exactly one value
    expect: str  # what the template computed it must print (checked against the real output)


@dataclass
class Problem:
    family: str  # "gsm8k" or "math"
    template: str  # which generator made it, e.g. "gsm.chain", "math.linear"
    subject: str
    level: int
    question: str
    answer: str  # the gold final answer: LaTeX or a plain integer, as grading.grader reads it
    cot: str  # chain of thought whose last line is "The answer is \boxed{answer}"
    program: str  # program-of-thought code (no fences); prints the answer in the gold's form
    tool_steps: list[ToolStep] = field(default_factory=list)
    tool_end: str = ""  # the sentence after the last code output, before the boxed answer
    gsm_solution: str | None = None  # GSM8K-style solution with <<a+b=c>> and "#### N" (gsm8k only)


def problem_text(p: Problem) -> str:
    """All text a problem's record shows (question, CoT, PoT, tool reasoning and code), for n-gram checks."""
    return "\n".join([p.question, p.cot, p.program, p.tool_end]
                     + [part for s in p.tool_steps for part in (s.text, s.code)])


def boxed_sentence(answer: str) -> str:
    """The fixed last line of every CoT and tool solution."""
    return f"The answer is \\boxed{{{answer}}}"


def cot_text(sentences: list[str], answer: str) -> str:
    """A CoT response: the worked sentences, then the answer on its own line (as sft/formats.py shows)."""
    return " ".join(sentences) + "\n" + boxed_sentence(answer)


def pot_text(program: str) -> str:
    """The PoT response: one python block whose printed output is the answer."""
    return f"```python\n{program.rstrip()}\n```"


def tool_text(problem: Problem, outputs: list[str]) -> str:
    """The tool-integrated response: reasoning, code, its real output, ... then the boxed answer."""
    if len(outputs) != len(problem.tool_steps):
        raise ValueError(f"{problem.template}: {len(problem.tool_steps)} code blocks but {len(outputs)} outputs")
    parts = []
    for step, out in zip(problem.tool_steps, outputs):
        parts.append(f"{step.text}\n```python\n{step.code.rstrip()}\n```\n```output\n{out.rstrip()}\n```")
    parts.append(cot_text([problem.tool_end], problem.answer).strip())
    return "\n".join(parts)


def latex_number(x: Fraction | int) -> str:
    """An exact rational as MATH writes it: `3`, `\\frac{3}{4}`, `-\\frac{3}{4}`."""
    x = Fraction(x)
    if x.denominator == 1:
        return str(x.numerator)
    sign = "-" if x < 0 else ""
    return f"{sign}\\frac{{{abs(x.numerator)}}}{{{x.denominator}}}"


# The one line every PoT program with a rational answer ends with (constant, so a small model learns
# it once): prints an integer as is, a fraction as \frac{p}{q}.
PRINT_RATIONAL = 'print(ans if ans.denominator == 1 else f"\\\\frac{{{ans.numerator}}}{{{ans.denominator}}}")'

_NUMBER = re.compile(r"\d+")
_WORD = re.compile(r"[a-z]+")
_SPACE = re.compile(r"\s+")


def near_key(question: str) -> str:
    """A key shared by a question and its near-copies: names, objects and pronouns masked, same numbers.

    Two questions with the same key are the same problem up to who and what it is about, so a test
    question's key must not occur in sft/rl (nor in the web's worked problems). Each operation has one
    phrasing in the templates, so the masked text plus the numbers pin the problem down.
    """
    text = _SPACE.sub(" ", question.lower()).strip()
    numbers = _NUMBER.findall(text)
    masked = _WORD.sub(lambda m: "_" if m.group(0) in MASKED_WORDS else m.group(0), _NUMBER.sub("#", text))
    return masked + "|" + ",".join(numbers)
