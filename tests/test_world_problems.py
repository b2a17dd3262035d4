"""The generated problem family: verified gold answers, response formats, disjoint splits, test schemas."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from corpus.decontaminate import NgramMatcher
from grading import benchmarks, grader, sandbox
from sft import formats
from tests.conftest import shared_data
from world import gsm, mathlike
from world.execute import run_programs
from world.problem import Problem, ToolStep, near_key
from world.problems import ProblemSettings, generate, main, verify

ROOT = Path(__file__).resolve().parents[1]
SMALL = ProblemSettings(sft=240, rl=80, test_gsm8k=60, test_math=60)
PROBLEM_FIELDS = {"problem_id", "family", "subject", "level", "question", "answer", "cot", "pot", "tool"}
_PYTHON = re.compile(r"```python\n(.*?)\n```", re.DOTALL)
_OUTPUT = re.compile(r"```output\n(.*?)\n```", re.DOTALL)


@pytest.fixture(scope="module")
def world():
    records, stats = generate(SMALL, seed=0)
    return records, stats


def _train(records):
    return records["sft"] + records["rl"]


def test_sizes_and_fields(world):
    records, stats = world
    assert stats["sizes"] == {"sft": 240, "rl": 80, "test_gsm8k": 60, "test_math": 60}
    assert stats["rejected"] == 0, stats["rejected_reasons"]
    for r in _train(records):
        assert PROBLEM_FIELDS <= set(r), r
        assert r["family"] in ("gsm8k", "math") and 1 <= r["level"] <= 5
    ids = [r["problem_id"] for r in _train(records)]
    assert len(ids) == len(set(ids))
    families = {r["family"] for r in records["sft"]}
    assert families == {"gsm8k", "math"}
    assert {r["template"] for r in records["sft"]} == set(gsm.TEMPLATES) | set(mathlike.TEMPLATES)


def test_cot_ends_with_the_boxed_gold(world):
    records, _ = world
    for r in _train(records):
        assert r["cot"].endswith(f"The answer is \\boxed{{{r['answer']}}}"), r["cot"]
        assert r["tool"].endswith(f"The answer is \\boxed{{{r['answer']}}}"), r["tool"]
    for r in records["test_math"]:
        assert r["solution"].endswith(f"\\boxed{{{r['answer']}}}")


def test_every_gold_answer_is_its_program_output(world):
    """Run each PoT block again, independently of generation, and compare with the gold answer."""
    records, _ = world
    train = _train(records)
    programs = [_PYTHON.fullmatch(r["pot"].strip()).group(1) for r in train]
    results = run_programs(programs)
    for r, res in zip(train, results):
        assert res.status == "ok", (r["problem_id"], res.stderr)
        assert res.stdout.strip() == r["answer"], (r["problem_id"], res.stdout, r["answer"])


def test_tool_outputs_are_real_execution_results(world):
    records, _ = world
    blocks, outputs = [], []
    for r in _train(records):
        codes, outs = _PYTHON.findall(r["tool"]), _OUTPUT.findall(r["tool"])
        assert codes and len(codes) == len(outs), r["tool"]
        blocks += codes
        outputs += outs
    for code, recorded, res in zip(blocks, outputs, run_programs(blocks)):
        assert res.stdout.strip() == recorded, (code, res.stdout, recorded)


def test_formats_follow_the_sft_templates(world):
    records, _ = world
    for r in _train(records):
        for fmt in ("cot", "pot", "tool"):
            assert formats.check_response(fmt, r[fmt]) is None, (fmt, r[fmt])


def test_grader_accepts_gold_and_solutions(world):
    records, stats = world
    assert stats["grader_disagreements_test"] == 0
    pairs = [(r["cot"], r["answer"]) for r in _train(records)] + [(r["tool"], r["answer"]) for r in _train(records)]
    verdicts = grader.grade_many(pairs)
    wrong = [(p[1], v) for p, v in zip(pairs, verdicts) if not v.correct]
    assert not wrong, wrong[:5]


def test_splits_are_disjoint_up_to_names_and_objects(world):
    records, _ = world
    test_questions = [r["question"] for r in records["test_gsm8k"]] + [r["problem"] for r in records["test_math"]]
    train_questions = [r["question"] for r in _train(records)]
    assert not set(test_questions) & set(train_questions)
    assert not {near_key(q) for q in test_questions} & {near_key(q) for q in train_questions}
    assert not {near_key(r["question"]) for r in records["sft"]} & {near_key(r["question"]) for r in records["rl"]}
    # An independent, cruder check: the numbers in order plus the words that are not names or objects.
    def skeleton(q):
        return tuple(re.findall(r"\d+", q)), len(q.split())
    train_skeletons = {skeleton(q) for q in train_questions}
    clashes = [q for q in test_questions if skeleton(q) in train_skeletons]
    # Same numbers and length but a different operation can happen; a near-copy cannot.
    for q in clashes:
        assert all(near_key(q) != near_key(t) for t in train_questions if skeleton(t) == skeleton(q))


def test_near_key_masks_names_and_objects_only():
    a = "Tom has 5 apples. He buys 3 more. How many apples does Tom have now?"
    b = "Mia has 5 pens. She buys 3 more. How many pens does Mia have now?"
    c = "Tom has 5 apples. He buys 4 more. How many apples does Tom have now?"
    d = "Tom has 5 apples. He gives 3 to Ann. How many apples does Tom have now?"
    assert near_key(a) == near_key(b)
    assert near_key(a) != near_key(c) and near_key(a) != near_key(d)


def test_test_files_load_with_the_real_benchmark_loaders(world, tmp_path):
    records, _ = world
    for name, schema, key in (("test_gsm8k", "gsm8k", "question"), ("test_math", "math500", "problem")):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records[name]))
        bench = benchmarks.load_benchmark(name, data=path)
        assert bench.schema == schema and not bench.skipped
        assert [p.question for p in bench.problems] == [r[key] for r in records[name]]
    gsm_golds = [p.answer for p in benchmarks.load_benchmark("g", data=tmp_path / "test_gsm8k.jsonl").problems]
    assert all(g.isdigit() for g in gsm_golds)


@pytest.mark.shared
def test_test_files_have_the_real_benchmarks_keys(world):
    records, _ = world
    for ours, theirs in (("test_gsm8k", "gsm8k_test.jsonl"), ("test_math", "math500_test.jsonl")):
        path = shared_data("bench", theirs)
        with open(path) as f:
            real = json.loads(f.readline())
        assert set(records[ours][0]) == set(real), (ours, set(real))
        assert type(records[ours][0].get("level", 0)) is type(real.get("level", 0))


def test_same_seed_same_problems_other_seed_other_problems(world):
    records, _ = world
    again, _ = generate(SMALL, seed=0)
    assert again == records
    other, _ = generate(SMALL, seed=1)
    assert other["test_math"] != records["test_math"]


def test_difficulty_knob():
    easy, _ = generate(ProblemSettings(sft=80, rl=0, test_gsm8k=10, test_math=10, max_steps=1, max_number=5), seed=0)
    gsm_train = [r for r in easy["sft"] if r["family"] == "gsm8k"]
    assert gsm_train and all(r["level"] == 1 for r in gsm_train)
    assert all(r["cot"].count(" = ") == 1 for r in gsm_train)
    hard, _ = generate(ProblemSettings(sft=80, rl=0, test_gsm8k=10, test_math=10, max_number=30), seed=0)
    def biggest(recs):
        return max(int(n) for r in recs for n in re.findall(r"\d+", r["question"]))
    assert biggest(hard["sft"]) > biggest(easy["sft"])


def test_verify_rejects_a_wrong_gold_and_counts_it():
    p = gsm.chain(__import__("random").Random(0), 1, 9)
    wrong = Problem(**{**p.__dict__, "answer": str(int(p.answer) + 1)})
    bad_tool = Problem(**{**p.__dict__, "tool_steps": [ToolStep("x", "print(0)", "1")]})
    kept, rejected = verify({"sft": [p, wrong, bad_tool]}, SMALL)
    assert [k[0] for k in kept["sft"]] == [p]
    assert sum(rejected.values()) == 2


def test_runner_reports_errors_and_timeouts():
    ok, err, slow = run_programs(["print(6 * 7)", "raise ValueError('boom')", "while True:\n    pass"], timeout=0.5)
    assert (ok.status, ok.stdout) == ("ok", "42\n")
    assert err.status == "error" and "boom" in err.stderr
    assert slow.status == "timeout"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="grading.sandbox isolates with Linux-only layers")
def test_sandbox_backend_agrees_with_batch(world):
    assert sandbox.run_code("print(1)", timeout=10, memory_mb=512).stdout == "1\n"
    records, _ = world
    programs = [_PYTHON.fullmatch(r["pot"].strip()).group(1) for r in _train(records)[:12]]
    batch = run_programs(programs, backend="batch")
    isolated = run_programs(programs, backend="sandbox")
    assert [r.stdout for r in batch] == [r.stdout for r in isolated]
    assert [r.stdout.strip() for r in isolated] == [r["answer"] for r in _train(records)[:12]]


def test_cli_writes_the_four_splits(tmp_path):
    out = tmp_path / "problems"
    main(["--config", str(ROOT / "config/smoke.yaml"), "--out-dir", str(out), "--set", "world.problems.sft=30",
          "--set", "world.problems.rl=10", "--set", "world.problems.test_gsm8k=5", "--set", "world.problems.test_math=5"])
    for split, n in (("sft", 30), ("rl", 10), ("test_gsm8k", 5), ("test_math", 5)):
        assert len((out / f"{split}.jsonl").read_text().splitlines()) == n
    run = json.loads((out / "run.json").read_text())
    assert run["stats"]["rejected"] == 0


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="max_steps"):
        ProblemSettings.from_config({"max_steps": 4})
    with pytest.raises(ValueError, match="executor"):
        ProblemSettings.from_config({"executor": "docker"})


def test_template_knob_restricts_problems_and_is_checked():
    records, _ = generate(ProblemSettings(sft=40, rl=0, test_gsm8k=10, test_math=10,
                                          templates=("gsm.chain", "math.linear")), seed=0)
    assert {r["template"] for r in records["sft"]} == {"gsm.chain", "math.linear"}
    with pytest.raises(ValueError, match="unknown"):
        ProblemSettings.from_config({"templates": ["math.calculus"]})
    with pytest.raises(ValueError, match="no math template"):
        ProblemSettings.from_config({"templates": ["gsm.chain"]})


def test_schema_lists_exactly_the_templates():
    import yaml

    schema = yaml.safe_load((ROOT / "config/schema/world.schema.yaml").read_text())
    listed = schema["properties"]["problems"]["properties"]["templates"]["items"]["enum"]
    assert sorted(listed) == sorted({**gsm.TEMPLATES, **mathlike.TEMPLATES})


def test_train_splits_pass_the_sft_decontamination(world):
    """sft.data drops an example whose question + response shares a clean_ngram-gram with a test question."""
    records, stats = world
    questions = [r["question"] for r in records["test_gsm8k"]] + [r["problem"] for r in records["test_math"]]
    matcher = NgramMatcher.from_texts((("test", q) for q in questions), n=SMALL.clean_ngram, min_exact=3)
    for r in _train(records):
        for fmt in ("cot", "pot", "tool"):
            assert matcher.find(r["question"] + "\n" + r[fmt]) is None, (r["question"], fmt)
    assert set(stats["ngram_redraws"]) == {"sft", "rl"}
