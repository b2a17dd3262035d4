"""grading.grader: extraction details, statuses, hard time limits, grouping, PoT execution, the CLI,
and the MATH500 / GSM8K consistency checks on ../shared/data/bench."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from grading.answer_extraction import extract_answer
from grading.grader import Verdict, grade, grade_many, group_equivalent, is_equivalent

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "bench"


# ------------------------------------------------------------------ extraction


@pytest.mark.parametrize("text, expected", [
    ("\\boxed{\\frac{a}{b}}", "\\frac{a}{b}"),
    ("\\boxed{\\left\\{ 1, 2 \\right\\}}", "\\left\\{ 1, 2 \\right\\}"),
    ("a \\boxed{1} b \\fbox{2}", "2"),
    ("so $\\boxed 7$.", "7"),
    ("The answer is: $x = 4$.", "x = 4"),
    ("The answer is 3.5.", "3.5"),
    ("the answer is \\boxed{5}. The answer is 6.", "5"),
    ("```python\nprint('The answer is 9')\nx = 10\n```\nnothing else", None),
    ("```python\nprint(1)\n```\n```output\n1\n2\n\n```", "2"),
    ("value 3, value -4.5", "-4.5"),
    ("\\boxed{3", None),
    ("", None),
    (None, None),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extraction_is_linear_on_hostile_text():
    t0 = time.perf_counter()
    for text in ("{" * 100_000, "\\boxed{" * 20_000, "1" * 100_000, "answer is " * 10_000, "```" * 30_001):
        extract_answer(text)
    assert time.perf_counter() - t0 < 2.0


# ------------------------------------------------------------------ statuses and verdicts


def test_grade_statuses():
    assert grade("\\boxed{4}", "4") == Verdict(True, "4", "ok")
    assert grade("\\boxed{5}", "4") == Verdict(False, "5", "ok")
    assert grade("no idea", "4") == Verdict(False, None, "no_answer")
    assert grade("\\boxed{4}", "  ").status == "unparseable_gold"
    assert grade("\\boxed{4}", "\\frac{1}{2").status == "unparseable_gold"


def test_unparseable_gold_detected_on_the_sympy_path():
    v = grade("\\boxed{\\sqrt{2}}", "\\sqrt{}}{")
    assert v.status == "unparseable_gold" and not v.correct


def test_truncated_completion_only_counts_an_explicit_answer():
    assert grade("we have 3 + 4 = 7 and then", "7", truncated=True).status == "no_answer"
    assert grade("so \\boxed{7} and then we also", "7", truncated=True).correct
    assert grade("we have 3 + 4 = 7 and then", "7").correct


def test_grade_many_checks_lengths():
    with pytest.raises(ValueError, match="truncation flags"):
        grade_many([("a", "b")], truncated=[True, False])


def test_model_text_is_never_evaluated(tmp_path):
    target = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {target}')"
    for completion in (f"\\boxed{{{payload}}}", f"The answer is {payload}", f"\\boxed{{\\text{{{payload}}}}}"):
        assert not grade(completion, "0").correct
    assert not target.exists()


def test_is_equivalent_and_none():
    assert is_equivalent("\\frac{2}{4}", "0.5")
    assert is_equivalent("2\\sqrt{2}", "\\sqrt{8}")
    assert not is_equivalent("1.41", "\\sqrt{2}")
    assert not is_equivalent(None, "1")


# ------------------------------------------------------------------ hard time limits


def test_pathological_answers_cost_at_most_their_limit():
    pairs = [
        ("\\boxed{(x+1)^{100000} - x}", "x"),  # expand() runs for minutes
        ("\\boxed{10^{10^{10}}!}", "5"),  # factorial of a huge number
        ("\\boxed{" + "1+" * 50_000 + "1}", "50001"),  # 100k characters
    ]
    t0 = time.monotonic()
    verdicts = grade_many(pairs, workers=2, timeout=1.0)
    elapsed = time.monotonic() - t0
    assert all(not v.correct for v in verdicts[:2])
    assert verdicts[0].status == "timeout"
    assert elapsed < 12, f"{elapsed:.1f}s for three pathological pairs at 1s each"


def test_a_stuck_pair_does_not_stall_the_batch():
    normal = [(f"\\boxed{{{i}\\sqrt{{2}}}}", f"\\sqrt{{{2 * i * i}}}") for i in range(1, 21)]
    pairs = [("\\boxed{(x+1)^{100000}}", "x^2")] + normal
    t0 = time.monotonic()
    verdicts = grade_many(pairs, workers=2, timeout=1.0)
    assert verdicts[0].status == "timeout"
    assert all(v.correct and v.status == "ok" for v in verdicts[1:])
    assert time.monotonic() - t0 < 10
    assert grade("\\boxed{2\\sqrt{2}}", "\\sqrt{8}").correct  # the replaced worker serves the next call


def test_time_limit_works_from_a_thread():
    out = {}

    def work():
        t0 = time.monotonic()
        out["v"] = grade("\\boxed{(x+1)^{100000}}", "x", timeout=1.0)
        out["dt"] = time.monotonic() - t0

    th = threading.Thread(target=work)
    th.start()
    th.join(30)
    assert out["v"].status == "timeout" and out["dt"] < 8


# ------------------------------------------------------------------ Maj@K grouping


def test_group_equivalent():
    answers = ["\\frac12", "0.5", None, "1/2", "\\sqrt{2}", "\\frac{2}{\\sqrt{2}}", "3", "x=3"]
    assert group_equivalent(answers) == [0, 0, -1, 0, 1, 1, 2, 2]
    assert group_equivalent([]) == []
    assert group_equivalent([None, None]) == [-1, -1]


# ------------------------------------------------------------------ program of thought


POT = "Let me write a program.\n```python\n{code}\n```\n"


def test_pot_program_output_is_graded():
    completion = POT.format(code="from fractions import Fraction\nprint(Fraction(1, 3) + Fraction(1, 6))")
    assert extract_answer(completion) is None  # nothing stated: the output is the answer
    assert grade(completion, "\\frac12", execute_code=True) == Verdict(True, "1/2", "ok")
    assert grade(completion, "\\frac12").status == "no_answer"  # without execution there is no answer


def test_pot_failures():
    assert grade(POT.format(code="raise SystemExit(3)"), "1", execute_code=True).status == "no_answer"
    slow = grade(POT.format(code="while True:\n    pass"), "1", execute_code=True, code_timeout=1)
    assert slow.status == "timeout"


def test_tool_trace_uses_its_output_block_without_running():
    trace = POT.format(code="import os\nos.system('echo should-not-run')") + "```output\n12\n```\n"
    assert grade(trace, "12", execute_code=True) == Verdict(True, "12", "ok")


# ------------------------------------------------------------------ CLI


def test_cli_grades_a_file_and_counts_bad_lines(tmp_path):
    inp, out = tmp_path / "cases.jsonl", tmp_path / "verdicts.jsonl"
    inp.write_text("\n".join([
        json.dumps({"id": 1, "completion": "\\boxed{\\frac{1}{2}}", "gold": "0.5"}),
        "not json",
        json.dumps({"id": 2, "completion": "The answer is 7."}),
        json.dumps({"id": 3, "completion": "hmm", "gold": "4"}),
    ]) + "\n")
    r = subprocess.run([sys.executable, "-m", "grading.grade", "--input", str(inp), "--output", str(out),
                        "--workers", "1", "--timeout", "5"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(x["id"], x["correct"], x["status"], x["pred"]) for x in rows] == [
        (1, True, "ok", "\\frac{1}{2}"), (3, False, "no_answer", None)]
    assert ":2: skipped, not JSON" in r.stderr and ":3: skipped, gold missing" in r.stderr
    assert "'skipped': {'bad_json': 1, 'missing_field': 1}" in r.stderr


# ------------------------------------------------------------------ real benchmark data


@pytest.mark.shared
def test_math500_solutions_yield_their_answers():
    path = BENCH / "math500_test.jsonl"
    if not path.exists():
        pytest.skip(f"{path} absent (../shared/data/bench is not checked out here)")
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(rows) == 500
    mismatched = [(r["unique_id"], extract_answer(r["solution"]), r["answer"]) for r in rows
                  if extract_answer(r["solution"]) != r["answer"]]
    assert mismatched == []
    verdicts = grade_many([(r["solution"], r["answer"]) for r in rows], workers=2)
    assert [r["unique_id"] for r, v in zip(rows, verdicts) if not v.correct] == []


@pytest.mark.shared
def test_gsm8k_gold_equals_itself_as_a_sentence():
    path = BENCH / "gsm8k_test.jsonl"
    if not path.exists():
        pytest.skip(f"{path} absent (../shared/data/bench is not checked out here)")
    golds = [json.loads(x)["answer"].split("####")[-1].strip() for x in path.read_text().splitlines()]
    assert len(golds) == 1319
    verdicts = grade_many([(f"The answer is {g}.", g) for g in golds], workers=2)
    assert [g for g, v in zip(golds, verdicts) if not (v.correct and v.status == "ok")] == []


# ------------------------------------------------------------------ the fast LaTeX arithmetic parser


@pytest.mark.parametrize("text", [
    "2\\sqrt{2}", "\\frac{\\pi}{6}", "x^2+2x+1", "3+4i", "\\frac{1+i\\sqrt{3}}{2}", "\\sqrt[3]{27}",
    "2(a+b)", "(x-1)(x+1)", "\\pi r^2", "-x^2", "2^{-1}", "e^{i\\pi}", "2 \\cdot 10^{-2}",
    "\\frac{x^2-1}{x-1}", "2^{100}+1", "\\frac{3}{4}\\div\\frac{1}{2}", "{x}^{2}y",
])
def test_arith_parser_agrees_with_latex2sympy(text):
    """grading.latex_arith only changes speed: where it answers, latex2sympy2_extended means the same."""
    from grading.latex_arith import parse_arith
    from grading.sympy_compare import _latex2sympy, objects_equal

    fast, reference = parse_arith(text), _latex2sympy(text)
    assert fast is not None and reference is not None
    assert objects_equal(fast, reference)


@pytest.mark.parametrize("text", ["1/2x", "x^23", "\\sin x", "x_1", "1.5.3", "x2", "2 3", "5!", "x=1",
                                  "10^{10^{10}}", "(1,2)", "\\frac{1}{2"])
def test_arith_parser_leaves_the_rest_to_latex2sympy(text):
    from grading.latex_arith import parse_arith

    assert parse_arith(text) is None


def test_self_test_catches_a_broken_latex_parser(monkeypatch):
    import sympy

    from grading import sympy_compare

    monkeypatch.setattr(sympy_compare, "latex2sympy", lambda *a, **k: sympy.Integer(0))
    with pytest.raises(RuntimeError, match="self-test failed"):
        sympy_compare.self_test()


def test_numeric_and_missing_golds():
    assert grade("The answer is 18.", 18) == Verdict(True, "18", "ok")
    assert grade("\\boxed{0.5}", 0.5).correct
    assert grade("\\boxed{1}", None).status == "unparseable_gold"
    assert grade(None, "1").status == "no_answer"


# ------------------------------------------------------------------ bad input, grader version


def test_empty_or_non_string_completions_get_no_answer():
    verdicts = grade_many([("", "1"), (None, "1"), (42, "42"), (["\\boxed{1}"], "1"), ("   ", "1")])
    assert [v.status for v in verdicts] == ["no_answer"] * 5 and not any(v.correct for v in verdicts)


def test_an_unparseable_gold_is_reported_once_with_its_id(caplog):
    gold = "\\frac{12345}{678"  # unbalanced: a typo in a data set, repeated for every sample of the problem
    with caplog.at_level("WARNING", logger="grading.grader"):
        verdicts = grade_many([("\\boxed{1}", gold)] * 3 + [("\\boxed{2}", "2")], ids=["p7#0", "p7#1", "p7#2", "p8"])
    assert [v.status for v in verdicts] == ["unparseable_gold"] * 3 + ["ok"]
    reports = [r.getMessage() for r in caplog.records if "unparseable gold" in r.getMessage()]
    assert len(reports) == 1 and "p7#0" in reports[0] and repr(gold) in reports[0]


def test_grader_version_hashes_every_source_of_the_package(tmp_path):
    from grading.grader import GRADER_VERSION, source_version

    package = ROOT / "grading"
    assert GRADER_VERSION == source_version(package)
    copy = tmp_path / "grading"
    copy.mkdir()
    for path in package.glob("*.py"):
        (copy / path.name).write_bytes(path.read_bytes())
    assert source_version(copy) == GRADER_VERSION
    seen = {GRADER_VERSION}
    for name in ("latex_arith.py", "normalize.py", "grade.py"):  # latex_arith.py was once left out
        (copy / name).write_bytes((copy / name).read_bytes() + b"\n# changed\n")
        seen.add(source_version(copy))
    (copy / "new_module.py").write_text("X = 1\n")
    seen.add(source_version(copy))
    assert len(seen) == 5
