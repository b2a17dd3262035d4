"""GSM8K-like word problems: short multi-step arithmetic stories (the GSM8K half of paper §3.1, §4).

Three templates, each with 1..`max_steps` steps and operands up to `max_number` (the difficulty knob):

- `gsm.chain`:    "Tom has 5 apples. He buys 3 more. He gives 2 to Ann. How many apples does Tom have now?"
- `gsm.shopping`: "Ann buys 4 pens for 3 dollars each. She also buys a cup for 5 dollars. How many ..."
- `gsm.compare`:  "Sam has 4 cards. Mia has 3 more cards than Sam. How many cards do they have together?"

Each operation has exactly one phrasing, and every solution sentence restates the quantities it uses
before the result (see world/problem.py).
"""

from __future__ import annotations

import random

from world.problem import GSM8K, Problem, ToolStep, cot_text
from world.vocab import OBJECTS, PEOPLE


def _calc(a: int, op: str, b: int, result: int) -> tuple[str, str]:
    """`a op b = result` for the CoT and GSM8K's `a op b = <<a op b=result>>result`."""
    return f"{a} {op} {b} = {result}", f"{a} {op} {b} = <<{a}{op}{b}={result}>>{result}"


def _two_people(rng: random.Random) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    first, second = rng.sample(PEOPLE, 2)
    return first, second


def _finish(template: str, steps: int, question: str, cot: list[str], gsm: list[str], answer: int,
            program: list[str], tool_steps: list[ToolStep], tool_end: str) -> Problem:
    return Problem(
        family=GSM8K, template=template, subject="Arithmetic", level=steps,
        question=question, answer=str(answer),
        cot=cot_text(cot, str(answer)),
        program="\n".join(program),
        tool_steps=tool_steps, tool_end=tool_end,
        gsm_solution="\n".join(gsm + [f"#### {answer}"]),
    )


def chain(rng: random.Random, steps: int, max_number: int) -> Problem:
    """A person's count of one object changes by +, -, * or / at each step."""
    (name, he, _), (friend, _, _) = _two_people(rng)
    objs, _ = rng.choice(OBJECTS)
    He = he.capitalize()
    cur = rng.randint(2, max_number)
    question = [f"{name} has {cur} {objs}."]
    cot = [f"{name} has {cur} {objs}."]
    gsm = []
    program = [f"{objs} = {cur}"]
    tool_steps = []
    said = f"{name} has {cur} {objs}."
    for _ in range(steps):
        ops = ["+", "*"] if cur <= 2 * max_number else ["+"]
        if cur >= 3:  # keep at least 2 after subtracting
            ops.append("-")
        divisors = [d for d in range(2, max_number + 1) if cur % d == 0 and cur // d >= 2]
        if divisors:
            ops.append("/")
        op = rng.choice(ops)
        if op == "+":
            b = rng.randint(1, max_number)
            sentence = f"{He} buys {b} more."
        elif op == "-":
            b = rng.randint(1, min(max_number, cur - 2))
            sentence = f"{He} gives {b} to {friend}."
        elif op == "*":
            b = rng.randint(2, max(3, max_number // 3))
            sentence = f"{He} then has {b} times as many {objs}."
        else:
            b = rng.choice(divisors)
            sentence = f"{He} splits them into {b} equal groups and keeps one group."
        new = {"+": cur + b, "-": cur - b, "*": cur * b, "/": cur // b}[op]
        shown, annotated = _calc(cur, op, b, new)
        question.append(sentence)
        cot.append(f"{sentence[:-1]}, so {he} has {shown} {objs}.")
        gsm.append(f"{sentence[:-1]}, so {he} has {annotated} {objs}.")
        program.append(f"{objs} = {objs} {'//' if op == '/' else op} {b}")
        tool_steps.append(ToolStep(f"{said} {sentence}", f"print({cur} {'//' if op == '/' else op} {b})", str(new)))
        said = f"{He} has {new} {objs}."
        cur = new
    question.append(f"How many {objs} does {name} have now?")
    program.append(f"print({objs})")
    return _finish("gsm.chain", steps, " ".join(question), cot, gsm, cur, program, tool_steps, said)


def shopping(rng: random.Random, steps: int, max_number: int) -> Problem:
    """Total cost of one item type (1 step), plus a single item (2), or a second item type (3)."""
    name, he, _ = rng.choice(PEOPLE)
    He = he.capitalize()
    (objs, _), (objs2, obj2) = rng.sample(OBJECTS, 2)
    a, b = rng.randint(2, max_number), rng.randint(2, max_number)
    ab = a * b
    first = f"{name} buys {a} {objs} for {b} dollars each."
    shown, annotated = _calc(a, "*", b, ab)
    question = [first]
    cot = [f"{first[:-1]}, so the {objs} cost {shown} dollars."]
    gsm = [f"The {objs} cost {annotated} dollars."]
    program = [f"{objs} = {a} * {b}"]
    tool_steps = [ToolStep(first, f"print({a} * {b})", str(ab))]
    total, end = ab, f"The {objs} cost {ab} dollars."
    if steps == 2:
        c = rng.randint(1, max_number)
        second = f"{He} also buys a {obj2} for {c} dollars."
        total = ab + c
        shown, annotated = _calc(ab, "+", c, total)
        question.append(second)
        cot.append(f"{second[:-1]}, so {he} spends {shown} dollars.")
        gsm.append(f"In total {he} spends {annotated} dollars.")
        program.append(f"total = {objs} + {c}")
        tool_steps.append(ToolStep(f"{end} {second}", f"print({ab} + {c})", str(total)))
        end = f"{He} spends {total} dollars."
    elif steps >= 3:
        c, d = rng.randint(2, max_number), rng.randint(2, max_number)
        cd = c * d
        second = f"{He} also buys {c} {objs2} for {d} dollars each."
        total = ab + cd
        shown2, annotated2 = _calc(c, "*", d, cd)
        shown3, annotated3 = _calc(ab, "+", cd, total)
        question.append(second)
        cot.append(f"{second[:-1]}, so the {objs2} cost {shown2} dollars.")
        cot.append(f"In total {he} spends {shown3} dollars.")
        gsm.append(f"The {objs2} cost {annotated2} dollars.")
        gsm.append(f"In total {he} spends {annotated3} dollars.")
        program += [f"{objs2} = {c} * {d}", f"total = {objs} + {objs2}"]
        tool_steps.append(ToolStep(second, f"print({c} * {d})", str(cd)))
        tool_steps.append(ToolStep(f"The {objs} cost {ab} dollars and the {objs2} cost {cd} dollars.",
                                   f"print({ab} + {cd})", str(total)))
        end = f"{He} spends {total} dollars."
    program.append(f"print({'total' if steps >= 2 else objs})")
    question.append(f"How many dollars does {name} spend?")
    return _finish("gsm.shopping", min(steps, 3), " ".join(question), cot, gsm, total, program, tool_steps, end)


def compare(rng: random.Random, steps: int, max_number: int) -> Problem:
    """A second person has more / fewer / k times as many as the first; then the two (or three) together."""
    (n1, _, _), (n2, _, _) = _two_people(rng)
    objs, _ = rng.choice(OBJECTS)
    a = rng.randint(2, 2 * max_number)
    kind = rng.choice(["more", "fewer", "times"])
    if kind == "more":
        b = rng.randint(1, max_number)
        rel, op, second = f"{b} more {objs} than {n1}", "+", a + b
    elif kind == "fewer":
        b = rng.randint(1, a - 1)
        rel, op, second = f"{b} fewer {objs} than {n1}", "-", a - b
    else:
        b = rng.randint(2, max(3, max_number // 3))
        rel, op, second = f"{b} times as many {objs} as {n1}", "*", a * b
    question = [f"{n1} has {a} {objs}.", f"{n2} has {rel}."]
    shown, annotated = _calc(a, op, b, second)
    cot = [f"{n1} has {a} {objs}.", f"{n2} has {rel}, so {n2} has {shown} {objs}."]
    gsm = [f"{n2} has {annotated} {objs}."]
    var1, var2 = n1.lower(), n2.lower()
    program = [f"{var1} = {a}", f"{var2} = {var1} {op} {b}"]
    tool_steps = [ToolStep(f"{n1} has {a} {objs}. {n2} has {rel}.", f"print({a} {op} {b})", str(second))]
    answer, end = second, f"{n2} has {second} {objs}."
    if steps == 1:
        question.append(f"How many {objs} does {n2} have?")
        program.append(f"print({var2})")
    else:
        total = a + second
        shown, annotated = _calc(a, "+", second, total)
        cot.append(f"Together they have {shown} {objs}.")
        gsm.append(f"Together they have {annotated} {objs}.")
        program.append(f"print({var1} + {var2})")
        tool_steps.append(ToolStep(f"{n2} has {second} {objs} and {n1} has {a} {objs}.",
                                   f"print({a} + {second})", str(total)))
        question.append(f"How many {objs} do {n1} and {n2} have together?")
        answer, end = total, f"Together they have {total} {objs}."
    return _finish("gsm.compare", min(steps, 2), " ".join(question), cot, gsm, answer, program, tool_steps, end)


# name -> (generator, the step counts it supports)
TEMPLATES = {
    "gsm.chain": (chain, (1, 2, 3)),
    "gsm.shopping": (shopping, (1, 2, 3)),
    "gsm.compare": (compare, (1, 2)),
}
