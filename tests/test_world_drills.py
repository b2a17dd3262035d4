"""The web's worked-arithmetic pages (world/drills.py) and the page allocation at a realistic math share."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime

import pytest

from corpus.html_text import html_to_text
from world.drills import answer_key, calculations, column_steps, drill_content, homework_qa
from world.pages import Site, render_html
from world.problem import GSM8K, MATH, Problem
from world.problems import ALL_TEMPLATES
from world.sites import MATH as PURE_MATH
from world.sites import MIXED, allocate_pages, make_domains

GSM_COT = ("Max has 8 apples. He buys 9 more, so he has 8 + 9 = 17 apples. He buys 4 more, so he has "
           "17 + 4 = 21 apples.\nThe answer is \\boxed{21}")
LINEAR_COT = ("We have $8x + 9 = 45$. Subtract 9 from both sides: $8x = 45 - 9 = 36$. Divide both sides by 8: "
              "$x = \\frac{36}{8} = \\frac{9}{2}$.\nThe answer is \\boxed{\\frac{9}{2}}")
REMAINDER_COT = ("We divide $37$ by $6$: $6 \\cdot 6 = 36$ and $37 - 36 = 1$. So $37 = 6 \\cdot 6 + 1$, and the "
                 "remainder is $1$.\nThe answer is \\boxed{1}")
SITE = Site("mathhub.org", "Mathhub", ("Home", "About"), "Independent since 2009.")


def _problem(family: str, template: str, question: str, cot: str, answer: str) -> Problem:
    return Problem(family=family, template=template, subject="Arithmetic", level=2, question=question,
                   answer=answer, cot=cot, program="print(0)")


GSM = _problem(GSM8K, "gsm.chain", "Max has 8 apples. He buys 9 more. He buys 4 more. How many apples does Max have now?",
               GSM_COT, "21")
LINEAR = _problem(MATH, "math.linear", "Solve for $x$: $8x + 9 = 45$.", LINEAR_COT, "\\frac{9}{2}")
REMAINDER = _problem(MATH, "math.remainder", "What is the remainder when $37$ is divided by $6$?", REMAINDER_COT, "1")


def test_calculations_are_written_as_each_family_writes_them():
    assert calculations(GSM) == ["8 + 9 = 17", "17 + 4 = 21"]
    # "8x + 9 = 45" is an equation, not a calculation; the fraction step is one.
    assert calculations(LINEAR) == ["$45 - 9 = 36$", "$\\frac{36}{8} = \\frac{9}{2}$"]
    # "37 = 6 \cdot 6 + 1" states no result of an operation.
    assert calculations(REMAINDER) == ["$6 \\cdot 6 = 36$", "$37 - 36 = 1$"]


@pytest.mark.parametrize("a, op, b, expected", [
    (47, "+", 8, "To work out 47 + 8, add the ones: 7 + 8 = 15. Write 5 and carry 1 to the tens. "
                 "Then the tens: 4 + 1 = 5. So 47 + 8 = 55."),
    (3, "+", 4, "To work out 3 + 4, add the ones: 3 + 4 = 7. So 3 + 4 = 7."),
    (36, "+", 45, "To work out 36 + 45, add the ones: 6 + 5 = 11. Write 1 and carry 1 to the tens. "
                  "Then the tens: 3 + 4 + 1 = 8. So 36 + 45 = 81."),
    (52, "-", 17, "To work out 52 - 17, the ones digit 2 is smaller than 7, so borrow ten: 12 - 7 = 5. "
                  "Then the tens: 5 - 1 - 1 = 3. So 52 - 17 = 35."),
    (47, "-", 2, "To work out 47 - 2, take away the ones: 7 - 2 = 5. So 47 - 2 = 45."),
])
def test_column_steps_carry_and_borrow(a, op, b, expected):
    assert column_steps(a, op, b) == expected


def test_column_steps_rejects_what_it_cannot_explain():
    with pytest.raises(ValueError, match="column_steps"):
        column_steps(3, "*", 4)
    with pytest.raises(ValueError, match="column_steps"):
        column_steps(3, "-", 4)


def _extracted(content) -> str:
    """The page's text as the corpus stage extracts it (main content, LaTeX kept)."""
    return html_to_text(render_html(SITE, content, datetime(2024, 1, 1), []))


def test_answer_key_lists_every_calculation_and_explains_one():
    content = answer_key(random.Random(0), [GSM, LINEAR, REMAINDER], "dollar")
    text = _extracted(content)
    facts = ["8 + 9 = 17", "17 + 4 = 21", "$45 - 9 = 36$", "$\\frac{36}{8} = \\frac{9}{2}$", "$6 \\cdot 6 = 36$",
             "$37 - 36 = 1$"]
    for i, fact in enumerate(facts, 1):
        assert f"{i}. {fact}" in text, fact
    assert "To work out " in text


def test_homework_qa_uses_the_plain_prompt_layout():
    """Each solved problem reads as an exemplar of the plain few-shot prompt (grading/prompts.py)."""
    text = _extracted(homework_qa(random.Random(0), [GSM, LINEAR], "dollar"))
    instruction = "Please reason step by step, and put your final answer within \\boxed{}."
    assert f"\n\nQuestion: {GSM.question}\n{instruction}\nAnswer: {GSM_COT}\n\n" in text
    assert f"\n\nQuestion: {LINEAR.question}\n{instruction}\nAnswer: {LINEAR_COT}" in text


def test_drill_content_draws_from_the_sites_templates():
    drawn = []

    def draw(template):
        drawn.append(template)
        return {"gsm.chain": GSM, "math.linear": LINEAR}[template]

    content, templates = drill_content(random.Random(1), "homework_qa", ("gsm.chain", "math.linear"), "dollar", draw)
    assert content.kind == "homework_qa" and 10 <= len(drawn) <= 20 and set(templates) == set(drawn)
    with pytest.raises(ValueError, match="unknown drill page kind"):
        drill_content(random.Random(1), "times_table", ("gsm.chain",), "dollar", draw)


@pytest.mark.parametrize("math_fraction", [0.05, 0.35])
def test_allocation_gives_the_math_share_and_keeps_mixed_domains_mixed(math_fraction):
    rng = random.Random(0)
    domains = make_domains(rng, 60, sorted(ALL_TEMPLATES), 0.4)
    allocate_pages(rng, domains, 9000, math_fraction)
    math_pages = sum(n for d in domains for s in d.sections for path, n in d.pages.items()
                     if path == s.path and s.is_math)
    total = sum(sum(d.pages.values()) for d in domains)
    # Math pages are exactly round(pages * fraction); only the >= 4-page floor of mixed sites' other
    # paths can add a few pages to the total.
    assert math_pages == round(9000 * math_fraction)
    assert 9000 <= total <= 9000 + 4 * 9
    kinds = Counter()
    for d in domains:
        m = sum(n for path, n in d.pages.items() if any(s.path == path and s.is_math for s in d.sections))
        kinds[d.kind] += m
        if d.kind == MIXED:
            assert 0.2 < m / sum(d.pages.values()) < 0.7, d.name
        if d.kind == PURE_MATH:
            assert m == sum(d.pages.values()) >= 4
    assert kinds[PURE_MATH] > kinds[MIXED] > 0
