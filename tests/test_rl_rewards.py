"""RL rewards: the shared grader behind `correctness`, skip-and-count for unparseable golds, the
registry, and the rule-based step rewards for process supervision (DeepSeekMath §4.1.2)."""

import json
import time

import pytest

from rl.arithmetic_steps import check_equations
from rl.rewards import REWARDS, RewardFunction, split_steps, step_rewards_arithmetic
from tests.conftest import shared_data


def test_correctness_and_format_terms():
    fn = RewardFunction({"correctness": 1.0, "format": 0.5})
    texts = [
        "2 + 3 = 5. The answer is \\boxed{5}",  # right
        "2 + 3 = 6. The answer is \\boxed{6}",  # wrong, but well-formed
        "The answer is \\boxed{\\frac{1}{2}}",  # equivalent to 0.5 (sympy / rational check)
        "2 + 3 = 5 so the answer is 5 and then 2 + 3",  # cut at max_new_tokens, no stated answer
    ]
    s = fn(texts, ["5", "5", "0.5", "5"], ["stop", "stop", "stop", "length"])
    assert s.terms["correctness"] == [1.0, 0.0, 1.0, 0.0]
    assert s.terms["format"] == [1.0, 1.0, 1.0, 0.0]
    assert s.total == [1.5, 0.5, 1.5, 0.0]
    assert s.correct == [True, False, True, False] and s.skipped == 0


def test_unparseable_gold_is_skipped_not_rewarded():
    fn = RewardFunction({"correctness": 1.0})
    s = fn(["The answer is \\boxed{5}", "The answer is \\boxed{}"], ["\\frac{", "5"], ["stop", "stop"])
    assert s.total[0] is None and s.statuses[0] == "unparseable_gold"
    assert s.total[1] == 0.0 and s.skipped == 1


def test_pot_completions_are_run_in_the_sandbox():
    fn = RewardFunction({"correctness": 1.0}, timeout=5.0)
    prog = "```python\nx = 6 * 7\nprint(x)\n```"
    wrong = "```python\nprint(6 + 7)\n```"
    s = fn([prog, wrong], ["42", "42"], ["stop", "stop"], fmt="pot")
    assert s.total == [1.0, 0.0]


def test_registry_rejects_unknown_terms():
    assert set(REWARDS) >= {"correctness", "format"}
    with pytest.raises(ValueError, match="unknown reward term"):
        RewardFunction({"correctness": 1.0, "length_penalty": 0.1})
    with pytest.raises(ValueError, match="at least one"):
        RewardFunction({})


def test_step_rewards_arithmetic():
    text = ("Tom has 2 apples. He buys 6 more, so he has 2 + 6 = 8 apples. "
            "He buys 1 more, so he has 8 + 1 = 10 apples.\nThe answer is \\boxed{10}")
    assert [text[a:b] for a, b in split_steps(text)] == [
        "Tom has 2 apples.", "He buys 6 more, so he has 2 + 6 = 8 apples.",
        "He buys 1 more, so he has 8 + 1 = 10 apples.", "The answer is \\boxed{10}"]
    steps = step_rewards_arithmetic(text, outcome=0.0)
    # the equation-free first sentence is no step; 2 + 6 = 8 is right, 8 + 1 = 10 is wrong; the outcome last
    assert steps.rewards == [1.0, 0.0, 0.0]
    assert [text[:e].rsplit(" ", 1)[-1] for e in steps.ends] == ["apples.", "apples.", "\\boxed{10}"]
    assert step_rewards_arithmetic("", 1.0).rewards == []
    assert step_rewards_arithmetic("2 + 6 = 9. So \\boxed{9}", 0.0).rewards == [0.0, 0.0]  # period after the result
    assert step_rewards_arithmetic("3.5 * 2 = 7 and 9 / 3 = 3. So \\boxed{7}", 1.0).rewards == [1.0, 1.0]


# (step text, the verdict of each equation the rule scores): written from the rule in rl/arithmetic_steps.py
EQUATIONS = [
    ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.", [True]),  # a chain, and GSM8K's calculator note
    ("2 + 3 + 4 = 10", [False]),
    ("6*60 + 4*40 = $<<6*60+4*40=520>>520.", [True]),  # precedence
    ("$204 + $160 + $330 = $694.", [True]),
    ("3 x 4 = 12 and (2 + 3) x 4 = 20", [True, True]),
    ("so $6 \\cdot 6 = 36$ and $7 \\times 8 = 54$", [True, False]),
    ("1,000 + 250 = 1,250 and 9\\times 10\\times 1000=90,\\!000", [True, True]),
    ("x=220+23-80=163 notes", [True]),  # the first `=` is followed by an expression, not a number
    ("7 / 0 = 1", [False]),
    ("5 - 8 = -3", [True]),
    ("10/3 = 3.33 and 10/3 = 3.34", [True, False]),  # rounded to the stated decimals, not just near
    ("6.9999852\\cdot5.9999985401\\cdot10.00001988=419.999844...", [True]),  # cut off, marked by ...
    ("5 - 1 - 1/2 = 3 1/2 hours", [True]),  # a mixed number
    ("3 / 6 = 50%. Then 45 + 21 + 28 = 94%", [True, True]),  # a percentage, or percentages added
    ("2 + 6 = 8\n8 + 1 = 10", [True, False]),
    # not scored: a unit, a variable or a LaTeX operand inside, an expression or a power after the `=`,
    # no operator, a remainder, a ratio
    ("I eat 60g * 4/5 = 240g/5 = 48 grams", []),
    ("2x - 4 = 6, 2x - 4 + 1 = 6, 1 + 169 = 34x", []),
    ("x = 5 and x = 3 + 4", []),
    ("\\frac{1}{2} + 3 = 3.5, \\frac 12\\cdot 2 = 1, \\frac{27}{2} (-4) = 27, f(2) + 3 = 7", []),
    ("96 \\cdot 216 = 144^2 and 1000 \\div 9 = 111 remainder 1", []),
    ("$3:5 = 3\\cdot 6:5\\cdot 6 = 18:30$", []),
    ("a <= 3 + 4 == 7", []),
    ("Subtract 2 from both sides: $7x \\le 23 - 2 = 21$.", [True]),  # a relation is a boundary, like `=`
]


@pytest.mark.parametrize("text,verdicts", EQUATIONS)
def test_check_equations(text, verdicts):
    assert check_equations(text) == verdicts


def _scored(solutions):
    right, wrong = 0, []
    for text in solutions:
        for a, b in split_steps(text):
            for v in check_equations(text[a:b]):
                right += v
                if not v:
                    wrong.append(text[a:b])
    return right, wrong


@pytest.mark.shared
def test_gold_solutions_of_gsm8k_and_math_have_right_arithmetic():
    """The real benchmarks' reference solutions are right, so the step rule must call their equations right:
    GSM8K's chains and calculator notes, MATH's LaTeX (\\cdot, \\frac operands, 90,\\!000). The wrong ones
    left are errors in the references themselves (typos, a rounding of a rounded number, base 7)."""
    gsm = [json.loads(line)["answer"].split("####")[0] for line in shared_data("bench", "gsm8k_test.jsonl").open()]
    right, wrong = _scored(gsm)
    assert right >= 4100 and [w for w in wrong] == ["So, Suzzane has $32 - $20 = $300 left."]
    math = [json.loads(line)["solution"] for line in shared_data("bench", "math_test.jsonl").open()]
    right, wrong = _scored(math)
    known = ("452\\div1.98=228.29", "1-3-10+24 = -12", "44 \\times 55 = 3506",
             "25 \\cdot 4 + 5 \\cdot 4 + 4 = 125")  # 124: an error in the reference
    assert right >= 800 and all(any(k in w for k in known) for w in wrong), wrong


def handle_hanging_on_marker(task: dict) -> dict:
    """The grader's worker handler, except that it hangs in C code (a backtracking regex, which no alarm
    interrupts) on any output containing HANG, as a pathological answer could."""
    import re

    from grading.grader import handle

    if "HANG" in task.get("c", ""):
        re.match(r"(a+)+$", "a" * 64 + "b")
    return handle(task)


def test_a_grader_over_its_time_limit_gives_timeout_verdicts_not_a_hang():
    from rl.grading import RewardGrader

    g = RewardGrader(timeout=1.0, handler="tests.test_rl_rewards:handle_hanging_on_marker")
    try:
        t0 = time.monotonic()
        got = g.grade([("The answer is \\boxed{5}", "5"), ("HANG \\boxed{6}", "5"), ("\\boxed{6}", "5")],
                      [False, False, False])
        assert [v["status"] for v in got] == ["ok", "timeout", "ok"] and g.timeouts == 1
        assert got[0]["correct"] and not got[2]["correct"]
        assert time.monotonic() - t0 < 10
        assert g.grade([("\\boxed{7}", "7")], [False])[0]["correct"]  # a fresh worker after the kill
    finally:
        g.close()
    assert not g.pool._idle  # closing stopped its workers


def test_rewards_grade_bad_outputs_without_raising():
    fn = RewardFunction({"correctness": 1.0, "format": 0.1})
    s = fn(["", None, "\\boxed{3}"], ["3", "3", "3"], ["stop", "stop", "length"])
    assert s.statuses == ["no_answer", "no_answer", "ok"] and s.total == [0.0, 0.0, 1.0]
